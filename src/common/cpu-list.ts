/**
 * CPU lists in the kernel's "list" format (`0-3,8,10-11`), as found in cpuset files and in
 * /sys/devices/system/cpu/{online,possible,present}.
 */

/** Parses a CPU list into ascending, de-duplicated CPU numbers. Malformed tokens are skipped. */
export function parseCpuList(text: string): number[] {
  const cpus: number[] = [];
  for (const raw of text.split(',')) {
    const token = raw.trim();
    if (token === '') continue;
    const dash = token.indexOf('-');
    const first = Number.parseInt(dash < 0 ? token : token.slice(0, dash), 10);
    const last = dash < 0 ? first : Number.parseInt(token.slice(dash + 1), 10);
    if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last < first) continue;
    // A bound keeps a corrupt file ("0-4294967295") from allocating gigabytes.
    for (let cpu = first; cpu <= last && cpu < 65536; cpu++) cpus.push(cpu);
  }
  cpus.sort((a, b) => a - b);
  return cpus.filter((cpu, i) => i === 0 || cpus[i - 1] !== cpu);
}

/** Formats ascending CPU numbers as the kernel does (`%*pbl`): ranges collapsed, no trailing newline. */
export function formatCpuList(cpus: readonly number[]): string {
  let out = '';
  let i = 0;
  while (i < cpus.length) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j]! + 1) j++;
    if (out !== '') out += ',';
    out += j === i ? `${cpus[i]}` : `${cpus[i]}-${cpus[j]}`;
    i = j + 1;
  }
  return out;
}
