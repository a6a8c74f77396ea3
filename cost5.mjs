import fs from 'node:fs';

const buf = Buffer.allocUnsafe(65536);
function bench(name, fn, n = 20000) {
  for (let i = 0; i < 2000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const d = Number(process.hrtime.bigint() - t) / n / 1000;
  console.log(name.padEnd(40), d.toFixed(2), 'us');
}
for (const f of ['stat', 'wchan', 'schedstat', 'status', 'statm']) {
  const fd = fs.openSync('/proc/8349/' + f, 'r');
  bench('pread sleep ' + f, () => fs.readSync(fd, buf, 0, 65536, 0));
}
const fd = fs.openSync('/proc/8349/stat', 'r');
bench('pread sleep stat 512', () => fs.readSync(fd, buf, 0, 512, 0));
bench('statSync cgroup dir', () => fs.statSync('/sys/fs/cgroup/cpu'));
const m = new Map();
for (let i = 0; i < 2000; i++) m.set('/proc/' + (10000 + i) + '/stat', i);
let k = 0;
bench('map get built path', () => m.get('/proc/' + (10000 + (k++ % 2000)) + '/stat'));
