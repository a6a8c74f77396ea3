/**
 * Renders the kustomize trees under deploy/ with `kubectl kustomize` (what `kubectl apply -k`
 * applies) and gives typed access to the objects, for render tests and the e2e dry-run.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from './paths.js';

/** A rendered Kubernetes object; fields are read with the helpers below. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export const deployDir = `${repoRoot}deploy`;

/** The default install and every overlay, as paths relative to the repository. */
export const installs = ['deploy', 'deploy/overlays/cert-manager', 'deploy/overlays/legacy-lxcfs', 'deploy/overlays/local-node'];

export function kustomize(dir: string): string {
  const path = dir.startsWith('/') ? dir : `${repoRoot}${dir}`;
  const r = spawnSync('kubectl', ['kustomize', path], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw new Error(`cannot run kubectl kustomize: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${r.stderr}`);
  return r.stdout;
}

export function parseObjects(yamlText: string): KubeObject[] {
  return parseAllDocuments(yamlText).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`invalid YAML: ${doc.errors[0]!.message}`);
    return doc.toJS() as KubeObject;
  }).filter((o) => o !== null);
}

export function render(dir: string): KubeObject[] {
  return parseObjects(kustomize(dir));
}

/** Renders the base with the given components (names under deploy/components), as a user's own overlay would. */
export function renderWithComponents(...components: string[]): KubeObject[] {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-kustomize-'));
  try {
    const deploy = relative(dir, deployDir);
    writeFileSync(
      join(dir, 'kustomization.yaml'),
      `resources: [${deploy}/base]\ncomponents: [${components.map((c) => `${deploy}/components/${c}`).join(', ')}]\n`,
    );
    return render(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function find(objects: KubeObject[], kind: string, name: string): KubeObject {
  const found = objects.filter((o) => o.kind === kind && o.metadata.name === name);
  if (found.length !== 1) throw new Error(`expected one ${kind} ${name}, found ${found.length}`);
  return found[0]!;
}

export function ofKind(objects: KubeObject[], kind: string): KubeObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** Minimal typing of the pod spec fields the tests read. */
export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: string;
  command?: string[];
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  ports?: { name?: string; containerPort: number }[];
  securityContext?: Record<string, unknown>;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  volumeMounts?: { name: string; mountPath: string; mountPropagation?: string; readOnly?: boolean }[];
}

export interface Probe {
  exec?: { command: string[] };
  httpGet?: { path: string; port: string | number; scheme?: string };
  periodSeconds?: number;
  timeoutSeconds?: number;
  failureThreshold?: number;
}

export interface PodSpec {
  hostPID?: boolean;
  hostNetwork?: boolean;
  priorityClassName?: string;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  tolerations?: Record<string, unknown>[];
  initContainers?: Container[];
  containers: Container[];
  volumes?: { name: string; hostPath?: { path: string; type?: string }; secret?: { secretName: string } }[];
  affinity?: Record<string, unknown>;
  securityContext?: Record<string, unknown>;
}

export function podSpecOf(workload: KubeObject): PodSpec {
  return (workload as unknown as { spec: { template: { spec: PodSpec } } }).spec.template.spec;
}

export function podLabelsOf(workload: KubeObject): Record<string, string> {
  return (workload as unknown as { spec: { template: { metadata: { labels: Record<string, string> } } } }).spec.template
    .metadata.labels;
}

export function allContainers(spec: PodSpec): Container[] {
  return [...(spec.initContainers ?? []), ...spec.containers];
}

export function envOf(container: Container, name: string): string | undefined {
  return container.env?.find((e) => e.name === name)?.value;
}
