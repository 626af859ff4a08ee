import os from "node:os";
import type { CompiledScript } from "../compile/compile.js";
import { newEntryClock } from "./entry-clock.js";
import { disposeIsolate, tracked } from "./isolates.js";
import { isolatedVm, type Context, type Isolate, type Reference } from "./ivm.js";
import { connectGuest, runScript } from "./script-context.js";

/**
 * Where scripts are loaded when their isolates boot after they load (config `bootIsolates`):
 * each script's top level runs, and its definition is read, in a fresh context of a few shared
 * "probe" isolates instead of an isolate of its own.
 *
 * Why: `new Isolate` runs on the event loop's thread and costs about 3 ms there (V8 deserializes
 * its startup snapshot, and isolated-vm makes a default context), so 500 scripts held the loop for
 * 1.6 s before the first was ready, and the boots could not use the second core (docs/benchmarks.md,
 * cold start). A context in a probe isolate costs that isolate's own thread, and the probes run side
 * by side.
 *
 * A probe answers only for a script that loads: anything that goes wrong in it (an exception, a
 * definition the sandbox refuses, a time limit, a heap limit, a probe isolate lost) answers
 * undefined, and the caller loads that script the full way, in an isolate of its own, which says
 * exactly why (the same messages as with `bootIsolates: "atLoad"`). The probe's heap is the default
 * limit, and its isolate holds what earlier probes left, so a top level that fits there fits in a
 * fresh isolate of that size or more.
 */

/**
 * Probe isolates side by side: two per core (a probe is seven round trips between the loop and its
 * isolate's thread, which idles meanwhile), at most eight. 500 scripts on 2 cores: 2 probes
 * 1.3 s, 4 probes 1.06 s, 8 probes 1.28 s.
 */
const PROBES = Math.min(8, 2 * os.availableParallelism());
/** Probe isolates are disposed this long after their last probe (a burst of loads, a save). */
const IDLE_MS = 2_000;

interface ProbeIsolate {
  isolate: Isolate;
  memoryMb: number;
  /** The probes given to it and not finished: one runs at a time, so that its heap holds one script's top level. */
  waiting: number;
  tail: Promise<unknown>;
}

export class LoadProbes {
  private readonly probes: ProbeIsolate[] = [];
  private idleTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly onCatastrophicError?: (message: string) => void) {}

  /**
   * Run `compiled`'s top level in a fresh context of a probe isolate of `memoryMb`, within
   * `timeoutMs`, and `read` its entry object; undefined when anything failed.
   */
  async run<T>(
    compiled: CompiledScript,
    memoryMb: number,
    timeoutMs: number,
    read: (entry: Reference<Record<string, unknown>>) => Promise<T>,
  ): Promise<T | undefined> {
    if (this.closed) return undefined;
    clearTimeout(this.idleTimer);
    const probe = this.pick(memoryMb);
    probe.waiting++;
    const result = probe.tail.then(() => this.probe(probe, compiled, timeoutMs, read));
    probe.tail = result.catch(() => undefined);
    try {
      return await result;
    } catch {
      return undefined;
    } finally {
      probe.waiting--;
      this.disposeWhenIdle();
    }
  }

  /** Dispose the probe isolates now (the registry closes). */
  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    for (const probe of this.probes.splice(0)) disposeIsolate(probe.isolate);
  }

  /** The probe isolate of this heap size with the fewest probes waiting, a new one while there are fewer than PROBES. */
  private pick(memoryMb: number): ProbeIsolate {
    const sized = this.probes.filter((probe) => probe.memoryMb === memoryMb);
    const idle = sized.find((probe) => probe.waiting === 0);
    if (idle) return idle;
    if (sized.length < PROBES) {
      const probe: ProbeIsolate = { isolate: this.newIsolate(memoryMb), memoryMb, waiting: 0, tail: Promise.resolve() };
      this.probes.push(probe);
      return probe;
    }
    return sized.reduce((least, probe) => (probe.waiting < least.waiting ? probe : least));
  }

  private newIsolate(memoryMb: number): Isolate {
    const ivm = isolatedVm();
    return tracked(new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: (message) => this.onCatastrophicError?.(message) }));
  }

  private async probe<T>(
    probe: ProbeIsolate,
    compiled: CompiledScript,
    timeoutMs: number,
    read: (entry: Reference<Record<string, unknown>>) => Promise<T>,
  ): Promise<T> {
    // isolated-vm disposes an isolate at its heap limit: the next probe gets a new one.
    if (probe.isolate.isDisposed) probe.isolate = this.newIsolate(probe.memoryMb);
    const { isolate } = probe;
    let context: Context | undefined;
    let entry: Reference<Record<string, unknown>> | undefined;
    let failed = true;
    try {
      context = await isolate.createContext();
      entry = await runScript(isolate, context, compiled, timeoutMs);
      // As the script's own isolate will: connected first, or its top level used the sandbox's entry.
      if (!(await connectGuest(entry, () => undefined, newEntryClock().buffer, timeoutMs))) throw new Error("connected before the host");
      const value = await read(entry);
      failed = false;
      return value;
    } finally {
      entry?.release();
      context?.release();
      // After a failure (a time limit, an exception at any step) nothing of that script stays: the
      // next probe gets a new isolate.
      if (failed) disposeIsolate(isolate);
    }
  }

  private disposeWhenIdle(): void {
    if (this.probes.some((probe) => probe.waiting > 0)) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      for (const probe of this.probes.splice(0)) disposeIsolate(probe.isolate);
    }, IDLE_MS);
    this.idleTimer.unref();
  }
}
