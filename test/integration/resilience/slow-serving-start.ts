/**
 * Preloaded into a daemon under test (NODE_OPTIONS=--import=<this file>): its serving process
 * sleeps LXCFS_TS_TEST_SERVING_DELAY_MS before it loads, as a serving process does on a slow or
 * emulated machine (10-15 s in the QEMU guests of the v2 tier). The supervisor is not delayed.
 */
const delayMs = Number(process.env.LXCFS_TS_TEST_SERVING_DELAY_MS ?? 0);
if (delayMs > 0 && process.argv[1]?.endsWith('/serve-main.js')) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, delayMs);
}
export {};
