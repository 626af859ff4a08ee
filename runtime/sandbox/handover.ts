/**
 * Entries for isolates (invocations, and answers to their requests), gathered while the event loop
 * is busy and handed to isolated-vm a few at a time, in the order they came.
 *
 * Handing an entry to an isolate whose thread has gone idle wakes that thread, and on a
 * paravirtualized VM a wake-up is a costly system call (the kernel's pvm_irq_enable was the event
 * loop's top symbol under load). Handed over one by one as each request was read, every request's
 * entry found its isolate's thread asleep again; gathered, only the first of a group wakes it and
 * isolated-vm queues the others behind it. A group goes at the loop's check phase, once the loop has
 * read every socket that was ready, or as soon as it holds GROUP entries: at 64 connections a poll
 * phase reads dozens of requests, and holding all of them left the isolates idle that long (more
 * requests were refused as overloaded). The order is kept: every entry goes through this one queue,
 * so an isolate runs its entries in the order its host took their turns. Figures:
 * docs/benchmarks.md §7.
 */
const GROUP = 8;
const waiting: (() => void)[] = [];
let checkPhaseSet = false;

/**
 * `task` hands one entry over. `gather`: the event loop is busy; otherwise the entry goes at once,
 * from a microtask, unless entries wait already (they go first). At one connection there is
 * nothing to gather, and a pass of the check phase per call cost more than it saved.
 */
export function handOver(task: () => void, gather: boolean): void {
  if (!gather && waiting.length === 0) {
    queueMicrotask(task);
    return;
  }
  const count = waiting.push(task);
  if (!checkPhaseSet) {
    checkPhaseSet = true;
    setImmediate(atCheckPhase);
  }
  // From a microtask all the same: on a near-empty stack (see runSlice).
  if (count === GROUP) queueMicrotask(handAll);
}

/** A task that waits holds a group's worth of entries already (a full batch, batch.ts): hand everything over now. */
export function handOverSoon(): void {
  if (waiting.length > 0) queueMicrotask(handAll);
}

function atCheckPhase(): void {
  checkPhaseSet = false;
  handAll();
}

function handAll(): void {
  // Each task catches its own errors (see runSlice); one queued while these run goes in this pass.
  for (let i = 0; i < waiting.length; i++) waiting[i]!();
  waiting.length = 0;
}
