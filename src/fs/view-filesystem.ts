/**
 * The virtual tree served over FUSE: maps lookups, attributes, opens and reads onto the views
 * (per-caller content) and onto the host's sys/devices/system/cpu entries.
 *
 * Read protocol (what every reader of a /proc file relies on): the content is generated when a
 * READ arrives at offset 0 and kept with the open file handle, so a reader that reads in chunks
 * gets one consistent snapshot; a READ at a later offset is served from that snapshot (and, if
 * the handle has none yet, from a fresh one instead of an empty answer).
 *
 * The snapshot pool is bounded and evicts the oldest snapshots when full. A handle whose snapshot
 * was evicted renders afresh at its next read at offset 0; at a later offset, it is served from a
 * fresh rendering only if that begins with exactly the bytes the reader was already given
 * (checksum), and otherwise answers ESTALE rather than a file made of two renderings.
 */
import { lstatSync, readFileSync, readlinkSync, type Stats } from 'node:fs';
import type { Logger } from '../common/log.js';
import { type Attr, type DirEntry, encodeDirents, type Statfs, sliceDirents } from '../fuse/codec.js';
import type {
  AttrReply,
  EntryReply,
  Errno,
  FuseFilesystem,
  OpenReply,
  RequestContext,
} from '../fuse/filesystem.js';
import { DirentType, Errno as E, FOPEN_DIRECT_IO } from '../fuse/protocol.js';
import { viewFiles } from '../views/catalog.js';
import { CpuDirView, type HostEntry, isCpuName } from './cpu-dir.js';
import { derivedIno } from './inode.js';
import { checksum, type EvictedSnapshot, type SnapshotStore } from './snapshot-store.js';
import { CPU_DIR, S_IFLNK, S_IFREG, type StaticNode, StaticTree } from './tree.js';
import type { ViewSource } from '../container/view-source.js';

export interface ViewFilesystemSettings {
  procRoot: string;
  sysRoot: string;
  /** How long the kernel may cache names and attributes that are the same for every caller. */
  entryTtlMs: number;
  attrTtlMs: number;
  /** When the filesystem was mounted: the timestamp of its directories. */
  mountedAtMs: number;
}

/** A host entry below the cpu directory, known by its path relative to that directory. */
interface PassthroughNode {
  ino: number;
  relative: string;
}

const CPU_PREFIX = `${CPU_DIR}/`;

/** Metric labels: one per view file, plus the directories and the passed-through cpu entries. */
export const viewFilesystemLabels: readonly string[] = [
  'other',
  'directory',
  `${CPU_DIR}/*`,
  ...viewFiles.map((f) => f.path),
];
const LABEL_DIRECTORY = 1;
const LABEL_CPU_ENTRY = 2;
const SIZE_HINT_TTL_MS = 10_000;
const WALK_INTERVAL_MS = 5_000;

export class ViewFilesystem implements FuseFilesystem {
  readonly labels = viewFilesystemLabels;
  private readonly tree: StaticTree;
  private readonly cpuDir: CpuDirView;
  private readonly cpuDirNode: StaticNode;
  private readonly passthrough = new Map<number, PassthroughNode>();
  private readonly sizeHints = new Map<string, { size: number; until: number }>();
  private lastWalkMs = 0;
  private warnedUnbacked = false;
  private warnedStale = false;

  constructor(
    private readonly source: ViewSource,
    private readonly store: SnapshotStore,
    private readonly settings: ViewFilesystemSettings,
    private readonly log: Logger,
  ) {
    this.tree = new StaticTree(settings.procRoot);
    this.cpuDir = new CpuDirView(settings.sysRoot);
    this.cpuDirNode = this.tree.byPath.get(CPU_DIR)!;
  }

  lookup(ctx: RequestContext, parent: number, name: string): EntryReply | Errno {
    const dir = this.tree.byIno.get(parent);
    if (dir?.kind === 'dir' && dir !== this.cpuDirNode) {
      const child = dir.children.get(name);
      if (child === undefined) return this.negative();
      return this.entry(this.staticAttr(this.tree.byIno.get(child)!), this.settings.entryTtlMs);
    }
    if (dir?.kind === 'dir') {
      const view = dir.children.get(name);
      if (view !== undefined)
        return this.entry(this.staticAttr(this.tree.byIno.get(view)!), this.settings.entryTtlMs);
      return this.lookupPassthrough(ctx, name, name);
    }
    const node = this.passthroughNode(parent);
    if (!node) return dir ? E.ENOTDIR : E.ENOENT;
    return this.lookupPassthrough(ctx, `${node.relative}/${name}`, name);
  }

  getattr(ctx: RequestContext, ino: number): AttrReply | Errno {
    const node = this.tree.byIno.get(ino);
    if (node) return { attr: this.staticAttr(node), attrTtlMs: this.settings.attrTtlMs };
    const pass = this.passthroughNode(ino);
    if (!pass) return E.ENOENT;
    const stats = this.hostStat(pass.relative, ctx.pid);
    if (!stats) return E.ENOENT;
    return { attr: this.hostAttr(ino, stats), attrTtlMs: this.attrTtlFor(pass.relative) };
  }

  readlink(ctx: RequestContext, ino: number): Buffer | Errno {
    const pass = this.passthroughNode(ino);
    if (!pass) return E.EINVAL;
    const host = this.cpuDir.hostPath(pass.relative, this.source.visibleCpus(ctx.pid));
    if (host === null) return E.ENOENT;
    try {
      return readlinkSync(host, { encoding: 'buffer' });
    } catch (err) {
      return errnoOf(err);
    }
  }

  open(_ctx: RequestContext, ino: number, _flags: number): OpenReply | Errno {
    const node = this.tree.byIno.get(ino);
    if (node?.kind === 'dir') return E.EISDIR;
    if (!node && !this.passthroughNode(ino)) return E.ENOENT;
    return { fh: this.openHandle(), openFlags: FOPEN_DIRECT_IO };
  }

  read(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Buffer | Errno {
    let lost: EvictedSnapshot | null = null;
    if (offset > 0) {
      const cached = this.store.read(fh, offset, size);
      if (cached) return cached;
      lost = this.store.evicted(fh);
    }
    const content = this.fileContent(ctx, ino);
    if (typeof content === 'number') return content;
    // The handle's snapshot was evicted (the pool was full) after the reader had some of it: a
    // fresh rendering may continue it only if it begins with the very bytes the reader has.
    if (lost && (content.length < lost.served || checksum(content, 0, lost.served) !== lost.checksum)) {
      if (!this.warnedStale) {
        this.warnedStale = true;
        this.log.warn('a read continued a handle whose snapshot was evicted, and the file had changed: answered ESTALE');
      }
      return E.ESTALE;
    }
    const end = Math.min(offset + size, content.length);
    this.keep(fh, content, Math.max(end, lost?.served ?? 0));
    return content.subarray(Math.min(offset, content.length), end);
  }

  release(_ino: number, fh: number): void {
    this.store.release(fh);
  }

  opendir(_ctx: RequestContext, ino: number): OpenReply | Errno {
    const node = this.tree.byIno.get(ino);
    if (node && node.kind !== 'dir') return E.ENOTDIR;
    if (!node && !this.passthroughNode(ino)) return E.ENOENT;
    return { fh: this.openHandle(), openFlags: 0 };
  }

  readdir(ctx: RequestContext, ino: number, fh: number, offset: number, size: number): Buffer | Errno {
    if (offset > 0) {
      const listing = this.store.read(fh, 0, Number.MAX_SAFE_INTEGER);
      if (listing) return sliceDirents(listing, offset, size);
    }
    const entries = this.listDirectory(ctx, ino);
    if (typeof entries === 'number') return entries;
    const listing = encodeDirents(entries);
    this.keep(fh, listing);
    return sliceDirents(listing, offset, size);
  }

  releasedir(_ino: number, fh: number): void {
    this.store.release(fh);
  }

  statfs(_ctx: RequestContext): Statfs {
    return { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 4096, namelen: 255, frsize: 4096 };
  }

  labelOf(ino: number): number {
    const node = this.tree.byIno.get(ino);
    if (node?.kind === 'view') return viewFilesystemLabels.indexOf(node.path);
    if (node) return LABEL_DIRECTORY;
    return this.passthrough.has(ino) ? LABEL_CPU_ENTRY : 0;
  }

  // --- content -------------------------------------------------------------------------------

  private fileContent(ctx: RequestContext, ino: number): Buffer | Errno {
    const node = this.tree.byIno.get(ino);
    if (node?.kind === 'view') return this.source.content(node.path, ctx.pid);
    if (node) return E.EISDIR;
    const pass = this.passthroughNode(ino);
    if (!pass) return E.ENOENT;
    const host = this.cpuDir.hostPath(pass.relative, this.source.visibleCpus(ctx.pid));
    if (host === null) return E.ENOENT;
    try {
      return readFileSync(host);
    } catch (err) {
      return errnoOf(err);
    }
  }

  private listDirectory(ctx: RequestContext, ino: number): DirEntry[] | Errno {
    const node = this.tree.byIno.get(ino);
    if (node?.kind === 'dir' && node !== this.cpuDirNode) {
      const entries: DirEntry[] = [
        { name: '.', ino: node.ino, type: DirentType.DIR },
        { name: '..', ino: node.parent, type: DirentType.DIR },
      ];
      for (const [name, child] of node.children) {
        const kind = this.tree.byIno.get(child)!.kind;
        entries.push({ name, ino: child, type: kind === 'dir' ? DirentType.DIR : DirentType.REG });
      }
      return entries;
    }
    const relative = node ? '' : this.passthroughNode(ino)?.relative;
    if (relative === undefined) return E.ENOENT;
    const parentIno = relative === '' ? this.cpuDirNode.parent : this.parentIno(relative);
    const entries: DirEntry[] = [
      { name: '.', ino, type: DirentType.DIR },
      { name: '..', ino: parentIno, type: DirentType.DIR },
    ];
    let hostEntries: HostEntry[];
    try {
      hostEntries = this.cpuDir.list(relative, this.source.visibleCpus(ctx.pid));
    } catch (err) {
      return errnoOf(err);
    }
    for (const entry of hostEntries) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      const view =
        relative === ''
          ? this.cpuDirNode.kind === 'dir' && this.cpuDirNode.children.get(entry.name)
          : undefined;
      if (view) continue; // listed below, once, as the virtual file
      entries.push({ name: entry.name, ino: this.remember(path), type: direntType(entry.kind) });
    }
    if (relative === '' && this.cpuDirNode.kind === 'dir') {
      for (const [name, child] of this.cpuDirNode.children)
        entries.push({ name, ino: child, type: DirentType.REG });
    }
    return entries;
  }

  // --- handles ---------------------------------------------------------------------------------

  private openHandle(): number {
    const fh = this.store.open();
    if (fh === 0 && !this.warnedUnbacked) {
      this.warnedUnbacked = true;
      this.log.warn('snapshot store has no slots: serving reads without per-handle snapshots');
    }
    return fh;
  }

  /** Keeps `content` as the handle's snapshot, `served` bytes of it given to the reader. */
  private keep(fh: number, content: Buffer, served = 0): void {
    if (fh === 0 || this.store.put(fh, content, served)) return;
    // Unknown handles (of an earlier serving process, or whose slot was taken) are served unbacked.
    if (content.length > this.store.stats().pageCount * 4096 && !this.warnedUnbacked) {
      this.warnedUnbacked = true;
      this.log.warn({ bytes: content.length }, 'a file larger than the snapshot pool is served without a snapshot');
    }
  }

  // --- passthrough nodes -----------------------------------------------------------------------

  private lookupPassthrough(ctx: RequestContext, relative: string, name: string): EntryReply | Errno {
    const callerDependent = !relative.includes('/') && isCpuName(name);
    const stats = this.hostStat(relative, ctx.pid);
    if (!stats) {
      // A cpuN another caller can see must not be cached as absent for everyone.
      return callerDependent ? E.ENOENT : this.negative();
    }
    const ino = this.remember(relative);
    return this.entry(
      this.hostAttr(ino, stats),
      callerDependent ? 0 : this.settings.entryTtlMs,
      this.attrTtlFor(relative),
    );
  }

  private remember(relative: string): number {
    const ino = derivedIno(CPU_PREFIX + relative);
    const known = this.passthrough.get(ino);
    if (!known) this.passthrough.set(ino, { ino, relative });
    else if (known.relative !== relative) {
      this.log.error(
        { ino, first: known.relative, second: relative },
        'node id collision between two host paths',
      );
    }
    return ino;
  }

  private passthroughNode(ino: number): PassthroughNode | undefined {
    const known = this.passthrough.get(ino);
    if (known) return known;
    // Another worker thread (or a previous serving process) handed this id to the kernel. Ids
    // are derived from paths, so walking the host tree recovers it; bounded in frequency.
    const now = Date.now();
    if (now - this.lastWalkMs < WALK_INTERVAL_MS && this.lastWalkMs !== 0) return undefined;
    this.lastWalkMs = now;
    for (const relative of this.cpuDir.walk()) this.remember(relative);
    return this.passthrough.get(ino);
  }

  private parentIno(relative: string): number {
    const slash = relative.lastIndexOf('/');
    return slash < 0 ? this.cpuDirNode.ino : derivedIno(CPU_PREFIX + relative.slice(0, slash));
  }

  private hostStat(relative: string, pid: number): Stats | null {
    const host = this.cpuDir.hostPath(relative, this.source.visibleCpus(pid));
    if (host === null) return null;
    try {
      return lstatSync(host);
    } catch {
      return null;
    }
  }

  private attrTtlFor(relative: string): number {
    // cpuN/... resolve to different host CPUs per caller; their attributes are alike, but keep them fresh.
    return isCpuName(relative.split('/', 1)[0]!) ? 0 : this.settings.attrTtlMs;
  }

  // --- attributes ------------------------------------------------------------------------------

  private staticAttr(node: StaticNode): Attr {
    if (node.kind === 'dir') {
      return {
        ino: node.ino,
        size: 0,
        mode: node.mode,
        nlink: 2,
        uid: 0,
        gid: 0,
        mtimeMs: this.settings.mountedAtMs,
      };
    }
    return {
      ino: node.ino,
      size: this.sizeHint(node.path),
      mode: S_IFREG | node.file.perm,
      nlink: 1,
      uid: 0,
      gid: 0,
      mtimeMs: Date.now(),
    };
  }

  private hostAttr(ino: number, stats: Stats): Attr {
    const isDir = stats.isDirectory();
    return {
      ino,
      size: isDir ? 0 : stats.size,
      mode: stats.isSymbolicLink() ? S_IFLNK | 0o777 : stats.mode,
      nlink: isDir ? 2 : 1,
      uid: 0,
      gid: 0,
      mtimeMs: stats.mtimeMs,
    };
  }

  /**
   * st_size of a view file. Kernel /proc files report 0, but some tools size their reads from
   * st_size, so report the host file's length rounded up to a page (never less than a page).
   */
  private sizeHint(path: string): number {
    const now = Date.now();
    const hint = this.sizeHints.get(path);
    if (hint && hint.until > now) return hint.size;
    const host = this.source.content(path, 0).length;
    const size = Math.max(4096, Math.ceil(host / 4096) * 4096);
    this.sizeHints.set(path, { size, until: now + SIZE_HINT_TTL_MS });
    return size;
  }

  private entry(attr: Attr, entryTtlMs: number, attrTtlMs = this.settings.attrTtlMs): EntryReply {
    return { nodeid: attr.ino, attr, entryTtlMs, attrTtlMs };
  }

  private negative(): EntryReply {
    return { nodeid: 0, attr: null, entryTtlMs: this.settings.entryTtlMs, attrTtlMs: 0 };
  }
}

function direntType(kind: HostEntry['kind']): DirEntry['type'] {
  return kind === 'dir' ? DirentType.DIR : kind === 'link' ? DirentType.LNK : DirentType.REG;
}

function errnoOf(err: unknown): Errno {
  const code = (err as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ENOENT':
      return E.ENOENT;
    case 'EACCES':
      return E.EACCES;
    case 'EPERM':
      return E.EPERM;
    case 'ENOTDIR':
      return E.ENOTDIR;
    case 'EISDIR':
      return E.EISDIR;
    case 'EINVAL':
      return E.EINVAL;
    case 'ENODATA':
      return E.ENODATA;
    default:
      return E.EIO;
  }
}
