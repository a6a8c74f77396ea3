/**
 * The contract between the virtual tree (src/fs) and the per-container content (src/cgroup +
 * src/views). The tree knows paths, inodes and the FUSE read protocol; a ViewSource knows what a
 * given caller should see. Every method is synchronous: it runs inside a FUSE worker thread.
 */
export interface ViewSource {
  /**
   * The whole content of a view file (a `path` from src/views/catalog.ts) as the calling process
   * should see it. Never throws and never returns an empty buffer for a file the host has: when the
   * caller's container cannot be resolved (it exited, its cgroup vanished, pid 0) it returns the
   * host's content, and says so at debug level.
   */
  content(path: string, callerPid: number): Buffer;

  /**
   * The host CPU numbers the caller may see, in ascending order, of which the i-th is presented as
   * `cpu<i>` (one CPU count N everywhere: cpuinfo, stat, online, possible, present, cpuN dirs).
   * Returns null when the caller sees the host's CPUs unchanged.
   */
  visibleCpus(callerPid: number): readonly number[] | null;
}
