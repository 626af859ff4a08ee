import { performance } from "node:perf_hooks";
import type { Invocation } from "../sandbox/sandbox.js";

/**
 * One hook request as the console's Calls page shows it. The input, the answer and the
 * invocations are the objects the request already made, held by reference (nothing is copied or
 * serialized on the hook route); they are redacted when the console reads them.
 */
export interface CallRecord {
  /** Increasing with each call: the page asks for the calls after the last one it has. */
  seq: number;
  /** The request id (X-Request-Id). */
  id: string;
  hook: string;
  /** When the request arrived, ms since the epoch. */
  at: number;
  ms: number;
  status: number;
  /** success, cancel, a failure reason, or the error code of a refused request. */
  outcome: string;
  scripts: string[];
  input: unknown;
  answer: unknown;
  invocations: readonly Invocation[];
  /** Estimated size of all of the above as JSON: what the byte bound counts. */
  bytes: number;
}

export type NewCall = Omit<CallRecord, "seq" | "bytes">;

/** Per call besides its input and its scripts' output and logs (ids, names, stats, the envelope). */
const OVERHEAD_BYTES = 256;
const PER_INVOCATION_BYTES = 160;

/**
 * The size of a call as JSON, estimated from figures the request already has: the body's length
 * (counted twice, for hooks whose answer repeats their parameters) and each invocation's output and
 * log bytes as the sandbox measured them.
 */
export function estimateBytes(inputChars: number, invocations: readonly Invocation[]): number {
  let bytes = OVERHEAD_BYTES + 2 * inputChars;
  for (const { stats } of invocations) bytes += PER_INVOCATION_BYTES + 2 * stats.outputBytes + stats.logBytes;
  return bytes;
}

/**
 * The last `capacity` hook requests, in memory only, within `maxBytes`: a ring whose oldest call
 * goes first when either bound is reached. add() is O(1) and allocates nothing but the record.
 *
 * Successful calls are kept at most `perSecond` a second (admit): each kept call's objects (its
 * input, answer and invocations) outlive the request in the server's heap, and at thousands of
 * calls a second every one kept was copied by the young-generation collections and promoted to the
 * old generation: the collections' pauses doubled, and with them the hook's p99 at 16 connections
 * grew by 2 ms (bench/tail.mjs, docs/benchmarks.md). A page that shows the last 200 calls of 4
 * seconds is no less useful than one that shows those of the last 40 ms.
 */
export class CallsBuffer {
  private readonly ring: (CallRecord | undefined)[];
  /** Index of the oldest call. */
  private head = 0;
  private count = 0;
  private totalBytes = 0;
  private nextSeq = 1;
  /** Successful calls that may still be kept now: a second's worth at most, refilled as time passes. */
  private allowance: number;
  private allowanceAt: number;
  private skipped = 0;

  constructor(
    readonly capacity: number,
    readonly maxBytes: number,
    readonly perSecond = Number.POSITIVE_INFINITY,
    private readonly clock: () => number = performance.now.bind(performance),
  ) {
    if (!(capacity > 0)) throw new Error("CallsBuffer: capacity must be positive (a console without calls has no buffer)");
    if (!(perSecond > 0)) throw new Error("CallsBuffer: perSecond must be positive");
    this.ring = new Array<CallRecord | undefined>(capacity);
    this.allowance = perSecond;
    this.allowanceAt = clock();
  }

  /**
   * Whether to keep the call that just ended: a failed or refused one (`always`) always, a
   * successful one while fewer than `perSecond` were kept in the last second. One not kept is counted.
   */
  admit(always: boolean): boolean {
    if (always) return true;
    const now = this.clock();
    this.allowance = Math.min(this.perSecond, this.allowance + ((now - this.allowanceAt) * this.perSecond) / 1000);
    this.allowanceAt = now;
    if (this.allowance >= 1) {
      this.allowance -= 1;
      return true;
    }
    this.skipped++;
    return false;
  }

  /** Successful calls not kept since the start, for being over `perSecond`. */
  get notKept(): number {
    return this.skipped;
  }

  add(call: NewCall, bytes: number): CallRecord {
    const record = call as CallRecord;
    record.seq = this.nextSeq++;
    record.bytes = bytes;
    // A call larger than the whole bound is still shown: alone.
    while (this.count > 0 && (this.count === this.capacity || this.totalBytes + bytes > this.maxBytes)) this.dropOldest();
    this.ring[(this.head + this.count) % this.capacity] = record;
    this.count++;
    this.totalBytes += bytes;
    return record;
  }

  private dropOldest(): void {
    const oldest = this.ring[this.head];
    this.ring[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.count--;
    this.totalBytes -= oldest?.bytes ?? 0;
  }

  /** Newest first. */
  *newestFirst(): Generator<CallRecord> {
    for (let i = this.count - 1; i >= 0; i--) yield this.ring[(this.head + i) % this.capacity]!;
  }

  get(id: string): CallRecord | undefined {
    for (const call of this.newestFirst()) if (call.id === id) return call;
    return undefined;
  }

  get size(): number {
    return this.count;
  }

  get bytes(): number {
    return this.totalBytes;
  }

  /** The seq of the newest call (0 before any). */
  get lastSeq(): number {
    return this.nextSeq - 1;
  }
}
