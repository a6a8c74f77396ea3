import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkCommand, resolveInRoot } from '../../../src/sandbox/command-lookup.js';
import { RunError } from '../../../src/sandbox/run-error.js';

describe('checkCommand in a rootfs', () => {
  let root = '';
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-rootfs-'));
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    mkdirSync(join(root, 'opt'));
    symlinkSync('usr/bin', join(root, 'bin'));
    writeFileSync(join(root, 'usr/bin/tool'), '#!/bin/sh\n');
    chmodSync(join(root, 'usr/bin/tool'), 0o755);
    writeFileSync(join(root, 'usr/bin/data'), 'not a program\n');
    // An absolute link target means the rootfs's own /usr/bin, not the host's.
    symlinkSync('/usr/bin/tool', join(root, 'opt/abs-link'));
    symlinkSync('/usr/bin/missing', join(root, 'opt/dangling'));
    symlinkSync('../../../../../usr/bin/tool', join(root, 'opt/up-link'));
    symlinkSync('loop-b', join(root, 'opt/loop-a'));
    symlinkSync('loop-a', join(root, 'opt/loop-b'));
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  const status = (cmd: string, path = '/usr/bin:/bin') => {
    try {
      checkCommand(cmd, root, '/', path);
      return 0;
    } catch (err) {
      assert.ok(err instanceof RunError);
      return err.exitCode;
    }
  };

  it('finds commands on PATH and by path, through symlinks resolved inside the root', () => {
    assert.equal(status('tool'), 0);
    assert.equal(status('/bin/tool'), 0);
    assert.equal(status('/opt/abs-link'), 0);
    assert.equal(status('/opt/up-link'), 0, '.. stops at the root');
    assert.equal(status('tool', '/nowhere:/bin'), 0);
  });

  it('answers 127 for a missing command, as a shell does', () => {
    assert.equal(status('free'), 127, 'the host has free, the rootfs does not');
    assert.equal(status('/opt/dangling'), 127);
    assert.equal(status('/opt/loop-a'), 127);
    assert.equal(status('tool', '/opt'), 127);
  });

  it('answers 126 for a file that is not executable', () => {
    assert.equal(status('data'), 126);
    assert.equal(status('/usr/bin'), 126, 'a directory');
  });

  it('resolves a path to the host path inside the root', () => {
    assert.equal(resolveInRoot(root, '/bin/tool'), join(root, 'usr/bin/tool'));
    assert.equal(resolveInRoot(root, '/opt/abs-link'), join(root, 'usr/bin/tool'));
    assert.equal(resolveInRoot(root, '/nope/x'), undefined);
  });
});

describe('checkCommand on the host', () => {
  it('finds sh through PATH and relative paths from the working directory', () => {
    assert.doesNotThrow(() => checkCommand('sh', '/', '/', '/usr/bin:/bin'));
    assert.doesNotThrow(() => checkCommand('./sh', '/', '/bin'));
    assert.throws(() => checkCommand('definitely-not-a-command-xyz', '/', '/'), /command not found/);
  });
});
