import { ENTRY_CLOCK_SLOTS } from "./protocol.js";

/**
 * When each entry into an isolate began, as its guest wrote it (see ENTRY_CLOCK_SLOTS in
 * protocol.ts): the host's view of the shared memory.
 *
 * The host hands an isolate its entries together, and isolated-vm runs them one after the other,
 * each with its own time limit counted from when it begins. The host marks an entry's start when
 * the entry before it answers, which it hears late when its event loop is busy: a loop stopped at
 * its 100 ms limit read 25 ms when the loop was blocked for 80 ms, and was taken for the script's
 * own rejection (test/core/sandbox-pipeline.test.ts). The host's mark can also come before the
 * entry began: entries gathered while the loop is busy wait for their group (handover.ts). Only a
 * failed entry is counted from the guest's mark, which has a clock of whole milliseconds: a call's
 * usual figures keep the host's.
 */
export interface EntryClock {
  /** Handed to the guest's connect (as an isolated-vm copy, which shares the memory). */
  readonly buffer: SharedArrayBuffer;
  readonly slots: Float64Array;
}

export function newEntryClock(): EntryClock {
  const buffer = new SharedArrayBuffer(2 * ENTRY_CLOCK_SLOTS * Float64Array.BYTES_PER_ELEMENT);
  return { buffer, slots: new Float64Array(buffer) };
}

/** When the guest began entry `entry` (Date.now()), or undefined when its slot holds no whole mark of it (not begun, or rewritten since). */
export function entryStartedAt(clock: EntryClock, entry: number): number | undefined {
  const slot = 2 * (entry % ENTRY_CLOCK_SLOTS);
  const before = clock.slots[slot];
  const at = clock.slots[slot + 1]!;
  return before === entry && clock.slots[slot] === entry ? at : undefined;
}

/**
 * How long entry `entry` has run by now, by the guest's mark: at least its true time (the marks
 * are whole milliseconds, so one is added), or undefined when the mark is not there.
 */
export function ranForMs(clock: EntryClock, entry: number, now = Date.now()): number | undefined {
  const startedAt = entryStartedAt(clock, entry);
  return startedAt === undefined ? undefined : now - startedAt + 1;
}
