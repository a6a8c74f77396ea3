import { isJsonObject, type JsonObject } from './json-patch.js';

/** Pod annotation: `"true"` opts a pod in (opt-in namespaces), `"false"` always opts it out. */
export const injectAnnotation = 'lxcfs-ts.io/inject';
/** Pod annotation the webhook writes with the outcome. */
export const statusAnnotation = 'lxcfs-ts.io/status';
/** Namespace label: `enabled` (every pod) or `optin` (pods annotated `lxcfs-ts.io/inject: "true"`). */
export const namespaceLabel = 'lxcfs-ts.io/inject';
/** Labels of earlier LXCFS webhooks, honoured as `enabled` so namespaces keep working after a switch. */
export const legacyNamespaceLabels = ['lxcfs-admission-webhook', 'mount-lxcfs'] as const;

/**
 * Which namespace selection brought the pod here. The API server evaluates the namespace labels
 * (the review does not carry them) and calls a different path for each mode.
 */
export type SelectionMode = 'enabled' | 'optin';

export interface SelectionContext {
  mode: SelectionMode;
  namespace: string;
  /** Namespaces never injected: kube-system and the webhook's own, plus any configured. */
  excludedNamespaces: readonly string[];
  /** The namespace is labelled for the syscall view (a path of its own, like the mode). */
  namespaceSysinfo?: boolean;
}

export type SkipReason =
  | 'excluded-namespace'
  | 'opted-out'
  | 'not-opted-in'
  | 'invalid-annotation'
  | 'mirror-pod'
  | 'windows-pod';

export type Selection = { inject: true } | { inject: false; reason: SkipReason; message: string };

const truthy = new Set(['true', 'yes', 'on', 'enabled']);
const falsy = new Set(['false', 'no', 'off', 'disabled']);

function annotations(pod: JsonObject): JsonObject {
  const metadata = pod.metadata;
  if (!isJsonObject(metadata) || !isJsonObject(metadata.annotations)) return {};
  return metadata.annotations;
}

/** Decides whether a pod gets the view, before looking at its containers. */
export function selectPod(pod: JsonObject, ctx: SelectionContext): Selection {
  if (ctx.excludedNamespaces.includes(ctx.namespace)) {
    return {
      inject: false,
      reason: 'excluded-namespace',
      message: `namespace ${ctx.namespace} is never injected`,
    };
  }
  const value = annotations(pod)[injectAnnotation];
  const choice = typeof value === 'string' ? value.trim().toLowerCase() : undefined;
  if (choice !== undefined && falsy.has(choice)) {
    return { inject: false, reason: 'opted-out', message: `opted out by annotation ${injectAnnotation}` };
  }
  if (choice !== undefined && !truthy.has(choice)) {
    return {
      inject: false,
      reason: 'invalid-annotation',
      message: `annotation ${injectAnnotation} must be "true" or "false"`,
    };
  }
  if (annotations(pod)['kubernetes.io/config.mirror'] !== undefined) {
    // The kubelet runs a static pod from its own manifest; volumes added to the mirror would be fiction.
    return { inject: false, reason: 'mirror-pod', message: 'mirror pod of a static pod' };
  }
  const spec = pod.spec;
  if (isJsonObject(spec) && isJsonObject(spec.os) && spec.os.name === 'windows') {
    return { inject: false, reason: 'windows-pod', message: 'windows pod' };
  }
  if (ctx.mode === 'optin' && choice === undefined) {
    return {
      inject: false,
      reason: 'not-opted-in',
      message: `namespace is opt-in and the pod has no ${injectAnnotation}: "true" annotation`,
    };
  }
  return { inject: true };
}
