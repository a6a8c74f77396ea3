import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  advanceCounters,
  aggregateCounters,
  CounterLayout,
  type CpuSample,
  counterRegionSize,
} from '../../../src/views/stat-counters.js';

const S = 1e6; // µs per second
const slots = 4;

function shown(mem: Float64Array, i: number) {
  const at = CounterLayout.header + CounterLayout.slotDoubles * i;
  return { user: mem[at]!, system: mem[at + 1]!, idle: mem[at + 2]! };
}
function total(mem: Float64Array) {
  const out = { user: 0, system: 0, idle: 0 };
  aggregateCounters(mem, 0, slots, out);
  return out;
}
function sample(values: Partial<CpuSample>): CpuSample {
  return {
    wallUs: 0,
    sinceBootUs: 0,
    userUs: 0,
    systemUs: 0,
    perCpu: null,
    perCpuCount: 0,
    visible: [0, 1],
    ...values,
  };
}
const approx = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-6, `${a} != ${b}`);

describe('per-container CPU counters', () => {
  it('totals only (v2): spread evenly, idle fills the wall time of every visible CPU', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    advanceCounters(
      mem,
      0,
      slots,
      sample({ wallUs: 5000 * S, sinceBootUs: 100 * S, userUs: 30 * S, systemUs: 10 * S }),
    );
    approx(shown(mem, 0).user, 15 * S);
    approx(shown(mem, 0).system, 5 * S);
    approx(shown(mem, 0).idle, 80 * S);
    const t = total(mem);
    approx(t.user + t.system + t.idle, 2 * 100 * S); // N x uptime
    advanceCounters(mem, 0, slots, sample({ wallUs: 5010 * S, userUs: 36 * S, systemUs: 12 * S }));
    approx(shown(mem, 1).user, 18 * S);
    approx(shown(mem, 1).idle, 86 * S);
  });

  it('never goes backwards when N shrinks and grows again; hidden CPUs freeze', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    advanceCounters(mem, 0, slots, sample({ wallUs: 0, sinceBootUs: 10 * S, userUs: 4 * S }));
    const before = total(mem);
    const cpu1 = shown(mem, 1);
    advanceCounters(mem, 0, slots, sample({ wallUs: 10 * S, userUs: 9 * S, visible: [0] }));
    const after = total(mem);
    assert.ok(after.user >= before.user && after.idle >= before.idle && after.system >= before.system);
    assert.deepEqual(shown(mem, 1), cpu1);
    approx(shown(mem, 0).user, 2 * S + 5 * S);
    advanceCounters(mem, 0, slots, sample({ wallUs: 20 * S, userUs: 9 * S, visible: [0, 1] }));
    assert.ok(shown(mem, 1).idle >= cpu1.idle);
    approx(shown(mem, 1).idle - cpu1.idle, 10 * S);
  });

  it('per host CPU (v1): visible CPUs get their own time, hidden CPUs time goes to the visible ones', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    const perCpu = new Float64Array([1 * S, 0, 2 * S, 1 * S, 4 * S, 0, 0, 0]);
    // cpuset 1-2 of 4 host CPUs; work on host CPU 0 (outside) is surplus
    advanceCounters(mem, 0, slots, sample({ sinceBootUs: 10 * S, perCpu, perCpuCount: 4, visible: [1, 2] }));
    const a = shown(mem, 0);
    const b = shown(mem, 1);
    // direct: slot0 = host1 (2+1 s), slot1 = host2 (4 s); surplus 1 s user spread by room (7 s vs 6 s)
    approx(a.user + a.system + b.user + b.system, 8 * S);
    approx(a.system, 1 * S);
    approx(a.user, 2 * S + (1 * S * 7) / 13);
    approx(b.user, 4 * S + (1 * S * 6) / 13);
    approx(a.user + a.system + a.idle, 10 * S);
  });

  it('a usage counter that goes down (accounting reset) adds nothing instead of going negative', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    advanceCounters(mem, 0, slots, sample({ wallUs: 0, sinceBootUs: 10 * S, userUs: 8 * S }));
    const before = total(mem);
    advanceCounters(mem, 0, slots, sample({ wallUs: 1 * S, userUs: 1 * S }));
    const after = total(mem);
    approx(after.user, before.user);
    approx(after.idle - before.idle, 2 * S);
  });

  it('busy time beyond the wall time (burst) never makes idle negative', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    advanceCounters(mem, 0, slots, sample({ wallUs: 0, sinceBootUs: 1 * S, userUs: 5 * S }));
    assert.ok(shown(mem, 0).idle >= 0 && shown(mem, 1).idle >= 0);
    approx(total(mem).user, 5 * S);
  });

  it('a burst beyond the wall time is paid back from later idle: busy + idle tracks N x wall', () => {
    // N = 1 under a 1-CPU quota on 2 host CPUs, read every 50 ms: the container runs on both host
    // CPUs for one window (100 ms busy in 50 ms), then sits throttled for the next.
    const mem = new Float64Array(counterRegionSize(slots));
    const one = { perCpuCount: 2, visible: [0] };
    advanceCounters(mem, 0, slots, sample({ ...one, wallUs: 0, sinceBootUs: 1 * S, perCpu: new Float64Array([0, 0, 0, 0]) }));
    let busy = 0;
    for (let k = 1; k <= 20; k++) {
      if (k % 2 === 1) busy += 0.1 * S;
      const perCpu = new Float64Array([busy / 2, 0, busy / 2, 0]);
      const before = total(mem);
      advanceCounters(mem, 0, slots, sample({ ...one, wallUs: k * 0.05 * S, perCpu }));
      const after = total(mem);
      assert.ok(after.user >= before.user && after.idle >= before.idle, `window ${k} went backwards`);
    }
    const t = total(mem);
    approx(t.user, 1 * S); // every µs of work, no more
    approx(t.user + t.idle, 1 * S + 1 * S); // wall 1 s since boot + 1 s of reads; LXCFS-style clamping would show 1.5 s
    approx(t.idle, 1 * S);
  });

  it('a shift of the user/system split keeps the total exact', () => {
    const mem = new Float64Array(counterRegionSize(slots));
    const one = { perCpuCount: 1, visible: [0] };
    advanceCounters(mem, 0, slots, sample({ ...one, sinceBootUs: 10 * S, perCpu: new Float64Array([3 * S, 1 * S]) }));
    // 1 s more in all, but the user share fell: user 2.8 s (down 0.2), system 2.2 s
    advanceCounters(mem, 0, slots, sample({ ...one, wallUs: 2 * S, perCpu: new Float64Array([2.8 * S, 2.2 * S]) }));
    const t = total(mem);
    approx(t.user, 3 * S);
    approx(t.system, 2 * S);
    approx(t.user + t.system + t.idle, 12 * S);
  });
});
