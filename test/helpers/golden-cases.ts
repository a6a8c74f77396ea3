/**
 * The webhook's golden cases (test/fixtures/webhook/golden): a pod plus injection options each,
 * with the expected JSON Patch beside it in <case>.patch.json. Read by the in-process and the
 * over-HTTPS golden tests alike.
 */
import { readdirSync } from 'node:fs';
import type { InjectionOptions } from '../../src/webhook/injection-plan.js';
import type { SelectionMode } from '../../src/webhook/selection.js';
import { fixturePath } from './paths.js';

export const goldenDir = fixturePath('webhook', 'golden');
/** The case files' names (not their expected patches). */
export const goldenCases = readdirSync(goldenDir).filter((f) => f.endsWith('.json') && !f.endsWith('.patch.json'));

export interface GoldenCase {
  description: string;
  mode: SelectionMode;
  namespace: string;
  options?: Partial<InjectionOptions>;
  pod: Record<string, unknown>;
}
