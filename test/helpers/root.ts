import type { TestContext } from 'node:test';

/**
 * Integration tests need root (FUSE mounts, cgroups, namespaces). Outside CI they are skipped
 * for other users; in CI (CI=true) a missing privilege is a failure, never a silent skip.
 */
export function needsRoot(t: TestContext): boolean {
  if (process.getuid?.() === 0) return true;
  if (process.env.CI === 'true') throw new Error('this test needs root, and CI must run it as root');
  t.skip('needs root');
  return false;
}
