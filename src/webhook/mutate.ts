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

function setStatus(pod: JsonObject, status: string): void {
  if (!isJsonObject(pod.metadata)) pod.metadata = {};
  const metadata = pod.metadata as JsonObject;
  if (!isJsonObject(metadata.annotations)) metadata.annotations = {};
  (metadata.annotations as JsonObject)[statusAnnotation] = status;
}

function normalizePath(path: string): string {
  const trimmed = path.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
  return trimmed;
}

/** True when one path equals or contains the other: mounting both would shadow one of them. */
function overlaps(a: string, b: string): boolean {
  const x = normalizePath(a);
  const y = normalizePath(b);
  return x === y || x.startsWith(y === '/' ? '/' : `${y}/`) || y.startsWith(x === '/' ? '/' : `${x}/`);
}

/** The volume name for a planned mount: an existing volume with the same node path, or a free name. */
function resolveVolume(volumes: JsonObject[], mount: InjectedMount): { name: string; existing: boolean } {
  const same = volumes.find((v) => isJsonObject(v.hostPath) && v.hostPath.path === mount.hostPath);
  if (same && typeof same.name === 'string') return { name: same.name, existing: true };
  const taken = new Set(volumes.map((v) => v.name));
  let name = mount.volumeName;
  for (let i = 1; taken.has(name); i++) name = `${mount.volumeName}-${i}`;
  return { name, existing: false };
}

function volumeFor(name: string, mount: InjectedMount): JsonObject {
  return { name, hostPath: { path: mount.hostPath, type: mount.hostPathType } };
}

function volumeMountFor(name: string, mount: InjectedMount): JsonObject {
  const vm: JsonObject = { name, mountPath: mount.mountPath, readOnly: true };
  if (mount.propagation) vm.mountPropagation = mount.propagation;
  return vm;
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
    ...(plan.initContainers ? ((spec.initContainers ?? []) as JsonObject[]) : []),
  ];
  const conflicts: MountConflict[] = [];
  const newVolumes: JsonObject[] = [];
  for (const mount of plan.mounts) {
    const volume = resolveVolume(volumes, mount);
    let used = false;
    for (const container of targets) {
      const mounts = (container.volumeMounts ?? []) as JsonObject[];
      const ours = mounts.some((m) => m.name === volume.name && m.mountPath === mount.mountPath);
      if (ours) continue;
      const clash = mounts.some(
        (m) => typeof m.mountPath === 'string' && overlaps(m.mountPath, mount.mountPath),
      );
      if (clash) {
        conflicts.push({ container: String(container.name ?? ''), mountPath: mount.mountPath });
        continue;
      }
      container.volumeMounts = [...mounts, volumeMountFor(volume.name, mount)];
      used = true;
    }
    if (used && !volume.existing) {
      const v = volumeFor(volume.name, mount);
      volumes.push(v);
      newVolumes.push(v);
    }
  }
  if (newVolumes.length > 0) spec.volumes = volumes;

  const paths = [...new Set(conflicts.map((c) => c.mountPath))].sort();
  const status = paths.length > 0 ? `conflict: ${paths.join(',')}` : 'mutated';
  setStatus(pod, status);
  return { outcome: paths.length > 0 ? 'conflict' : 'mutated', status, pod, conflicts };
}
