/**
 * Time limits count the CPU time a script used, not the time it waited for a core.
 *
 * isolated-vm's `timeout` is wall-clock time while the isolate runs, and its `cpuTime` is too
 * (measured: 880 ms for a call that used 114 ms of CPU beside six busy processes; see cpuSince in
 * sandbox.ts, which bounds it with the process's own CPU time). So the host cannot watch CPU time
 * grow and stop a script at its limit. isolated-vm stops a call at a wall-clock timeout (the limit
 * at first), which also gives the stack where the loop was interrupted; the host then reads the
 * CPU time the call used: at least CPU_SHARE_FOR_TIMEOUT of the limit, the timeout stands; less,
 * and the host was busy (the isolate's thread did not get a core): the call runs again on a fresh
 * isolate with the wall-clock timeout scaled by the slowdown it saw, up to maxWallTimeoutMs(). A
 * loop then stops after using its limit in CPU time; a healthy call is not failed by a busy host.
 * Running again is safe because a call has no effect outside its isolate, which is rebuilt: no
 * timers, no I/O. (A capability with effects, such as a fetch, would have to be counted first.)
 *
 * A call that waits (a promise that never settles: scripts have no timers or I/O to wait for)
 * uses no CPU. isolated-vm's `cpuTime` stops advancing while its isolate runs nothing, so the host
 * ends a call whose isolate has been idle for waitingIdleMs() once its timeout has passed (unless
 * it ran to that timeout: isolated-vm's answer is coming); and any call after waitBackstopMs() of
 * wall-clock time, whatever its isolate does (endsAsWaiting).
 */

/** A call stopped at its wall-clock timeout having used at least this share of its CPU limit timed out. */
export const CPU_SHARE_FOR_TIMEOUT = 0.9;
/** The wall-clock timeout never grows past this many times the limit, or the limit and 2 s if more (see maxWallTimeoutMs). */
export const MAX_WALL_FACTOR = 8;

/** The longest wall-clock timeout a call (or load) with this CPU limit gets. */
export function maxWallTimeoutMs(limitMs: number): number {
  return Math.max(MAX_WALL_FACTOR * limitMs, limitMs + 2_000);
}
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
  const ceiling = maxWallTimeoutMs(limitMs);
  if (cpuMs >= CPU_SHARE_FOR_TIMEOUT * limitMs || wallTimeoutMs >= ceiling) return undefined;
  // A call that used next to no CPU time (waiting in Atomics.wait, or not scheduled) goes to the ceiling.
  const slowdown = wallTimeoutMs / Math.max(cpuMs, 0.01);
  return Math.min(ceiling, Math.ceil(limitMs * slowdown * RETRY_MARGIN));
}

/**
 * A call stopped at its wall-clock timeout having used this share of its limit more in CPU time
 * than that timeout was stopped late: V8 was in work it does not interrupt (collecting a heap at
 * its limit, as a heap bomb makes it do for hundreds of ms, or one long native operation). Such a
 * call runs once more with twice the timeout, so that a heap bomb ends at its heap limit (memory)
 * rather than at whichever limit this run happened to reach first; a second late stop stands.
 */
export const LATE_STOP_SHARE = 0.4;

export function stoppedLate(limitMs: number, wallTimeoutMs: number, cpuMs: number): boolean {
  return cpuMs - wallTimeoutMs >= LATE_STOP_SHARE * limitMs;
}

/**
 * How long the host waits for a call's answer, wall clock, before it ends it as waiting for ever:
 * past isolated-vm's timeout, by at least a second, so that a call that runs is stopped by
 * isolated-vm (with its stack) and one that waits by the host.
 */
export function waitBackstopMs(wallTimeoutMs: number): number {
  return wallTimeoutMs + Math.max(1_000, wallTimeoutMs);
}

/**
 * How long the isolate of a call past its timeout must run nothing (its `cpuTime` unchanged) for
 * the call to be ended as waiting. Not shorter than 200 ms: the call's task may still be queued for
 * a thread on a very busy host. (A capability that makes a script wait for the host, such as a
 * fetch, would have to be counted as not idle.)
 */
function waitingIdleMs(wallTimeoutMs: number): number {
  return Math.max(200, wallTimeoutMs);
}

/**
 * Whether the host ends a call as waiting for ever, having waited `waitedMs` for it, its isolate
 * idle for the last `idleMs` after running for `ranMs` (its `cpuTime` since the call began). A
 * call whose isolate ran to its timeout is not ended as idle: isolated-vm stopped it, or is
 * stopping it, and its answer (the time limit, with the loop's stack) is on its way, however slowly
 * a busy machine brings it (CI once saw a loop reported as a promise that never settles, the answer
 * later than the idle rule). The backstop still ends it.
 */
export function endsAsWaiting(waitedMs: number, idleMs: number, ranMs: number, wallTimeoutMs: number): boolean {
  if (waitedMs >= waitBackstopMs(wallTimeoutMs)) return true;
  return waitedMs >= wallTimeoutMs && idleMs >= waitingIdleMs(wallTimeoutMs) && !ranToItsTimeout(ranMs, wallTimeoutMs);
}
