import { performance } from "node:perf_hooks";

/**
 * Whether the event loop has been busy lately: its utilization (the share of time it ran
 * callbacks rather than waited for I/O) over the last WINDOW_MS, read by a timer. Calls of short
 * scripts run on the event loop's thread only while it has time to spare (inline-policy.ts): when
 * it is the bottleneck, the isolates' own threads work beside it, on the other cores.
 * Measured on 2 cores (docs/benchmarks.md §7): inline, a three-script pipeline cost 20% less CPU
 * at one connection, and answered 15% fewer requests at 16, where the loop was saturated.
 */
const WINDOW_MS = 100;
/** Busier than this share of the last window: calls go to their isolates' threads. */
export const BUSY_SHARE = 0.8;

export interface LoopLoad {
  readonly busy: boolean;
  close(): void;
}

export function watchLoopLoad(busyShare = BUSY_SHARE): LoopLoad {
  let last = performance.eventLoopUtilization();
  let busy = false;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    busy = performance.eventLoopUtilization(now, last).utilization > busyShare;
    last = now;
  }, WINDOW_MS);
  timer.unref();
  return {
    get busy() {
      return busy;
    },
    close: () => clearInterval(timer),
  };
}
