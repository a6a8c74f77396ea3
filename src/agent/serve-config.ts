import type { LogLevel } from '../common/log.js';
import type { ViewOptions } from '../common/options.js';
import type { NegotiatedSession } from '../fuse/init.js';
import type { RepairResult } from './repair/view-repairer.js';

/** What the supervisor tells each serving process it starts (passed as JSON in the environment). */
export interface ServeConfig {
  view: ViewOptions;
  session: NegotiatedSession;
  logLevel: LogLevel;
  threads: number;
  entryTtlMs: number;
  attrTtlMs: number;
  mountedAtMs: number;
  mountpoint: string;
  /** A request unanswered for this long gets the host's content instead (and the worker is replaced). */
  deadlineMs: number;
  /** HOST:PORT of /healthz, /readyz, /metrics, or null for none. */
  healthAddress: { host: string; port: number } | null;
  /** Serve sysinfo(2) notifications for the listeners the supervisor holds. */
  sysinfo: boolean;
  /** 0 for the first serving process on this connection, then 1, 2... after restarts. */
  generation: number;
}

export const SERVE_CONFIG_ENV = 'LXCFS_TS_SERVE_CONFIG';
/** The serving process finds the /dev/fuse connection on this descriptor. */
export const SERVE_FUSE_FD = 3;
/** The syscall view's in-flight record (see syscall/inflight-record.ts), when sysinfo is served. */
export const SERVE_INFLIGHT_FD = 4;

/** Sent by the supervisor (which runs the repairs) to the serving process (which serves /metrics). */
export interface RepairTotalsMessage {
  readonly type: 'repairs';
  readonly totals: Readonly<Record<RepairResult, number>>;
}

/** Sent by the supervisor after a takeover: requests the old agent's serving process had read go back to the queue. */
export interface ResendMessage {
  readonly type: 'resend';
}
