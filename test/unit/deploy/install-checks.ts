/**
 * Checks every rendered install must pass (default and overlays): the agent, the webhook and the
 * webhook's configuration agree with each other, and nothing repeats a known pitfall of earlier
 * LXCFS deployments (the FUSE mountpoint itself as a volume, wildcard RBAC, a caBundle in the
 * manifests, a memory limit on the agent...).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { injectionFlags } from '../../../src/webhook/cli-options.js';
import {
  allContainers,
  type Container,
  envOf,
  find,
  type KubeObject,
  ofKind,
  type PodSpec,
  podLabelsOf,
  podSpecOf,
} from '../../helpers/kustomize.js';
import { repoRoot } from '../../helpers/paths.js';

/** The namespace of the default install (a Helm release may be installed in another). */
export const namespace = 'lxcfs-ts';
const cli = `${repoRoot}dist/src/cli.js`;

export interface Agent {
  daemonSet: KubeObject;
  spec: PodSpec;
  container: Container;
  mountpoint: string;
}

export function agentOf(objects: KubeObject[]): Agent {
  const daemonSet = find(objects, 'DaemonSet', 'lxcfs-ts-agent');
  const spec = podSpecOf(daemonSet);
  const container = spec.containers.find((c) => c.name === 'agent')!;
  assert.ok(container, 'the DaemonSet has an agent container');
  const mountpoint = container.args!.at(-1)!;
  assert.ok(mountpoint.startsWith('/'), `the agent's last argument is its mountpoint (${mountpoint})`);
  return { daemonSet, spec, container, mountpoint };
}

export interface Webhook {
  deployment: KubeObject;
  spec: PodSpec;
  container: Container;
  /** The arguments after the `webhook` sub-command. */
  flags: string[];
}

export function webhookOf(objects: KubeObject[]): Webhook {
  const deployment = find(objects, 'Deployment', 'lxcfs-ts-webhook');
  const spec = podSpecOf(deployment);
  const container = spec.containers.find((c) => c.name === 'webhook')!;
  assert.ok(container, 'the Deployment has a webhook container');
  assert.equal(container.args?.[0], 'webhook');
  return { deployment, spec, container, flags: container.args!.slice(1) };
}

/** The value of `--name=value` or `--name value` in a list of arguments. */
export function flagValue(args: string[], name: string): string | undefined {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === name) return args[i + 1];
    if (args[i]!.startsWith(`${name}=`)) return args[i]!.slice(name.length + 1);
  }
  return undefined;
}

/** The namespace the install puts the webhook in. */
function namespaceOf(webhook: Webhook): string {
  const ns = webhook.deployment.metadata.namespace;
  assert.ok(ns, 'the webhook Deployment names its namespace');
  return ns;
}

/** `lxcfs-ts ARGS` as the webhook's pod runs it: POD_NAMESPACE is the pod's namespace. */
function run(args: string[], podNamespace: string): string {
  const r = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { ...process.env, POD_NAMESPACE: podNamespace },
  });
  assert.equal(r.status, 0, `lxcfs-ts ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** What `lxcfs-ts webhook --print-config` prints with the Deployment's flags, in its namespace. */
export function printedConfiguration(webhook: Webhook): unknown {
  return JSON.parse(run(['webhook', ...webhook.flags, '--print-config'], namespaceOf(webhook)));
}

interface InjectedPod {
  spec: {
    volumes: { name: string; hostPath?: { path: string; type?: string } }[];
    containers: { volumeMounts: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[] }[];
  };
}

/** A plain pod mutated exactly as the Deployment's webhook would (`lxcfs-ts inject` with its injection flags). */
export function injectedPod(webhook: Webhook): InjectedPod {
  const names = Object.keys(injectionFlags).map((f) => `--${f}`);
  const flags = webhook.flags.filter((arg) => names.some((n) => arg === n || arg.startsWith(`${n}=`)));
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-deploy-'));
  try {
    const file = join(dir, 'pod.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Pod\nmetadata: {name: app}\nspec:\n  containers: [{name: app, image: busybox}]\n');
    return parse(run(['inject', '-f', file, ...flags], namespaceOf(webhook))) as InjectedPod;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function hostPathsOf(spec: PodSpec): string[] {
  return (spec.volumes ?? []).flatMap((v) => (v.hostPath ? [v.hostPath.path] : []));
}

function volumeMountFor(container: Container, volume: string) {
  return container.volumeMounts?.find((m) => m.name === volume);
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export interface InstallCheckOptions {
  /**
   * The installer creates the namespace, not the install (`helm install --create-namespace`): the
   * rendered objects hold no Namespace. By default an install carries its own.
   */
  namespaceFromInstaller?: boolean;
}

/** Every check that holds for every install. */
export function checkInstall(objects: KubeObject[], options: InstallCheckOptions = {}): void {
  const webhook = webhookOf(objects);
  const ns = namespaceOf(webhook);
  checkNamespace(objects, ns, options);
  checkRbac(objects, ns);
  const agent = agentOf(objects);
  checkAgent(objects, agent);
  checkWebhook(objects, webhook);
  checkConfiguration(objects, webhook);
  checkAgentAndWebhookAgree(agent, webhook);
}

function checkNamespace(objects: KubeObject[], namespace: string, options: InstallCheckOptions): void {
  const namespaces = ofKind(objects, 'Namespace');
  if (options.namespaceFromInstaller) {
    assert.deepEqual(namespaces, [], 'no Namespace: the installer creates it');
  } else {
    assert.deepEqual(namespaces.map((n) => n.metadata.name), [namespace]);
    assert.equal(
      namespaces[0]!.metadata.labels?.['pod-security.kubernetes.io/enforce'],
      'privileged',
      'the namespace admits the privileged agent under Pod Security admission',
    );
  }
  const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
  for (const o of objects) {
    if (clusterScoped.has(o.kind)) assert.equal(o.metadata.namespace, undefined, `${o.kind} ${o.metadata.name}`);
    else assert.equal(o.metadata.namespace, namespace, `${o.kind} ${o.metadata.name} is in ${namespace}`);
  }
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  resourceNames?: string[];
  verbs: string[];
}

function checkRbac(objects: KubeObject[], namespace: string): void {
  for (const role of [...ofKind(objects, 'Role'), ...ofKind(objects, 'ClusterRole')]) {
    for (const rule of (role as unknown as { rules: Rule[] }).rules) {
      for (const field of [rule.apiGroups, rule.resources, rule.verbs, rule.resourceNames ?? []]) {
        assert.ok(!field.some((v) => v.includes('*')), `${role.kind} ${role.metadata.name}: no wildcards (${JSON.stringify(rule)})`);
      }
      assert.ok(
        !rule.verbs.some((v) => ['list', 'watch', 'delete', 'deletecollection', 'patch', 'escalate', 'bind', 'impersonate'].includes(v)),
        `${role.kind} ${role.metadata.name}: only get, create and update (${rule.verbs.join(', ')})`,
      );
    }
  }
  for (const binding of [...ofKind(objects, 'RoleBinding'), ...ofKind(objects, 'ClusterRoleBinding')]) {
    const { subjects, roleRef } = binding as unknown as {
      subjects: { kind: string; name: string; namespace: string }[];
      roleRef: { kind: string; name: string };
    };
    assert.deepEqual(subjects, [{ kind: 'ServiceAccount', name: 'lxcfs-ts-webhook', namespace }], `${binding.kind} binds only the webhook`);
    find(objects, roleRef.kind, roleRef.name);
  }
  const agentAccount = find(objects, 'ServiceAccount', 'lxcfs-ts-agent') as unknown as { automountServiceAccountToken?: boolean };
  assert.equal(agentAccount.automountServiceAccountToken, false, 'the agent has no API token');
}

function checkAgent(objects: KubeObject[], agent: Agent): void {
  const { spec, container, mountpoint } = agent;
  assert.equal(spec.hostPID, true, 'hostPID: callers are identified by host pids');
  assert.equal(spec.priorityClassName, 'system-node-critical');
  assert.equal(spec.serviceAccountName, 'lxcfs-ts-agent');
  assert.equal(spec.automountServiceAccountToken, false);
  assert.ok(
    spec.tolerations?.some((t) => t.operator === 'Exists' && t.key === undefined && t.effect === undefined),
    'tolerates every taint',
  );
  for (const c of allContainers(spec)) {
    assert.equal(c.securityContext?.privileged, true, `${c.name} is privileged`);
    assert.equal(c.resources?.limits, undefined, `${c.name} has no limits (an OOM kill would take the view from every pod)`);
  }
  assert.ok(container.args!.includes('-l') && container.args!.includes('--enable-cfs'), 'args -l --enable-cfs');
  assert.equal(envOf(container, 'LXCFS_TS_CGROUPNS'), '/proc/1/ns/cgroup', 'joins the host\'s cgroup namespace');
  const strategy = (agent.daemonSet as unknown as { spec: { updateStrategy?: { type: string } } }).spec.updateStrategy;
  assert.ok(strategy && ['RollingUpdate', 'OnDelete'].includes(strategy.type), 'an explicit update strategy');
  // With surge the old agent hands over and must then wait for its SIGTERM: exiting, it would be
  // restarted by the kubelet and take the view back.
  const surge = (strategy as { rollingUpdate?: { maxSurge?: number } }).rollingUpdate?.maxSurge ?? 0;
  if (surge > 0) assert.equal(flagValue(container.args!, '--after-handover'), 'wait', 'a surge rollout needs --after-handover wait');

  // The mountpoint's parent, never the mountpoint, is the volume; Bidirectional at the same path.
  const parent = dirname(mountpoint);
  for (const path of hostPathsOf(spec)) {
    assert.ok(path !== mountpoint && !path.startsWith(`${mountpoint}/`), `hostPath ${path} is not the FUSE mountpoint or below it`);
  }
  const parentVolume = spec.volumes!.find((v) => v.hostPath && (parent === v.hostPath.path || parent.startsWith(`${v.hostPath.path}/`)));
  assert.ok(parentVolume, `a hostPath volume holds ${parent}`);
  for (const c of allContainers(spec)) {
    const m = volumeMountFor(c, parentVolume.name);
    assert.ok(m, `${c.name} mounts ${parentVolume.name}`);
    assert.equal(m.mountPath, parentVolume.hostPath!.path, `${c.name} mounts it at the host's path`);
    assert.equal(m.mountPropagation, 'Bidirectional', `${c.name}: the mount made inside appears on the host`);
  }
  const cgroup = spec.volumes!.find((v) => v.hostPath?.path === '/sys/fs/cgroup');
  assert.ok(cgroup, 'the host\'s cgroups');
  assert.equal(volumeMountFor(container, cgroup.name)?.mountPath, '/sys/fs/cgroup');

  // Readiness: a view file read end to end through the mount.
  assert.deepEqual(container.readinessProbe?.exec?.command, ['cat', `${mountpoint}/proc/meminfo`]);

  // Start-up cleanup of a dead mount on that mountpoint.
  const init = spec.initContainers?.find((c) => c.name === 'clean-mountpoint');
  assert.ok(init, 'an init container cleans the mountpoint');
  assert.equal(envOf(init, 'VIEW_DIR'), mountpoint);
  const script = init.command!.at(-1)!;
  assert.match(script, /umount -l "\$view"/);
  const syntax = spawnSync('sh', ['-n', '-c', script], { encoding: 'utf8' });
  assert.equal(syntax.status, 0, `the cleanup script parses: ${syntax.stderr}`);
  for (const c of allContainers(spec)) assert.equal(c.image, allContainers(spec)[0]!.image, 'one image');
  void objects;
}

function checkWebhook(objects: KubeObject[], webhook: Webhook): void {
  const { deployment, spec, container, flags } = webhook;
  const labels = podLabelsOf(deployment);
  const replicas = (deployment as unknown as { spec: { replicas: number } }).spec.replicas;
  assert.ok(replicas >= 2, `at least two replicas (${replicas}): one may be evicted or rolled at a time`);
  type Term = { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } };
  type AntiAffinity = { preferredDuringSchedulingIgnoredDuringExecution?: { podAffinityTerm: Term }[] };
  const anti = (spec.affinity as { podAntiAffinity?: AntiAffinity } | undefined)?.podAntiAffinity;
  const term = anti?.preferredDuringSchedulingIgnoredDuringExecution?.[0]?.podAffinityTerm;
  assert.equal(term?.topologyKey, 'kubernetes.io/hostname', 'replicas spread over nodes');
  assert.ok(matches(term.labelSelector.matchLabels, labels), 'the anti-affinity selects its own pods');

  assert.equal(spec.securityContext?.runAsNonRoot, true);
  assert.equal(container.securityContext?.privileged, undefined);
  assert.equal(container.securityContext?.readOnlyRootFilesystem, true);
  assert.equal(container.securityContext?.allowPrivilegeEscalation, false);
  assert.equal(spec.hostPID, undefined);
  assert.equal(spec.hostNetwork, undefined);
  assert.ok(!(spec.volumes ?? []).some((v) => v.hostPath), 'no hostPath');
  assert.equal(envOf(container, 'POD_NAMESPACE'), undefined);
  assert.ok(container.env?.some((e) => e.name === 'POD_NAMESPACE' && e.valueFrom), 'its namespace from the downward API');
  assert.ok(!['full'].includes(flagValue(flags, '--manage-config') ?? ''), 'in a cluster only the caBundle is written');

  // Probes on the plain-HTTP health port, which --health-listen opens.
  const healthPort = Number(flagValue(flags, '--health-listen')!.split(':').at(-1));
  const portNumber = (p: string | number) => (typeof p === 'number' ? p : container.ports!.find((x) => x.name === p)!.containerPort);
  assert.equal(container.readinessProbe?.httpGet?.path, '/readyz');
  assert.equal(container.livenessProbe?.httpGet?.path, '/healthz');
  assert.equal(portNumber(container.readinessProbe!.httpGet!.port), healthPort);
  assert.equal(portNumber(container.livenessProbe!.httpGet!.port), healthPort);

  const pdbs = ofKind(objects, 'PodDisruptionBudget');
  assert.equal(pdbs.length, 1);
  const pdb = pdbs[0] as unknown as { spec: { minAvailable: number; selector: { matchLabels: Record<string, string> } } };
  assert.ok(matches(pdb.spec.selector.matchLabels, labels), 'the PDB selects the webhook');
  assert.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < replicas, 'one replica may be evicted, never both');

  const service = find(objects, 'Service', 'lxcfs-ts-webhook') as unknown as { spec: { selector: Record<string, string>; ports: { port: number; targetPort: string | number }[] } };
  assert.ok(matches(service.spec.selector, labels), 'the Service selects the webhook');
  const listenPort = Number((flagValue(flags, '--listen') ?? '0.0.0.0:8443').split(':').at(-1));
  assert.equal(portNumber(service.spec.ports[0]!.targetPort), listenPort, 'the Service reaches the HTTPS port');
}

interface WebhookEntry {
  name: string;
  admissionReviewVersions: string[];
  sideEffects: string;
  failurePolicy: string;
  timeoutSeconds: number;
  reinvocationPolicy: string;
  clientConfig: { caBundle?: string; url?: string; service: { name: string; namespace: string; port: number } };
  namespaceSelector: { matchExpressions: { key: string; operator: string; values?: string[] }[] };
  rules: { operations: string[]; resources: string[] }[];
}

function checkConfiguration(objects: KubeObject[], webhook: Webhook): void {
  const configuration = find(objects, 'MutatingWebhookConfiguration', 'lxcfs-ts');
  assert.equal(configuration.apiVersion, 'admissionregistration.k8s.io/v1');
  const namespace = namespaceOf(webhook);
  // Annotations (cert-manager's) and labels beyond the printed ones (an installer's) may be added.
  const printed = printedConfiguration(webhook) as { metadata: { name: string; labels: Record<string, string> } };
  const { annotations: _annotations, labels, ...metadata } = configuration.metadata;
  for (const [key, value] of Object.entries(printed.metadata.labels)) assert.equal(labels?.[key], value, `label ${key}`);
  assert.deepEqual(
    { ...configuration, metadata: { ...metadata, labels: printed.metadata.labels } },
    printed,
    'the manifest is what `lxcfs-ts webhook --print-config` prints for these flags',
  );
  const service = find(objects, 'Service', 'lxcfs-ts-webhook') as unknown as { spec: { ports: { port: number }[] } };
  const entries = (configuration as unknown as { webhooks: WebhookEntry[] }).webhooks;
  // With the syscall view offered, the two label modes get a second entry each (labelled for it, or not).
  const perMode = webhook.flags.includes('--sysinfo') ? 2 : 1;
  assert.equal(entries.length, 2 * perMode + 2);
  for (const w of entries) {
    assert.deepEqual(w.admissionReviewVersions, ['v1'], w.name);
    assert.equal(w.sideEffects, 'None', w.name);
    assert.equal(w.failurePolicy, 'Ignore', w.name);
    assert.ok(w.timeoutSeconds > 0 && w.timeoutSeconds <= 10, `${w.name}: timeout ${w.timeoutSeconds} s`);
    assert.equal(w.reinvocationPolicy, 'IfNeeded', w.name);
    assert.equal(w.clientConfig.caBundle, undefined, `${w.name}: no caBundle in the manifests`);
    assert.deepEqual(
      { name: w.clientConfig.service.name, namespace: w.clientConfig.service.namespace, port: w.clientConfig.service.port },
      { name: 'lxcfs-ts-webhook', namespace, port: service.spec.ports[0]!.port },
      `${w.name} calls the Service`,
    );
    assert.deepEqual(
      w.rules.map((r) => [r.operations, r.resources]),
      [[['CREATE'], ['pods']], [['UPDATE'], ['pods/ephemeralcontainers']]],
      `${w.name}: pods being created, ephemeral containers being added`,
    );
    const excluded = w.namespaceSelector.matchExpressions.find((e) => e.key === 'kubernetes.io/metadata.name');
    assert.deepEqual(excluded?.operator, 'NotIn');
    assert.ok(excluded.values!.includes('kube-system') && excluded.values!.includes(namespace), `${w.name} excludes kube-system and ${namespace}`);
  }
  const selects = (key: string, value: string) =>
    entries.filter((w) => w.namespaceSelector.matchExpressions.some((e) => e.key === key && e.operator === 'In' && e.values?.includes(value)));
  assert.equal(selects('lxcfs-ts.io/inject', 'enabled').length, perMode);
  assert.equal(selects('lxcfs-ts.io/inject', 'optin').length, perMode);
  assert.equal(selects('lxcfs-ts.io/sysinfo', 'enabled').length, 2 * (perMode - 1));
  assert.equal(selects('lxcfs-admission-webhook', 'enabled').length, 1);
  assert.equal(selects('mount-lxcfs', 'enabled').length, 1);
}

function checkAgentAndWebhookAgree(agent: Agent, webhook: Webhook): void {
  const pod = injectedPod(webhook);
  const mounts = pod.spec.containers[0]!.volumeMounts;
  const volumes = new Map(pod.spec.volumes.map((v) => [v.name, v]));
  const meminfo = mounts.find((m) => m.mountPath === '/proc/meminfo');
  assert.ok(meminfo, 'pods get /proc/meminfo');
  assert.deepEqual(volumes.get(meminfo.name)?.hostPath, { path: `${agent.mountpoint}/proc/meminfo`, type: 'File' }, 'from the agent\'s mountpoint');
  const parent = dirname(agent.mountpoint);
  const parentMount = mounts.find((m) => m.mountPath === parent);
  if (!webhook.flags.includes('--no-parent-mount')) {
    assert.ok(parentMount, `pods get the view's parent ${parent}`);
    assert.deepEqual(volumes.get(parentMount.name)?.hostPath, { path: parent, type: 'Directory' });
    assert.equal(parentMount.mountPropagation, 'HostToContainer', 'a restarted agent\'s mount reaches running pods');
    assert.equal(parentMount.readOnly, true);
    const agentParent = agent.spec.volumes!.find((v) => v.hostPath?.path === parent);
    assert.ok(agentParent, 'the agent\'s Bidirectional volume is exactly what pods get');
  } else {
    assert.equal(parentMount, undefined);
  }
}
