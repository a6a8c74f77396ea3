/**
 * Parsing of /proc/<pid>/mountinfo (proc(5)): which filesystem is mounted where, in any mount
 * namespace. Used for start-up checks and for finding containers that hold stale binds.
 */
import { readFileSync } from 'node:fs';

export interface MountEntry {
  id: number;
  parentId: number;
  /** major:minor of the superblock: equal for every bind of one FUSE connection. */
  device: string;
  /** Path inside the filesystem that this mount shows (a bind of one file shows that file). */
  root: string;
  mountpoint: string;
  options: string;
  /** Optional fields such as `shared:12` or `master:3`. */
  propagation: string[];
  fstype: string;
  source: string;
  superOptions: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash < 0 || fields.length < dash + 3) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2]!,
      root: unescapeOctal(fields[3]!),
      mountpoint: unescapeOctal(fields[4]!),
      options: fields[5]!,
      propagation: fields.slice(6, dash),
      fstype: fields[dash + 1]!,
      source: unescapeOctal(fields[dash + 2]!),
      superOptions: fields[dash + 3] ?? '',
    });
  }
  return entries;
}

export function readMountinfo(pid: number | 'self' = 'self', procRoot = '/proc'): MountEntry[] {
  return parseMountinfo(readFileSync(`${procRoot}/${pid}/mountinfo`, 'utf8'));
}

/** The mounts stacked on `path`, bottom first (the last one is what the path shows). */
export function mountsAt(entries: readonly MountEntry[], path: string): MountEntry[] {
  return entries.filter((e) => e.mountpoint === path);
}
