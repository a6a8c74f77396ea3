/**
 * Boots one QEMU guest on live cgroup v2 and collects what its check runner wrote
 * (test/fixtures/v2-guest: init, run-checks.sh). The guest sees this machine's files read-only over
 * 9p, writes its results into a fresh host directory shared read-write, has one virtio disk image
 * for the I/O checks and no network. QEMU is stopped by its PID at the deadline, and the console
 * log is kept so a hung or failed guest can be shown.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../integration/sandbox/helpers.js';

const guestFixtures = join(repoRoot, 'test/fixtures/v2-guest');

export interface GuestKernel {
  /** debian12 (6.1) or backports (6.12). */
  readonly name: string;
  readonly vmlinuz: string;
  readonly modules: string;
}

/** The kernels, fetched into the cache by scripts/v2-guest-kernels (a no-op once cached). */
export function guestKernels(): GuestKernel[] {
  const result = spawnSync(join(repoRoot, 'scripts/v2-guest-kernels'), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`scripts/v2-guest-kernels failed (${result.status}):\n${result.stderr}`);
  return result.stdout
    .trim()
    .split('\n')
    .map((line) => {
      const [name, vmlinuz, modules] = line.split(' ');
      return { name: name!, vmlinuz: vmlinuz!, modules: modules! };
    });
}

export interface CheckOutput {
  readonly rc: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface GuestRun {
  readonly kernel: GuestKernel;
  /** Everything the guest printed on its serial console. */
  readonly console: string;
  readonly seconds: number;
  readonly timedOut: boolean;
  /** Files the runner wrote besides the checks (kernel-release, daemon.err, ...). */
  readonly files: Map<string, string>;
  /** Check name -> what it printed; a check the guest never finished is absent. */
  readonly checks: Map<string, CheckOutput>;
}

function buildInitrd(kernel: GuestKernel): string {
  const result = spawnSync(
    join(repoRoot, 'scripts/v2-guest-initrd'),
    [kernel.modules, join(guestFixtures, 'init')],
    { encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`scripts/v2-guest-initrd failed:\n${result.stderr}`);
  return result.stdout.trim();
}

function readResults(dir: string): { files: Map<string, string>; checks: Map<string, CheckOutput> } {
  const files = new Map<string, string>();
  for (const name of readdirSync(dir)) files.set(name, readFileSync(join(dir, name), 'utf8'));
  const checks = new Map<string, CheckOutput>();
  for (const [name, rc] of files) {
    if (!name.endsWith('.rc')) continue;
    const check = name.slice(0, -3);
    checks.set(check, {
      rc: Number(rc.trim()),
      stdout: files.get(`${check}.out`) ?? '',
      stderr: files.get(`${check}.err`) ?? '',
    });
  }
  return { files, checks };
}

/** Debian's lxcfs, unpacked into the cache by scripts/v2-guest-lxcfs (a no-op once cached). */
export function guestLxcfs(): string {
  const result = spawnSync(join(repoRoot, 'scripts/v2-guest-lxcfs'), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`scripts/v2-guest-lxcfs failed (${result.status}):\n${result.stderr}`);
  return result.stdout.trim();
}

/**
 * Boots KERNEL, runs every check in it (or only those LXCFS_TS_V2_CHECKS names, comma-separated:
 * for working on one), with Debian's lxcfs from lxcfsDir (guestLxcfs) beside the project; resolves
 * when the guest powered off or was killed at the deadline.
 */
export async function runGuest(kernel: GuestKernel, lxcfsDir: string, deadlineMs: number): Promise<GuestRun> {
  const initrd = buildInitrd(kernel);
  const work = mkdtempSync(join(tmpdir(), `lxcfs-ts-v2-${kernel.name}-`));
  const outDir = join(work, 'out');
  const disk = join(work, 'disk.img');
  spawnSync('mkdir', [outDir]);
  writeFileSync(disk, '');
  truncateSync(disk, 64 * 1024 * 1024);
  const args = [
    // Single-threaded TCG: with one host thread per vCPU, the guest kernel's live code patching
    // (static keys, via int3) raced across vCPUs and oopsed now and then.
    '-accel', 'tcg,thread=single',
    '-m', '2048',
    '-smp', '2',
    '-nographic',
    '-no-reboot',
    '-nic', 'none',
    '-kernel', kernel.vmlinuz,
    '-initrd', initrd,
    '-append',
    [
      'console=ttyS0 cgroup_no_v1=all panic=-1 quiet',
      `lxcfs_ts_repo=${repoRoot.replace(/\/$/, '')}`,
      `lxcfs_ts_node=${process.execPath}`,
      `lxcfs_ts_lxcfs=${lxcfsDir}`,
      ...(process.env.LXCFS_TS_V2_CHECKS ? [`lxcfs_ts_checks=${process.env.LXCFS_TS_V2_CHECKS}`] : []),
    ].join(' '),
    '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
    '-virtfs', `local,path=${outDir},mount_tag=out,security_model=none`,
    '-drive', `file=${disk},if=virtio,format=raw`,
  ];
  const started = Date.now();
  const qemu = spawn('qemu-system-x86_64', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let consoleLog = '';
  qemu.stdout.on('data', (chunk: Buffer) => (consoleLog += chunk.toString('latin1')));
  qemu.stderr.on('data', (chunk: Buffer) => (consoleLog += chunk.toString('latin1')));
  let timedOut = false;
  const deadline = setTimeout(() => {
    timedOut = true;
    if (qemu.pid !== undefined) process.kill(qemu.pid, 'SIGKILL');
  }, deadlineMs);
  try {
    await new Promise<void>((resolve, reject) => {
      qemu.once('error', reject);
      qemu.once('close', () => resolve());
    });
  } finally {
    clearTimeout(deadline);
    if (qemu.exitCode === null && qemu.signalCode === null && qemu.pid !== undefined) process.kill(qemu.pid, 'SIGKILL');
  }
  const { files, checks } = existsSync(outDir) ? readResults(outDir) : { files: new Map(), checks: new Map() };
  rmSync(work, { recursive: true, force: true });
  // ANSI resets the BIOS prints are noise in a shown log.
  const console = consoleLog.replace(/\x1b(\[[0-9;?]*[A-Za-z]|c)/g, '');
  return { kernel, console, seconds: (Date.now() - started) / 1000, timedOut, files, checks };
}
