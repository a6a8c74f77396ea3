/**
 * Ephemeral containers (`kubectl debug`) are added to an existing pod through the
 * pods/ephemeralcontainers subresource, which cannot add volumes. A new ephemeral container of a pod
 * that has the view volumes gets mounts of them, by the same rules as the pod's other containers;
 * a pod without them is left as it is (a mount of a volume the pod lacks would make the API server
 * refuse the whole update, and with it the debug session). Where the pod's containers have the
 * syscall view's seccomp profile, the debug container gets it as well.
 */
import type { InjectionPlan } from './injection-plan.js';
import { isJsonObject, type Json, type JsonObject } from './json-patch.js';
import { type MountConflict, type ResolvedMount, viewMountsFor } from './mutate.js';
import { applySysinfoProfile, sysinfoStatus } from './seccomp-injection.js';
import { type SelectionContext, type SkipReason, selectPod } from './selection.js';

export type EphemeralSkipReason = SkipReason | 'no-view-volumes' | 'no-new-containers';

export interface EphemeralMutation {
  outcome: 'mutated' | 'conflict' | 'skipped' | 'invalid';
  reason?: EphemeralSkipReason | 'invalid-pod';
  /** For the audit log (the pod's own status annotation cannot be changed through this subresource). */
  status: string;
  /** The ephemeral container list to store (a copy; the input is never modified). */
  containers: JsonObject[];
}

function isListOfObjects(value: Json | undefined): value is JsonObject[] {
  return Array.isArray(value) && value.every(isJsonObject);
}

/**
 * The pod's volumes that serve the plan's view files, found by node path (so volumes named by an
 * earlier webhook, or suffixed because a name was taken, are found too), in the plan's order.
 */
export function viewVolumesOf(pod: JsonObject, plan: InjectionPlan): ResolvedMount[] {
  const spec = isJsonObject(pod.spec) ? pod.spec : {};
  const volumes = isListOfObjects(spec.volumes) ? spec.volumes : [];
  return plan.mounts.flatMap((mount) => {
    const volume = volumes.find((v) => isJsonObject(v.hostPath) && v.hostPath.path === mount.hostPath);
    return volume && typeof volume.name === 'string'
      ? [{ mount, name: volume.name, existing: true, used: false }]
      : [];
  });
}

/**
 * Mounts the pod's view volumes into the ephemeral containers of `requested` that are not in
 * `previous` (containers already added cannot change). `pod` is the stored pod: its annotations
 * decide selection as at creation, its volumes what can be mounted.
 */
export function mountViewIntoEphemeralContainers(
  pod: JsonObject,
  requested: Json | undefined,
  previous: Json | undefined,
  plan: InjectionPlan,
  ctx: SelectionContext,
  /** False for API servers that refuse a securityContext on ephemeral containers (1.20 and older). */
  securityContextAllowed = true,
): EphemeralMutation {
  if (!isListOfObjects(requested) || requested.some((c) => !isListOfObjects(c.volumeMounts ?? []))) {
    return { outcome: 'invalid', reason: 'invalid-pod', status: 'invalid: ephemeralContainers', containers: [] };
  }
  const containers = structuredClone(requested);
  const skip = (reason: EphemeralSkipReason, message: string): EphemeralMutation => ({
    outcome: 'skipped',
    reason,
    status: `skipped: ${message}`,
    containers,
  });
  const selection = selectPod(pod, ctx);
  if (!selection.inject) return skip(selection.reason, selection.message);
  const volumes = viewVolumesOf(pod, plan);
  if (volumes.length === 0) return skip('no-view-volumes', 'the pod has no lxcfs-ts view volumes');
  const before = new Set((isListOfObjects(previous) ? previous : []).map((c) => c.name));
  const added = containers.filter((c) => !before.has(c.name));
  if (added.length === 0) return skip('no-new-containers', 'no new ephemeral container');

  const conflicts: MountConflict[] = [];
  for (const container of added) {
    const mounts = viewMountsFor(container, volumes, conflicts);
    if (mounts.length > 0) container.volumeMounts = [...((container.volumeMounts ?? []) as JsonObject[]), ...mounts];
  }
  const paths = [...new Set(conflicts.map((c) => c.mountPath))].sort();
  let status = paths.length > 0 ? `conflict: ${paths.join(',')}` : 'mutated';
  const sysinfo = sysinfoForDebugContainers(pod, added, plan, conflicts, securityContextAllowed);
  if (sysinfo) status += `; sysinfo ${sysinfo}`;
  return { outcome: paths.length > 0 ? 'conflict' : 'mutated', status, containers };
}

/** True when one of the pod's own containers runs with the syscall view's profile. */
function podHasSysinfo(pod: JsonObject, profile: string): boolean {
  const spec = isJsonObject(pod.spec) ? pod.spec : {};
  const own = [spec.containers, spec.initContainers].flatMap((list) => (isListOfObjects(list) ? list : []));
  return own.some((c) => {
    const seccomp = isJsonObject(c.securityContext) ? c.securityContext.seccompProfile : undefined;
    return isJsonObject(seccomp) && seccomp.type === 'Localhost' && seccomp.localhostProfile === profile;
  });
}

/**
 * The syscall view follows the files: where the pod's containers have its seccomp profile, the new
 * debug containers get it too, by the same rules (not over another profile, not when privileged,
 * not without the file view). Returns the outcome for the status, or '' when it does not apply.
 */
function sysinfoForDebugContainers(
  pod: JsonObject,
  added: JsonObject[],
  plan: InjectionPlan,
  conflicts: readonly MountConflict[],
  securityContextAllowed: boolean,
): string {
  if (plan.sysinfoProfile === null || !podHasSysinfo(pod, plan.sysinfoProfile)) return '';
  if (!securityContextAllowed) {
    // Setting it there would get the whole update refused: the debug container gets the files only.
    return `skipped: ${added.map((c) => String(c.name ?? '')).join(', ')} (ephemeral containers take no ` +
      'securityContext in this request shape, from API servers before 1.22)';
  }
  const withoutView = new Set(conflicts.map((c) => c.container));
  return sysinfoStatus(applySysinfoProfile(pod, added, plan.sysinfoProfile, withoutView));
}
