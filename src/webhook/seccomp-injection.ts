/**
 * The syscall view for pods (opt-in): injected containers get the agent's Localhost seccomp
 * profile, which hands sysinfo(2) to the agent (busybox free/uptime, getloadavg(), sysconf's page
 * counts) and is otherwise RuntimeDefault.
 *
 * The profile replaces a container's seccomp profile, so it goes only where it can take the place
 * of RuntimeDefault or of nothing (the runtime's default): never over Unconfined, another Localhost
 * profile or a profile set by the legacy annotations, never on privileged containers (which run
 * without seccomp), never on containers that add capabilities for which RuntimeDefault would allow
 * more system calls, and never where the container did not get the file view (busybox's `free`
 * mixes sysinfo(2) with /proc/meminfo; one without the other gives nonsense).
 */
import { capabilitiesWithExtraSyscalls } from '../syscall/seccomp-profile.js';
import { isJsonObject, type JsonObject } from './json-patch.js';

/** Pod annotation and namespace label: `enabled` asks for the syscall view, `disabled` refuses it. */
export const sysinfoKey = 'lxcfs-ts.io/sysinfo';
/** Appended to a mutate path for namespaces labelled for the syscall view (the review does not carry labels). */
export const sysinfoPathSuffix = '/sysinfo';
/** Pod annotation the webhook writes: which containers got the profile, and why others did not. */
export const sysinfoStatusAnnotation = 'lxcfs-ts.io/sysinfo-status';

/** The legacy seccomp annotations (before the securityContext field); the API server keeps them in step with it. */
const legacyPodAnnotation = 'seccomp.security.alpha.kubernetes.io/pod';
const legacyContainerAnnotation = 'container.seccomp.security.alpha.kubernetes.io/';

export type SysinfoRequest = 'yes' | 'no' | { invalid: string };

function annotationsOf(pod: JsonObject): JsonObject {
  const metadata = pod.metadata;
  return isJsonObject(metadata) && isJsonObject(metadata.annotations) ? metadata.annotations : {};
}

/** Whether the pod asks for the syscall view: its annotation wins over its namespace's label. */
export function sysinfoRequested(pod: JsonObject, namespaceEnabled: boolean): SysinfoRequest {
  const value = annotationsOf(pod)[sysinfoKey];
  if (value === undefined) return namespaceEnabled ? 'yes' : 'no';
  const choice = typeof value === 'string' ? value.trim().toLowerCase() : '';
  if (choice === 'enabled' || choice === 'true') return 'yes';
  if (choice === 'disabled' || choice === 'false') return 'no';
  return { invalid: `annotation ${sysinfoKey} must be "enabled" or "disabled"` };
}

/** The seccomp profile a pod-level setting gives its containers, as `Type` or `Type name`. */
function podProfile(pod: JsonObject): string | null {
  const spec = pod.spec as JsonObject;
  const context = spec.securityContext;
  const field = isJsonObject(context) && isJsonObject(context.seccompProfile) ? context.seccompProfile : null;
  if (field) return describe(field);
  const legacy = annotationsOf(pod)[legacyPodAnnotation];
  return typeof legacy === 'string' ? legacyType(legacy) : null;
}

function describe(profile: JsonObject): string {
  const type = typeof profile.type === 'string' ? profile.type : 'unknown';
  return type === 'Localhost' ? `Localhost ${String(profile.localhostProfile ?? '')}` : type;
}

function legacyType(value: string): string {
  if (value === 'runtime/default' || value === 'docker/default') return 'RuntimeDefault';
  if (value === 'unconfined') return 'Unconfined';
  return value.startsWith('localhost/') ? `Localhost ${value.slice('localhost/'.length)}` : value;
}

/** Why a container cannot get the profile, or null when it can (or already has it). */
function reasonToSkip(pod: JsonObject, container: JsonObject, ours: string): string | null {
  const context = isJsonObject(container.securityContext) ? container.securityContext : {};
  if (context.privileged === true) return 'privileged, so it runs without seccomp';
  const caps = isJsonObject(context.capabilities) && Array.isArray(context.capabilities.add)
    ? context.capabilities.add.map((c) => String(c).toUpperCase().replace(/^CAP_/, ''))
    : [];
  const widening = caps.filter((c) => c === 'ALL' || (capabilitiesWithExtraSyscalls as readonly string[]).includes(c));
  if (widening.length > 0) {
    return `adds ${widening.join(', ')}, for which RuntimeDefault allows more system calls`;
  }
  const own = isJsonObject(context.seccompProfile) ? describe(context.seccompProfile) : null;
  if (own === ours) return null;
  if (own !== null && own !== 'RuntimeDefault') return `has its own seccomp profile ${own}`;
  const legacy = annotationsOf(pod)[`${legacyContainerAnnotation}${String(container.name ?? '')}`];
  if (typeof legacy === 'string') return `has a seccomp profile set by annotation (${legacyType(legacy)})`;
  const inherited = own === null ? podProfile(pod) : null;
  if (inherited !== null && inherited !== 'RuntimeDefault' && inherited !== ours) {
    return `runs with the pod's seccomp profile ${inherited}`;
  }
  return null;
}

export interface SysinfoOutcome {
  enabled: string[];
  skipped: { container: string; reason: string }[];
}

/**
 * Sets the Localhost profile on each container that can take it (the pod is a copy the caller
 * owns). `withoutView` names containers whose view mounts conflicted.
 */
export function applySysinfoProfile(
  pod: JsonObject,
  containers: readonly JsonObject[],
  profileName: string,
  withoutView: ReadonlySet<string>,
): SysinfoOutcome {
  const ours = `Localhost ${profileName}`;
  const outcome: SysinfoOutcome = { enabled: [], skipped: [] };
  for (const container of containers) {
    const name = String(container.name ?? '');
    const reason = withoutView.has(name)
      ? 'its view mounts conflict with its own, so sysinfo(2) and /proc/meminfo would disagree'
      : reasonToSkip(pod, container, ours);
    if (reason !== null) {
      outcome.skipped.push({ container: name, reason });
      continue;
    }
    const context = isJsonObject(container.securityContext) ? container.securityContext : {};
    container.securityContext = { ...context, seccompProfile: { type: 'Localhost', localhostProfile: profileName } };
    outcome.enabled.push(name);
  }
  return outcome;
}

/** "enabled: app, sidecar; skipped: debug (privileged (runs without seccomp))". */
export function sysinfoStatus(outcome: SysinfoOutcome): string {
  const parts: string[] = [];
  if (outcome.enabled.length > 0) parts.push(`enabled: ${outcome.enabled.join(', ')}`);
  if (outcome.skipped.length > 0) {
    parts.push(`skipped: ${outcome.skipped.map((s) => `${s.container} (${s.reason})`).join(', ')}`);
  }
  return parts.join('; ');
}
