/**
 * Admission latency and throughput of `lxcfs-ts webhook` over TLS keep-alive on loopback, the way
 * the API server calls it, next to a bare HTTPS responder measured in the same run.
 *
 *   node dist/bench/webhook-admission.js [--rate 500] [--seconds 20] [--connections 8]
 *
 * 1. Open loop: requests are sent on a fixed schedule (`--rate` per second); each latency is taken
 *    from the moment the request was due, so a stall shows up in the percentiles instead of
 *    silently lowering the rate. The two targets take turns in `--rounds` rounds of `--seconds`
 *    each, so both see the same background load; the medians over rounds are reported.
 * 2. Closed loop: `--connections` requests in flight at all times for a few seconds: throughput.
 * The body is a pod as the API server sends it (managed fields, service account volume, two
 * containers); every webhook answer is checked to carry a patch, so real work is measured.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createCertificateAuthority, issueServingCertificate } from '../src/webhook/certificates.js';
import { freePort, startWebhook, waitReady } from '../test/helpers/webhook-process.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '7' },
    connections: { type: 'string', default: '8' },
  },
});
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const rounds = Number(values.rounds);
const connections = Number(values.connections);

function review(uid: number): string {
  const container = (name: string) => ({
    name,
    image: `registry.example/${name}:1.2.3`,
    command: ['/bin/server', '--port=8080'],
    ports: [{ containerPort: 8080, protocol: 'TCP' }],
    env: [{ name: 'MODE', value: 'production' }],
    resources: { limits: { cpu: '1', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } },
    volumeMounts: [
      {
        name: 'kube-api-access-x7k2p',
        readOnly: true,
        mountPath: '/var/run/secrets/kubernetes.io/serviceaccount',
      },
    ],
    terminationMessagePath: '/dev/termination-log',
    terminationMessagePolicy: 'File',
    imagePullPolicy: 'IfNotPresent',
  });
  return JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `bench-${uid}`,
      kind: { group: '', version: 'v1', kind: 'Pod' },
      resource: { group: '', version: 'v1', resource: 'pods' },
      requestKind: { group: '', version: 'v1', kind: 'Pod' },
      requestResource: { group: '', version: 'v1', resource: 'pods' },
      name: 'web-7d9c6b5f4-abcde',
      namespace: 'shop',
      operation: 'CREATE',
      userInfo: {
        username: 'system:serviceaccount:kube-system:replicaset-controller',
        groups: ['system:serviceaccounts'],
      },
      object: {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          generateName: 'web-7d9c6b5f4-',
          namespace: 'shop',
          creationTimestamp: null,
          labels: { app: 'web', 'pod-template-hash': '7d9c6b5f4' },
          annotations: { 'prometheus.io/scrape': 'true' },
          ownerReferences: [
            { apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7d9c6b5f4', uid: 'a1', controller: true },
          ],
          managedFields: [
            {
              manager: 'kube-controller-manager',
              operation: 'Update',
              apiVersion: 'v1',
              fieldsType: 'FieldsV1',
              fieldsV1: { 'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } } },
            },
          ],
        },
        spec: {
          volumes: [
            {
              name: 'kube-api-access-x7k2p',
              projected: { sources: [{ serviceAccountToken: { expirationSeconds: 3607, path: 'token' } }] },
            },
          ],
          containers: [container('web'), container('metrics')],
          restartPolicy: 'Always',
          terminationGracePeriodSeconds: 30,
          dnsPolicy: 'ClusterFirst',
          serviceAccountName: 'default',
          securityContext: {},
          schedulerName: 'default-scheduler',
          tolerations: [
            {
              key: 'node.kubernetes.io/not-ready',
              operator: 'Exists',
              effect: 'NoExecute',
              tolerationSeconds: 300,
            },
          ],
          priority: 0,
          enableServiceLinks: true,
          preemptionPolicy: 'PreemptLowerPriority',
        },
        status: {},
      },
      oldObject: null,
      dryRun: false,
      options: { kind: 'CreateOptions', apiVersion: 'meta.k8s.io/v1' },
    },
  });
}

interface Target {
  name: string;
  port: number;
  /** Checks an answer; returns false when it is not what the target should say. */
  valid: (body: string) => boolean;
}

function post(agent: Agent, port: number, body: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/mutate?timeout=5s',
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          res.statusCode === 200
            ? resolve(Buffer.concat(chunks).toString())
            : reject(new Error(`HTTP ${res.statusCode}`)),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** utime+stime of a process, in seconds (Linux /proc/PID/stat, clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface OpenLoopResult {
  sent: number;
  achievedRate: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
}

async function openLoop(
  target: Target,
  ca: string,
  ratePerS: number,
  durationS: number,
): Promise<OpenLoopResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, ca });
  const total = Math.round(ratePerS * durationS);
  const intervalMs = 1000 / ratePerS;
  const latencies: number[] = [];
  let errors = 0;
  let sent = 0;
  const inflight: Promise<void>[] = [];
  const start = performance.now() + 50;
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const now = performance.now();
      while (sent < total && start + sent * intervalMs <= now) {
        const due = start + sent * intervalMs;
        const body = review(sent);
        sent++;
        inflight.push(
          post(agent, target.port, body).then(
            (text) => {
              latencies.push(performance.now() - due);
              if (!target.valid(text)) errors++;
            },
            () => {
              errors++;
            },
          ),
        );
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * intervalMs - performance.now()));
      else resolve();
    };
    tick();
  });
  await Promise.all(inflight);
  const elapsedS = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    sent,
    achievedRate: sent / elapsedS,
    p50: percentile(latencies, 50),
    p90: percentile(latencies, 90),
    p99: percentile(latencies, 99),
    max: latencies.at(-1) ?? Number.NaN,
    errors,
  };
}

async function closedLoop(
  target: Target,
  ca: string,
  durationS: number,
): Promise<{ rps: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: connections, ca });
  const end = performance.now() + durationS * 1000;
  let done = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: connections }, async (_, w) => {
      for (let i = 0; performance.now() < end; i++) {
        try {
          if (!target.valid(await post(agent, target.port, review(w * 1e6 + i)))) errors++;
        } catch {
          errors++;
        }
        done++;
      }
    }),
  );
  agent.destroy();
  return { rps: done / durationS, errors };
}

function waitForLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'lxcfs-ts-bench-webhook-'));
  const now = new Date();
  const ca = await createCertificateAuthority('bench-ca', now, 86_400_000);
  const serving = await issueServingCertificate(ca, ['127.0.0.1'], now, 86_400_000);
  writeFileSync(join(dir, 'tls.crt'), serving.cert);
  writeFileSync(join(dir, 'tls.key'), serving.key);

  // Default settings (info-level log line per review included), certificates from files, no API server.
  const webhook = await startWebhook([
    ...(process.env.BENCH_WEBHOOK_ARGS ?? '').split(' ').filter(Boolean),
    '--tls',
    'files',
    '--tls-cert-file',
    join(dir, 'tls.crt'),
    '--tls-key-file',
    join(dir, 'tls.key'),
    '--manage-config',
    'none',
  ]);
  webhook.child.stderr!.resume();
  const basePort = await freePort();
  const baseline = spawn(
    process.execPath,
    [
      new URL('./webhook-baseline-server.js', import.meta.url).pathname,
      String(basePort),
      join(dir, 'tls.crt'),
      join(dir, 'tls.key'),
    ],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  try {
    await Promise.all([waitReady(webhook), waitForLine(baseline, 'ready')]);
    const targets: Target[] = [
      {
        name: 'lxcfs-ts webhook',
        port: webhook.port,
        valid: (b) => JSON.parse(b).response?.patch !== undefined,
      },
      {
        name: 'bare HTTPS responder',
        port: basePort,
        valid: (b) => JSON.parse(b).response?.allowed === true,
      },
    ];
    console.log(
      `TLS keep-alive on loopback, ${connections} connections, body ${review(0).length} bytes; node ${process.version}`,
    );
    const perRound: Record<string, OpenLoopResult[]> = Object.fromEntries(targets.map((t) => [t.name, []]));
    for (const t of targets) await openLoop(t, ca.cert, rate, 2); // warm-up: JIT, TLS sessions, pool
    for (let i = 0; i < rounds; i++) {
      for (const t of i % 2 === 0 ? targets : [...targets].reverse()) {
        perRound[t.name]!.push(await openLoop(t, ca.cert, rate, seconds));
      }
    }
    const closed: Record<string, { rps: number; errors: number }[]> = Object.fromEntries(
      targets.map((t) => [t.name, []]),
    );
    // Server-side CPU per request, from each server process's own counters.
    const pids = [webhook.child.pid!, baseline.pid!];
    const cpu = targets.map(() => 0);
    const served = targets.map(() => 0);
    for (let i = 0; i < 3; i++) {
      for (const [k, t] of targets.entries()) {
        const before = cpuSeconds(pids[k]!);
        const r = await closedLoop(t, ca.cert, 3);
        cpu[k]! += cpuSeconds(pids[k]!) - before;
        served[k]! += r.rps * 3;
        closed[t.name]!.push(r);
      }
    }
    const cpuPerRequestUs = targets.map((_, k) => (cpu[k]! / served[k]!) * 1e6);

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const ms = (v: number) => v.toFixed(2).padStart(7);
    const summary = (name: string) => {
      const rs = perRound[name]!;
      return {
        sent: rs.reduce((n, r) => n + r.sent, 0),
        rate: median(rs.map((r) => r.achievedRate)),
        p50: median(rs.map((r) => r.p50)),
        p90: median(rs.map((r) => r.p90)),
        p99: median(rs.map((r) => r.p99)),
        worstP99: Math.max(...rs.map((r) => r.p99)),
        max: Math.max(...rs.map((r) => r.max)),
        errors: rs.reduce((n, r) => n + r.errors, 0),
      };
    };
    console.log(
      `\nopen loop at ${rate} req/s, ${rounds} rounds of ${seconds} s per target, taking turns ` +
      '(latency in ms from when each request was due; medians over rounds)',
    );
    console.log('target                  sent   rate     p50     p90     p99  worst p99     max  errors');
    for (const t of targets) {
      const r = summary(t.name);
      console.log(
        `${t.name.padEnd(22)} ${String(r.sent).padStart(5)} ${r.rate.toFixed(0).padStart(6)} ${ms(r.p50)} ${ms(r.p90)} ${ms(r.p99)} ${ms(r.worstP99)}    ${ms(r.max)} ${String(r.errors).padStart(6)}`,
      );
    }
    const w = summary(targets[0]!.name);
    const b = summary(targets[1]!.name);
    console.log(`ratio webhook/bare: p50 ${(w.p50 / b.p50).toFixed(2)}x, p99 ${(w.p99 / b.p99).toFixed(2)}x`);
    console.log(`\nclosed loop, ${connections} in flight (median of 3 rounds of 3 s)`);
    const rps = (name: string) => median(closed[name]!.map((c) => c.rps));
    for (const t of targets) {
      const errors = closed[t.name]!.reduce((n, c) => n + c.errors, 0);
      console.log(`${t.name.padEnd(22)} ${rps(t.name).toFixed(0).padStart(6)} req/s  errors ${errors}`);
    }
    console.log(
      `ratio webhook/bare throughput: ${(rps(targets[0]!.name) / rps(targets[1]!.name)).toFixed(2)}x`,
    );
    console.log(
      `server process CPU per request (user+system, TLS included): webhook ${cpuPerRequestUs[0]!.toFixed(0)} µs, ` +
      `bare ${cpuPerRequestUs[1]!.toFixed(0)} µs`,
    );
    console.log(
      `\ntarget p99 <= 5 ms at ${rate} req/s: ${w.p99 <= 5 && w.errors === 0 ? 'met' : 'NOT met'} (median p99 ${w.p99.toFixed(2)} ms)`,
    );
  } finally {
    await webhook.stop();
    baseline.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
