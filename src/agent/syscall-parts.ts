/**
 * What the supervisor needs of the syscall view: its listeners' socket, the in-flight record and
 * the seccomp profile. They stand on the FFI module (koffi and its addon: about 3 MiB of the
 * supervisor's memory), so the supervisor imports this module only when it serves sysinfo(2) or
 * takes over an agent that did; a default agent never loads it.
 */
export { InflightRecord, sizeInflightFile } from '../syscall/inflight-record.js';
export { ListenerHub } from '../syscall/listener-hub.js';
export { installSysinfoProfile, sysinfoProfileName } from '../syscall/seccomp-profile.js';
export { nativeArch } from '../native/libc.js';
