/**
 * /proc/uptime: `<uptime> <idle>` in seconds with two decimals, truncated as the kernel does.
 *
 * Time rule (see docs/views.md): the first field is the uptime the kernel itself would show the
 * caller — the host's, shifted by the caller's time-namespace boottime offset when it has one —
 * so `uptime`, `top` and `ps` (which computes start times and elapsed times from this value, the
 * per-process start times in /proc/<pid>/stat and btime) always agree. The idle field is the
 * container's: the idle time of its /proc/stat counters.
 */
export function renderUptime(uptimeSec: number, idleSec: number): string {
  return `${centiseconds(uptimeSec)} ${centiseconds(idleSec)}\n`;
}

function centiseconds(sec: number): string {
  const cs = Math.max(0, Math.floor(sec * 100 + 1e-6));
  const whole = Math.floor(cs / 100);
  const frac = cs - whole * 100;
  return `${whole}.${frac < 10 ? '0' : ''}${frac}`;
}

/** The first field of the host's /proc/uptime, in seconds (NaN if malformed). */
export function parseUptime(text: string): { uptime: number; idle: number } {
  const [up, idle] = text.trim().split(/\s+/);
  return { uptime: Number(up), idle: Number(idle) };
}
