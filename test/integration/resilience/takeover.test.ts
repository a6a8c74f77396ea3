/**
 * Upgrades containers never notice: a second daemon started on the mountpoint a live one serves
 * takes its FUSE connection over (same mount, same device: no container bind changes), while
 * three sandboxes read view files in tight loops. Then the fallback (the live daemon is stopped
 * with SIGSTOP, so it cannot answer: the newcomer mounts over it), and the handover socket's
 * refusals: non-root peers, malformed messages, and newcomers that go away half-way, after which
 * the old daemon serves again (never two serving, never none).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { cliPath, exitOf, type RunningDaemon, serverPidOf } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { mountinfo } from '../sandbox/helpers.js';
import { freePort, type Sandbox, summaries, viewReader, ViewNode, waitFor, waitForAll } from './helpers.js';

interface ReaderResult {
  reads: number;
  failures: number;
  wrong: number;
  maxMs: number;
  p99Ms: number;
  errors: Record<string, number>;
  firstWrong?: string;
}

/** The fuse.lxcfs mounts on `path` (stacked ones included), as device numbers. */
function viewMountsAt(path: string): string[] {
  return mountinfo()
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f[4] === path && f.includes('fuse.lxcfs'))
    .map((f) => f[2]!);
}

function startReaders(node: ViewNode, durationMs: number): Sandbox[] {
  return [128, 192, 256].map((mib) =>
    node.startSandbox(`reader-${mib}`, mib, [
      process.execPath,
      viewReader,
      '/proc/meminfo,/proc/meminfo,/proc/cpuinfo',
      String(durationMs),
      '0',
      // cpuinfo holds no MemTotal: only meminfo reads are checked, cpuinfo ones must just not fail.
      `^MemTotal: +${mib * 1024} kB$|^processor`,
    ]),
  );
}

function report(t: { diagnostic(msg: string): void }, sandboxes: readonly Sandbox[], results: readonly ReaderResult[]): void {
  for (const [i, r] of results.entries()) {
    t.diagnostic(
      `${sandboxes[i]!.label}: ${r.reads} reads, ${r.failures} failed, ${r.wrong} wrong, ` +
      `p99 ${r.p99Ms.toFixed(2)} ms, slowest ${r.maxMs.toFixed(1)} ms`,
    );
  }
  for (const r of results) {
    assert.ok(r.reads > 500, `the reader made progress (${r.reads} reads)`);
    assert.equal(r.failures, 0, `no failed reads (${JSON.stringify(r.errors)})`);
    assert.equal(r.wrong, 0, `every read showed the sandbox's own view (first other read: ${r.firstWrong})`);
  }
}

/** `--repair-interval 0`: the tests here must show that nothing needs repairing. */
const daemonArgs = ['--repair-interval', '0'];

test('five takeovers in a row under three reading sandboxes: 0 failed reads, 0 host values, the mount never changes', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('takeover');
  try {
    // One health port for all, as on a node (hostNetwork): each newcomer gets it once the agent it replaced is gone.
    const withHealth = [...daemonArgs, '--health-address', `127.0.0.1:${await freePort()}`];
    let current: RunningDaemon = await node.startDaemon(withHealth);
    const device = viewMountsAt(node.mountpoint);
    assert.equal(device.length, 1);
    const sandboxes = startReaders(node, 25_000);
    await waitForAll(sandboxes, 'reading');
    const takeoverMs: number[] = [];
    for (let round = 1; round <= 5; round++) {
      const next = await node.startDaemon(withHealth);
      await waitFor(
        `takeover ${round} to complete`,
        () => {
          if (next.child.exitCode !== null) throw new Error(`newcomer exited ${next.child.exitCode}: ${next.stderr()}`);
          return /took over the live connection: serving alone/.test(next.stderr());
        },
        60_000,
      );
      const line = next.stderr().split('\n').find((l) => l.includes('serving alone'))!;
      takeoverMs.push((JSON.parse(line) as { takeoverMs: number }).takeoverMs);
      assert.equal(await exitOf(current.child, 30_000), 0, `the old daemon exits 0 once it handed over: ${current.stderr()}`);
      assert.match(current.stderr(), /handed the connection over/);
      assert.deepEqual(viewMountsAt(node.mountpoint), device, 'the same one mount serves (nothing unmounted, nothing added)');
      assert.ok(serverPidOf(next.pid) !== null, 'the newcomer has its serving process');
      await waitFor('the newcomer\'s health endpoint', () => /health and metrics endpoint listening/.test(next.stderr()), 10_000);
      current = next;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
    }
    const results = await summaries<ReaderResult>(sandboxes);
    t.diagnostic(`takeover times (newcomer's ask to serving alone): ${takeoverMs.join(', ')} ms`);
    report(t, sandboxes, results);
    // Only containers that see this view can be repaired onto it: any repair would be one of ours.
    assert.doesNotMatch(current.stderr(), /repaired a container's stale view mounts|put back view binds/, 'no container needed a repair');
  } finally {
    await node.cleanup();
  }
});

test('a live daemon that cannot answer (SIGSTOP): the newcomer times out, mounts over it, and the readers never notice', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('takeover-stopped');
  let stopped: RunningDaemon | null = null;
  try {
    const old = await node.startDaemon(daemonArgs);
    stopped = old;
    const sandboxes = startReaders(node, 12_000);
    await waitForAll(sandboxes, 'reading');
    // The supervisor only: its serving process goes on answering the containers' binds.
    process.kill(old.pid, 'SIGSTOP');
    const started = Date.now();
    const next = await node.startDaemon([...daemonArgs, '--takeover-timeout', '2']);
    await waitFor('the newcomer to fall back', () => /takeover failed: the live agent did not hand over/.test(next.stderr()), 20_000);
    await waitFor('the new view mounted over the old one', () => viewMountsAt(node.mountpoint).length === 2);
    t.diagnostic(`fallback mounted ${Date.now() - started} ms after the newcomer started`);
    const mounts = viewMountsAt(node.mountpoint);
    assert.equal(mounts.length, 2, 'the new view is mounted over the old one');
    const results = await summaries<ReaderResult>(sandboxes);
    report(t, sandboxes, results);
    // Resumed, the old daemon finds the newcomer gone and serves on; stopped, it leaves the
    // newcomer's mount (the topmost one) alone.
    process.kill(old.pid, 'SIGCONT');
    stopped = null;
    assert.equal(await old.stop(), 0);
    assert.match(old.stderr(), /another view is mounted over ours; leaving the mounts as they are/);
    assert.ok(viewMountsAt(node.mountpoint).includes(mounts[1]!), 'the newcomer\'s view is still mounted');
    assert.match(readFileSync(join(node.mountpoint, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
  } finally {
    if (stopped) process.kill(stopped.pid, 'SIGCONT');
    await node.cleanup();
  }
});

/** A raw handover client: connects as this (root) process and collects what the daemon answers. */
class RawPeer {
  readonly socket: Socket;
  private text = '';
  private ended = false;

  constructor(path: string) {
    this.socket = createConnection(path);
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => (this.text += chunk));
    this.socket.on('close', () => (this.ended = true));
    this.socket.on('error', () => (this.ended = true));
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The messages received so far. */
  messages(): { type: string; reason?: string }[] {
    return this.text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; reason?: string });
  }

  async waitFor(type: string): Promise<{ type: string; reason?: string }> {
    await waitFor(`a ${type} message`, () => this.messages().some((m) => m.type === type) || this.ended, 10_000);
    const found = this.messages().find((m) => m.type === type);
    if (!found) throw new Error(`the daemon closed without sending ${type}: ${this.text}`);
    return found;
  }

  async closed(): Promise<void> {
    await waitFor('the daemon to close the connection', () => this.ended, 10_000);
  }
}

test('the handover socket refuses non-root peers and malformed messages, and a newcomer that leaves half-way leaves the old daemon serving', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('takeover-refusals');
  try {
    const daemon = await node.startDaemon(daemonArgs);
    const socket = join(node.parent, '.lxcfs-ts', 'view.handover.sock');
    const server = serverPidOf(daemon.pid);
    const serves = () => /^MemTotal:/.test(readFileSync(join(node.mountpoint, 'proc/meminfo'), 'utf8'));

    // Not root: the socket is out of reach (0600 in a 0700 directory).
    const nobody = spawnSync(
      process.execPath,
      ['-e', `require('net').createConnection(${JSON.stringify(socket)}).on('error', (e) => { console.log(e.code); process.exit(0); }).on('connect', () => { console.log('connected'); process.exit(0); })`],
      { uid: 65534, gid: 65534, encoding: 'utf8', timeout: 10_000 },
    );
    assert.equal(nobody.stdout.trim(), 'EACCES', `a non-root peer cannot connect: ${nobody.stdout}${nobody.stderr}`);

    const refusals: [string, string, RegExp][] = [
      ['not JSON', 'garbage\n', /not JSON/],
      ['a JSON array', '[1,2]\n', /not a JSON object/],
      ['an unknown type', '{"type":"gimme"}\n', /unknown message type/],
      ['a wrong protocol', `{"type":"hello","protocol":99,"pid":${process.pid},"version":"x"}\n`, /protocol 99/],
      ['a pid that is not the peer\'s', `{"type":"hello","protocol":1,"pid":1,"version":"x"}\n`, /hello names pid 1/],
      ['a message out of order', '{"type":"done"}\n', /expected hello, got done/],
      ['a line past the size limit', 'x'.repeat(300 * 1024), /too long/],
    ];
    for (const [what, text, reason] of refusals) {
      const peer = new RawPeer(socket);
      peer.send(text);
      const refused = await peer.waitFor('refused');
      assert.match(refused.reason ?? '', reason, what);
      await peer.closed();
      assert.ok(serves(), `still serving after ${what}`);
    }

    // A newcomer that takes the offer and vanishes: nothing stopped, the old daemon goes on.
    const hello = `{"type":"hello","protocol":1,"pid":${process.pid},"version":"test"}\n`;
    const quitter = new RawPeer(socket);
    quitter.send(hello);
    await quitter.waitFor('offer');
    quitter.socket.destroy();
    await waitFor('the daemon to resume', () => /takeover failed: serving again/.test(daemon.stderr()));
    assert.equal(serverPidOf(daemon.pid), server, 'the same serving process serves on');
    assert.ok(serves());

    // One that says `taken` and vanishes once the old serving process is gone: the old daemon
    // starts a new one on the same connection, and reads go on.
    const vanisher = new RawPeer(socket);
    vanisher.send(hello);
    await vanisher.waitFor('offer');
    vanisher.send('{"type":"taken"}\n');
    await vanisher.waitFor('released');
    assert.equal(serverPidOf(daemon.pid), null, 'the old serving process stopped for the newcomer');
    vanisher.socket.destroy();
    await waitFor('a new serving process', () => {
      const pid = serverPidOf(daemon.pid);
      return pid !== null && pid !== server;
    });
    await waitFor('reads to be answered again', serves);
    assert.equal(daemon.child.exitCode, null, 'the old daemon is still running');
    assert.equal(viewMountsAt(node.mountpoint).length, 1);
    t.diagnostic('refused: non-root connect (EACCES), 7 malformed messages; resumed after 2 vanished newcomers');

    // A newcomer stopped (SIGTERM) half-way, once it copied the connection: it leaves
    // without unmounting, and the old daemon serves again.
    const stoppedEarly = startRawDaemon(node.mountpoint);
    let signalled = false;
    stoppedEarly.child.stderr!.on('data', () => {
      if (signalled || !/taking over the live connection/.test(stoppedEarly.stderr())) return;
      signalled = true;
      stoppedEarly.child.kill('SIGTERM');
    });
    const code = await exitOf(stoppedEarly.child, 30_000).catch((err: Error) => {
      stoppedEarly.child.kill('SIGKILL');
      throw new Error(`${err.message}; its log:\n${stoppedEarly.stderr()}`);
    });
    assert.equal(code, 0, stoppedEarly.stderr());
    assert.match(stoppedEarly.stderr(), /stopped during a takeover: the old agent keeps the connection/);
    await waitFor('the old daemon to serve again', () => (daemon.stderr().match(/takeover failed: serving again/g)?.length ?? 0) === 3, 30_000);
    await waitFor('reads to be answered', serves);
    assert.equal(viewMountsAt(node.mountpoint).length, 1, 'nothing was unmounted or added');

    // And a real newcomer still takes over after all that.
    const next = await node.startDaemon(daemonArgs);
    await waitFor('the takeover', () => /serving alone/.test(next.stderr()), 60_000);
    assert.equal(await exitOf(daemon.child, 30_000), 0);
  } finally {
    await node.cleanup();
  }
});

test('--after-handover wait: the old daemon waits, then exits 0 on SIGTERM at once, leaving the view to the newcomer', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('takeover-wait');
  try {
    const old = await node.startDaemon([...daemonArgs, '--after-handover', 'wait']);
    const next = await node.startDaemon(daemonArgs);
    await waitFor('the takeover', () => /serving alone/.test(next.stderr()), 60_000);
    await waitFor('the old daemon to wait', () => /handed over: waiting for SIGTERM/.test(old.stderr()), 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(old.child.exitCode, null, 'it waits');
    const stopped = Date.now();
    assert.equal(await old.stop(5_000), 0);
    t.diagnostic(`exited ${Date.now() - stopped} ms after SIGTERM`);
    assert.match(old.stderr(), /stopped \(the connection was handed over: nothing is unmounted\)/);
    assert.equal(viewMountsAt(node.mountpoint).length, 1);
    assert.match(readFileSync(join(node.mountpoint, 'proc/meminfo'), 'utf8'), /^MemTotal:/);
  } finally {
    await node.cleanup();
  }
});

/** A daemon on `mountpoint` started without waiting for anything, its stderr collected. */
function startRawDaemon(mountpoint: string): { child: ChildProcess; stderr: () => string } {
  const child = spawn(process.execPath, [cliPath, '--health-address', 'off', '--repair-interval', '0', mountpoint], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()));
  return { child, stderr: () => text };
}

test('--no-takeover refuses to start on a live daemon\'s mountpoint', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('takeover-refused');
  try {
    const daemon = await node.startDaemon(daemonArgs);
    const second = spawnSync(process.execPath, [cliPath, '--no-takeover', '--health-address', 'off', node.mountpoint], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(second.status, 1);
    assert.match(second.stderr, /already served by a running FUSE filesystem \(fuse\.lxcfs.*--no-takeover/);
    assert.equal(daemon.child.exitCode, null);
  } finally {
    await node.cleanup();
  }
});
