import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { handoverSocketPath, MAX_MESSAGE_BYTES, parseHandoverMessage } from '../../../src/agent/takeover/handover-protocol.js';

const session = { minor: 43, maxWrite: 131072, flags: 'x', canResend: true, requestTimeoutSec: 0, readBufferSize: 139264, maxRead: 131072 };
const offer = {
  type: 'offer',
  protocol: 1,
  pid: 42,
  version: '0.1.0',
  generation: 3,
  fuseFd: 20,
  inflightFd: 21,
  listeners: [{ fd: 25, pid: 0, id: 'run-1', metadata: 'lxcfs-ts run', listenerIndex: 0 }],
  session,
  mountedAtMs: 1_700_000_000_000,
};

function refused(line: string): string {
  const parsed = parseHandoverMessage(line);
  assert.equal(parsed.ok, false, `expected a refusal of ${line.slice(0, 80)}`);
  return (parsed as { reason: string }).reason;
}

describe('the handover protocol', () => {
  it('puts the socket beside the planned-stop record, in the view\'s parent directory', () => {
    assert.equal(handoverSocketPath('/var/lib/lxcfs-ts/lxcfs'), '/var/lib/lxcfs-ts/.lxcfs-ts/lxcfs.handover.sock');
  });

  it('reads well-formed messages of every kind', () => {
    assert.deepEqual(parseHandoverMessage('{"type":"hello","protocol":1,"pid":7,"version":"0.2.0"}'), {
      ok: true,
      message: { type: 'hello', protocol: 1, pid: 7, version: '0.2.0' },
    });
    const parsed = parseHandoverMessage(JSON.stringify(offer));
    assert.ok(parsed.ok);
    assert.deepEqual(parsed.message, offer);
    assert.ok(parseHandoverMessage(JSON.stringify({ ...offer, inflightFd: null, listeners: [] })).ok);
    for (const type of ['taken', 'released', 'done']) {
      assert.deepEqual(parseHandoverMessage(JSON.stringify({ type, extra: 1 })), { ok: true, message: { type } });
    }
    assert.deepEqual(parseHandoverMessage('{"type":"refused","reason":"busy"}'), { ok: true, message: { type: 'refused', reason: 'busy' } });
  });

  it('refuses anything malformed, with a reason', () => {
    assert.match(refused('nope'), /not JSON/);
    assert.match(refused('null'), /not a JSON object/);
    assert.match(refused('[]'), /not a JSON object/);
    assert.match(refused('{"type":"launch"}'), /unknown message type/);
    assert.match(refused('{}'), /unknown message type/);
    assert.match(refused('{"type":"hello","protocol":2,"pid":7,"version":"x"}'), /protocol 2 is not 1/);
    assert.match(refused('{"type":"hello","protocol":1,"pid":0,"version":"x"}'), /no pid/);
    assert.match(refused('{"type":"hello","protocol":1,"pid":-3,"version":"x"}'), /no pid/);
    assert.match(refused('{"type":"hello","protocol":1,"pid":7}'), /no version/);
    assert.match(refused(`{"type":"hello","protocol":1,"pid":7,"version":"${'v'.repeat(300)}"}`), /no version/);
    assert.match(refused(JSON.stringify({ ...offer, fuseFd: -1 })), /no FUSE descriptor/);
    assert.match(refused(JSON.stringify({ ...offer, fuseFd: 1.5 })), /no FUSE descriptor/);
    assert.match(refused(JSON.stringify({ ...offer, inflightFd: 'x' })), /in-flight descriptor/);
    assert.match(refused(JSON.stringify({ ...offer, listeners: {} })), /listener list/);
    assert.match(refused(JSON.stringify({ ...offer, listeners: [{ fd: 3 }] })), /a listener has no pid/);
    assert.match(refused(JSON.stringify({ ...offer, session: { ...session, maxRead: -1 } })), /session.maxRead/);
    assert.match(refused(JSON.stringify({ ...offer, session: { ...session, canResend: 'yes' } })), /canResend/);
    assert.match(refused(JSON.stringify({ ...offer, generation: -1 })), /generation/);
    assert.match(refused(JSON.stringify({ ...offer, mountedAtMs: 'now' })), /mount time/);
    assert.match(refused(`{"type":"done","pad":"${'x'.repeat(MAX_MESSAGE_BYTES)}"}`), /too long/);
  });
});
