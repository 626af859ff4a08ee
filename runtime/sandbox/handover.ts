/**
 * Entries for isolates (invocations, and answers to their requests), held until the event loop's
 * check phase and then handed to isolated-vm together, in the order they came.
 *
 * Handing an entry to an isolate whose thread has gone idle wakes that thread, and on a
 * paravirtualized VM a wake-up is a costly system call (the kernel's pvm_irq_enable was the event
 * loop's top symbol under load). Handed over one by one as each request was read, every request's
 * entry found its isolate's thread asleep again; handed over after the loop has read every socket
 * that was ready, only the first entry of the turn wakes it, and isolated-vm queues the others
 * behind it. The order is kept: every entry goes through this one queue, so an isolate runs its
 * entries in the order its host took their turns. Before/after figures: docs/benchmarks.md §7.
 */
const waiting: (() => void)[] = [];

/**
 * `task` hands one entry over. `gather`: the event loop is busy (many entries a turn to gather);
 * otherwise the entry goes at once, from a microtask, unless entries wait already (they go first).
 * At one connection a check-phase pass per call cost more than the wake-up it could not save.
 */
export function handOver(task: () => void, gather: boolean): void {
  if (!gather && waiting.length === 0) queueMicrotask(task);
  else if (waiting.push(task) === 1) setImmediate(handAll);
}

function handAll(): void {
  // Each task catches its own errors (see runSlice); one queued while these run is run in this pass.
  for (let i = 0; i < waiting.length; i++) waiting[i]!();
  waiting.length = 0;
}
