import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  anyMountinfo,
  listMountNamespaces,
  MountNamespaceScanner,
  namespaceRepresentative,
  processStartTime,
  readNamespace,
} from '../../../src/agent/repair/processes.js';

/** A fake /proc: pid -> [mount namespace, NSpid line, stat line]. */
function fakeProc(processes: Record<number, [string, string, string]>): string {
  const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-proc-'));
  mkdirSync(join(root, 'self'));
  for (const [pid, [ns, nspid, stat]] of Object.entries(processes)) {
    mkdirSync(join(root, pid, 'ns'), { recursive: true });
    symlinkSync(ns, join(root, pid, 'ns', 'mnt'));
    writeFileSync(join(root, pid, 'status'), `Name:\tx\nNSpid:\t${nspid}\nVmRSS:\t1 kB\n`);
    writeFileSync(join(root, pid, 'stat'), stat);
  }
  return root;
}

describe('mount namespaces and the process to act through', () => {
  const proc = fakeProc({
    1: ['mnt:[1]', '1', '1 (init) S 0 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0'],
    300: ['mnt:[7]', '300', '300 (sh) S 1 300 300 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 900 0 0'],
    310: ['mnt:[7]', '310\t1', '310 (my app) (x) S 300 310 310 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 950 0 0'],
    311: ['mnt:[7]', '311\t2', '311 (worker) S 310 310 310 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 951 0 0'],
    20: ['mnt:[1]', '20', '20 (kthread) S 2 0 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 6 0 0'],
  });
  after(() => rmSync(proc, { recursive: true, force: true }));

  it('groups pids by mount namespace, lowest first', () => {
    assert.deepEqual(
      [...listMountNamespaces(proc)],
      [
        ['mnt:[1]', [1, 20]],
        ['mnt:[7]', [300, 310, 311]],
      ],
    );
  });

  it('acts through the container\'s own processes, not a host-pid-namespace helper in its mount namespace', () => {
    assert.equal(namespaceRepresentative([300, 310, 311], proc), 310);
    assert.equal(namespaceRepresentative([1, 20], proc), 1);
  });

  it('reads the start time after a command name with spaces and parentheses', () => {
    assert.equal(processStartTime(310, proc), '950');
    assert.equal(processStartTime(4242, proc), null);
  });
});

describe('reading a namespace whose lowest pid is already gone (pids wrap around)', () => {
  // 400 and 401 are the container's (depth 2), 402 a host helper in its mount namespace; 400 has
  // exited (its mount table cannot be read any more), as a loop's short-lived `grep` does.
  const proc = fakeProc({
    400: ['mnt:[9]', '400\t7', '400 (grep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 9000 0 0'],
    401: ['mnt:[9]', '401\t1', '401 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 800 0 0'],
    402: ['mnt:[9]', '402', '402 (runc) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 790 0 0'],
  });
  writeFileSync(join(proc, '401', 'mountinfo'), 'container table\n');
  writeFileSync(join(proc, '402', 'mountinfo'), 'helper table\n');
  after(() => rmSync(proc, { recursive: true, force: true }));

  it('takes the longest-running of the container\'s own processes, whatever the pids', () => {
    const wrapped = fakeProc({
      30: ['mnt:[5]', '30\t4', '30 (sleep) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 7000 0 0'],
      32000: ['mnt:[5]', '32000\t1', '32000 (sh) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 500 0 0'],
    });
    writeFileSync(join(wrapped, '30', 'mountinfo'), 'a\n');
    writeFileSync(join(wrapped, '32000', 'mountinfo'), 'b\n');
    try {
      assert.equal(readNamespace([30, 32000], wrapped)?.pid, 32000);
    } finally {
      rmSync(wrapped, { recursive: true, force: true });
    }
  });

  it('passes over the gone process for the next of the container\'s own', () => {
    assert.deepEqual(readNamespace([400, 401, 402], proc), { pid: 401, startTime: '800', mountinfo: 'container table\n' });
  });

  it('never acts through a shallower helper instead; any process tells whether there are view mounts', () => {
    assert.equal(readNamespace([400, 402], proc), null, 'the container\'s own processes are all gone');
    assert.equal(readNamespace([400], proc), null);
    assert.equal(anyMountinfo([400, 402], proc), 'helper table\n');
    assert.equal(anyMountinfo([400], proc), null);
  });
});

describe('listing namespaces pass after pass (only new pids are read between full listings)', () => {
  const stat = (pid: number) => `${pid} (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0`;
  const proc = fakeProc({
    1: ['mnt:[1]', '1', stat(1)],
    50: ['mnt:[1]', '50', stat(50)],
    60: ['mnt:[7]', '60', stat(60)],
  });
  after(() => rmSync(proc, { recursive: true, force: true }));
  const relink = (pid: number, ns: string) => {
    rmSync(join(proc, String(pid), 'ns', 'mnt'));
    symlinkSync(ns, join(proc, String(pid), 'ns', 'mnt'));
  };

  it('keeps a known pid\'s namespace, reads new pids, forgets gone ones, and sees everything again when full', () => {
    const scanner = new MountNamespaceScanner(proc);
    assert.deepEqual([...scanner.list(true)], [['mnt:[1]', [1, 50]], ['mnt:[7]', [60]]]);
    // 50 moves to another namespace (unshare), 70 starts in a new one, 60 ends.
    relink(50, 'mnt:[9]');
    mkdirSync(join(proc, '70', 'ns'), { recursive: true });
    symlinkSync('mnt:[8]', join(proc, '70', 'ns', 'mnt'));
    rmSync(join(proc, '60'), { recursive: true });
    assert.deepEqual([...scanner.list(false)], [['mnt:[1]', [1, 50]], ['mnt:[8]', [70]]], 'partial: 50 as last seen');
    assert.deepEqual([...scanner.list(true)], [['mnt:[1]', [1]], ['mnt:[9]', [50]], ['mnt:[8]', [70]]], 'full: 50 where it is');
    // A pid that ended and came back between two listings is read afresh.
    rmSync(join(proc, '70'), { recursive: true });
    scanner.list(false);
    mkdirSync(join(proc, '70', 'ns'), { recursive: true });
    symlinkSync('mnt:[3]', join(proc, '70', 'ns', 'mnt'));
    assert.deepEqual(scanner.list(false).get('mnt:[3]'), [70]);
    assert.deepEqual([...listMountNamespaces(proc)], [...scanner.list(true)]);
  });
});
