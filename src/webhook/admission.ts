/**
 * admission.k8s.io/v1 AdmissionReview in, AdmissionReview out. Pure: the HTTP layer hands in the
 * parsed body and writes back what this returns.
 */
import type { InjectionPlan } from './injection-plan.js';
import { diff, isJsonObject, type Json, type JsonObject, type PatchOperation } from './json-patch.js';
import { type MutationOutcome, mutatePod } from './mutate.js';
import type { SelectionMode } from './selection.js';

export const admissionApiVersion = 'admission.k8s.io/v1';

/** Reads a stored pod (null when it does not exist); absent when the webhook has no API access. */
export type PodReader = (namespace: string, name: string) => Promise<JsonObject | null>;

export interface AdmissionSettings {
  plan: InjectionPlan;
  excludedNamespaces: readonly string[];
  /** For ephemeral containers from API servers before 1.22, whose requests do not carry the pod. */
  readPod?: PodReader;
}

/** What happened to one review, for metrics and the log line (never the pod itself). */
export interface ReviewSummary {
  outcome: MutationOutcome | 'ignored';
  /** What was reviewed, when not a pod being created. */
  subject?: 'ephemeral-containers';
  reason?: string;
  status?: string | null;
  namespace?: string;
  name?: string;
  uid: string;
  dryRun: boolean;
  patchOperations: number;
}

export type ReviewResult =
  | { ok: true; response: JsonObject; summary: ReviewSummary }
  | { ok: false; httpStatus: number; error: string };

export function reject(httpStatus: number, error: string): ReviewResult {
  return { ok: false, httpStatus, error };
}

function str(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The envelope checks every review passes first: an AdmissionReview v1 with a request and a uid. */
export function openReview(body: unknown): { request: JsonObject; uid: string } | ReviewResult {
  if (!isJsonObject(body)) return reject(400, 'body is not a JSON object');
  if (body.kind !== 'AdmissionReview') return reject(400, 'kind must be AdmissionReview');
  if (body.apiVersion !== admissionApiVersion) {
    return reject(
      400,
      `unsupported apiVersion ${JSON.stringify(body.apiVersion)}: only ${admissionApiVersion} is served`,
    );
  }
  const request = body.request;
  if (!isJsonObject(request)) return reject(400, 'request is missing');
  const uid = str(request.uid);
  if (!uid) return reject(400, 'request.uid is missing');
  return { request, uid };
}

/** An allowed response to `request`, with `extra` fields (patch, audit annotations). */
export function respondTo(
  request: JsonObject,
  uid: string,
  extra: JsonObject,
  summary: Omit<ReviewSummary, 'uid' | 'dryRun'>,
): ReviewResult {
  return {
    ok: true,
    response: {
      apiVersion: admissionApiVersion,
      kind: 'AdmissionReview',
      response: { uid, allowed: true, ...extra },
    },
    summary: { uid, dryRun: request.dryRun === true, ...summary },
  };
}

/** The response fields for a patch (none when it is empty) and the status audit annotation. */
export function patchFields(patch: PatchOperation[], status: string | null): JsonObject {
  const extra: JsonObject = {};
  const patchJson = patch.length > 0 ? JSON.stringify(patch) : '';
  if (patchJson) {
    extra.patchType = 'JSONPatch';
    extra.patch = Buffer.from(patchJson).toString('base64');
  }
  if (status !== null) {
    // The API server prefixes these keys with the webhook's name in the audit log.
    const audit: JsonObject = { status };
    if (patchJson) audit.patch = patchJson;
    extra.auditAnnotations = audit;
  }
  return extra;
}

export function reviewAdmission(
  body: unknown,
  mode: SelectionMode,
  settings: AdmissionSettings,
  namespaceSysinfo = false,
): ReviewResult {
  const opened = openReview(body);
  if ('ok' in opened) return opened;
  const { request, uid } = opened;
  const respond = (extra: JsonObject, summary: Omit<ReviewSummary, 'uid' | 'dryRun'>): ReviewResult =>
    respondTo(request, uid, extra, summary);

  const kind = request.kind;
  const isPod = isJsonObject(kind) && kind.group === '' && kind.version === 'v1' && kind.kind === 'Pod';
  if (!isPod || request.operation !== 'CREATE' || (request.subResource ?? '') !== '') {
    // Misrouted (a rule wider than CREATE pods): let it through untouched rather than fail the call.
    return respond({}, { outcome: 'ignored', reason: 'not-a-pod-create', patchOperations: 0 });
  }
  const pod = request.object;
  if (!isJsonObject(pod)) return reject(400, 'request.object is not an object');

  const namespace =
    str(request.namespace) ?? (isJsonObject(pod.metadata) ? str(pod.metadata.namespace) : undefined);
  const name =
    str(request.name) ||
    (isJsonObject(pod.metadata) ? (str(pod.metadata.name) ?? str(pod.metadata.generateName)) : undefined);
  let result: ReturnType<typeof mutatePod>;
  let patch: PatchOperation[];
  try {
    result = mutatePod(pod, settings.plan, {
      mode,
      namespace: namespace ?? '',
      excludedNamespaces: settings.excludedNamespaces,
      namespaceSysinfo,
    });
    patch = diff(pod, result.pod);
  } catch (err) {
    // Copying and comparing are recursive; a body nested thousands of levels deep overflows the
    // stack. No pod looks like that: refuse it instead of walking every body to measure its depth.
    if (err instanceof RangeError) return reject(400, 'request.object is nested too deeply');
    throw err;
  }
  const extra = patchFields(patch, result.status);
  const summary: Omit<ReviewSummary, 'uid' | 'dryRun'> = {
    outcome: result.outcome,
    status: result.status,
    patchOperations: patch.length,
  };
  if (result.reason !== undefined) summary.reason = result.reason;
  if (namespace !== undefined) summary.namespace = namespace;
  if (name !== undefined) summary.name = name;
  return respond(extra, summary);
}
