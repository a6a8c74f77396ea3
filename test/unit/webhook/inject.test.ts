import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { injectText } from '../../../src/webhook/inject-command.js';
import { buildInjectionPlan, defaultInjectionOptions } from '../../../src/webhook/injection-plan.js';
import { fixturePath, repoRoot } from '../../helpers/paths.js';

const plan = buildInjectionPlan(defaultInjectionOptions);
const input = readFileSync(fixturePath('webhook', 'inject', 'workloads.yaml'), 'utf8');

type Obj = Record<string, never>;
function objects(text: string): Obj[] {
  return parseAllDocuments(text as string).map((d) => (d as { toJS(): Obj }).toJS());
}
function volumeNames(template: { spec: { volumes?: { name: string }[] } }): string[] {
  return (template.spec.volumes ?? []).map((v) => v.name);
}

describe('lxcfs-ts inject', () => {
  const output = injectText(input, plan);
  const [deployment, cronjob, list, service] = objects(output) as unknown as [
    {
      spec: {
        template: {
          metadata: { annotations: Record<string, string> };
          spec: { volumes: { name: string }[]; containers: { volumeMounts: { name: string }[] }[] };
        };
      };
    },
    { spec: { jobTemplate: { spec: { template: { spec: { volumes: { name: string }[] } } } } } },
    {
      items: [
        {
          spec: {
            template: { metadata: { annotations: Record<string, string> }; spec: { volumes?: unknown[] } };
          };
        },
        unknown,
      ];
    },
    unknown,
  ];

  it('mounts the view into pod templates of every workload kind, after the user\'s own entries', () => {
    const t = deployment.spec.template;
    assert.equal(t.metadata.annotations['lxcfs-ts.io/status'], 'mutated');
    assert.deepEqual(volumeNames(t), ['conf', ...plan.mounts.map((m) => m.volumeName)]);
    assert.equal(t.spec.containers[0]!.volumeMounts[0]!.name, 'conf');
    assert.equal(t.spec.containers[0]!.volumeMounts.length, 1 + plan.mounts.length);
    assert.deepEqual(
      volumeNames(cronjob.spec.jobTemplate.spec.template),
      plan.mounts.map((m) => m.volumeName),
    );
  });

  it('respects the opt-out annotation inside a List, and leaves other kinds alone', () => {
    const sts = list.items[0].spec.template;
    assert.equal(sts.spec.volumes, undefined);
    assert.equal(
      sts.metadata.annotations['lxcfs-ts.io/status'],
      'skipped: opted out by annotation lxcfs-ts.io/inject',
    );
    assert.deepEqual(list.items[1], {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'untouched' },
      data: { key: 'value' },
    });
    assert.deepEqual(service, objects(input)[3]);
  });

  it('keeps comments and the documents\' layout', () => {
    assert.ok(output.startsWith('# Workloads of every kind the inject command understands.\n'));
    assert.match(output, /- name: web # the main container/);
    assert.equal(output.split(/^---$/m).length, input.split(/^---$/m).length);
  });

  it('changes nothing the second time (byte for byte)', () => {
    assert.equal(injectText(output, plan), output);
  });

  it('runs as a command: file or stdin in, manifests out; usage errors exit 2, bad YAML exits 1', () => {
    const cli = `${repoRoot}dist/src/cli.js`;
    const fromFile = spawnSync(
      process.execPath,
      [cli, 'inject', '-f', fixturePath('webhook', 'inject', 'workloads.yaml')],
      { encoding: 'utf8' },
    );
    assert.equal(fromFile.status, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, output);
    const fromStdin = spawnSync(
      process.execPath,
      [cli, 'inject', '--files', 'proc/meminfo', '--no-parent-mount'],
      {
        input: 'kind: Pod\nspec:\n  containers:\n  - name: c\n',
        encoding: 'utf8',
      },
    );
    assert.equal(fromStdin.status, 0, fromStdin.stderr);
    assert.match(fromStdin.stdout, /mountPath: \/proc\/meminfo/);
    assert.doesNotMatch(fromStdin.stdout, /cpuinfo|HostToContainer/);
    const bad = spawnSync(process.execPath, [cli, 'inject', '--frobnicate'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /Usage: lxcfs-ts inject/);
    const badFile = spawnSync(process.execPath, [cli, 'inject', '--files', 'proc/kcore'], {
      input: '',
      encoding: 'utf8',
    });
    assert.equal(badFile.status, 2);
    assert.match(badFile.stderr, /unknown view file "proc\/kcore"/);
    const badYaml = spawnSync(process.execPath, [cli, 'inject'], { input: 'a: [1,\n', encoding: 'utf8' });
    assert.equal(badYaml.status, 1);
    assert.match(badYaml.stderr, /invalid YAML/);
    const help = spawnSync(process.execPath, [cli, 'inject', '--help'], { encoding: 'utf8' });
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--no-parent-mount/);
  });
});
