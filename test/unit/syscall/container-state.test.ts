import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_STATE_BYTES, parseContainerState, sandboxState } from '../../../src/syscall/container-state.js';

const state = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('the container state a runtime sends with its seccomp listener', () => {
  it('takes runc\'s message: the listener named in fds, the init pid, metadata and id', () => {
    const parsed = parseContainerState(
      state({
        ociVersion: '1.0.2-dev',
        fds: ['seccompFd'],
        pid: 4321,
        metadata: 'lxcfs-ts',
        state: { ociVersion: '1.0.2-dev', id: 'abc123', status: 'creating', pid: 4321, bundle: '/run/x' },
      }),
      1,
    );
    assert.deepEqual(parsed, { ok: true, value: { pid: 4321, id: 'abc123', metadata: 'lxcfs-ts', listenerIndex: 0 } });
  });
  it('finds the listener among several descriptors', () => {
    const parsed = parseContainerState(state({ fds: ['other', 'seccompFd'], pid: 1 }), 2);
    assert.ok(parsed.ok && parsed.value.listenerIndex === 1);
  });
  it('reads its own sandbox message', () => {
    const parsed = parseContainerState(sandboxState(0, 'run-42'), 1);
    assert.ok(parsed.ok);
    assert.equal(parsed.value.id, 'run-42');
  });
  const refusals: [string, Buffer, number, RegExp][] = [
    ['nothing', Buffer.alloc(0), 1, /empty/],
    ['not JSON', Buffer.from('{"fds": ['), 1, /not JSON/],
    ['an array', state(['seccompFd']), 1, /not a JSON object/],
    ['no fds', state({ pid: 1 }), 1, /"fds"/],
    ['fds not strings', state({ fds: [3] }), 1, /"fds"/],
    ['no seccompFd', state({ fds: ['x'] }), 1, /seccompFd/],
    ['a count mismatch', state({ fds: ['seccompFd'] }), 2, /2 came/],
    ['no descriptor at all', state({ fds: ['seccompFd'] }), 0, /0 came/],
    ['a bad pid', state({ fds: ['seccompFd'], pid: -3 }), 1, /pid/],
    ['a string pid', state({ fds: ['seccompFd'], pid: '12' }), 1, /pid/],
    ['too large', Buffer.alloc(MAX_STATE_BYTES + 1, 0x20), 1, /larger/],
  ];
  for (const [what, data, fds, reason] of refusals) {
    it(`refuses ${what} with a reason`, () => {
      const parsed = parseContainerState(data, fds);
      assert.equal(parsed.ok, false);
      if (!parsed.ok) assert.match(parsed.reason, reason);
    });
  }
  it('caps what it keeps for logs', () => {
    const parsed = parseContainerState(state({ fds: ['seccompFd'], metadata: 'm'.repeat(5000), id: 'i'.repeat(500) }), 1);
    assert.ok(parsed.ok && parsed.value.metadata.length === 256 && parsed.value.id.length === 128);
  });
});
