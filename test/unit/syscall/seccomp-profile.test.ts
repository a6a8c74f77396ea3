import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  installSysinfoProfile,
  ProfileDirError,
  sysinfoProfileName,
  sysinfoSeccompProfile,
} from '../../../src/syscall/seccomp-profile.js';

const socket = '/run/lxcfs-ts/sysinfo.sock';

function rulesFor(name: string, profile = sysinfoSeccompProfile(socket, 'x64')) {
  return profile.syscalls.filter((r) => r.names.includes(name));
}

describe('the Localhost seccomp profile of the syscall view', () => {
  it('denies by default, sends sysinfo to the listener and allows it nowhere else', () => {
    const profile = sysinfoSeccompProfile(socket, 'x64');
    assert.equal(profile.defaultAction, 'SCMP_ACT_ERRNO');
    assert.equal(profile.listenerPath, socket);
    assert.equal(profile.listenerMetadata, 'lxcfs-ts');
    assert.deepEqual(rulesFor('sysinfo').map((r) => r.action), ['SCMP_ACT_NOTIFY']);
    assert.deepEqual(profile.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  });

  it('keeps RuntimeDefault\'s limits: no mount, namespaces only through clone\'s masked rule, clone3 ENOSYS', () => {
    for (const name of ['mount', 'umount2', 'unshare', 'setns', 'bpf', 'kexec_load', 'init_module', 'process_vm_writev', 'open_by_handle_at', 'reboot']) {
      assert.deepEqual(rulesFor(name), [], `${name} is not allowed`);
    }
    assert.deepEqual(rulesFor('clone'), [
      {
        names: ['clone'],
        action: 'SCMP_ACT_ALLOW',
        args: [{ index: 0, value: 0x7e020000, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }],
      },
    ]);
    assert.deepEqual(rulesFor('clone3'), [{ names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 }]);
    assert.ok(rulesFor('personality').every((r) => r.args?.length === 1 && r.args[0]!.op === 'SCMP_CMP_EQ'));
  });

  it('allows what ordinary programs need, and each architecture\'s own calls', () => {
    for (const name of ['read', 'openat', 'execve', 'futex', 'rseq', 'statx', 'close_range', 'epoll_pwait2', 'chroot', 'ptrace']) {
      assert.equal(rulesFor(name).length, 1, name);
    }
    assert.equal(rulesFor('arch_prctl').length, 1);
    const arm = sysinfoSeccompProfile(socket, 'arm64');
    assert.deepEqual(rulesFor('arch_prctl', arm), []);
    assert.equal(rulesFor('set_tls', arm).length, 1);
    assert.deepEqual(arm.architectures, ['SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64']);
  });

  it('is written whole into the kubelet\'s directory, and a missing directory says what to mount', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-seccomp-'));
    try {
      const path = installSysinfoProfile(dir, socket, 'x64');
      assert.equal(path, join(dir, sysinfoProfileName));
      assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), sysinfoSeccompProfile(socket, 'x64'));
      assert.equal(statSync(path).mode & 0o777, 0o644);
      installSysinfoProfile(dir, '/other.sock', 'x64');
      assert.equal(JSON.parse(readFileSync(path, 'utf8')).listenerPath, '/other.sock', 'rewritten in place');
      assert.deepEqual(readdirSync(join(dir, 'lxcfs-ts')), ['sysinfo.json'], 'no temporary file left');
      assert.throws(() => installSysinfoProfile(join(dir, 'absent'), socket, 'x64'),
        (err: unknown) => err instanceof ProfileDirError && /not there \(ENOENT\).*kubelet\/seccomp/.test(err.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
