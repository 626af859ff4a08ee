/**
 * Time limits count the CPU time a script used, not the time it waited for a core.
 *
 * isolated-vm's `timeout` is wall-clock time while the isolate runs, and its `cpuTime` read while a
 * script runs is no better: for the running stretch it adds wall-clock time (its CpuTimer::Delta
 * reads steady_clock; the thread's CPU clock is read only when a stretch ends). So the host cannot
 * watch CPU time grow and stop a script at its limit. What it can read exactly is the CPU time of
 * a call once isolated-vm has stopped it. So isolated-vm stops a call at a wall-clock timeout (the
 * limit at first), which also gives the stack where the loop was interrupted, and the host then
 * reads the CPU time the call used: at least CPU_SHARE_FOR_TIMEOUT of the limit, the timeout
 * stands; less, and the host was busy (the isolate's thread did not get the core): the call runs
 * again on a fresh isolate with the wall-clock timeout scaled by the slowdown it saw, up to
 * MAX_WALL_FACTOR times the limit. A loop then stops after using its limit in CPU time, however
 * busy the host; a healthy call is not failed by a busy host.
 *
 * A call that waits (a promise that never settles: scripts have no timers or I/O to wait for) uses
 * no CPU; the host stops it after waitBackstopMs() of wall-clock time.
 */

/** A call stopped at its wall-clock timeout having used at least this share of its CPU limit timed out. */
export const CPU_SHARE_FOR_TIMEOUT = 0.9;
/** The wall-clock timeout never grows past this many times the limit. */
export const MAX_WALL_FACTOR = 8;
/** Margin added to a scaled wall-clock timeout, over the slowdown the last attempt saw. */
const RETRY_MARGIN = 1.25;

/**
 * Whether a failed call may have been stopped by isolated-vm's timeout: the host waited for it at
 * least that long (give or take a tenth), by its own clock. Never the error's message: a script
 * writes that when it leaves a promise rejected ("Script execution timed out." included). A call
 * that failed sooner failed for another reason. One that the host only waited long for (a busy
 * host, a call handed over behind others) but that used little CPU time is run again with a
 * longer timeout (retryTimeoutMs), where its own failure shows for what it is. (isolated-vm's
 * `wallTime` would be the isolate's own figure, but it was seen not to advance over a call that
 * its timeout stopped after 100 ms of CPU time.)
 */
export function ranToItsTimeout(waitedMs: number, wallTimeoutMs: number): boolean {
  return waitedMs >= 0.9 * wallTimeoutMs;
}

/**
 * After isolated-vm stopped a call at `wallTimeoutMs`: the wall-clock timeout to run it again
 * with, when it used less than its share of `limitMs` in CPU time (the host was busy); undefined
 * when the timeout stands.
 */
export function retryTimeoutMs(limitMs: number, wallTimeoutMs: number, cpuMs: number): number | undefined {
  const ceiling = MAX_WALL_FACTOR * limitMs;
  if (cpuMs >= CPU_SHARE_FOR_TIMEOUT * limitMs || wallTimeoutMs >= ceiling) return undefined;
  const slowdown = wallTimeoutMs / Math.max(cpuMs, wallTimeoutMs / MAX_WALL_FACTOR);
  return Math.min(ceiling, Math.ceil(limitMs * slowdown * RETRY_MARGIN));
}

/**
 * How long the host waits for a call's answer, wall clock, before it ends it as waiting for ever:
 * past isolated-vm's timeout, by at least a second, so that a call that runs is stopped by
 * isolated-vm (with its stack) and one that waits by the host.
 */
export function waitBackstopMs(wallTimeoutMs: number): number {
  return wallTimeoutMs + Math.max(1_000, wallTimeoutMs);
}
