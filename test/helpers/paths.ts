import { fileURLToPath } from 'node:url';

/** The repository root, from a compiled test under dist/. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export function fixturePath(...parts: string[]): string {
  return `${repoRoot}test/fixtures/${parts.join('/')}`;
}
