/** Flag parsing shared by `lxcfs-ts webhook` and `lxcfs-ts inject`. */
import { type ParseArgsConfig, parseArgs } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

import { sysinfoProfileName } from '../syscall/seccomp-profile.js';
import { defaultViewDir, type InjectionOptions } from './injection-plan.js';

export class UsageError extends Error {}

export const injectionFlags = {
  'view-dir': { type: 'string' },
  files: { type: 'string', multiple: true },
  'init-containers': { type: 'boolean' },
  'no-parent-mount': { type: 'boolean' },
  sysinfo: { type: 'boolean' },
  'sysinfo-profile': { type: 'string' },
} as const;

export const injectionHelp = `Injection:
  --view-dir DIR        the view's mountpoint on the nodes (default ${defaultViewDir};
                        the legacy LXCFS layout is --view-dir /var/lib/lxcfs --no-parent-mount)
  --files LIST          comma-separated view files to mount (repeatable). Default: "default" =
                        proc/{cpuinfo,meminfo,stat,uptime,diskstats,swaps,loadavg,slabinfo} and
                        sys/devices/system/cpu/online. Opt-in: "pressure" (proc/pressure/{cpu,memory,io};
                        runc refuses mounts there, crun accepts them) and "sys/devices/system/cpu" (the
                        whole directory, instead of the online file)
  --init-containers     also mount into plain init containers (native sidecars, i.e. init
                        containers with restartPolicy: Always, always get the view)
  --no-parent-mount     do not mount the view's parent directory (read-only, HostToContainer) into
                        pods; without it running pods cannot be repaired after an agent restart
  --sysinfo             offer the syscall view (sysinfo(2): busybox free/uptime, getloadavg()) to pods
                        annotated, or in namespaces labelled, lxcfs-ts.io/sysinfo=enabled: their
                        containers get the agent's Localhost seccomp profile (agents need
                        --sysinfo-socket and --seccomp-profile-dir). Never over Unconfined or another
                        Localhost profile; the pod's lxcfs-ts.io/sysinfo-status annotation says why
  --sysinfo-profile P   the profile's path below the kubelet's seccomp directory (default
                        ${sysinfoProfileName}; implies --sysinfo)`;

export function injectionOptionsFrom(values: {
  'view-dir'?: string | undefined;
  files?: string[] | undefined;
  'init-containers'?: boolean | undefined;
  'no-parent-mount'?: boolean | undefined;
  sysinfo?: boolean | undefined;
  'sysinfo-profile'?: string | undefined;
}): InjectionOptions {
  const sysinfo = values.sysinfo === true || values['sysinfo-profile'] !== undefined;
  return {
    viewDir: values['view-dir'] ?? defaultViewDir,
    files: (values.files ?? ['default']).flatMap((f) => f.split(',')),
    initContainers: values['init-containers'] ?? false,
    parentMount: !(values['no-parent-mount'] ?? false),
    sysinfoProfile: sysinfo ? (values['sysinfo-profile'] ?? sysinfoProfileName) : null,
  };
}

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "15m", "2160h", "10d", "1h30m" -> milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new UsageError(`${flag}: "${text}" is not a duration like 30s, 15m, 2160h or 10d`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * units[p[2]!]!, 0);
}

/** "HOST:PORT", "[::1]:PORT" or ":PORT" -> host and port. */
export function parseListen(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535) throw new UsageError(`${flag}: "${text}" is not HOST:PORT`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Strict parsing (unknown flags are errors) with -h/--help added; usage errors become UsageError. */
export function parseFlags<T extends ParseArgsOptionsConfig>(argv: string[], options: T) {
  try {
    return parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } } as T & {
        help: { type: 'boolean'; short: 'h' };
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}
