import type { DeviceIo } from '../cgroup/io.js';

/**
 * /proc/diskstats for a container: every host device line, in the host's order and with the host's
 * number of columns (11, 15 or 17 depending on the kernel), carrying the container's own counters
 * for that device (zeros for devices it did not use, and for what the cgroup does not account:
 * in-flight requests, flushes, and on v2 merges and times). Unlike LXCFS, which drops idle
 * devices (and so can serve an empty file), the device list stays the host's.
 */
export function renderDiskstats(hostText: string, devices: ReadonlyMap<string, DeviceIo>): string {
  let out = '';
  for (const line of hostText.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 4) continue;
    const [major, minor, name] = parts as [string, string, string];
    const columns = parts.length - 3;
    const io = devices.get(`${major}:${minor}`);
    const values = io === undefined ? [] : fieldsOf(io);
    let fields = '';
    for (let i = 0; i < columns; i++) fields += ` ${values[i] ?? 0}`;
    out += `${major.padStart(4)} ${minor.padStart(7)} ${name}${fields}\n`;
  }
  return out;
}

const sectors = (bytes: number) => Math.floor(bytes / 512);

function fieldsOf(io: DeviceIo): number[] {
  return [
    io.reads,
    io.readsMerged,
    sectors(io.readBytes),
    io.readMs,
    io.writes,
    io.writesMerged,
    sectors(io.writeBytes),
    io.writeMs,
    0, // I/Os in flight
    io.ioMs,
    io.readMs + io.writeMs + io.discardMs, // weighted time
    io.discards,
    io.discardsMerged,
    sectors(io.discardBytes),
    io.discardMs,
    0, // flushes
    0, // flush time
  ];
}
