import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.js';
import { decideLease, LeaderElector, type Lease, microTime } from '../../../src/webhook/lease.js';
import { FakeKube } from '../../helpers/fake-kube.js';

function lease(holder: string, renew = '2026-01-01T00:00:00.000000Z', duration = 15): Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name: 'l', namespace: 'ns' },
    spec: { holderIdentity: holder, renewTime: renew, leaseDurationSeconds: duration },
  };
}

describe('lease decisions', () => {
  it('creates a missing lease, renews its own, takes over a released one', () => {
    assert.equal(decideLease(null, 'me', 0, null, 15_000).action, 'create');
    assert.equal(decideLease(lease('me'), 'me', 0, null, 15_000).action, 'renew');
    assert.equal(decideLease(lease(''), 'me', 0, null, 15_000).action, 'takeover');
  });

  it('waits for another holder until its record has not changed for a whole lease duration (local clock)', () => {
    let d = decideLease(lease('other'), 'me', 1_000, null, 99);
    assert.equal(d.action, 'wait');
    d = decideLease(lease('other'), 'me', 15_999, d.observed, 99);
    assert.equal(d.action, 'wait');
    // The holder renewed: the clock starts again, whatever the timestamps say.
    d = decideLease(lease('other', '2020-01-01T00:00:00.000000Z'), 'me', 16_000, d.observed, 99);
    assert.equal(d.action, 'wait');
    assert.equal(
      decideLease(lease('other', '2020-01-01T00:00:00.000000Z'), 'me', 30_999, d.observed, 99).action,
      'wait',
    );
    assert.equal(
      decideLease(lease('other', '2020-01-01T00:00:00.000000Z'), 'me', 31_000, d.observed, 99).action,
      'takeover',
    );
  });

  it('writes MicroTime with six fractional digits', () => {
    assert.equal(microTime(new Date(Date.UTC(2026, 10, 22, 3, 4, 5, 678))), '2026-11-22T03:04:05.678000Z');
  });
});

describe('leader election against an object store with optimistic concurrency', () => {
  const path = '/apis/coordination.k8s.io/v1/namespaces/ns/leases/l';

  function elector(api: FakeKube, identity: string, clock: { now: number }) {
    return new LeaderElector(api, {
      namespace: 'ns',
      name: 'l',
      identity,
      leaseDurationMs: 3_000,
      retryMs: 1_000,
      logger: silentLogger,
      now: () => clock.now,
    });
  }

  it('exactly one of two replicas leads; the other takes over only after the leader stops renewing', async () => {
    const api = new FakeKube();
    const clock = { now: 0 };
    const a = elector(api, 'a', clock);
    const b = elector(api, 'b', clock);
    await Promise.all([a.tick(), b.tick()]);
    assert.equal([a.isLeader, b.isLeader].filter(Boolean).length, 1);
    const [leader, follower] = a.isLeader ? [a, b] : [b, a];
    for (let t = 1_000; t <= 10_000; t += 1_000) {
      clock.now = t;
      await leader.tick();
      await follower.tick();
      assert.equal(leader.isLeader, true);
      assert.equal(follower.isLeader, false);
    }
    // The leader dies without a word: after a lease duration (3 s) of silence the follower takes over.
    for (let t = 11_000; t <= 12_000; t += 1_000) {
      clock.now = t;
      await follower.tick();
      assert.equal(follower.isLeader, false, `t=${t}`);
    }
    clock.now = 13_000;
    await follower.tick();
    assert.equal(follower.isLeader, true);
    assert.equal((await api.get<Lease>(path)).spec.leaseTransitions, 1);
    assert.equal(leader.isLeader, false, 'a leader that cannot renew stops acting after the lease duration');
  });

  it('a leader that cannot reach the API server stops leading once its lease could have expired', async () => {
    const api = new FakeKube();
    const clock = { now: 0 };
    const a = elector(api, 'a', clock);
    await a.tick();
    assert.equal(a.isLeader, true);
    api.down = true;
    clock.now = 2_000;
    await a.tick();
    assert.equal(a.isLeader, true);
    clock.now = 3_000;
    await a.tick();
    assert.equal(a.isLeader, false);
  });

  it('hands the lease back on stop so another replica leads at once', async () => {
    const api = new FakeKube();
    const clock = { now: 0 };
    const a = elector(api, 'a', clock);
    const b = elector(api, 'b', clock);
    await a.tick();
    await b.tick();
    await a.stop();
    assert.equal((await api.get<Lease>(path)).spec.holderIdentity, '');
    await b.tick();
    assert.equal(b.isLeader, true);
  });
});
