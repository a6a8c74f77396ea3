import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRunArgs, UsageError } from '../../../src/sandbox/run-options.js';

function options(argv: string[]) {
  const parsed = parseRunArgs(argv, '/work');
  assert.equal(parsed.help, false);
  return parsed.help ? assert.fail('unexpected help') : parsed.options;
}

describe('parseRunArgs', () => {
  it('reads every limit, with separate or attached values', () => {
    const o = options([
      '--memory',
      '256M',
      '--memory-swap=512M',
      '--cpus',
      '1.5',
      '--cpuset=0,2-3',
      '--view',
      'views/x',
      '--rootfs',
      '/images/busybox',
      '--',
      'free',
      '-m',
    ]);
    assert.equal(o.memoryBytes, 256 * 1024 ** 2);
    assert.equal(o.memorySwap, 512 * 1024 ** 2);
    assert.deepEqual(o.cpuQuota, { quotaUs: 150_000, periodUs: 100_000 });
    assert.deepEqual(o.cpuset, [0, 2, 3]);
    assert.equal(o.viewDir, '/work/views/x');
    assert.equal(o.rootfs, '/images/busybox');
    assert.equal(o.timeNamespace, true);
    assert.equal(o.logLevel, 'warn');
    assert.deepEqual(o.command, ['free', '-m']);
  });

  it('takes the first non-option as CMD, and leaves options after it to CMD', () => {
    const o = options(['-m', '1G', 'free', '-m', '--memory', 'x']);
    assert.equal(o.memoryBytes, 1024 ** 3);
    assert.deepEqual(o.command, ['free', '-m', '--memory', 'x']);
  });

  it('gives CMD options that look like ours after --', () => {
    assert.deepEqual(options(['--', '--help']).command, ['--help']);
  });

  it('has no limits unless asked, and --no-timens turns the time namespace off', () => {
    const o = options(['--no-timens', 'true']);
    assert.equal(o.timeNamespace, false);
    assert.equal(o.memoryBytes, undefined);
    assert.equal(o.cpuQuota, undefined);
    assert.equal(o.cpuset, undefined);
    assert.equal(o.viewDir, undefined);
  });

  it('passes --uptime to the private daemon, which has its own default without it', () => {
    assert.equal(options(['--no-timens', '--uptime', 'host', 'true']).uptime, 'host');
    assert.equal(options(['--uptime=container', 'true']).uptime, 'container');
    assert.equal(options(['true']).uptime, undefined);
  });

  it('reads -1 as unlimited swap', () => {
    assert.equal(options(['--memory', '256M', '--memory-swap', '-1', 'true']).memorySwap, 'unlimited');
  });

  it('answers --help wherever it comes before CMD', () => {
    assert.deepEqual(parseRunArgs(['--help']), { help: true });
    assert.deepEqual(parseRunArgs(['--memory', '1G', '-h', 'true']), { help: true });
  });

  const bad: [string[], RegExp][] = [
    [[], /no command/],
    [['--memory', '256M'], /no command/],
    [['--memory'], /needs a value/],
    [['--bogus', 'true'], /unknown option '--bogus'/],
    [['--memory', 'lots', 'true'], /invalid size 'lots'/],
    [['--memory', '1M', 'true'], /minimum is 6M/],
    [['--memory-swap', '1G', 'true'], /needs --memory/],
    [['--memory', '1G', '--memory-swap', '512M', 'true'], /at least --memory/],
    [['--cpus', 'two', 'true'], /invalid CPU count/],
    [['--cpuset', '3-1', 'true'], /reversed/],
    [['--memory', '1G', '--memory', '2G', 'true'], /given twice/],
    [['--log-level', 'loud', 'true'], /--log-level loud/],
    [['--view=', 'true'], /needs a directory/],
    [['--uptime', 'boot', 'true'], /--uptime boot: use one of container, host/],
    [['--view', '/v', '--uptime', 'host', 'true'], /with --view, that daemon's own --uptime decides/],
  ];
  for (const [argv, message] of bad) {
    it(`rejects ${JSON.stringify(argv)}`, () => assert.throws(() => parseRunArgs(argv), message));
    it(`rejects ${JSON.stringify(argv)} as a usage error`, () =>
      assert.throws(() => parseRunArgs(argv), UsageError));
  }
});
