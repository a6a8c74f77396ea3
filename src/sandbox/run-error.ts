/**
 * A failure of `lxcfs-ts run` itself (as opposed to CMD's own exit status), with a message that
 * says what happened and what to do. The default status 125 is docker's for "the runtime failed".
 */
export class RunError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 125,
  ) {
    super(message);
  }
}

/** The errno code of a failed system call (`ENOENT`, `EBUSY`...), or undefined for other errors. */
export function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string'
    ? err.code
    : undefined;
}
