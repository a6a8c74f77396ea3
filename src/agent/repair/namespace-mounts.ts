/**
 * Changing mounts inside another process's mount namespace with the host's util-linux, so the
 * container needs no shell and no mount binary (distroless images): `mount -N`/`umount -N` enter
 * the namespace only for the mount system call, after the binary has been loaded from the host.
 *
 * umount (and a mount that remounts read-only) reads /proc/self/mountinfo after entering the
 * namespace, where /proc is the container's procfs: a process of the host's pid namespace has no
 * entry there, so the command also runs in the container's pid namespace (nsenter -p), where it does.
 *
 * Every change a namespace needs is made by one host command: a host shell (`nsenter -t PID -p --
 * sh -c SCRIPT`, the mount namespace not entered, so the shell and the binaries are the host's)
 * that detaches every mount to replace with one umount, binds each new one with a mount, and
 * prints one status line per change. Paths reach the script only as positional arguments, never
 * inside its text.
 */
import { type CommandResult, runHostCommand } from './host-command.js';

/** Time for one umount or mount (a bind of an unresponsive connection's file may wait). */
const MOUNT_TIMEOUT_MS = 10_000;

export type MountChange =
  /** Lazily detach the mount `mountId` (the topmost on `target`), then bind `source` there. */
  | {
    readonly kind: 'replace';
    readonly mountId: number;
    readonly source: string;
    readonly target: string;
    readonly flags: readonly string[];
  }
  /** Bind `source` on `target`. */
  | { readonly kind: 'bind'; readonly source: string; readonly target: string; readonly flags: readonly string[] }
  /** Lazily detach the mount `mountId` (the topmost on `target`). */
  | { readonly kind: 'detach'; readonly mountId: number; readonly target: string };

export interface ChangeResult {
  readonly ok: boolean;
  /** The step that failed: detaching the old mount or binding the new one. */
  readonly failedStep?: 'detach' | 'bind';
  /** Why it failed (umount's or mount's message, or why the command did not answer). */
  readonly detail: string;
}

/**
 * Arguments after the script: $1 the namespace file, $2 the namespace's mountinfo (as the host
 * sees it), $3 how many arguments describe changes (5 per change: kind, mount id or "-", mount
 * options or "-", source or "-", target), then those, then every target to detach. One umount
 * detaches all of them (umount takes a list); whether each mount went is then read from the
 * mountinfo by mount id, so a failure is pinned on the right change. Then one mount per bind.
 * Output, one line per change, in order: `INDEX ok`, or `INDEX detach|bind MESSAGE` (one line).
 */
const SCRIPT = `ns=$1; info=$2; n=$3; shift 3
line() { printf '%s %s %s\n' "$i" "$1" "$(printf '%s' "$2" | tr '\n' ' ')"; }
detach() { shift $(($1 + 1)); [ $# -eq 0 ] || umount -N "$ns" -l -- "$@"; }
uerr=$(detach "$n" "$@" 2>&1)
left=' '
while read -r id rest; do left="$left$id "; done < "$info"
i=0
while [ "$n" -ge 5 ]; do
  kind=$1; id=$2; opts=$3; src=$4; tgt=$5; shift 5; n=$((n - 5))
  case "$left" in *" $id "*) line detach "\${uerr:-the mount is still there}"; i=$((i + 1)); continue ;; esac
  if [ "$kind" = detach ]; then echo "$i ok"
  elif [ "$opts" = - ] && ! err=$(mount -N "$ns" --bind -- "$src" "$tgt" 2>&1); then line bind "$err"
  elif [ "$opts" != - ] && ! err=$(mount -N "$ns" --bind -o "$opts" -- "$src" "$tgt" 2>&1); then line bind "$err"
  else echo "$i ok"
  fi
  i=$((i + 1))
done`;

/** The script's arguments for these changes, in the namespace of `pid`. */
export function changeArguments(pid: number, changes: readonly MountChange[]): string[] {
  const described: string[] = [];
  const detached: string[] = [];
  for (const change of changes) {
    const flags = change.kind === 'detach' ? [] : change.flags;
    described.push(
      change.kind,
      change.kind === 'bind' ? '-' : String(change.mountId),
      flags.length > 0 ? flags.join(',') : '-',
      change.kind === 'detach' ? '-' : change.source,
      change.target,
    );
    if (change.kind !== 'bind') detached.push(change.target);
  }
  return [`/proc/${pid}/ns/mnt`, `/proc/${pid}/mountinfo`, String(described.length), ...described, ...detached];
}

/** Reads the script's status lines back into one result per change. */
export function parseChangeOutput(changes: readonly MountChange[], command: CommandResult): ChangeResult[] {
  const answers = new Map<number, ChangeResult>();
  for (const line of (command.stdout ?? '').split('\n')) {
    const match = /^(\d+) (ok|detach|bind)(?: (.*))?$/.exec(line);
    if (!match) continue;
    const step = match[2] as 'ok' | 'detach' | 'bind';
    const detail = (match[3] ?? '').trim();
    answers.set(
      Number(match[1]),
      step === 'ok' ? { ok: true, detail: '' } : { ok: false, failedStep: step, detail: detail || `${step === 'detach' ? 'umount' : 'mount'} failed` },
    );
  }
  return changes.map((change, i) => {
    const answer = answers.get(i);
    if (answer) return answer;
    // The command stopped before this change (killed after its time, or it could not run).
    const failedStep = change.kind === 'bind' ? 'bind' : 'detach';
    return { ok: false, failedStep, detail: command.detail || 'no answer' };
  });
}

/**
 * Makes these changes in the mount namespace of `pid`, in order, with one host command; paths
 * are as the process `pid` sees them, flags are `mount -o` options such as `ro`.
 */
export async function changeInNamespace(pid: number, changes: readonly MountChange[]): Promise<ChangeResult[]> {
  if (changes.length === 0) return [];
  const steps = 1 + changes.filter((c) => c.kind !== 'detach').length;
  const command = await runHostCommand(
    ['nsenter', '-t', String(pid), '-p', '--', 'sh', '-c', SCRIPT, 'sh', ...changeArguments(pid, changes)],
    MOUNT_TIMEOUT_MS * steps,
    true,
  );
  return parseChangeOutput(changes, command);
}
