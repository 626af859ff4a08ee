import { BATCH_SEPARATOR } from "./protocol.js";

/**
 * Invocations of one isolate handed to isolated-vm in one task (the guest's invokeBatch), while the
 * event loop is busy and the script has shown itself short (inline-policy.ts).
 *
 * Each call into an isolate is an isolated-vm task: its arguments copied, a task posted to the
 * isolate's thread, a promise made and settled through the event loop. With 16 calls in flight
 * that was 92 µs of CPU per call (26 on the event loop) for an example script's guest, against 60
 * (17.5) with the calls of a loop turn in one task (bench/invoke.mjs, docs/benchmarks.md §7).
 *
 * A batch answers all of its calls or none: when it fails as a whole (its time limit, its heap, a
 * promise that never settles, a rejection the script left, an answer that cannot be read), every
 * call of it runs again, alone, on a rebuilt isolate (see ScriptSandbox.attempt), where each meets
 * its own limits and fails, or answers, as it would have without the batch.
 */

/** The most calls in one batch: as many as handover.ts hands over in one group. */
export const MAX_BATCH = 8;

/** The batch did not answer as a whole: its calls run again, alone. */
export const BATCH_FAILED = Symbol("batch failed");

export type BatchAnswer = { ok: true; value: string } | typeof BATCH_FAILED;

export class EntryBatch {
  private readonly requests: unknown[] = [];
  private readonly answer: ((answer: BatchAnswer) => void)[] = [];
  /** Handed to isolated-vm (or full): no call joins it after. */
  sealed = false;
  private settled = false;
  /** When its first call became the head of its isolate's line (performance.now()), and the isolate's CPU time then. */
  startedAt: number | undefined;
  cpuBefore = 0n;
  /** Its wall and CPU time, once it answered: each call's figures are an equal share. */
  wallMs = 0;
  cpuMs = 0;

  get size(): number {
    return this.answer.length;
  }

  /** Adds one call's arguments (GuestInvocation); `answered` hears its answer. Its index in the batch. */
  add(args: readonly unknown[], answered: (answer: BatchAnswer) => void): number {
    for (const arg of args) this.requests.push(arg);
    this.answer.push(answered);
    if (this.answer.length >= MAX_BATCH) this.sealed = true;
    return this.answer.length - 1;
  }

  /**
   * The one call into the isolate. `apply` makes it (isolated-vm's async apply of invokeBatch);
   * `measure` gives the batch's figures when it answers.
   */
  run(apply: (requests: unknown[]) => Promise<unknown>, measure: () => { wallMs: number; cpuMs: number }): void {
    this.sealed = true;
    let call: Promise<unknown>;
    try {
      call = apply(this.requests);
    } catch {
      this.fail();
      return;
    }
    call.then(
      (value) => {
        if (this.settled) return;
        const answers = typeof value === "string" ? value.split(BATCH_SEPARATOR) : undefined;
        if (answers?.length !== this.answer.length) {
          this.fail();
          return;
        }
        this.settled = true;
        ({ wallMs: this.wallMs, cpuMs: this.cpuMs } = measure());
        for (let i = 0; i < answers.length; i++) this.answer[i]!({ ok: true, value: answers[i]! });
      },
      () => this.fail(),
    );
  }

  /** Every call of it runs again (also when the host stops it: a promise that never settles). */
  fail(): void {
    if (this.settled) return;
    this.settled = true;
    for (const answered of this.answer) answered(BATCH_FAILED);
  }
}
