/**
 * A cgroup2 hierarchy in a temporary directory that follows the kernel's rules where the sandbox
 * depends on them: mkdir creates the control files of the controllers the parent enabled (and no
 * others), a write to a file that does not exist fails (cgroupfs cannot create files), a write to
 * cgroup.subtree_control merges `+c`/`-c` tokens and refuses controllers the cgroup does not have,
 * and rmdir refuses a cgroup with processes or children.
 */
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { CgroupFs } from '../../../src/sandbox/sandbox-cgroup.js';

function errno(code: string, path: string): Error {
  return Object.assign(new Error(`${code}: ${path}`), { code });
}

/** Control files per controller, with a new cgroup's default content (kernel 6.x). */
const controllerFiles: Record<string, Record<string, string>> = {
  cpu: { 'cpu.max': 'max 100000\n', 'cpu.weight': '100\n' },
  cpuset: { 'cpuset.cpus': '\n', 'cpuset.mems': '\n', 'cpuset.cpus.effective': '0-3\n' },
  io: { 'io.max': '', 'io.stat': '' },
  memory: { 'memory.max': 'max\n', 'memory.swap.max': 'max\n', 'memory.current': '0\n' },
  pids: { 'pids.max': 'max\n', 'pids.current': '0\n' },
};

const coreFiles = {
  'cgroup.procs': '',
  'cgroup.subtree_control': '\n',
  'cgroup.events': 'populated 0\nfrozen 0\n',
  'cgroup.kill': '',
  'cpu.stat': 'usage_usec 0\nuser_usec 0\nsystem_usec 0\n',
};

export interface FakeCgroup2 {
  readonly root: string;
  readonly fs: CgroupFs;
  /** Every write made through `fs`, in order, as `path=value` with paths relative to the root. */
  readonly writes: string[];
  words(relativeFile: string): string[];
  dispose(): void;
}

export interface FakeCgroup2Options {
  /** The root's `cgroup.controllers`. */
  readonly controllers: readonly string[];
  /** The root's `cgroup.subtree_control` before the sandbox touches it. */
  readonly enabled: readonly string[];
  /** Without swap accounting the kernel has no memory.swap.max. */
  readonly swapAccounting?: boolean;
}

export function fakeCgroup2(options: FakeCgroup2Options): FakeCgroup2 {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-cgroup2-'));
  const writes: string[] = [];
  const words = (file: string) => readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
  writeFileSync(join(root, 'cgroup.controllers'), `${options.controllers.join(' ')}\n`);
  writeFileSync(join(root, 'cgroup.subtree_control'), `${options.enabled.join(' ')}\n`);
  writeFileSync(join(root, 'cgroup.procs'), '1\n');
  writeFileSync(join(root, 'cpuset.cpus.effective'), '0-3\n');

  const fs: CgroupFs = {
    mkdir(dir) {
      mkdirSync(dir);
      const controllers = words(join(dirname(dir), 'cgroup.subtree_control'));
      const files: Record<string, string> = {
        ...coreFiles,
        'cgroup.controllers': `${controllers.join(' ')}\n`,
      };
      for (const c of controllers) Object.assign(files, controllerFiles[c]);
      if (options.swapAccounting === false) delete files['memory.swap.max'];
      for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    },
    rmdir(dir) {
      if (!existsSync(dir)) throw errno('ENOENT', dir);
      if (readdirSync(dir, { withFileTypes: true }).some((e) => e.isDirectory())) throw errno('EBUSY', dir);
      if (readFileSync(join(dir, 'cgroup.procs'), 'utf8').trim() !== '') throw errno('EBUSY', dir);
      rmSync(dir, { recursive: true });
    },
    exists: (path) => existsSync(path),
    read: (file) => readFileSync(file, 'utf8'),
    write(file, value) {
      if (!existsSync(file)) throw errno('ENOENT', file);
      writes.push(`${file.slice(root.length + 1) || '.'}=${value}`);
      if (basename(file) !== 'cgroup.subtree_control') {
        writeFileSync(file, value);
        return;
      }
      const available = words(join(dirname(file), 'cgroup.controllers'));
      const enabled = new Set(words(file));
      for (const token of value.split(/\s+/).filter(Boolean)) {
        const controller = token.slice(1);
        if (!/^[+-]/.test(token) || !available.includes(controller)) throw errno('EINVAL', file);
        if (token.startsWith('+')) enabled.add(controller);
        else enabled.delete(controller);
      }
      writeFileSync(file, `${[...enabled].join(' ')}\n`);
    },
  };
  return {
    root,
    fs,
    writes,
    words: (file) => words(join(root, file)),
    dispose: () => rmSync(root, { recursive: true, force: true }),
  };
}
