import type { Isolate } from "./ivm.js";

/**
 * Every isolate this process made and has not disposed, so that a process that must end now can
 * stop them first. Exiting with an isolate still running (a loop within its time limit, a load, a
 * rebuild) waits for it: C's exit() runs isolated-vm's static thread pool destructor, which joins
 * the pool's threads, and a thread running a script does not return until the script stops.
 */
const live = new Set<Isolate>();
/** Disposed isolates (isolated-vm disposes one at its heap limit) are dropped when the set doubles. */
let pruneAt = 64;

export function tracked(isolate: Isolate): Isolate {
  live.add(isolate);
  if (live.size >= pruneAt) {
    for (const each of live) if (each.isDisposed) live.delete(each);
    pruneAt = Math.max(64, 2 * live.size);
  }
  return isolate;
}

export function disposeIsolate(isolate: Isolate): void {
  live.delete(isolate);
  if (isolate.isDisposed) return;
  try {
    isolate.dispose();
  } catch {
    // Already going away.
  }
}

/**
 * How many isolates this process holds now: every script's own, retired versions still finishing
 * their requests, rebuilds. With the scripts unchanged it comes back to the same figure after any
 * load; one that keeps growing is a leak (the metric callscript_isolates).
 */
export function liveIsolateCount(): number {
  let count = 0;
  for (const isolate of live) if (!isolate.isDisposed) count++;
  return count;
}

/** Dispose every live isolate at once (running scripts are terminated); how many were live. */
export function disposeEveryIsolate(): number {
  let disposed = 0;
  for (const isolate of live) {
    if (isolate.isDisposed) continue;
    disposed++;
    disposeIsolate(isolate);
  }
  live.clear();
  return disposed;
}
