/**
 * The Dockerfile cannot be built here (no container engine), so it is checked against the
 * repository instead: everything it copies exists and is not ignored, what the runtime stage takes
 * from the build stage is what the build produces, the layout it makes runs (assembled from its
 * own COPY lines in a temporary directory), production dependencies cover every runtime import,
 * and the tools the agent and the manifests call come from packages it installs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { podSpecOf, render } from '../../helpers/kustomize.js';
import { repoRoot } from '../../helpers/paths.js';

interface Instruction {
  keyword: string;
  args: string;
}

interface Stage {
  image: string;
  name: string | null;
  instructions: Instruction[];
}

/** Instructions (continuation lines joined, comments dropped), the global ARG defaults, the stages. */
function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const lines = text.split('\n');
  const instructions: Instruction[] = [];
  let current = '';
  for (const raw of lines) {
    if (/^\s*#/.test(raw)) continue; // comments, also inside a continued instruction
    const line = raw.replace(/\s+$/, '');
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1)} `;
      continue;
    }
    current += line;
    if (current.trim() !== '') {
      const m = /^\s*(\w+)\s+(.*)$/s.exec(current)!;
      instructions.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.trim() });
    }
    current = '';
  }
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args)!;
      stages.push({ image: m[1]!, name: m[2] ?? null, instructions: [] });
    } else if (stages.length === 0) {
      assert.equal(ins.keyword, 'ARG', 'only ARG before the first FROM');
      const [name, value] = ins.args.split('=', 2) as [string, string];
      globalArgs.set(name, value);
    } else {
      stages.at(-1)!.instructions.push(ins);
    }
  }
  return { globalArgs, stages };
}

function expand(text: string, args: Map<string, string>): string {
  return text.replace(/\$\{(\w+)\}/g, (_, name: string) => {
    assert.ok(args.has(name), `ARG ${name} has a default`);
    return args.get(name)!;
  });
}

interface Copy {
  from: string | null;
  sources: string[];
  destination: string;
}

function copiesOf(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
    .map((i) => {
      assert.equal(i.keyword, 'COPY', 'COPY, never ADD (no remote URLs, no archives unpacked by surprise)');
      const words = i.args.split(/\s+/);
      const from = words[0]!.startsWith('--from=') ? words.shift()!.slice('--from='.length) : null;
      assert.ok(!words.some((w) => w.startsWith('--')), `no other COPY options: ${i.args}`);
      return { from, sources: words.slice(0, -1), destination: words.at(-1)! };
    });
}

function workdirOf(stage: Stage): string {
  const workdirs = stage.instructions.filter((i) => i.keyword === 'WORKDIR');
  assert.equal(workdirs.length, 1);
  return workdirs[0]!.args;
}

const dockerfile = parseDockerfile(readFileSync(`${repoRoot}Dockerfile`, 'utf8'));
const dockerignore = readFileSync(`${repoRoot}.dockerignore`, 'utf8')
  .split('\n')
  .filter((l) => l.trim() !== '' && !l.startsWith('#'));
const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, 'utf8')) as {
  version: string;
  bin: Record<string, string>;
  files: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const { stages, globalArgs } = dockerfile;
const stageNamed = (name: string) => stages.find((s) => s.name === name)!;
const runtime = stages.at(-1)!;
const build = stageNamed('build');
const scratch: string[] = [];
after(() => {
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

describe('Dockerfile', () => {
  test('pins a Node LTS release by its exact version, and builds on it', () => {
    const version = globalArgs.get('NODE_VERSION') ?? '';
    assert.match(version, /^\d+\.\d+\.\d+$/, 'an exact version, not a moving tag');
    const major = Number(version.split('.')[0]);
    assert.ok(major >= 20 && major % 2 === 0, `Node ${major} is an LTS line (even)`);
    const nodeStage = stages.find((s) => expand(s.image, globalArgs).startsWith(`node:${version}-`));
    assert.ok(nodeStage?.name, 'a stage from the pinned node image');
    assert.equal(build.image, nodeStage.name, 'the build runs on it');
    assert.ok(
      copiesOf(runtime).some((c) => c.from === nodeStage.name && c.sources[0] === '/usr/local/bin/node' && c.destination === '/usr/local/bin/node'),
      'the runtime takes node from it, at /usr/local/bin/node',
    );
  });

  test('everything copied from the build context exists and is not ignored', () => {
    const fromContext = stages.flatMap((s) => copiesOf(s).filter((c) => c.from === null).flatMap((c) => c.sources));
    assert.deepEqual(fromContext.sort(), ['bin', 'package-lock.json', 'package.json', 'src', 'tsconfig.json']);
    for (const source of fromContext) {
      assert.ok(existsSync(`${repoRoot}${source}`), `${source} exists`);
      assert.ok(!dockerignore.includes(source.split('/')[0]!), `${source} is not in .dockerignore`);
    }
    for (const ignored of ['node_modules', 'dist', '.git']) assert.ok(dockerignore.includes(ignored), `${ignored} stays out of the context`);
  });

  test('the runtime takes from the build stage only what the build produces', () => {
    const dir = workdirOf(build);
    const copiedIn = new Set(copiesOf(build).flatMap((c) => c.sources));
    const tsconfig = JSON.parse(readFileSync(`${repoRoot}tsconfig.json`, 'utf8')) as { compilerOptions: { outDir: string; rootDir: string } };
    assert.equal(tsconfig.compilerOptions.rootDir, '.', 'src/ compiles to <outDir>/src');
    const produced = new Set([...copiedIn, `${tsconfig.compilerOptions.outDir}/src`, 'node_modules']);
    const fromBuild = copiesOf(runtime).filter((c) => c.from === 'build');
    for (const c of fromBuild) {
      for (const source of c.sources) {
        assert.ok(source.startsWith(`${dir}/`), `${source} is under the build directory ${dir}`);
        assert.ok(produced.has(source.slice(dir.length + 1)), `${source} is copied in or produced by the build`);
      }
    }
    assert.ok(build.instructions.some((i) => i.keyword === 'RUN' && /npm ci\b/.test(i.args)), 'dependencies from the lockfile');
    assert.ok(build.instructions.some((i) => i.keyword === 'RUN' && /npm prune --omit=dev/.test(i.args)), 'no development dependencies');
  });

  test('the fixed layout: the app in /opt/lxcfs-ts, the launcher as entrypoint', () => {
    const layout = copiesOf(runtime)
      .filter((c) => c.from === 'build')
      .map((c) => c.destination)
      .sort();
    assert.deepEqual(layout, [
      '/opt/lxcfs-ts/bin',
      '/opt/lxcfs-ts/dist/src',
      '/opt/lxcfs-ts/node_modules',
      '/opt/lxcfs-ts/package.json',
    ]);
    const entrypoint = runtime.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
    assert.deepEqual(entrypoint.map((i) => JSON.parse(i.args) as unknown), [['/opt/lxcfs-ts/bin/lxcfs-ts']]);
    // The launcher is what the npm package calls lxcfs-ts: a /bin/sh script (the image has /bin/sh).
    assert.equal(pkg.bin['lxcfs-ts'], 'bin/lxcfs-ts');
    assert.ok(pkg.files.includes('bin') && pkg.files.includes('dist/src'), 'the npm package ships the same tree');
    const launcher = `${repoRoot}bin/lxcfs-ts`;
    assert.ok(readFileSync(launcher, 'utf8').startsWith('#!/bin/sh\n'));
    assert.ok((statSync(launcher).mode & 0o111) !== 0, 'executable');
  });

  test('the layout runs: assembled from the runtime stage\'s COPY lines, through the entrypoint', () => {
    const root = mkdtempSync(join(tmpdir(), 'lxcfs-ts-unit-image-'));
    scratch.push(root);
    const buildDir = workdirOf(build);
    for (const c of copiesOf(runtime)) {
      const target = join(root, c.destination);
      mkdirSync(dirname(target), { recursive: true });
      if (c.from === 'build') {
        const source = `${repoRoot}${c.sources[0]!.slice(buildDir.length + 1)}`;
        // node_modules is linked, not copied (large); everything the image's own files need is copied.
        if (source.endsWith('/node_modules')) symlinkSync(source, target);
        else cpSync(source, target, { recursive: true });
      } else {
        symlinkSync(process.execPath, target); // the node binary
      }
    }
    // The image's `ln -s /opt/lxcfs-ts/bin/lxcfs-ts /usr/local/bin/lxcfs-ts`, inside the scratch root.
    symlinkSync(join(root, 'opt/lxcfs-ts/bin/lxcfs-ts'), join(root, 'usr/local/bin/lxcfs-ts'));
    const env = { PATH: `${root}/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };
    for (const entry of [join(root, 'opt/lxcfs-ts/bin/lxcfs-ts'), join(root, 'usr/local/bin/lxcfs-ts')]) {
      const version = spawnSync(entry, ['--version'], { encoding: 'utf8', env });
      assert.equal(version.stdout, `lxcfs-ts ${pkg.version}\n`, version.stderr);
      const config = spawnSync(entry, ['webhook', '--print-config'], { encoding: 'utf8', env });
      assert.equal(config.status, 0, config.stderr);
      assert.equal((JSON.parse(config.stdout) as { kind: string }).kind, 'MutatingWebhookConfiguration');
    }
  });

  test('production dependencies cover every import of the compiled code', () => {
    const files: string[] = [];
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const path = join(dir, name);
        if (statSync(path).isDirectory()) walk(path);
        else if (name.endsWith('.js')) files.push(path);
      }
    };
    walk(`${repoRoot}dist/src`);
    assert.ok(files.length > 50, 'the compiled sources');
    const imported = new Set<string>();
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const imports = /(?:^|[\s;])(?:import|export)\b[^'"]*?from\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
      for (const m of text.matchAll(imports)) {
        const spec = m[1] ?? m[2]!;
        if (spec.startsWith('.')) continue;
        imported.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    const builtins = new Set(builtinModules);
    for (const name of imported) {
      if (name.startsWith('node:') || builtins.has(name)) continue;
      assert.ok(name in pkg.dependencies, `${name} is a production dependency (it is imported at run time)`);
    }
    assert.ok([...imported].some((n) => n in pkg.dependencies), 'the scan finds the dependencies');
  });

  test('the tools the agent and the manifests run come from packages the runtime installs', () => {
    const installs = runtime.instructions
      .filter((i) => i.keyword === 'RUN')
      .flatMap((i) => [...i.args.matchAll(/apt-get install ([^&]*)/g)].flatMap((m) => m[1]!.split(/\s+/)))
      .filter((w) => w !== '' && !w.startsWith('-'));
    // command -> Debian package (bookworm)
    const providers: Record<string, string> = {
      sh: 'dash', // essential: in every Debian image
      mount: 'mount',
      umount: 'mount',
      nsenter: 'util-linux',
      readlink: 'coreutils',
      dirname: 'coreutils',
      stat: 'coreutils',
      cat: 'coreutils',
      timeout: 'coreutils',
      find: 'findutils',
      awk: 'mawk',
    };
    const agent = podSpecOf(render('deploy').find((o) => o.kind === 'DaemonSet')!);
    const used = [
      readFileSync(`${repoRoot}bin/lxcfs-ts`, 'utf8'),
      agent.initContainers![0]!.command!.join('\n'),
      agent.containers[0]!.readinessProbe!.exec!.command.join(' '),
    ].join('\n');
    for (const [command, provider] of Object.entries(providers)) {
      assert.match(used, new RegExp(`(^|[\\s(/$])${command}\\b`), `${command} is used`);
      if (provider !== 'dash') assert.ok(installs.includes(provider), `${provider} (for ${command}) is installed`);
    }
    assert.match(readFileSync(`${repoRoot}src/fuse/mount.ts`, 'utf8'), /'umount'/, 'the daemon runs umount');
  });
});
