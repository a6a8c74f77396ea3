import fs from 'node:fs';

const buf = Buffer.allocUnsafe(4096);
function bench(name, fn, n = 20000) {
  for (let i = 0; i < 2000; i++) fn();
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn();
  const d = Number(process.hrtime.bigint() - t) / n / 1000;
  console.log(name.padEnd(40), d.toFixed(2), 'us');
}
for (const f of ['stat', 'task/10725/stat', 'task/10725/schedstat']) {
  const fd = fs.openSync('/proc/10725/' + f, 'r');
  bench('pread ' + f, () => fs.readSync(fd, buf, 0, 4096, 0));
}
