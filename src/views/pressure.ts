/**
 * /proc/pressure/{cpu,memory,io}: the cgroup's own `<resource>.pressure` (cgroup v2), which has
 * exactly the kernel's /proc/pressure format (`some avg10=... total=...` and `full ...`).
 * Returns null when the file is unusable (missing, PSI disabled for the cgroup, malformed):
 * the host's file is served then. LXCFS serves io from the host even on v2.
 */
export function cgroupPressure(text: string | null): string | null {
  if (text === null || !text.startsWith('some ') || !text.endsWith('\n')) return null;
  return text;
}
