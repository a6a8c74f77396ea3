/**
 * The host's /proc/cpuinfo split into per-CPU blocks. x86, arm64, ppc64 and riscv start each
 * CPU's block with a `processor\t: <n>` line; lines before the first block (and after the last
 * one, e.g. arm's `Hardware`/`Revision`) are kept as they are.
 */
export interface HostCpuinfo {
  readonly head: string;
  /** host CPU number -> its block without the `processor` line (blank separator line included) */
  readonly blocks: ReadonlyMap<number, string>;
  readonly tail: string;
  /** The `processor` line's label as the host writes it (`processor\t: `). */
  readonly label: string;
}

const processorLine = /^processor(\s*):\s*(\d+)\s*$/;

/** Returns null when the format is not recognised (then the host file is served unchanged). */
export function parseHostCpuinfo(text: string): HostCpuinfo | null {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const blocks = new Map<number, string>();
  let head = '';
  let tail = '';
  let label = '';
  let current: number | null = null;
  let body = '';
  let sawBlock = false;
  const flush = () => {
    if (current !== null) blocks.set(current, body);
    body = '';
  };
  for (const line of lines) {
    const m = processorLine.exec(line);
    if (m) {
      flush();
      current = Number(m[2]);
      if (!sawBlock) label = `processor${m[1]}: `;
      sawBlock = true;
      continue;
    }
    if (!sawBlock) {
      head += `${line}\n`;
    } else if (current !== null && line === '') {
      body += '\n';
      flush();
      current = null;
    } else if (current !== null) {
      body += `${line}\n`;
    } else {
      tail += `${line}\n`;
    }
  }
  flush();
  if (blocks.size === 0) return null;
  return { head, blocks, tail, label };
}

/**
 * Only the visible CPUs, renumbered: the i-th visible host CPU becomes `processor : i`. Other
 * fields (siblings, core id, apicid...) keep the host's values, as with LXCFS.
 */
export function renderCpuinfo(host: HostCpuinfo, visible: readonly number[]): string {
  let out = host.head;
  let i = 0;
  for (const cpu of visible) {
    const block = host.blocks.get(cpu);
    if (block === undefined) continue;
    out += `${host.label}${i}\n${block}`;
    i++;
  }
  return out + host.tail;
}
