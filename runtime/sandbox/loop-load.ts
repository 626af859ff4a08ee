import type { Server, Socket } from "node:net";
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
/**
 * Under this share of the last window: the server has room for work of its own that can wait (the
 * compiler's warm-up, typecheck-service.ts). Not merely "not busy": loading the compiler takes over
 * a second of a core, and a server answering a steady load with its loop at half its time (a
 * three-script hook at 16 connections on 2 cores) gave it a tenth of its CPU for seconds.
 */
export const QUIET_SHARE = 0.2;

export interface LoopLoad {
  /**
   * The loop was busy over the last window and, when the server's connections are counted, more
   * than one is open: a call run on the loop now would hold up other requests.
   */
  readonly busy: boolean;
  readonly quiet: boolean;
  /**
   * Counts the server's open connections from now on. With one open (a connector's usual load: one
   * call at a time on a kept-alive connection) no other request can be waiting behind a call on the
   * loop, though that one request alone keeps the loop over the busy share; its scripts' calls then
   * stay inline instead of hopping to their isolates alone (docs/benchmarks.md: 4–8% less CPU per
   * request at one connection).
   */
  countConnections(server: Server): void;
  close(): void;
}

export function watchLoopLoad(busyShare = BUSY_SHARE): LoopLoad {
  let last = performance.eventLoopUtilization();
  let busy = false;
  let quiet = true;
  let openConnections: number | undefined;
  const timer = setInterval(() => {
    const now = performance.eventLoopUtilization();
    const { utilization } = performance.eventLoopUtilization(now, last);
    busy = utilization > busyShare;
    quiet = utilization < QUIET_SHARE;
    last = now;
  }, WINDOW_MS);
  timer.unref();
  return {
    get busy() {
      return busy && (openConnections === undefined || openConnections > 1);
    },
    get quiet() {
      return quiet;
    },
    countConnections(server) {
      openConnections ??= 0;
      server.on("connection", (socket: Socket) => {
        openConnections!++;
        socket.once("close", () => openConnections!--);
      });
    },
    close: () => clearInterval(timer),
  };
}
