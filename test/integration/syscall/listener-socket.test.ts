/**
 * Bad input on the syscall view's socket and its listeners: malformed states, a peer that sends
 * nothing, a caller that dies while its call is queued, 10,000 calls queued at once. The daemon
 * keeps serving correct answers and holds no descriptor longer than it needs.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sendWithFds } from '../../../src/native/libc.js';
import { serverPidOf } from '../../helpers/daemon.js';
import { needsRoot } from '../../helpers/root.js';
import { runLxcfsTs } from '../sandbox/helpers.js';
import { ViewNode, waitFor } from '../resilience/helpers.js';
import { fields, num, sysinfoProbe } from './helpers.js';

const MiB = 1024 * 1024;
const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
/** Seccomp listeners a process holds (the serving process also keeps cgroup files open, by design). */
const listenerCount = (pid: number) =>
  readdirSync(`/proc/${pid}/fd`).filter((fd) => {
    try {
      return readlinkSync(`/proc/${pid}/fd/${fd}`).includes('seccomp notify');
    } catch {
      return false;
    }
  }).length;
const rssKb = (pid: number) => Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

async function connected(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(path, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Sends `data` with an open descriptor of /dev/null, as a runtime sends its state and listener. */
async function sendState(path: string, data: Buffer, withFd = true): Promise<void> {
  const socket = await connected(path);
  const fd = openSync('/dev/null', 'r');
  try {
    const raw = (socket as unknown as { _handle: { fd: number } })._handle.fd;
    sendWithFds(raw, data, withFd ? [fd] : []);
  } finally {
    closeSync(fd);
    socket.destroy();
  }
}

test('malformed states, silent peers, dying callers and 10,000 queued calls leave the daemon serving', async (t) => {
  if (!needsRoot(t)) return;
  const node = new ViewNode('sysinfo-input');
  try {
    const probe = sysinfoProbe();
    const socket = join(node.work, 'sysinfo.sock');
    const daemon = await node.startDaemon(['--sysinfo-socket', socket]);
    await waitFor('the sysinfo socket', () => daemon.stderr().includes('serving seccomp listeners'));
    const sandbox = (mib: number, ...command: string[]) =>
      runLxcfsTs(['run', '--view', node.mountpoint, '--sysinfo-socket', socket, '--memory', `${mib}M`, '--', ...command], 120_000);
    const served = async (mib: number) => {
      const r = await sandbox(mib, probe, 'show');
      assert.equal(r.code, 0, r.stderr);
      return num(fields(r.stdout), 'totalram') === mib * MiB;
    };
    assert.ok(await served(128), 'served before');
    const baseline = fdCount(daemon.pid);

    // 1. Malformed states, each with a descriptor that must be closed again.
    const bad = [
      Buffer.from('not json'),
      Buffer.from('{"fds":[]}'),
      Buffer.from('{"fds":["seccompFd","extra"],"pid":1}'),
      Buffer.from(JSON.stringify({ fds: ['seccompFd'], pid: 'x' })),
      Buffer.alloc(70_000, 0x7b),
    ];
    for (const data of bad) await sendState(socket, data);
    await sendState(socket, Buffer.from('{"fds":["seccompFd"]}'), false);
    await waitFor('every bad message refused', () => (daemon.stderr().match(/refused a seccomp listener/g)?.length ?? 0) >= bad.length + 1);

    // 2. A peer that connects and sends nothing is dropped at the deadline.
    const silent = await connected(socket);
    const closed = new Promise<number>((resolve) => {
      const at = Date.now();
      silent.once('close', () => resolve(Date.now() - at));
    });
    silent.resume();
    const silentMs = await Promise.race([closed, sleep(10_000, -1)]);
    assert.ok(silentMs >= 1000 && silentMs < 8000, `the silent peer was dropped after ${silentMs} ms`);
    await waitFor('the supervisor back to its descriptors', () => fdCount(daemon.pid) <= baseline, 5000);
    assert.ok(await served(160), 'served after the bad input');

    // 3. A caller killed while its call is queued (the serving process is stopped meanwhile).
    const server = serverPidOf(daemon.pid)!;
    const serverListeners = listenerCount(server);
    const doomed = sandbox(96, probe, 'loop', '30', String(96 * MiB));
    await waitFor('the doomed sandbox to register', () => listenerCount(server) > serverListeners, 20_000);
    process.kill(server, 'SIGSTOP');
    await sleep(500);
    doomed.then(() => undefined, () => undefined);
    const runPid = (await waitFor('the doomed run process', () => runPidOf(node.mountpoint, '96M'))) as number;
    process.kill(runPid, 'SIGKILL');
    await sleep(500);
    process.kill(server, 'SIGCONT');
    await doomed;
    assert.ok(await served(200), 'served after a caller died with its call queued');
    assert.equal(serverPidOf(daemon.pid), server, 'the serving process survived it');
    await waitFor('the dead sandbox\'s listener released', () => listenerCount(server) <= serverListeners, 10_000);
    assert.equal(listenerCount(daemon.pid), 0, 'the supervisor closed its copy too');

    // 4. 10,000 calls at once, from 10,000 threads of one sandbox.
    const rssBefore = rssKb(server);
    const many = await sandbox(512, probe, 'threads', '10000');
    assert.equal(many.code, 0, many.stderr);
    assert.match(many.stdout, new RegExp(`threads=10000 ok=10000 wrong_total=0 total=${512 * MiB}`));
    const rssAfter = rssKb(server);
    t.diagnostic(`serving process RSS ${rssBefore} kB before 10,000 queued calls, ${rssAfter} kB after`);
    assert.ok(rssAfter - rssBefore < 32 * 1024, 'no growth beyond 32 MiB');
    await waitFor('every listener released', () => listenerCount(server) === 0 && listenerCount(daemon.pid) === 0, 10_000);
    await waitFor('the supervisor back to its descriptors', () => fdCount(daemon.pid) <= baseline, 10_000);
  } finally {
    await node.cleanup();
  }
});

/** The `lxcfs-ts run` process (node) of a sandbox on this view with this memory limit. */
function runPidOf(mountpoint: string, memory: string): number | undefined {
  for (const name of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv.some((a) => a.endsWith('cli.js')) && argv.includes('run') && argv.includes(mountpoint) && argv.includes(memory)) {
        return Number(name);
      }
    } catch {
      // gone
    }
  }
  return undefined;
}
