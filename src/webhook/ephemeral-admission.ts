/**
 * Reviews of the pods/ephemeralcontainers subresource (UPDATE), in both shapes API servers send:
 * - kind Pod (1.22+): the whole pod, with the new ephemeral container in spec.ephemeralContainers;
 * - kind EphemeralContainers (1.16 to 1.21): only the pod's name and the container list, so the
 *   pod's annotations and volumes are read from the API (`AdmissionSettings.readPod`).
 * The patch only ever touches the ephemeral container list.
 */
import {
  type AdmissionSettings,
  openReview,
  patchFields,
  reject,
  respondTo,
  type ReviewResult,
  type ReviewSummary,
} from './admission.js';
import { mountViewIntoEphemeralContainers } from './ephemeral-mutation.js';
import { diff, isJsonObject, type Json, type JsonObject } from './json-patch.js';
import type { SelectionMode } from './selection.js';

export const ephemeralSubresource = 'ephemeralcontainers';

function field(value: Json | undefined, key: string): Json | undefined {
  return isJsonObject(value) ? value[key] : undefined;
}

/** Null when the body is not a review of the ephemeral containers subresource (the pod handler takes it). */
export async function reviewEphemeralContainers(
  body: unknown,
  mode: SelectionMode,
  settings: AdmissionSettings,
): Promise<ReviewResult | null> {
  const opened = openReview(body);
  if ('ok' in opened) return null;
  const { request, uid } = opened;
  const resource = request.resource;
  const isSubresource =
    request.subResource === ephemeralSubresource &&
    isJsonObject(resource) &&
    resource.group === '' &&
    resource.resource === 'pods';
  if (!isSubresource) return null;

  const namespace = typeof request.namespace === 'string' ? request.namespace : '';
  const name = typeof request.name === 'string' ? request.name : '';
  const summary = (s: Omit<ReviewSummary, 'uid' | 'dryRun' | 'subject'>) => ({
    subject: 'ephemeral-containers' as const,
    namespace,
    name,
    ...s,
  });
  const kind = field(request.kind, 'kind');
  const object = request.object;
  if (request.operation !== 'UPDATE' || !isJsonObject(object) || (kind !== 'Pod' && kind !== 'EphemeralContainers')) {
    return respondTo(request, uid, {}, summary({ outcome: 'ignored', reason: 'not-an-ephemeral-update', patchOperations: 0 }));
  }
  const skipped = (reason: string, status: string): ReviewResult =>
    respondTo(request, uid, patchFields([], status), summary({ outcome: 'skipped', reason, status, patchOperations: 0 }));

  let pod: JsonObject;
  let requested: Json | undefined;
  let previous: Json | undefined;
  if (kind === 'Pod') {
    pod = object;
    requested = field(object.spec, 'ephemeralContainers');
    previous = field(field(request.oldObject, 'spec'), 'ephemeralContainers');
  } else {
    requested = object.ephemeralContainers;
    previous = field(request.oldObject, 'ephemeralContainers');
    if (!settings.readPod) {
      return skipped('pod-unreadable', 'skipped: the request does not carry the pod and the webhook has no API access');
    }
    let stored: JsonObject | null;
    try {
      stored = await settings.readPod(namespace, name);
    } catch (err) {
      return skipped('pod-unreadable', `skipped: cannot read the pod: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (stored === null) return skipped('pod-unreadable', 'skipped: the pod does not exist');
    pod = stored;
  }

  // API servers before 1.21 refuse a securityContext on ephemeral containers; the EphemeralContainers
  // shape comes from 1.16 to 1.21, so only the Pod shape may carry one.
  const result = mountViewIntoEphemeralContainers(
    pod,
    requested,
    previous,
    settings.plan,
    { mode, namespace, excludedNamespaces: settings.excludedNamespaces },
    kind === 'Pod',
  );
  if (result.outcome === 'invalid') {
    return respondTo(request, uid, {}, summary({ outcome: 'invalid', reason: 'invalid-pod', patchOperations: 0 }));
  }
  let patch;
  try {
    const mutated: JsonObject =
      kind === 'Pod'
        ? { ...object, spec: { ...(object.spec as JsonObject), ephemeralContainers: result.containers } }
        : { ...object, ephemeralContainers: result.containers };
    patch = diff(object, mutated);
  } catch (err) {
    if (err instanceof RangeError) return reject(400, 'request.object is nested too deeply');
    throw err;
  }
  const s: Omit<ReviewSummary, 'uid' | 'dryRun'> = summary({
    outcome: result.outcome,
    status: result.status,
    patchOperations: patch.length,
  });
  if (result.reason !== undefined) s.reason = result.reason;
  return respondTo(request, uid, patchFields(patch, result.status), s);
}
