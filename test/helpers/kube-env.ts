/**
 * The real API server for e2e tests: reuses one that is already up (scripts/kube-env status), or
 * brings one up and tears it down afterwards. Everything runs on loopback.
 */
import { spawnSync } from 'node:child_process';
import { repoRoot } from './paths.js';

export interface KubeEnv {
  kubeconfig: string;
  /** Stops the API server if this process started it. */
  release(): void;
}

export interface KubeEnvOptions {
  /** Feature gates the API server must run with, e.g. `EphemeralContainers=true`. */
  featureGates?: string[];
}

function script(args: string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(`${repoRoot}scripts/kube-env`, args, { encoding: 'utf8', timeout: timeoutMs, env });
}

export function acquireKubeEnv(options: KubeEnvOptions = {}): KubeEnv {
  const gates = (options.featureGates ?? []).join(',');
  const startedHere = script(['status'], 10_000).status !== 0;
  if (startedHere || gates) {
    // A cold first run builds kube-apiserver from source (a few minutes). On a running one, `up`
    // checks that it has the feature gates asked for.
    const env = gates ? { ...process.env, KUBE_ENV_FEATURE_GATES: gates } : process.env;
    const up = script(['up'], 20 * 60_000, env);
    if (up.status !== 0) throw new Error(`scripts/kube-env up failed:\n${up.stderr}`);
  }
  const env = script(['env'], 10_000);
  const match = /export KUBECONFIG=(\S+)/.exec(env.stdout);
  if (!match) throw new Error(`scripts/kube-env env printed no KUBECONFIG:\n${env.stdout}${env.stderr}`);
  return {
    kubeconfig: match[1]!,
    release() {
      if (startedHere) script(['down'], 60_000);
    },
  };
}

export interface Kubectl {
  (args: string[], input?: string): string;
  json<T = Record<string, unknown>>(args: string[], input?: string): T;
  /** Runs and returns status and output without throwing. */
  try(args: string[], input?: string): { status: number; stdout: string; stderr: string };
}

export function kubectlFor(kubeconfig: string): Kubectl {
  const run = (args: string[], input?: string) => {
    const r = spawnSync('kubectl', args, {
      encoding: 'utf8',
      input,
      timeout: 60_000,
      env: { ...process.env, KUBECONFIG: kubeconfig },
    });
    return {
      status: r.status ?? -1,
      stdout: r.stdout ?? '',
      stderr: (r.stderr ?? '').replace(/^WARNING: version difference.*\n/m, ''),
    };
  };
  const k = ((args: string[], input?: string) => {
    const r = run(args, input);
    if (r.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed: ${r.stderr}`);
    return r.stdout;
  }) as Kubectl;
  k.json = <T>(args: string[], input?: string) => JSON.parse(k([...args, '-o', 'json'], input)) as T;
  k.try = run;
  return k;
}

/**
 * DaemonSet surge (`maxSurge`): beta and on by default from Kubernetes 1.22, GA in 1.25. The API
 * servers built here are 1.20, which do not know the field and refuse `maxUnavailable: 0`: the
 * install's surge rollout is then swapped for the one documented for such clusters.
 */
export function hasDaemonSetSurge(kubectl: Kubectl): boolean {
  const version = JSON.parse(kubectl(['version', '-o', 'json'])) as { serverVersion: { major: string; minor: string } };
  return Number(version.serverVersion.major) > 1 || Number.parseInt(version.serverVersion.minor, 10) >= 22;
}

/** deploy/components/rollout-without-surge's strategy. */
export const rolloutWithoutSurge = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } };

/** The chart's values for the same (its README, agent.updateStrategy). */
export const helmArgsWithoutSurge = [
  '--set', 'agent.updateStrategy.rollingUpdate.maxSurge=0',
  '--set', 'agent.updateStrategy.rollingUpdate.maxUnavailable=1',
];
