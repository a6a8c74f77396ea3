import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { reviewAdmission } from '../../../src/webhook/admission.js';
import { buildInjectionPlan, defaultInjectionOptions } from '../../../src/webhook/injection-plan.js';
import { applyPatch, type Operation } from '../../helpers/json-patch-apply.js';
import { type GoldenCase, goldenCases, goldenDir } from '../../helpers/golden-cases.js';

// Each case is a pod plus options; the expected JSON Patch lives beside it in <case>.patch.json.
// UPDATE_GOLDEN=1 rewrites the expectations (review the diff before committing it).
const dir = goldenDir;
const cases = goldenCases;

function review(c: GoldenCase, pod: unknown) {
  const plan = buildInjectionPlan({ ...defaultInjectionOptions, ...c.options });
  const result = reviewAdmission(
    {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'u-1',
        kind: { group: '', version: 'v1', kind: 'Pod' },
        operation: 'CREATE',
        namespace: c.namespace,
        object: pod,
      },
    },
    c.mode,
    { plan, excludedNamespaces: ['kube-system', 'lxcfs-ts'] },
  );
  assert.ok(result.ok);
  const response = result.response.response as Record<string, unknown>;
  const patch = response.patch
    ? (JSON.parse(Buffer.from(String(response.patch), 'base64').toString()) as Operation[])
    : [];
  return { patch, response };
}

describe('golden patches', () => {
  assert.ok(cases.length >= 8, 'golden cases are present');
  for (const file of cases) {
    const c = JSON.parse(readFileSync(`${dir}/${file}`, 'utf8')) as GoldenCase;
    it(`${file}: ${c.description}`, () => {
      const { patch, response } = review(c, c.pod);
      const goldenFile = `${dir}/${file.replace(/\.json$/, '.patch.json')}`;
      if (process.env.UPDATE_GOLDEN === '1') writeFileSync(goldenFile, `${JSON.stringify(patch, null, 2)}\n`);
      assert.deepEqual(patch, JSON.parse(readFileSync(goldenFile, 'utf8')));
      assert.equal(response.patchType, 'JSONPatch');
      // The patch applies under RFC 6902's strict rules, and running again on the result changes nothing.
      const mutated = applyPatch(c.pod, patch);
      assert.deepEqual(review(c, mutated).patch, []);
    });
  }
});
