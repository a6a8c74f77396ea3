/**
 * helm for the chart tests: the binary scripts/install-helm caches (fetched on first use), and
 * renders of charts/lxcfs-ts with given values, typed like the kustomize renders.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubeObject, parseObjects } from './kustomize.js';
import { repoRoot } from './paths.js';

export const chartDir = `${repoRoot}charts/lxcfs-ts`;
export const releaseName = 'lxcfs-ts';

let binary: string | undefined;

/**
 * helm's private home: no repositories, plugins or settings of the machine's user leak in, and the
 * Kubernetes client's discovery cache ($HOME/.kube/cache) goes there, never into the working
 * directory. Removed when the test process exits.
 */
const home = join(tmpdir(), `lxcfs-ts-helm-${process.pid}`);
process.once('exit', () => rmSync(home, { recursive: true, force: true }));

/** The path of helm; scripts/install-helm fetches it the first time (a no-op when cached). */
export function helmBinary(): string {
  if (binary) return binary;
  const r = spawnSync(`${repoRoot}scripts/install-helm`, [], { encoding: 'utf8', timeout: 5 * 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`scripts/install-helm failed:\n${r.stderr}`);
  binary = r.stdout.trim().split('\n').at(-1)!;
  return binary;
}

export interface HelmResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs helm; with a kubeconfig against that cluster, else with no cluster at all. */
export function runHelm(args: string[], kubeconfig?: string): HelmResult {
  const r = spawnSync(helmBinary(), args, {
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      HELM_CACHE_HOME: join(home, 'cache'),
      HELM_CONFIG_HOME: join(home, 'config'),
      HELM_DATA_HOME: join(home, 'data'),
      KUBECONFIG: kubeconfig ?? join(home, 'no-cluster.kubeconfig'),
    },
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Runs helm and returns its output, or throws with its error. */
export function helm(args: string[], kubeconfig?: string): string {
  const r = runHelm(args, kubeconfig);
  if (r.status !== 0) throw new Error(`helm ${args.join(' ')} failed:\n${r.stderr}`);
  return r.stdout;
}

/** Runs `helm ARGS -f VALUES` with the values written to a temporary file. */
export function withValuesFile<T>(values: object, use: (args: string[]) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-helm-values-'));
  try {
    const file = join(dir, 'values.json');
    writeFileSync(file, JSON.stringify(values));
    return use(['-f', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `helm template` of the chart as release lxcfs-ts in NAMESPACE: the objects, or helm's result on failure. */
export function templateResult(values: object = {}, namespace = 'lxcfs-ts'): HelmResult {
  return withValuesFile(values, (valuesArgs) =>
    runHelm(['template', releaseName, chartDir, '--namespace', namespace, ...valuesArgs]));
}

export function template(values: object = {}, namespace = 'lxcfs-ts'): KubeObject[] {
  const r = templateResult(values, namespace);
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  return parseObjects(r.stdout);
}
