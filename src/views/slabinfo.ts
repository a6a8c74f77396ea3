/**
 * /proc/slabinfo: the container's `memory.kmem.slabinfo` (cgroup v1) when the kernel fills it.
 * Since Linux 5.9 slab objects are no longer per-cgroup caches and that file lists no cache, and
 * cgroup v2 has no such file at all: then null, and the host's /proc/slabinfo is served.
 */
export function cgroupSlabinfo(text: string | null): string | null {
  if (text === null || !text.startsWith('slabinfo - version')) return null;
  const lines = text.split('\n').filter((l) => l !== '');
  // version line, column header, then at least one cache
  return lines.length >= 3 ? text : null;
}
