/**
 * Which invocations of a script run on the host's own thread (isolated-vm's applySync) instead of
 * its isolate's thread (apply). The hop to the isolate's thread and back costs two thread wake-ups
 * and a promise per call, more than a short handler costs to run (docs/benchmarks.md §7); on the
 * event loop's thread it costs none of that, but nothing else runs on that thread meanwhile. So
 * only a script that has shown itself short runs there: its last INLINE_AFTER_SHORT_CALLS
 * invocations each used under SHORT_CALL_CPU_MS of CPU and none sent a fetch/kv request.
 *
 * A call run there has the same time and heap limits, the same failures and the same isolate as on
 * its own thread: only the thread differs. One that turns out long holds the event loop that long,
 * once, and its script goes back to its own thread: for INLINE_AFTER_SHORT_CALLS short calls when
 * it used under LONG_CALL_MS (a collection, or the thread descheduled on a busy host: the figure is
 * isolated-vm's, which counts wall time while the isolate runs), and for twice as many as the last
 * time when it used more, or was stopped at a limit (the script itself is long now and then).
 *
 * While the event loop is busy, the same short scripts' calls go to their isolate's thread in
 * batches instead (batch.ts). A batch that fails as a whole doubles the short calls needed, as a
 * long inline call does: a script that fails so now and then is batched less and less often.
 */

/** A call under this much CPU time counts as short (a collection or a busy core now and then does not make a script long). */
export const SHORT_CALL_CPU_MS = 2;
/** A call run inline this long (or stopped at a limit) doubles the short calls its script needs to come back. */
export const LONG_CALL_MS = 10;
/** Short calls in a row, on the isolate's thread, before a script's calls run on the host's. */
export const INLINE_AFTER_SHORT_CALLS = 16;
/** The most short calls in a row ever asked for (it doubles each time a call run inline was long). */
const MAX_SHORT_CALLS = 16 * 1024;

export class InlinePolicy {
  private streak = 0;
  private needed: number;
  /** A call of this version sent a fetch/kv request: its calls wait for the host, and stay on their thread. */
  private sendsRequests = false;
  /** Calls run on the host's thread, and those of them that were not short (the script's figures). */
  inlineCalls = 0;
  longInlineCalls = 0;
  /** Calls answered in a batch, the batches made, and those that failed as a whole (their calls ran again alone). */
  batchedCalls = 0;
  batches = 0;
  failedBatches = 0;

  constructor(
    private readonly enabled: boolean,
    after = INLINE_AFTER_SHORT_CALLS,
  ) {
    this.needed = Math.max(0, after);
  }

  /** Whether the next call may run on the host's thread (the caller also checks that its isolate is idle). */
  get ready(): boolean {
    return this.enabled && this.short;
  }

  /** Whether the script has shown itself short: its calls may also go to its isolate in batches (config batchCalls). */
  get short(): boolean {
    return !this.sendsRequests && this.streak >= this.needed;
  }

  /**
   * A finished invocation: its CPU time, whether it ended as a script's call may (not stopped at
   * a limit) and whether it ran on the host's thread.
   */
  observe(cpuMs: number, normal: boolean, inline: boolean): void {
    if (normal && cpuMs < SHORT_CALL_CPU_MS) {
      this.streak++;
      return;
    }
    if (inline) {
      this.longInlineCalls++;
      if (!normal || cpuMs >= LONG_CALL_MS) this.needed = Math.min(Math.max(1, 2 * this.needed), MAX_SHORT_CALLS);
    }
    this.streak = 0;
  }

  /** A batch of this script's calls failed as a whole (see batch.ts). */
  batchFailed(): void {
    this.failedBatches++;
    this.needed = Math.min(Math.max(1, 2 * this.needed), MAX_SHORT_CALLS);
    this.streak = 0;
  }

  requested(): void {
    this.sendsRequests = true;
    this.streak = 0;
  }
}
