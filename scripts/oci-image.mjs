#!/usr/bin/env node
// Builds container images without a registry or a container engine, for the local test node
// (scripts/kube-env up --node): root filesystems assembled from Debian packages (apt-get download,
// dpkg-deb -x) and from this checkout, written as an OCI image layout and packed into one archive
// that `ctr images import` takes.
//
//   node scripts/oci-image.mjs --out FILE.tar [--cache DIR] IMAGE...
//
// IMAGE is one of:
//   app     lxcfs-ts:dev, the project's image: the same layout as the Dockerfile (the app in
//           /opt/lxcfs-ts with production node_modules, node at /usr/local/bin/node, util-linux
//           mount/umount/nsenter, /bin/sh; entrypoint /opt/lxcfs-ts/bin/lxcfs-ts). Needs `npm run build`.
//   procps  k8s.local/procps:dev, a workload image with the programs users run to size themselves
//           (free, top, uptime, ps, getconf, lscpu, nproc, cat) and nothing else.
//   busybox k8s.local/busybox:dev, an Alpine-like workload: Debian's static busybox and nothing else
//           (its free and uptime read sysinfo(2), not /proc/meminfo).
//   pause   k8s.local/pause:3.2, the pod sandbox image (scripts/images/pause.c, built static).
//
// Layers are uncompressed tars with fixed owners and times. The Debian layers and the production
// node_modules are cached under DIR (default /var/cache/lxcfs-ts/images), keyed by what goes into
// them, so a warm build only re-packs this checkout. Every image is checked before it is written:
// the programs it promises are run from its merged root filesystem (chroot, in a private mount
// namespace so nothing outlives the check).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  createReadStream,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parseArgs } from 'node:util';

const repo = new URL('..', import.meta.url).pathname;
const FORMAT = 'oci-image-1'; // part of every cache key: bump when the way layers are made changes

// What every image's programs need: libc, a shell, coreutils (the app's launcher uses readlink and
// dirname), findutils and mawk (the agent's start-up cleanup), util-linux (mount, umount, nsenter
// for the agent; lscpu for workloads), with the libraries those link against. The Dockerfile's
// runtime stage (Debian slim plus util-linux, mount, coreutils, findutils, mawk) has the same tools.
const basePackages = [
  'libc6', 'libgcc-s1', 'dash', 'coreutils', 'findutils', 'mawk', 'libacl1', 'libattr1', 'libgmp10', 'libselinux1',
  'libpcre2-8-0',
  'mount', 'util-linux', 'libmount1', 'libblkid1', 'libsmartcols1', 'libcap-ng0', 'libcrypt1', 'libpam0g',
  'libaudit1', 'libsystemd0', 'libcap2', 'libgcrypt20', 'libgpg-error0', 'liblz4-1', 'liblzma5', 'libzstd1',
  'libtinfo6', 'libudev1', 'libuuid1', 'zlib1g',
];
const procpsPackages = ['procps', 'libproc2-0', 'libncursesw6', 'ncurses-base', 'libc-bin', 'grep'];
const nodeRuntimePackages = ['libstdc++6'];

const defaultPath = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function die(message) {
  console.error(`oci-image: ${message}`);
  process.exit(1);
}

function log(message) {
  console.error(`oci-image: ${message}`);
}

function run(argv, options = {}) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', maxBuffer: 64 << 20, ...options });
  if (r.status !== 0) {
    die(`${argv.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`}):\n${(r.stderr ?? '').trim()}`);
  }
  return r.stdout ?? '';
}

function sha256Text(text) {
  return createHash('sha256').update(text).digest('hex');
}

async function sha256File(path) {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk);
  return hash.digest('hex');
}

// --- Debian packages ------------------------------------------------------------------------------

const debNames = new Map(); // package -> file name, asked once per run

/** The file name of each package's candidate version, from the apt lists. */
function debFileNames(packages) {
  const unknown = packages.filter((p) => !debNames.has(p));
  if (unknown.length > 0) for (const [p, f] of askDebFileNames(unknown)) debNames.set(p, f);
  return packages.map((p) => debNames.get(p));
}

function askDebFileNames(packages) {
  const shown = spawnSync('apt-cache', ['show', '--no-all-versions', ...packages], { encoding: 'utf8' });
  if (shown.status !== 0) {
    run(['apt-get', 'update', '-qq']);
    return askDebFileNames(packages);
  }
  const names = new Map();
  for (const stanza of shown.stdout.split(/\n\n+/)) {
    const field = (name) => new RegExp(`^${name}: (\\S+)$`, 'm').exec(stanza)?.[1];
    const [pkg, version, arch] = [field('Package'), field('Version'), field('Architecture')];
    // The name `apt-get download` gives the file (an epoch's colon is written %3a).
    if (pkg && version && arch) names.set(pkg, `${pkg}_${version.replace(/:/g, '%3a')}_${arch}.deb`);
  }
  const missing = packages.filter((p) => !names.has(p));
  if (missing.length > 0) die(`not in the apt lists: ${missing.join(', ')}`);
  return names;
}

/** Downloads (once) the .deb files of the packages into the cache; returns their paths. */
function fetchDebs(packages, cache) {
  const dir = join(cache, 'debs');
  mkdirSync(dir, { recursive: true });
  const files = debFileNames(packages);
  const wanted = packages.filter((_, i) => !existsSync(join(dir, files[i])));
  if (wanted.length > 0) {
    log(`downloading ${wanted.length} Debian packages`);
    run(['apt-get', 'download', '-qq', ...wanted], { cwd: dir });
  }
  return files.map((f) => {
    const path = join(dir, f);
    if (!existsSync(path)) die(`apt-get download did not produce ${f}`);
    return path;
  });
}

function extractDebs(debs, rootfs) {
  for (const deb of debs) run(['dpkg-deb', '-x', deb, rootfs]);
}

// --- layers ---------------------------------------------------------------------------------------

/** Packs a directory into a layer tar with fixed owners, times and order. */
async function packLayer(dir, out) {
  run(['tar', '-C', dir, '--sort=name', '--owner=0', '--group=0', '--numeric-owner', '--mtime=@0', '-cf', out, '.']);
  return { path: out, digest: `sha256:${await sha256File(out)}`, size: statSync(out).size, dir };
}

/**
 * A cached layer: built by `fill(dir)` when its key is new, reused otherwise. The unpacked
 * directory is kept next to the tar so that the image check can run from it.
 */
async function cachedLayer(cache, name, key, fill) {
  const layers = join(cache, 'layers');
  const base = join(layers, `${name}-${sha256Text(`${FORMAT}\n${key}`).slice(0, 16)}`);
  if (existsSync(`${base}.json`)) {
    const meta = JSON.parse(readFileSync(`${base}.json`, 'utf8'));
    if (existsSync(meta.path) && existsSync(meta.dir)) {
      const now = new Date();
      utimesSync(`${base}.json`, now, now); // last use, for pruneLayers
      return meta;
    }
  }
  mkdirSync(layers, { recursive: true });
  rmSync(`${base}.dir`, { recursive: true, force: true });
  mkdirSync(`${base}.dir`);
  await fill(`${base}.dir`);
  const layer = await packLayer(`${base}.dir`, `${base}.tar`);
  writeFileSync(`${base}.json`, JSON.stringify(layer));
  return layer;
}

/** Removes cached layers unused for a week (older package versions, node binaries, lockfiles). */
function pruneLayers(cache) {
  const layers = join(cache, 'layers');
  if (!existsSync(layers)) return;
  const weekAgo = Date.now() - 7 * 24 * 3600 * 1000;
  for (const entry of readdirSync(layers)) {
    if (!entry.endsWith('.json') || statSync(join(layers, entry)).mtimeMs > weekAgo) continue;
    const base = join(layers, entry.slice(0, -'.json'.length));
    rmSync(`${base}.json`);
    rmSync(`${base}.tar`, { force: true });
    rmSync(`${base}.dir`, { recursive: true, force: true });
  }
}

function writeMinimalEtc(rootfs) {
  mkdirSync(join(rootfs, 'etc'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const dir of ['tmp', 'root', 'proc', 'sys', 'dev', 'run', 'var/tmp']) mkdirSync(join(rootfs, dir), { recursive: true });
  chmodSync(join(rootfs, 'tmp'), 0o1777);
  chmodSync(join(rootfs, 'var/tmp'), 0o1777);
}

async function baseLayer(cache) {
  const debs = fetchDebs(basePackages, cache);
  return cachedLayer(cache, 'base', debs.map((d) => basename(d)).join('\n'), (dir) => {
    extractDebs(debs, dir);
    // Links that maintainer scripts (not run here) and update-alternatives would make.
    if (!existsSync(join(dir, 'bin/sh'))) symlinkSync('dash', join(dir, 'bin/sh'));
    if (!existsSync(join(dir, 'usr/bin/awk'))) symlinkSync('mawk', join(dir, 'usr/bin/awk'));
    writeMinimalEtc(dir);
  });
}

async function debsLayer(cache, name, packages) {
  const debs = fetchDebs(packages, cache);
  return cachedLayer(cache, name, debs.map((d) => basename(d)).join('\n'), (dir) => extractDebs(debs, dir));
}

/** node itself: the running node binary (Node 20+, the one the project is built and tested with) and libstdc++. */
async function nodeLayer(cache) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 20) die(`node ${process.versions.node} is too old for the image (20+ needed)`);
  const node = realpathSync(process.execPath);
  const st = statSync(node);
  const debs = fetchDebs(nodeRuntimePackages, cache);
  const key = [process.version, node, st.size, st.mtimeMs, ...debs.map((d) => basename(d))].join('\n');
  return cachedLayer(cache, 'node', key, (dir) => {
    extractDebs(debs, dir);
    mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
    copyFileSync(node, join(dir, 'usr/local/bin/node'));
    chmodSync(join(dir, 'usr/local/bin/node'), 0o755);
  });
}

/** Production dependencies in /opt/lxcfs-ts/node_modules, installed once per lockfile. */
async function modulesLayer(cache) {
  const lock = readFileSync(join(repo, 'package-lock.json'), 'utf8');
  const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
  const key = `${process.version}\n${JSON.stringify(pkg.dependencies ?? {})}\n${lock}`;
  return cachedLayer(cache, 'modules', key, (dir) => {
    const app = join(dir, 'opt/lxcfs-ts');
    mkdirSync(app, { recursive: true });
    copyFileSync(join(repo, 'package.json'), join(app, 'package.json'));
    copyFileSync(join(repo, 'package-lock.json'), join(app, 'package-lock.json'));
    log('installing production node_modules');
    run(['npm', 'ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], {
      cwd: app,
    });
    // Only node_modules belongs to this layer; the app layer brings package.json.
    rmSync(join(app, 'package.json'));
    rmSync(join(app, 'package-lock.json'));
    rmSync(join(app, 'node_modules/.package-lock.json'), { force: true });
  });
}

/** This checkout: package.json, bin/ and dist/src in /opt/lxcfs-ts (built fresh every time). */
async function appLayer(work) {
  if (!existsSync(join(repo, 'dist/src/cli.js'))) die('dist/src/cli.js is missing: run `npm run build` first');
  const dir = join(work, 'app');
  const app = join(dir, 'opt/lxcfs-ts');
  mkdirSync(app, { recursive: true });
  copyFileSync(join(repo, 'package.json'), join(app, 'package.json'));
  cpSync(join(repo, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(repo, 'dist/src'), join(app, 'dist/src'), {
    recursive: true,
    filter: (src) => !src.endsWith('.map'),
  });
  mkdirSync(join(dir, 'usr/local/bin'), { recursive: true });
  symlinkSync('/opt/lxcfs-ts/bin/lxcfs-ts', join(dir, 'usr/local/bin/lxcfs-ts'));
  return packLayer(dir, join(work, 'app.tar'));
}

async function pauseLayer(cache) {
  const source = join(repo, 'scripts/images/pause.c');
  return cachedLayer(cache, 'pause', readFileSync(source, 'utf8'), (dir) => {
    run(['gcc', '-static', '-Os', '-s', '-o', join(dir, 'pause'), source]);
  });
}

/** The applets the busybox image links (busybox --install would need a running busybox). */
const busyboxApplets = ['sh', 'free', 'uptime', 'cat', 'sleep', 'grep', 'awk', 'head', 'echo', 'nproc', 'ls', 'date'];

async function busyboxLayer(cache) {
  const debs = fetchDebs(['busybox-static'], cache);
  const key = [...debs.map((d) => basename(d)), ...busyboxApplets].join('\n');
  return cachedLayer(cache, 'busybox', key, (dir) => {
    extractDebs(debs, dir);
    writeMinimalEtc(dir);
    for (const applet of busyboxApplets) symlinkSync('busybox', join(dir, 'bin', applet));
  });
}

// --- images ---------------------------------------------------------------------------------------

const images = {
  app: {
    name: 'docker.io/library/lxcfs-ts:dev',
    async layers(cache, work) {
      return [await baseLayer(cache), await nodeLayer(cache), await modulesLayer(cache), await appLayer(work)];
    },
    config: { Entrypoint: ['/opt/lxcfs-ts/bin/lxcfs-ts'], Cmd: ['--help'], Env: [`PATH=${defaultPath}`], WorkingDir: '/' },
    checks: [
      ['lxcfs-ts', '--version'],
      ['/opt/lxcfs-ts/bin/lxcfs-ts', 'webhook', '--print-config'],
      ['mount', '--version'],
      ['umount', '--version'],
      ['nsenter', '--version'],
      ['/bin/sh', '-c', 'find /opt/lxcfs-ts/bin -type f | awk \'END { exit NR == 0 }\' && timeout 5 stat -c %n /'],
    ],
  },
  procps: {
    name: 'k8s.local/procps:dev',
    async layers(cache) {
      return [await baseLayer(cache), await debsLayer(cache, 'procps', procpsPackages)];
    },
    config: { Cmd: ['sh'], Env: [`PATH=${defaultPath}`], WorkingDir: '/' },
    checks: [
      ['free', '--version'],
      ['top', '-bn1'],
      ['uptime', '--version'],
      ['ps', '--version'],
      ['getconf', '_NPROCESSORS_ONLN'],
      ['lscpu', '--version'],
      ['nproc'],
      ['grep', '--version'],
      ['/bin/sh', '-c', 'cat /proc/meminfo && sleep 0'],
    ],
  },
  busybox: {
    name: 'k8s.local/busybox:dev',
    async layers(cache) {
      return [await busyboxLayer(cache)];
    },
    config: { Cmd: ['sh'], Env: [`PATH=${defaultPath}`], WorkingDir: '/' },
    checks: [
      ['free', '-m'],
      ['uptime'],
      ['/bin/sh', '-c', 'cat /proc/meminfo >/dev/null && sleep 0'],
    ],
  },
  pause: {
    name: 'k8s.local/pause:3.2',
    async layers(cache) {
      return [await pauseLayer(cache)];
    },
    config: { Entrypoint: ['/pause'], User: '65535:65535' },
    checks: [],
  },
};

function shellQuote(word) {
  return `'${word.replace(/'/g, '\'\\\'\'')}'`;
}

/**
 * Runs each check from the image's merged root filesystem (an overlay of its layers), once per
 * set of layers (a marker in the cache remembers the sets that passed).
 */
function checkImage(cache, name, layers, checks) {
  if (checks.length === 0) return;
  const marker = join(cache, 'checked', sha256Text(JSON.stringify([name, checks, layers.map((l) => l.digest)])));
  if (existsSync(marker)) return;
  const lower = layers.map((l) => l.dir).reverse().join(':');
  const script = [
    'set -e',
    'root=$(mktemp -d)',
    // overlayfs needs two lower layers at least; a one-layer image is its own root (mounted over, never written).
    layers.length > 1 ? `mount -t overlay overlay -o "lowerdir=${lower}" "$root"` : `mount --bind "${lower}" "$root"`,
    'mount -t proc proc "$root/proc"',
    'mount -t sysfs sysfs "$root/sys"',
    ...checks.map((argv) => {
      const command = argv.map(shellQuote).join(' ');
      return `chroot "$root" ${command} >/dev/null || { echo ${shellQuote(`${argv.join(' ')} failed`)} >&2; exit 1; }`;
    }),
    'umount -R "$root"; rmdir "$root"',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    encoding: 'utf8',
    env: { PATH: defaultPath },
  });
  if (r.status !== 0) die(`image ${name} does not work: ${(r.stderr || r.error?.message || '').trim()}`);
  mkdirSync(dirname(marker), { recursive: true });
  writeFileSync(marker, '');
}

function blobPath(layout, digest) {
  return join(layout, 'blobs', ...digest.split(':'));
}

function writeBlob(layout, text) {
  const digest = `sha256:${sha256Text(text)}`;
  writeFileSync(blobPath(layout, digest), text);
  return { digest, size: Buffer.byteLength(text) };
}

function addFileBlob(layout, layer) {
  const target = blobPath(layout, layer.digest);
  if (existsSync(target)) return;
  try {
    linkSync(layer.path, target);
  } catch {
    copyFileSync(layer.path, target);
  }
}

async function main() {
  const { values, positionals } = parseArgs({
    options: { out: { type: 'string' }, cache: { type: 'string' } },
    allowPositionals: true,
  });
  if (!values.out || positionals.length === 0) {
    die(`usage: node scripts/oci-image.mjs --out FILE.tar [--cache DIR] ${Object.keys(images).join('|')}...`);
  }
  const unknown = positionals.filter((p) => !(p in images));
  if (unknown.length > 0) die(`unknown image(s) ${unknown.join(', ')}; known: ${Object.keys(images).join(', ')}`);
  if (process.getuid?.() !== 0) die('run as root (dpkg-deb -x keeps owners; the check mounts an overlay)');
  const cache = values.cache ?? join(process.env.KUBE_ENV_CACHE ?? '/var/cache/lxcfs-ts', 'images');
  const work = mkdtempSync(join(tmpdir(), 'lxcfs-ts-oci-'));
  try {
    const layout = join(work, 'layout');
    mkdirSync(join(layout, 'blobs', 'sha256'), { recursive: true });
    writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const manifests = [];
    for (const key of [...new Set(positionals)]) {
      const started = Date.now();
      const image = images[key];
      const layers = await image.layers(cache, work);
      checkImage(cache, image.name, layers, image.checks);
      for (const layer of layers) addFileBlob(layout, layer);
      const diffIds = layers.map((l) => l.digest); // uncompressed layers: diff id = digest
      const config = writeBlob(layout, JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: image.config,
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: layers.map((l) => ({ created_by: `lxcfs-ts scripts/oci-image.mjs: ${basename(l.path)}` })),
      }));
      const manifest = writeBlob(layout, JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
        layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: l.digest, size: l.size })),
      }));
      manifests.push({
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        ...manifest,
        platform: { architecture: 'amd64', os: 'linux' },
        annotations: {
          // containerd takes the full name from this annotation; CRI looks images up by their
          // normalized name (docker.io/library/... for short names).
          'io.containerd.image.name': image.name,
          'org.opencontainers.image.ref.name': image.name.split(':').pop(),
        },
      });
      const mib = layers.reduce((s, l) => s + l.size, 0) / (1 << 20);
      log(`${image.name}: ${layers.length} layers, ${mib.toFixed(1)} MiB, ${Date.now() - started} ms`);
    }
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests }));
    const out = values.out;
    mkdirSync(dirname(out), { recursive: true });
    run(['tar', '-C', layout, '-cf', `${out}.tmp`, 'oci-layout', 'index.json', 'blobs']);
    renameSync(`${out}.tmp`, out);
    pruneLayers(cache);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
