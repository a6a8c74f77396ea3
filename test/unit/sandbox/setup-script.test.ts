import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import {
  launcherArgv,
  renderSetupScript,
  type SandboxLayout,
  setupSteps,
  shellQuote,
  viewParent,
} from '../../../src/sandbox/setup-script.js';

const hostLayout: SandboxLayout = {
  viewDir: '/run/lxcfs-ts/view',
  procFiles: ['proc/meminfo', 'proc/cpuinfo', 'proc/pressure/cpu'],
  cpuDirectory: true,
};

describe('setupSteps', () => {
  it('mounts a fresh procfs, binds each view file read-only over it, then the cpu directory and the view parent', () => {
    assert.deepEqual(setupSteps(hostLayout), [
      ['mount', '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', '/proc'],
      ['mount', '--bind', '-o', 'ro', '/run/lxcfs-ts/view/proc/meminfo', '/proc/meminfo'],
      ['mount', '--bind', '-o', 'ro', '/run/lxcfs-ts/view/proc/cpuinfo', '/proc/cpuinfo'],
      ['mount', '--bind', '-o', 'ro', '/run/lxcfs-ts/view/proc/pressure/cpu', '/proc/pressure/cpu'],
      ['mount', '--bind', '-o', 'ro', '/run/lxcfs-ts/view/sys/devices/system/cpu', '/sys/devices/system/cpu'],
      ['mount', '--rbind', '/run/lxcfs-ts', '/run/lxcfs-ts'],
      ['mount', '--make-rslave', '/run/lxcfs-ts'],
      ['mount', '-o', 'remount,bind,ro', '/run/lxcfs-ts'],
    ]);
  });

  it('builds everything inside a rootfs, with the host /sys and /dev and the parent at the same path', () => {
    const steps = setupSteps({ ...hostLayout, rootfs: '/images/static', procFiles: ['proc/meminfo'] });
    assert.deepEqual(steps, [
      ['mount', '--rbind', '/images/static', '/images/static'],
      [
        'mkdir',
        '-p',
        '/images/static/proc',
        '/images/static/sys',
        '/images/static/dev',
        '/images/static/run/lxcfs-ts',
      ],
      ['mount', '-t', 'proc', '-o', 'nosuid,nodev,noexec', 'proc', '/images/static/proc'],
      ['mount', '--bind', '-o', 'ro', '/run/lxcfs-ts/view/proc/meminfo', '/images/static/proc/meminfo'],
      ['mount', '--rbind', '/sys', '/images/static/sys'],
      ['mount', '-o', 'remount,bind,ro', '/images/static/sys'],
      ['mount', '--rbind', '/dev', '/images/static/dev'],
      [
        'mount',
        '--bind',
        '-o',
        'ro',
        '/run/lxcfs-ts/view/sys/devices/system/cpu',
        '/images/static/sys/devices/system/cpu',
      ],
      ['mount', '--rbind', '/run/lxcfs-ts', '/images/static/run/lxcfs-ts'],
      ['mount', '--make-rslave', '/images/static/run/lxcfs-ts'],
      ['mount', '-o', 'remount,bind,ro', '/images/static/run/lxcfs-ts'],
    ]);
  });

  it('does not bind / over the sandbox root when the view sits directly under it', () => {
    const layout = { ...hostLayout, viewDir: '/lxcfs' };
    assert.equal(viewParent(layout), undefined);
    assert.ok(!setupSteps(layout).some((step) => step.includes('--rbind')));
  });

  it('skips the cpu directory when the view has none', () => {
    assert.ok(
      !setupSteps({ ...hostLayout, cpuDirectory: false }).some((s) => s.at(-1) === '/sys/devices/system/cpu'),
    );
  });
});

describe('shellQuote', () => {
  it('round-trips any word through sh', () => {
    const words = ['plain', 'with space', 'it\'s', '$HOME', '`id`', 'a\nb', '', '*', '--x=y', '"q"'];
    const result = spawnSync('sh', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`], {
      encoding: 'utf8',
    });
    assert.deepEqual(result.stdout.split('\0').slice(0, -1), words);
  });
});

describe('renderSetupScript', () => {
  it('stops at the first failure, reports readiness on fd 3 and execs CMD without that fd', () => {
    const script = renderSetupScript(hostLayout);
    const lines = script.trim().split('\n');
    assert.equal(lines[0], 'set -e');
    assert.equal(lines.at(-2), 'printf \'%s\\n\' ready >&3');
    assert.equal(lines.at(-1), 'exec "$@" 3>&-');
  });

  it('moves the rootfs over / and chroots into it as the last step', () => {
    const lines = renderSetupScript({ ...hostLayout, rootfs: '/images/it\'s here' })
      .trim()
      .split('\n');
    assert.deepEqual(lines.slice(-3), [
      'cd \'/images/it\'\\\'\'s here\'',
      'mount --move . /',
      'exec chroot . "$@" 3>&-',
    ]);
  });
});

describe('launcherArgv', () => {
  it('joins the cgroups first, then execs unshare and the waiter with a boot clock offset and CMD as arguments', () => {
    const argv = launcherArgv({
      procsFiles: [
        '/sys/fs/cgroup/memory/lxcfs-ts/1/cgroup.procs',
        '/sys/fs/cgroup/cpu/lxcfs-ts/1/cgroup.procs',
      ],
      timeNamespace: true,
      setupScript: 'SETUP',
      command: ['free', '-m', 'it\'s'],
    });
    assert.equal(argv[0], 'sh');
    assert.equal(argv[1], '-c');
    assert.equal(argv[3], 'SETUP');
    const lines = argv[2]!.split('\n');
    assert.match(lines[0]!, /^echo \$\$ > \/sys\/fs\/cgroup\/memory\/lxcfs-ts\/1\/cgroup.procs \|\| /);
    assert.match(lines[1]!, /^echo \$\$ > \/sys\/fs\/cgroup\/cpu\/lxcfs-ts\/1\/cgroup.procs \|\| /);
    assert.ok(argv[2]!.includes('--time --boottime=-"${up%.*}"'));
    assert.ok(argv[2]!.includes('unshare --mount --propagation slave --pid "$@" --'));
    assert.ok(argv[2]!.endsWith(`"$0" free -m 'it'\\''s'`));
  });

  it('leaves the time namespace out when asked', () => {
    const argv = launcherArgv({ procsFiles: [], timeNamespace: false, setupScript: '', command: ['true'] });
    assert.ok(!argv[2]!.includes('--time'));
  });

  it('is valid sh', () => {
    const argv = launcherArgv({
      procsFiles: ['/a b/cgroup.procs'],
      timeNamespace: true,
      setupScript: '',
      command: ['x'],
    });
    assert.equal(spawnSync('sh', ['-n', '-c', argv[2]!]).status, 0);
    assert.equal(spawnSync('sh', ['-n', '-c', renderSetupScript({ ...hostLayout, rootfs: '/r' })]).status, 0);
  });
});
