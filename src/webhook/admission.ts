/**
 * admission.k8s.io/v1 AdmissionReview in, AdmissionReview out. Pure: the HTTP layer hands in the
 * parsed body and writes back what this returns.
 */
import type { InjectionPlan } from './injection-plan.js';
import { diff, isJsonObject, type Json, type JsonObject, type PatchOperation } from './json-patch.js';
import { type MutationOutcome, mutatePod } from './mutate.js';
import type { SelectionMode } from './selection.js';

export const admissionApiVersion = 'admission.k8s.io/v1';

export interface AdmissionSettings {
  plan: InjectionPlan;
  excludedNamespaces: readonly string[];
}

/** What happened to one review, for metrics and the log line (never the pod itself). */
export interface ReviewSummary {
  outcome: MutationOutcome | 'ignored';
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

function reject(httpStatus: number, error: string): ReviewResult {
  return { ok: false, httpStatus, error };
}

function str(value: Json | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

export function reviewAdmission(
  body: unknown,
  mode: SelectionMode,
  settings: AdmissionSettings,
  namespaceSysinfo = false,
): ReviewResult {
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

  const respond = (extra: JsonObject, summary: Omit<ReviewSummary, 'uid' | 'dryRun'>): ReviewResult => ({
    ok: true,
    response: {
      apiVersion: admissionApiVersion,
      kind: 'AdmissionReview',
      response: { uid, allowed: true, ...extra },
    },
    summary: { uid, dryRun: request.dryRun === true, ...summary },
  });

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
  const extra: JsonObject = {};
  const patchJson = patch.length > 0 ? JSON.stringify(patch) : '';
  if (patchJson) {
    extra.patchType = 'JSONPatch';
    extra.patch = Buffer.from(patchJson).toString('base64');
  }
  if (result.status !== null) {
    // The API server prefixes these keys with the webhook's name in the audit log.
    const audit: JsonObject = { status: result.status };
    if (patchJson) audit.patch = patchJson;
    extra.auditAnnotations = audit;
  }
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
