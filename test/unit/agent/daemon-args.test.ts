import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDaemonArgs, UsageError } from '../../../src/agent/daemon-args.js';

function run(argv: string[]) {
  const parsed = parseDaemonArgs(argv);
  assert.equal(parsed.kind, 'run');
  return (parsed as Extract<typeof parsed, { kind: 'run' }>).args;
}

describe('daemon flags for containers (repair, shared parent, planned stop)', () => {
  it('repairs every 5 s, shares the parent and does not unbind on stop by default', () => {
    const args = run(['/var/lib/lxcfs']);
    assert.equal(args.repair, true);
    assert.equal(args.repairIntervalMs, 5000);
    assert.equal(args.shareParent, true);
    assert.equal(args.unbindOnStop, false);
  });

  it('takes each one', () => {
    const args = run(['--repair-interval', '0', '--no-share-parent', '--unbind-on-stop', '--no-repair', '/v']);
    assert.equal(args.repairIntervalMs, 0);
    assert.equal(args.shareParent, false);
    assert.equal(args.unbindOnStop, true);
    assert.equal(args.repair, false);
  });

  it('rejects an interval that is not a whole number of seconds', () => {
    assert.throws(() => parseDaemonArgs(['--repair-interval', '1.5']), UsageError);
    assert.throws(() => parseDaemonArgs(['--repair-interval', '-1']), UsageError);
  });
});

describe('--uptime', () => {
  it('is container by default, host on request, and anything else is a usage error', () => {
    assert.equal(run(['/v']).uptime, 'container');
    assert.equal(run(['--uptime', 'host', '/v']).uptime, 'host');
    assert.equal(run(['--uptime=container', '/v']).uptime, 'container');
    assert.throws(() => parseDaemonArgs(['--uptime', 'boot']), /--uptime must be one of container, host/);
  });
});

describe('takeover flags', () => {
  it('takes over within 5 s and exits after a handover by default', () => {
    const args = run(['/v']);
    assert.equal(args.takeover, true);
    assert.equal(args.takeoverTimeoutMs, 5000);
    assert.equal(args.afterHandover, 'exit');
  });

  it('takes each one, and refuses what they cannot mean', () => {
    const args = run(['--no-takeover', '--takeover-timeout', '2', '--after-handover', 'wait', '/v']);
    assert.equal(args.takeover, false);
    assert.equal(args.takeoverTimeoutMs, 2000);
    assert.equal(args.afterHandover, 'wait');
    assert.throws(() => parseDaemonArgs(['--takeover-timeout', '0']), UsageError);
    assert.throws(() => parseDaemonArgs(['--takeover-timeout', '1.5']), UsageError);
    assert.throws(() => parseDaemonArgs(['--after-handover', 'linger']), /exit, wait/);
  });
});
