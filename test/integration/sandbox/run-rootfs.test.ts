/**
 * `lxcfs-ts run --rootfs` with a rootfs that holds one static binary and nothing else, and the
 * view's parent directory inside sandboxes: read-only, and a slave of the host's, so a view mounted
 * there later (a restarted daemon) shows up in running sandboxes and can be re-bound into them
 * from the host, the way the node agent repairs containers.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  assertNothingLeft,
  mountinfo,
  processesWith,
  requireRoot,
  runLxcfsTs,
  startLxcfsDaemon,
  startLxcfsTs,
  uniqueToken,
  type ViewBackend,
  viewBackend,
  waitFor,
} from './helpers.js';

const probeSource = fileURLToPath(new URL('../../../../test/fixtures/sandbox/probe.c', import.meta.url));

function must(argv: string[]): string {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr || result.error}`);
  return result.stdout;
}

interface MountLine {
  readonly root: string;
  readonly mountPoint: string;
  readonly options: string;
  readonly optional: string[];
  readonly fsType: string;
}

function mountLines(text: string): MountLine[] {
  return text
    .split('\n')
    .filter((l) => / - \S+ /.test(l))
    .map((l) => {
      const [left, right] = l.split(' - ') as [string, string];
      const f = left.split(' ');
      return {
        root: f[3]!,
        mountPoint: f[4]!,
        options: f[5]!,
        optional: f.slice(6),
        fsType: right.split(' ')[0]!,
      };
    });
}

/** The view's parent on the host: known up front for lxcfs, found while a run is live for the private daemon. */
function liveViewParent(backend: ViewBackend, runPid: number): string {
  if (backend.parent) return backend.parent;
  const pattern = new RegExp(`/lxcfs-ts-run-${runPid}-[^/]+/view$`);
  const view = mountLines(mountinfo()).find((m) => pattern.test(m.mountPoint));
  assert.ok(view, 'the private daemon is mounted');
  return dirname(view.mountPoint);
}

describe('lxcfs-ts run --rootfs and the view parent', () => {
  let backend: ViewBackend;
  let work: string;
  let rootfs: string;
  let probe: string;
  before(async () => {
    if (process.getuid?.() !== 0) return;
    backend = await viewBackend('rootfs', 'views');
    work = mkdtempSync(join(tmpdir(), 'lxcfs-ts-it-rootfs-'));
    rootfs = join(work, 'rootfs');
    mkdirSync(rootfs);
    probe = join(work, 'probe');
    must(['cc', '-static', '-O2', '-o', probe, probeSource]);
    must(['cp', probe, join(rootfs, 'probe')]);
  });
  after(async () => {
    await backend?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('runs a static binary as PID 1 in a rootfs without shell or mount, with the view over its /proc', async (t) => {
    if (!requireRoot(t)) return;
    assert.deepEqual(readdirSync(rootfs), ['probe']);
    const cmd = [
      '/probe',
      'cat',
      '/proc/meminfo',
      '/sys/devices/system/cpu/online',
      '/proc/self/mountinfo',
      '/proc/1/cmdline',
    ];
    const run = startLxcfsTs([
      'run',
      ...backend.runArgs,
      '--memory',
      '256M',
      '--cpuset',
      '0',
      '--rootfs',
      rootfs,
      '--',
      ...cmd,
    ]);
    const result = await run.result;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^MemTotal: +262144 kB$/m);
    assert.match(result.stdout, /^0$/m, 'online');
    assert.ok(result.stdout.includes('/probe\0cat\0'), 'CMD is PID 1');
    const mounts = mountLines(result.stdout);
    assert.equal(mounts.find((m) => m.mountPoint === '/')?.root, rootfs, 'the rootfs is /');
    assert.ok(
      mounts.some((m) => m.mountPoint === '/proc/meminfo' && m.fsType.startsWith('fuse')),
      'view over meminfo',
    );
    assert.ok(
      mounts.some((m) => m.mountPoint === '/sys/devices/system/cpu' && m.fsType.startsWith('fuse')),
      'view over the cpu directory',
    );
    assert.ok(!mounts.some((m) => m.mountPoint.startsWith(rootfs)), 'no host path shows through');
    // The view parent: same path as on the host, read-only, receiving the host's mounts (master:N).
    const view = mounts.find((m) => m.fsType.startsWith('fuse') && m.mountPoint.endsWith('/view'));
    assert.ok(view, `the view mount is visible under its parent: ${JSON.stringify(mounts)}`);
    const parentMount = mounts.find((m) => m.mountPoint === dirname(view.mountPoint));
    assert.ok(parentMount, 'the view parent is mounted in the sandbox');
    assert.match(parentMount.options, /^ro,/);
    assert.ok(
      parentMount.optional.some((f) => f.startsWith('master:')),
      `a slave mount: ${parentMount.optional}`,
    );
    // Only the mountpoints the sandbox needed were added to the rootfs.
    const parentTop = parentMount.mountPoint.split('/')[1]!;
    assert.deepEqual(readdirSync(rootfs).sort(), ['dev', 'probe', 'proc', 'sys', parentTop].sort());
    await assertNothingLeft(run.child.pid!, '/probe');
  });

  it('answers 127 for a command the rootfs does not have, even if the host has it', async (t) => {
    if (!requireRoot(t)) return;
    const result = await runLxcfsTs([
      'run',
      ...backend.runArgs,
      '--rootfs',
      rootfs,
      '--',
      'sh',
      '-c',
      'true',
    ]);
    assert.equal(result.code, 127);
    assert.match(result.stderr, /sh: command not found in /);
  });

  for (const inRootfs of [false, true]) {
    it(`shows a mount made later under the view parent inside a running sandbox${inRootfs ? ' (rootfs)' : ''}`, async (t) => {
      if (!requireRoot(t)) return;
      const token = uniqueToken(`late-${inRootfs ? 'rootfs' : 'host'}`);
      const source = join(work, token);
      mkdirSync(source);
      writeFileSync(join(source, 'file'), `content of ${token}\n`);
      const cmd = inRootfs ? ['--rootfs', rootfs, '--', '/probe'] : ['--', probe];
      const run = startLxcfsTs(['run', ...backend.runArgs, ...cmd, 'watch-mount', token, '400', '50']);
      let target: string | undefined;
      try {
        await waitFor(
          'the sandbox to watch',
          () => run.output().includes('missing') || run.child.exitCode !== null,
        );
        target = join(liveViewParent(backend, run.child.pid!), token);
        mkdirSync(target);
        must(['mount', '--bind', source, target]);
        await waitFor(
          'the late mount inside the sandbox',
          () => run.output().includes(`content of ${token}`),
          10_000,
        );
      } finally {
        // The late mount is the test's: it goes first (with a private daemon it sits in run's directory).
        if (target) {
          spawnSync('umount', ['-l', target]);
          rmdirSync(target);
        }
        run.child.kill('SIGTERM');
        await run.result;
      }
      await assertNothingLeft(run.child.pid!, token);
    });
  }

  it('lets the host re-bind a fresh view file into a running rootfs sandbox (the repair path)', async (t) => {
    if (!requireRoot(t)) return;
    const token = uniqueToken('rebind');
    const watch = ['/probe', 'watch', '/proc/meminfo', '400', '25', token];
    const run = startLxcfsTs([
      'run',
      ...backend.runArgs,
      '--memory',
      '256M',
      '--rootfs',
      rootfs,
      '--',
      ...watch,
    ]);
    // A second daemon appears under the same parent, as a restarted agent's view would.
    let fresh: { stop(): Promise<void> } | undefined;
    let freshView: string | undefined;
    try {
      await waitFor(
        'the sandbox to read',
        () => /MemTotal: +262144 kB/.test(run.output()) || run.child.exitCode !== null,
      );
      freshView = join(liveViewParent(backend, run.child.pid!), `fresh-${token}`);
      mkdirSync(freshView);
      fresh = await startLxcfsDaemon(freshView);
      const pid = processesWith(token).find((p) =>
        readFileSync(`/proc/${p}/cmdline`, 'utf8').startsWith(`${watch.join('\0')}\0`),
      );
      assert.ok(pid, 'the sandbox PID 1 on the host');
      const ns = `/proc/${pid}/ns/mnt`;
      // As the node agent will: detach the old bind, bind the file of the live view (visible through the parent).
      must(['nsenter', '-t', String(pid), '-p', '--', 'umount', '-N', ns, '-l', '/proc/meminfo']);
      must(['mount', '-N', ns, '--bind', join(freshView, 'proc/meminfo'), '/proc/meminfo']);
      const meminfoMounts = mountLines(readFileSync(`/proc/${pid}/mountinfo`, 'utf8')).filter(
        (m) => m.mountPoint === '/proc/meminfo',
      );
      assert.equal(meminfoMounts.length, 1, 'one bind over /proc/meminfo');
      const before = run.output().length;
      await waitFor('reads through the fresh view', () =>
        /MemTotal: +262144 kB/.test(run.output().slice(before)),
      );
      assert.ok(!run.output().includes('missing'), 'no failed read');
    } finally {
      await fresh?.stop();
      if (freshView) rmdirSync(freshView);
      run.child.kill('SIGTERM');
      await run.result;
    }
    await assertNothingLeft(run.child.pid!, token);
  });
});
