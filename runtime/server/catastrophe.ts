import type { DispatchResult } from "../dispatch/dispatch.js";
import type { HookFailure } from "../schema/envelope.js";

/** The answer every hook request gets once the catastrophe has come. */
const answerOf = (failure: HookFailure): DispatchResult => ({ answer: { state: "error", error: failure }, invocations: [], skipped: [] });

/**
 * isolated-vm's `onCatastrophicError`: V8 lost control of an isolate ("Catastrophic out-of-memory
 * error", "Script failed to terminate"). The isolate's thread is parked for good, and isolated-vm
 * advises to stop serving, finish the outstanding work and end the process.
 *
 * Once tripped, every hook request — those in flight, whose scripts may never answer, and those that
 * still arrive on open connections before the server stops listening — is answered at once with an
 * error envelope (reason `exception`, naming the script and the error), so that the connector falls
 * back to its default rather than waiting on a dead isolate. `handleSignals` then stops the server
 * and ends the process for the service manager to restart it.
 */
export class Catastrophe {
  private failed: HookFailure | undefined;
  private resolveTripped!: (failure: HookFailure) => void;
  /**
   * The requests waiting on their scripts, each to be answered at once if the catastrophe comes:
   * their promises' own resolve functions, in slots reused through a free list, each slot emptied
   * as its call ends. Not a Set of a closure per request whose entry a `finally` removed: with that,
   * V8's young-generation collections of a server under load kept 36–45% of what it allocated alive
   * (every waiting request's input, promises and fastify objects copied and promoted), 10–34% with
   * this for one script, most runs 17% or less (bench/young-gc.mjs, docs/benchmarks.md).
   */
  private readonly waiting: (((result: DispatchResult) => void) | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  /** Resolves with the error answer when the first catastrophic error is reported. */
  readonly tripped: Promise<HookFailure> = new Promise((resolve) => {
    this.resolveTripped = resolve;
  });

  /** The error answer, once tripped. */
  get failure(): HookFailure | undefined {
    return this.failed;
  }

  /** Record a catastrophic error of `script`; the first one wins. */
  trip(script: string, message: string): HookFailure {
    if (this.failed) return this.failed;
    const failed: HookFailure = {
      reason: "exception",
      script,
      message:
        `isolated-vm reported a catastrophic error in the isolate of script ${script}: ${message}. ` +
        "The server can no longer be trusted and restarts; this request was not run to its end",
    };
    this.failed = failed;
    this.resolveTripped(failed);
    for (const resolve of this.waiting) resolve?.(answerOf(failed));
    return failed;
  }

  /**
   * `call`'s result, unless the catastrophe comes first: then an error answer at once. A request
   * that starts after it runs no script.
   *
   * Not Promise.race with `tripped`: a promise that never settles keeps every reaction attached to
   * it, so each request would leave its race behind (about 1 KB each, measured by test/load).
   */
  race(call: () => Promise<DispatchResult>): Promise<DispatchResult> {
    if (this.failed) return Promise.resolve(answerOf(this.failed));
    return new Promise<DispatchResult>((resolve, reject) => {
      const slot = this.freeSlots.pop() ?? this.waiting.length;
      this.waiting[slot] = resolve;
      const leave = () => {
        this.waiting[slot] = undefined;
        this.freeSlots.push(slot);
      };
      call().then(
        (result) => {
          leave();
          resolve(result);
        },
        (error: unknown) => {
          leave();
          reject(error);
        },
      );
    });
  }
}
