/** Checks and clean-up of objects on the real API server (scripts/kube-env), shared by the e2e tests. */
import assert from 'node:assert/strict';
import type { Kubectl } from './kube-env.js';

/** Every field of `expected` is in `actual` with the same value (the server may add defaults). */
export function assertKept(actual: unknown, expected: unknown, path: string): void {
  if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${path}: a list`);
    assert.equal(actual.length, expected.length, `${path}: ${expected.length} items`);
    expected.forEach((item, i) => assertKept(actual[i], item, `${path}[${i}]`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.ok(actual !== null && typeof actual === 'object', `${path}: an object`);
    for (const [key, value] of Object.entries(expected)) {
      assertKept((actual as Record<string, unknown>)[key], value, `${path}.${key}`);
    }
  } else {
    assert.equal(actual, expected, `${path} kept by the API server`);
  }
}

/**
 * Deletes a namespace and what a test put in it. A bare API server has no namespace controller to
 * finish the deletion; then, with the namespace already emptied, its finalizer is cleared through
 * the finalize subresource (what that controller does after emptying it). `controllerWaitMs`: how
 * long a namespace controller, if there is one, is given first.
 */
export function removeNamespace(kubectl: Kubectl, namespace: string, controllerWaitMs = 5_000): void {
  kubectl.try([
    '-n', namespace, 'delete',
    'pods,secrets,leases,serviceaccounts,roles,rolebindings,services,deployments,daemonsets,poddisruptionbudgets',
    '--all', '--wait=false',
  ]);
  kubectl.try(['delete', 'namespace', namespace, '--wait=false']);
  const deadline = Date.now() + controllerWaitMs;
  while (Date.now() < deadline) {
    if (kubectl.try(['get', 'namespace', namespace]).status !== 0) return;
    spinWait(500);
  }
  const r = kubectl.try(['get', 'namespace', namespace, '-o', 'json']);
  if (r.status !== 0) return;
  const ns = JSON.parse(r.stdout) as { spec?: { finalizers?: string[] } };
  ns.spec = { ...ns.spec, finalizers: [] };
  kubectl.try(['replace', '--raw', `/api/v1/namespaces/${namespace}/finalize`, '-f', '-'], JSON.stringify(ns));
}

function spinWait(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
