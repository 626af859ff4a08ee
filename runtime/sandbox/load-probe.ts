import os from "node:os";
import { Worker } from "node:worker_threads";
import type { CompiledScript } from "../compile/compile.js";
import { bundleFileName } from "../compile/compile.js";
import { workerFile } from "../paths.js";
import { PRELUDE_FILE } from "./script-context.js";

/**
 * Where scripts are loaded when their isolates boot after they load (config `bootIsolates`):
 * each script's top level runs, and its definition is read, in a fresh context of a probe isolate
 * instead of an isolate of its own.
 *
 * Why: `new Isolate` runs on the event loop's thread and costs about 3 ms there (V8 deserializes
 * its startup snapshot, and isolated-vm makes a default context), so 500 scripts held the loop for
 * 1.6 s before the first was ready, and the boots could not use the second core (docs/benchmarks.md,
 * cold start).
 *
 * The probe isolates live in worker threads (probe-worker.ts), one per core, which run each probe
 * with isolated-vm's synchronous calls: a probe from the event loop was seven round trips to an
 * isolate's thread, each a thread wake-up, and its CPU (isolate threads and event loop together)
 * was 2.3 ms against 1.5 ms for the same steps synchronously. The workers answer strings only (the
 * definition's JSON); nothing of isolated-vm crosses threads.
 *
 * A probe answers only for a script that loads: anything that goes wrong in it (an exception, a
 * definition the sandbox refuses, a time limit, a heap limit, a worker lost) answers undefined,
 * and the caller loads that script the full way, in an isolate of its own, which says exactly why
 * (the same messages as with `bootIsolates: "atLoad"`). The probe's heap is the default limit, and
 * its isolate holds what earlier probes left, so a top level that fits there fits in a fresh
 * isolate of that size or more. A probe's time limit (each step's) bounds how long a worker can be
 * held, also at shutdown.
 */

/** Probe workers side by side: one per core (each is busy for the whole of its probes), at most four. */
const WORKERS = Math.max(1, Math.min(4, os.availableParallelism()));
/** Probe workers (and their isolates) end this long after their last probe (a burst of loads, a save). */
const IDLE_MS = 2_000;
/** How long close() waits for the probe workers to end (a probe in flight ends at its time limit) before it ends them by force. */
const CLOSE_WAIT_MS = 5_000;

/** To a probe worker: a script to probe (with the prelude when it is new to that worker), or close. */
export type ProbeMessage =
  | {
      id: number;
      memoryMb: number;
      timeoutMs: number;
      code: string;
      filename: string;
      lineOffset: number;
      runtime?: { code: string; file: string };
    }
  | { close: true };

/**
 * From a probe worker: a probe's definition (undefined: it failed), an isolate's catastrophic
 * error, or that it cannot run probes at all (isolated-vm does not load in its thread).
 */
export type ProbeAnswer = { id: number; meta: string | undefined } | { catastrophic: string } | { unavailable: string };

interface ProbeWorker {
  worker: Worker;
  pending: Map<number, (meta: string | undefined) => void>;
  runtime?: CompiledScript["runtime"];
}

export class LoadProbes {
  private readonly workers: ProbeWorker[] = [];
  /** Told to end, not ended yet (each collects its isolates' handles first): close() waits for them too. */
  private readonly ending = new Set<Worker>();
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private ids = 0;
  /** Why probes cannot run in this process (said once): every script then loads the full way. */
  private unavailable: string | undefined;

  /**
   * `onProblem`: a worker lost or unable to run probes. The scripts it had load the full way, and
   * say why they fail if they do; the start is only slower, and this says why.
   */
  constructor(
    private readonly onCatastrophicError?: (message: string) => void,
    private readonly onProblem?: (message: string) => void,
    private readonly file: () => string = () => workerFile("runtime/sandbox/probe-worker"),
  ) {}

  /**
   * Run `compiled`'s top level in a fresh context of a probe isolate of `memoryMb`, each step within
   * `timeoutMs`: the JSON of its definition (the entry's meta()), undefined when anything failed.
   */
  run(compiled: CompiledScript, memoryMb: number, timeoutMs: number): Promise<string | undefined> {
    if (this.closed || this.unavailable !== undefined) return Promise.resolve(undefined);
    clearTimeout(this.idleTimer);
    let probe: ProbeWorker;
    try {
      probe = this.pick();
    } catch (error) {
      this.cannotRun(`the probe worker could not start: ${(error as Error).message}`);
      return Promise.resolve(undefined);
    }
    const id = ++this.ids;
    const message: ProbeMessage = {
      id,
      memoryMb,
      timeoutMs,
      code: compiled.code,
      filename: bundleFileName(compiled.name),
      lineOffset: compiled.runtime.lines,
      ...(probe.runtime !== compiled.runtime ? { runtime: { code: compiled.runtime.code, file: PRELUDE_FILE } } : {}),
    };
    probe.runtime = compiled.runtime;
    return new Promise<string | undefined>((resolve) => {
      probe.pending.set(id, (meta) => {
        if (probe.pending.size === 0) probe.worker.unref();
        resolve(meta);
        this.closeWhenIdle();
      });
      // Kept alive while it owes answers (a command awaiting its loads has nothing else alive), not after.
      probe.worker.ref();
      probe.worker.postMessage(message);
    });
  }

  /**
   * End the probe workers now (the registry closes); probes in flight answer undefined. Resolves
   * once the workers have ended: each collects its isolates' handles before it does
   * (collect-handles.ts), which a worker still running when the process exits, ended by force, would
   * not.
   */
  close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.endAll();
    // Those told to end just now, and those an idle moment ended a little earlier.
    const workers = [...this.ending];
    if (workers.length === 0) return Promise.resolve();
    const ended = workers.map((worker) => new Promise<void>((resolve) => worker.once("exit", () => resolve())));
    // Held: a command whose last work this is would otherwise exit under them (an idle worker is unref'd).
    for (const worker of workers) worker.ref();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        for (const worker of workers) void worker.terminate();
        resolve();
      }, CLOSE_WAIT_MS);
      timer.unref();
    });
    return Promise.race([Promise.all(ended).then(() => undefined), late]).finally(() => clearTimeout(timer));
  }

  /** The worker with the fewest probes waiting, a new one while there are fewer than WORKERS. */
  private pick(): ProbeWorker {
    const idle = this.workers.find((probe) => probe.pending.size === 0);
    if (idle) return idle;
    if (this.workers.length < WORKERS) return this.start();
    return this.workers.reduce((least, probe) => (probe.pending.size < least.pending.size ? probe : least));
  }

  private start(): ProbeWorker {
    const worker = new Worker(this.file());
    const probe: ProbeWorker = { worker, pending: new Map() };
    worker.on("message", (answer: ProbeAnswer) => {
      if ("catastrophic" in answer) {
        this.onCatastrophicError?.(answer.catastrophic);
        return;
      }
      if ("unavailable" in answer) {
        this.cannotRun(`isolated-vm does not load in a worker thread: ${answer.unavailable}`);
        this.forget(probe);
        return;
      }
      const settle = probe.pending.get(answer.id);
      probe.pending.delete(answer.id);
      settle?.(answer.meta);
    });
    // A worker lost (it failed to start, or crashed): its probes go the full way, and it is said.
    worker.on("error", (error) => {
      if (this.workers.includes(probe)) this.onProblem?.(`a load-probe worker failed (its scripts load the full way): ${error.message}`);
      this.forget(probe);
    });
    worker.on("exit", () => this.forget(probe));
    this.workers.push(probe);
    return probe;
  }

  /** No probe can run in this process: said once, and every later script loads the full way. */
  private cannotRun(reason: string): void {
    if (this.unavailable !== undefined) return;
    this.unavailable = reason;
    this.onProblem?.(`load probes are unavailable, so every script loads the full way, booting its own isolate (a slower start): ${reason}`);
    this.endAll();
  }

  private forget(probe: ProbeWorker): void {
    const index = this.workers.indexOf(probe);
    if (index >= 0) this.workers.splice(index, 1);
    const settles = [...probe.pending.values()];
    probe.pending.clear();
    for (const settle of settles) settle(undefined);
  }

  private endAll(): void {
    for (const probe of [...this.workers]) {
      this.forget(probe);
      const { worker } = probe;
      this.ending.add(worker);
      worker.once("exit", () => this.ending.delete(worker));
      worker.postMessage({ close: true } satisfies ProbeMessage);
    }
  }

  private closeWhenIdle(): void {
    if (this.workers.some((probe) => probe.pending.size > 0)) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => this.endAll(), IDLE_MS);
    this.idleTimer.unref();
  }
}
