import { readFileSync, readdirSync } from "node:fs";

/**
 * The CPU time of each of this process's threads, from Linux's /proc (`schedstat`: nanoseconds on
 * a CPU, by thread id), or undefined where there is no such file. A call's isolate runs on one of
 * these threads for the whole call, so the most CPU time any one thread used over the call bounds
 * the call's own CPU time more tightly than the process's total, which also counts V8's GC helpers,
 * other isolates and the event loop (see cpuSince in sandbox.ts).
 *
 * Reading it costs a directory listing and a file per thread (0.2–0.4 ms with 7–20 threads): the
 * host reads it only for calls that last past their first CPU poll, never on a short call's path.
 */
export type ThreadCpu = ReadonlyMap<string, number>;

const TASKS = "/proc/self/task";
let unavailable = false;

export function threadCpuTimes(): ThreadCpu | undefined {
  if (unavailable) return undefined;
  let tids: string[];
  try {
    tids = readdirSync(TASKS);
  } catch {
    unavailable = true;
    return undefined;
  }
  const times = new Map<string, number>();
  for (const tid of tids) {
    try {
      const ns = Number(readFileSync(`${TASKS}/${tid}/schedstat`, "utf8").split(" ", 1)[0]);
      if (Number.isFinite(ns)) times.set(tid, ns / 1e6);
    } catch {
      // The thread ended between the listing and the read: it is not the call's.
    }
  }
  if (times.size > 0) return times;
  unavailable = true;
  return undefined;
}

/** The most CPU time, in ms, any one thread used from `before` to `after` (a thread started since counts whole). */
export function busiestThreadMs(before: ThreadCpu, after: ThreadCpu): number {
  let most = 0;
  for (const [tid, ms] of after) most = Math.max(most, ms - (before.get(tid) ?? 0));
  return most;
}
