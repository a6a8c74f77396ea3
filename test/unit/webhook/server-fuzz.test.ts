/**
 * Thousands of malformed and mutated AdmissionReviews sent to the real HTTPS server over keep-alive
 * connections: every one gets a well-formed answer (an AdmissionReview whose patch applies and is
 * idempotent, or a 4xx with a JSON error) and the server keeps serving.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:https';
import { after, before, describe, it } from 'node:test';
import { silentLogger } from '../../../src/common/log.js';
import { buildInjectionPlan, defaultInjectionOptions } from '../../../src/webhook/injection-plan.js';
import { WebhookMetrics } from '../../../src/webhook/metrics.js';
import { WebhookServer } from '../../../src/webhook/server.js';
import { applyPatch, type Operation } from '../../helpers/json-patch-apply.js';
import { pick, randomJson, rng } from '../../helpers/random.js';
import { loopbackCertificates } from '../../helpers/test-certs.js';

interface Reply {
  status: number;
  body: string;
}

const maxBody = 1024 * 1024;

describe('HTTPS server under malformed and mutated input', () => {
  let server: WebhookServer;
  let port: number;
  let ca: string;
  let agent: Agent;
  const metrics = new WebhookMetrics();

  before(async () => {
    const certs = await loopbackCertificates();
    ca = certs.ca.cert;
    server = new WebhookServer({
      settings: { plan: buildInjectionPlan(defaultInjectionOptions), excludedNamespaces: ['kube-system'] },
      metrics,
      logger: silentLogger,
      maxBodyBytes: maxBody,
    });
    server.setCertificate(certs.serving);
    port = (await server.listen('127.0.0.1', 0)).port;
    agent = new Agent({ keepAlive: true, maxSockets: 8, ca });
  });

  after(async () => {
    agent.destroy();
    await server.close();
  });

  function send(
    path: string,
    body: string | Buffer,
    options: { method?: string; type?: string } = {},
  ): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: options.method ?? 'POST',
          agent,
          headers: {
            'content-type': options.type ?? 'application/json',
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            text += c;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  function basePod(r: () => number): Record<string, unknown> {
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'p',
        ...(r() < 0.5
          ? {
              annotations: {
                'x/y~z': 'v',
                ...(r() < 0.3 ? { 'lxcfs-ts.io/inject': pick(r, ['true', 'false', 'maybe']) } : {}),
              },
            }
          : {}),
      },
      spec: {
        ...(r() < 0.5 ? { volumes: [{ name: 'data', emptyDir: {} }] } : {}),
        containers: Array.from({ length: 1 + Math.floor(r() * 3) }, (_, i) => ({
          name: `c${i}`,
          image: 'busybox',
          ...(r() < 0.4
            ? { volumeMounts: [{ name: 'data', mountPath: pick(r, ['/data', '/proc/meminfo', '/sys']) }] }
            : {}),
        })),
      },
    };
  }

  function baseReview(r: () => number, uid: string): Record<string, unknown> {
    return {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid,
        kind: { group: '', version: 'v1', kind: 'Pod' },
        resource: { group: '', version: 'v1', resource: 'pods' },
        operation: 'CREATE',
        namespace: pick(r, ['apps', 'kube-system', '']),
        dryRun: r() < 0.2,
        object: basePod(r),
      },
    };
  }

  /** Replaces one random node of a JSON tree (at any depth) with a random value, or deletes it. */
  function corrupt(value: unknown, r: () => number): unknown {
    if (typeof value !== 'object' || value === null || r() < 0.15) return randomJson(r, 2);
    const copy: Record<string, unknown> | unknown[] = Array.isArray(value)
      ? [...value]
      : { ...(value as object) };
    const keys = Object.keys(copy);
    if (keys.length === 0) return randomJson(r, 2);
    const key = pick(r, keys);
    if (r() < 0.2 && !Array.isArray(copy)) delete (copy as Record<string, unknown>)[key];
    else (copy as Record<string, unknown>)[key] = corrupt((copy as Record<string, unknown>)[key], r);
    return copy;
  }

  async function checkReply(path: string, sent: unknown, reply: Reply, label: string): Promise<void> {
    if (reply.status !== 200) {
      assert.ok(
        [400, 405, 413, 415].includes(reply.status),
        `${label}: status ${reply.status} ${reply.body}`,
      );
      assert.equal(typeof JSON.parse(reply.body).error, 'string', label);
      return;
    }
    const review = JSON.parse(reply.body);
    const req = (sent as { request: { uid: string; object: unknown; namespace: string } }).request;
    assert.equal(review.apiVersion, 'admission.k8s.io/v1', label);
    assert.equal(review.response.uid, req.uid, label);
    assert.equal(review.response.allowed, true, label);
    if (review.response.patch === undefined) return;
    assert.equal(review.response.patchType, 'JSONPatch', label);
    const ops = JSON.parse(Buffer.from(review.response.patch, 'base64').toString()) as Operation[];
    const patched = applyPatch(req.object, ops);
    // Sent again as the API server would on reinvocation: nothing more to do.
    const again = { ...(sent as object), request: { ...req, uid: `${req.uid}-again`, object: patched } };
    const secondReply = await send(path, JSON.stringify(again));
    assert.equal(secondReply.status, 200, `${label}: ${secondReply.body}`);
    const second = JSON.parse(secondReply.body);
    assert.equal(second.response.patch, undefined, `${label}: not idempotent`);
  }

  it('answers 4000 corrupted reviews correctly', async () => {
    const seed = 424242;
    const r = rng(seed);
    const cases = Array.from({ length: 4000 }, (_, i) => {
      let review: unknown = baseReview(r, `uid-${i}`);
      const rounds = Math.floor(r() * 3);
      for (let k = 0; k < rounds; k++) review = corrupt(review, r);
      // Keep the uid most of the time so the reply can be matched.
      if (
        r() < 0.8 &&
        typeof review === 'object' &&
        review !== null &&
        typeof (review as { request?: unknown }).request === 'object' &&
        (review as { request: unknown }).request !== null
      ) {
        (review as { request: { uid: string } }).request.uid = `uid-${i}`;
      }
      return review;
    });
    for (let i = 0; i < cases.length; i += 16) {
      await Promise.all(
        cases.slice(i, i + 16).map(async (review, j) => {
          const label = `seed ${seed} case ${i + j}: ${JSON.stringify(review).slice(0, 300)}`;
          const path = pick(r, ['/mutate', '/mutate/optin']);
          await checkReply(path, review, await send(path, JSON.stringify(review)), label);
        }),
      );
    }
    const text = await metrics.registry.metrics();
    assert.match(text, /outcome="mutated"/);
    assert.match(text, /lxcfs_ts_webhook_rejected_requests_total\{code="400"\}/);
  });

  it('refuses what is not a v1 AdmissionReview with a clear 4xx', async () => {
    const r = rng(1);
    const v1beta1 = { ...baseReview(r, 'b'), apiVersion: 'admission.k8s.io/v1beta1' };
    const replies: [Reply, number, RegExp][] = [
      [await send('/mutate', JSON.stringify(v1beta1)), 400, /only admission.k8s.io\/v1/],
      [
        await send('/mutate', '{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"'),
        400,
        /not valid JSON/,
      ],
      [await send('/mutate', Buffer.from([0xff, 0xfe, 0x00, 0x7b])), 400, /not valid JSON/],
      [await send('/mutate', '[]'), 400, /not a JSON object/],
      [await send('/mutate', JSON.stringify({ ...baseReview(r, ''), request: { uid: '' } })), 400, /uid/],
      [
        await send('/mutate', JSON.stringify(baseReview(r, 'x')), { type: 'text/plain' }),
        415,
        /content-type/,
      ],
      [await send('/mutate', '', { method: 'GET' }), 405, /POST/],
      [await send('/nowhere', '', { method: 'GET' }), 404, /not found/],
      [await send('/mutate', Buffer.alloc(maxBody + 1, 0x20)), 413, /larger than/],
    ];
    for (const [reply, status, message] of replies) {
      assert.equal(reply.status, status, reply.body);
      assert.match(JSON.parse(reply.body).error, message);
    }
  });

  it('survives pathological JSON: deep nesting, huge arrays, odd unicode', async () => {
    const r = rng(2);
    const deep = `${'['.repeat(20000)}${']'.repeat(20000)}`;
    const review = baseReview(r, 'deep') as { request: { object: { spec: Record<string, unknown> } } };
    const deepInPod = JSON.stringify(review).replace(
      '"spec":{',
      `"spec":{"x":${'['.repeat(5000)}${']'.repeat(5000)},`,
    );
    const manyContainers = baseReview(r, 'many') as {
      request: { object: { spec: { containers: unknown[] } } };
    };
    manyContainers.request.object.spec.containers = Array.from({ length: 100 }, (_, i) => ({
      name: `c${i}`,
    }));
    const unicode = JSON.stringify(baseReview(r, 'uni')).replace(
      '"name":"p"',
      '"name":"\\ud800\\u0000\\u2028🙂"',
    );
    for (const body of [deep, deepInPod, JSON.stringify(manyContainers), unicode]) {
      const reply = await send('/mutate', body);
      assert.ok(reply.status === 200 || reply.status === 400, `${reply.status} ${reply.body.slice(0, 200)}`);
      if (reply.status === 200) await checkReply('/mutate', JSON.parse(body), reply, body.slice(0, 100));
    }
    assert.match(JSON.parse((await send('/mutate', deepInPod)).body).error, /is nested too deeply/);
    const health = await send('/healthz', '', { method: 'GET' });
    assert.equal(health.status, 200);
  });
});
