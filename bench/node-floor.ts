/**
 * The floor under lxcfs-ts's footprint: what Node itself costs in the agent's shape, with none of
 * the agent's code. Two processes (the supervisor's place and the serving process's), the second
 * with as many idle worker threads as the agent has request workers. Whatever the agent holds
 * above this is its own code and data; the floor can only move with the process and thread
 * structure (two processes for crash-invisibility, one isolate per concurrent request thread).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { residentFrames, rollup } from './smaps.js';

export interface NodeFloor {
  workers: number;
  /** Both processes' resident pages, each physical page counted once (KiB). */
  countedOnceKiB: number;
  /** Both processes' PSS (KiB): shared with every other Node program on the host. */
  pssKiB: number;
  /** Anonymous PSS (KiB): memory the two processes own whatever else runs. */
  anonKiB: number;
}

const idleProcess = 'setInterval(() => {}, 1000);';
// Each worker blocks the way a request worker blocks in read(2): its isolate built, doing nothing.
const withWorkers = (n: number) =>
  `const { Worker } = require('node:worker_threads');
for (let i = 0; i < ${n}; i++) new Worker('Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0)', { eval: true });
setInterval(() => {}, 1000);`;

/** Starts the two floor processes, measures them after `settleMs`, and stops them by PID. */
export async function measureNodeFloor(workers: number, settleMs: number): Promise<NodeFloor> {
  const children: ChildProcess[] = [idleProcess, withWorkers(workers)].map((script) =>
    spawn(process.execPath, ['-e', script], { stdio: 'ignore' }),
  );
  try {
    await sleep(settleMs);
    const frames = new Set<number>();
    let pss = 0;
    let anon = 0;
    for (const child of children) {
      if (child.exitCode !== null || child.pid === undefined) throw new Error('a floor process exited early');
      residentFrames(child.pid, frames);
      const r = rollup(child.pid);
      pss += r.pss;
      anon += r.pssAnon;
    }
    return { workers, countedOnceKiB: frames.size * 4, pssKiB: pss, anonKiB: anon };
  } finally {
    for (const child of children) child.kill('SIGKILL');
  }
}
