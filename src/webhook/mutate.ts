/**
 * The pod mutation, as a pure function of the pod, the injection plan and the selection context.
 * It edits a copy; the admission layer derives the JSON Patch from the difference.
 *
 * Rules: a container that already has something at (or above, or below) one of our mount paths keeps
 * its own mount and gets the rest; our volumes take names nobody else uses, and a volume that already
 * points at the same node path is reused; lists are only appended to; running it again on its own
 * output changes nothing.
 */
import type { InjectedMount, InjectionPlan } from './injection-plan.js';
import { isJsonObject, type Json, type JsonObject } from './json-patch.js';
import { applySysinfoProfile, sysinfoRequested, sysinfoStatus, sysinfoStatusAnnotation } from './seccomp-injection.js';
import { type SelectionContext, type SkipReason, selectPod, statusAnnotation } from './selection.js';

export type MutationOutcome = 'mutated' | 'conflict' | 'skipped' | 'invalid';

export interface MountConflict {
  container: string;
  mountPath: string;
}

export interface MutationResult {
  outcome: MutationOutcome;
  /** Why nothing was injected (outcome skipped or invalid). */
  reason?: SkipReason | 'invalid-pod';
  /** The status annotation written, or null when the pod was left untouched (invalid pods). */
  status: string | null;
  /** The pod as it should be stored (a copy; the input is never modified). */
  pod: JsonObject;
  conflicts: MountConflict[];
}

type Problem = string | null;

function isArrayOfObjects(value: Json | undefined): boolean {
  return value === undefined || (Array.isArray(value) && value.every(isJsonObject));
}

/** Shape checks for the fields the mutation touches; the API server validates the rest. */
function checkShape(pod: JsonObject): Problem {
  if (pod.metadata !== undefined && !isJsonObject(pod.metadata)) return 'metadata is not an object';
  const annotations = isJsonObject(pod.metadata) ? pod.metadata.annotations : undefined;
  if (annotations !== undefined && annotations !== null && !isJsonObject(annotations)) {
    return 'metadata.annotations is not an object';
  }
  const spec = pod.spec;
  if (!isJsonObject(spec)) return 'spec is not an object';
  if (!Array.isArray(spec.containers) || spec.containers.length === 0) return 'spec.containers is empty';
  if (!isArrayOfObjects(spec.containers) || !isArrayOfObjects(spec.initContainers ?? undefined)) {
    return 'containers are not objects';
  }
  if (!isArrayOfObjects(spec.volumes ?? undefined)) return 'spec.volumes is not a list of objects';
  for (const c of [...(spec.containers as JsonObject[]), ...((spec.initContainers as JsonObject[]) ?? [])]) {
    if (!isArrayOfObjects(c.volumeMounts ?? undefined)) return 'volumeMounts is not a list of objects';
  }
  return null;
}

function setAnnotation(pod: JsonObject, key: string, value: string): void {
  if (!isJsonObject(pod.metadata)) pod.metadata = {};
  const metadata = pod.metadata as JsonObject;
  if (!isJsonObject(metadata.annotations)) metadata.annotations = {};
  (metadata.annotations as JsonObject)[key] = value;
}

function setStatus(pod: JsonObject, status: string): void {
  setAnnotation(pod, statusAnnotation, status);
}

/** The syscall view's part: the seccomp profile, where the pod asks for it and the webhook offers it. */
function injectSysinfo(
  pod: JsonObject,
  plan: InjectionPlan,
  ctx: SelectionContext,
  targets: readonly JsonObject[],
  conflicts: readonly MountConflict[],
): void {
  if (plan.sysinfoProfile === null) return;
  const request = sysinfoRequested(pod, ctx.namespaceSysinfo ?? false);
  if (request === 'no') return;
  if (request !== 'yes') {
    setAnnotation(pod, sysinfoStatusAnnotation, `skipped: ${request.invalid}`);
    return;
  }
  const withoutView = new Set(conflicts.map((c) => c.container));
  const outcome = applySysinfoProfile(pod, targets, plan.sysinfoProfile, withoutView);
  setAnnotation(pod, sysinfoStatusAnnotation, sysinfoStatus(outcome));
}

/** "/a//b/" -> "/a/b" (split and join: regular expressions here cost tens of µs per pod). */
function normalizePath(path: string): string {
  if (!path.includes('//') && (path.length < 2 || !path.endsWith('/'))) return path;
  return `/${path
    .split('/')
    .filter((part) => part !== '')
    .join('/')}`;
}

/** True when one (normalized) path equals or contains the other: mounting both would shadow one. */
function overlaps(x: string, y: string): boolean {
  if (x === y || x === '/' || y === '/') return true;
  return x.startsWith(`${y}/`) || y.startsWith(`${x}/`);
}

export interface ResolvedMount {
  mount: InjectedMount;
  /** Volume name to use: an existing volume with the same node path, or a name nobody uses. */
  name: string;
  existing: boolean;
  used: boolean;
}

function resolveVolumes(volumes: JsonObject[], mounts: readonly InjectedMount[]): ResolvedMount[] {
  const taken = new Set(volumes.map((v) => v.name));
  return mounts.map((mount) => {
    const same = volumes.find((v) => isJsonObject(v.hostPath) && v.hostPath.path === mount.hostPath);
    if (same && typeof same.name === 'string') return { mount, name: same.name, existing: true, used: false };
    let name = mount.volumeName;
    for (let i = 1; taken.has(name); i++) name = `${mount.volumeName}-${i}`;
    taken.add(name);
    return { mount, name, existing: false, used: false };
  });
}

function volumeFor(name: string, mount: InjectedMount): JsonObject {
  return { name, hostPath: { path: mount.hostPath, type: mount.hostPathType } };
}

function volumeMountFor(name: string, mount: InjectedMount): JsonObject {
  const vm: JsonObject = { name, mountPath: mount.mountPath, readOnly: true };
  if (mount.propagation) vm.mountPropagation = mount.propagation;
  return vm;
}

/**
 * The volume mounts a container still lacks. A mount it already has is skipped; a path where it
 * mounts something of its own (or above, or below) is left to it and recorded in `conflicts`.
 * Marks each volume it mounts as used.
 */
export function viewMountsFor(
  container: JsonObject,
  resolved: ResolvedMount[],
  conflicts: MountConflict[],
): JsonObject[] {
  const mounts = (container.volumeMounts ?? []) as JsonObject[];
  // Planned mounts never overlap one another, so only the container's own entries can clash.
  const taken = mounts.flatMap((m) => (typeof m.mountPath === 'string' ? [normalizePath(m.mountPath)] : []));
  const added: JsonObject[] = [];
  for (const r of resolved) {
    if (mounts.some((m) => m.name === r.name && m.mountPath === r.mount.mountPath)) continue;
    if (taken.some((path) => overlaps(path, r.mount.mountPath))) {
      conflicts.push({ container: String(container.name ?? ''), mountPath: r.mount.mountPath });
      continue;
    }
    added.push(volumeMountFor(r.name, r.mount));
    r.used = true;
  }
  return added;
}

/**
 * A native sidecar (Kubernetes 1.28+): an init container with `restartPolicy: Always` runs beside
 * the app for the pod's whole life, and sizes itself from what it reads (envoy's workers from the
 * CPU count), so it gets the view like an app container. Plain init containers run to completion
 * before the app and get it only with --init-containers.
 */
export function isNativeSidecar(container: JsonObject): boolean {
  return container.restartPolicy === 'Always';
}

export function mutatePod(input: JsonObject, plan: InjectionPlan, ctx: SelectionContext): MutationResult {
  const pod = structuredClone(input);
  const problem = checkShape(pod);
  if (problem !== null) {
    return { outcome: 'invalid', reason: 'invalid-pod', status: null, pod, conflicts: [] };
  }
  const selection = selectPod(pod, ctx);
  if (!selection.inject) {
    const status = `skipped: ${selection.message}`;
    setStatus(pod, status);
    return { outcome: 'skipped', reason: selection.reason, status, pod, conflicts: [] };
  }

  const spec = pod.spec as JsonObject;
  const volumes = (spec.volumes ?? []) as JsonObject[];
  const targets = [
    ...(spec.containers as JsonObject[]),
    ...((spec.initContainers ?? []) as JsonObject[]).filter(
      (c) => plan.initContainers || isNativeSidecar(c),
    ),
  ];
  const conflicts: MountConflict[] = [];
  const resolved = resolveVolumes(volumes, plan.mounts);
  for (const container of targets) {
    const added = viewMountsFor(container, resolved, conflicts);
    if (added.length > 0) container.volumeMounts = [...((container.volumeMounts ?? []) as JsonObject[]), ...added];
  }
  const newVolumes = resolved.filter((r) => r.used && !r.existing).map((r) => volumeFor(r.name, r.mount));
  if (newVolumes.length > 0) spec.volumes = [...volumes, ...newVolumes];

  injectSysinfo(pod, plan, ctx, targets, conflicts);

  const paths = [...new Set(conflicts.map((c) => c.mountPath))].sort();
  const status = paths.length > 0 ? `conflict: ${paths.join(',')}` : 'mutated';
  setStatus(pod, status);
  return { outcome: paths.length > 0 ? 'conflict' : 'mutated', status, pod, conflicts };
}
