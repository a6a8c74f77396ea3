import { type CgroupLayout, cgroupDir } from './layout.js';
import type { PreadFiles } from './pread-files.js';

/** A container's I/O on one block device (`major:minor`), as /proc/diskstats counts it. */
export interface DeviceIo {
  reads: number;
  readsMerged: number;
  readBytes: number;
  readMs: number;
  writes: number;
  writesMerged: number;
  writeBytes: number;
  writeMs: number;
  discards: number;
  discardsMerged: number;
  discardBytes: number;
  discardMs: number;
  /** Time the device was busy for this cgroup (v1 CFQ io_service_time Total), ms. */
  ioMs: number;
}

export function emptyDeviceIo(): DeviceIo {
  return {
    reads: 0,
    readsMerged: 0,
    readBytes: 0,
    readMs: 0,
    writes: 0,
    writesMerged: 0,
    writeBytes: 0,
    writeMs: 0,
    discards: 0,
    discardsMerged: 0,
    discardBytes: 0,
    discardMs: 0,
    ioMs: 0,
  };
}

/**
 * Per-device I/O of a container's cgroup (recursive: descendants included), or null when the
 * kernel gives nothing usable (then /proc/diskstats is the host's):
 *  - v2: io.stat (`MAJ:MIN rbytes= wbytes= rios= wios= dbytes= dios=`); no merge or time counters;
 *  - v1 with the CFQ-era blkio files: serviced, merged, service bytes, service and wait time;
 *  - v1 on blk-mq kernels: blkio.throttle.io_serviced/io_service_bytes (requests and bytes).
 *    The kernel fills these only for cgroups with a throttle rule, so a file without any device
 *    line cannot be told apart from "no accounting": that case is treated as no data.
 */
export function readDeviceIo(
  layout: CgroupLayout,
  files: PreadFiles,
  path: string,
): Map<string, DeviceIo> | null {
  if (layout.version === 2) {
    const text = files.readText(`${cgroupDir(layout.root, path)}/io.stat`);
    return text === null ? null : parseIoStat(text);
  }
  const hierarchy = layout.hierarchy.blkio;
  if (hierarchy === null) return null;
  const dir = cgroupDir(hierarchy, path);
  const serviced = files.readText(`${dir}/blkio.io_serviced_recursive`);
  if (serviced !== null && hasDeviceLine(serviced)) {
    const devices = new Map<string, DeviceIo>();
    applyBlkio(devices, serviced, 'count');
    applyBlkio(devices, files.readText(`${dir}/blkio.io_merged_recursive`), 'merged');
    applyBlkio(devices, files.readText(`${dir}/blkio.io_service_bytes_recursive`), 'bytes');
    applyBlkio(devices, files.readText(`${dir}/blkio.io_service_time_recursive`), 'time');
    applyBlkio(devices, files.readText(`${dir}/blkio.io_wait_time_recursive`), 'time');
    return devices;
  }
  const throttled = files.readText(`${dir}/blkio.throttle.io_serviced_recursive`);
  if (throttled === null || !hasDeviceLine(throttled)) return null;
  const devices = new Map<string, DeviceIo>();
  applyBlkio(devices, throttled, 'count');
  applyBlkio(devices, files.readText(`${dir}/blkio.throttle.io_service_bytes_recursive`), 'bytes');
  return devices;
}

export function parseIoStat(text: string): Map<string, DeviceIo> {
  const devices = new Map<string, DeviceIo>();
  for (const line of text.split('\n')) {
    const parts = line.trim().split(/\s+/);
    if (parts.length < 2 || !parts[0]!.includes(':')) continue;
    const io = emptyDeviceIo();
    for (const kv of parts.slice(1)) {
      const eq = kv.indexOf('=');
      const value = Number(kv.slice(eq + 1));
      if (eq < 0 || !Number.isFinite(value)) continue;
      switch (kv.slice(0, eq)) {
        case 'rbytes':
          io.readBytes = value;
          break;
        case 'wbytes':
          io.writeBytes = value;
          break;
        case 'rios':
          io.reads = value;
          break;
        case 'wios':
          io.writes = value;
          break;
        case 'dbytes':
          io.discardBytes = value;
          break;
        case 'dios':
          io.discards = value;
          break;
      }
    }
    devices.set(parts[0]!, io);
  }
  return devices;
}

function hasDeviceLine(text: string): boolean {
  return /^\d+:\d+ /m.test(text);
}

/** v1 blkio files: `MAJ:MIN <Read|Write|Sync|Async|Discard|Total> <value>` lines, then `Total <n>`. */
function applyBlkio(
  devices: Map<string, DeviceIo>,
  text: string | null,
  kind: 'count' | 'merged' | 'bytes' | 'time',
): void {
  if (text === null) return;
  for (const line of text.split('\n')) {
    const [dev, op, raw] = line.split(' ');
    if (dev === undefined || op === undefined || raw === undefined || !dev.includes(':')) continue;
    const value = Number(raw);
    if (!Number.isFinite(value)) continue;
    let io = devices.get(dev);
    if (io === undefined) {
      io = emptyDeviceIo();
      devices.set(dev, io);
    }
    // times are in ns; diskstats counts ms (each file truncated on its own, as LXCFS does)
    const ms = Math.floor(value / 1e6);
    switch (kind) {
      case 'count':
        if (op === 'Read') io.reads = value;
        else if (op === 'Write') io.writes = value;
        else if (op === 'Discard') io.discards = value;
        break;
      case 'merged':
        if (op === 'Read') io.readsMerged = value;
        else if (op === 'Write') io.writesMerged = value;
        else if (op === 'Discard') io.discardsMerged = value;
        break;
      case 'bytes':
        if (op === 'Read') io.readBytes = value;
        else if (op === 'Write') io.writeBytes = value;
        else if (op === 'Discard') io.discardBytes = value;
        break;
      case 'time':
        if (op === 'Read') io.readMs += ms;
        else if (op === 'Write') io.writeMs += ms;
        else if (op === 'Discard') io.discardMs += ms;
        else if (op === 'Total' && io.ioMs === 0) io.ioMs = ms;
        break;
    }
  }
}
