import vm from "node:vm";
import { parentPort } from "node:worker_threads";
import { ENTRY_CLOCK_SLOTS } from "./protocol.js";
import { isolatedVm, type Context, type Isolate, type Reference, type Script } from "./ivm.js";
import type { ProbeAnswer, ProbeMessage } from "./load-probe.js";

/**
 * A load-probe worker (see load-probe.ts): runs scripts' top levels in probe isolates of its own,
 * one after the other, with isolated-vm's synchronous calls on this thread, and answers each
 * script's definition as JSON. Nothing of isolated-vm leaves this thread; only strings do.
 */

interface ProbeIsolate {
  isolate: Isolate;
  /** The prelude compiled once in this isolate; it runs in each probe's fresh context. */
  prelude?: { code: string; script: Script };
}

const isolates = new Map<number, ProbeIsolate>();
let runtime = { code: "", file: "" };

function isolateOf(memoryMb: number): ProbeIsolate {
  const kept = isolates.get(memoryMb);
  if (kept && !kept.isolate.isDisposed) return kept;
  const ivm = isolatedVm();
  const fresh: ProbeIsolate = {
    isolate: new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: (message) => parentPort!.postMessage({ catastrophic: message } satisfies ProbeAnswer),
    }),
  };
  isolates.set(memoryMb, fresh);
  return fresh;
}

function drop(memoryMb: number): void {
  const probe = isolates.get(memoryMb);
  isolates.delete(memoryMb);
  try {
    probe?.isolate.dispose();
  } catch {
    // Already disposed (at its heap limit).
  }
}

/** The definition's JSON, or undefined when anything failed (the script then loads the full way, which says why). */
function probe(message: Extract<ProbeMessage, { id: number }>): string | undefined {
  const ivm = isolatedVm();
  const holder = isolateOf(message.memoryMb);
  const { isolate } = holder;
  const timeout = message.timeoutMs;
  let context: Context | undefined;
  let entry: Reference<Record<string, unknown>> | undefined;
  let failed = true;
  try {
    context = isolate.createContextSync();
    if (holder.prelude?.code !== runtime.code) {
      holder.prelude?.script.release();
      holder.prelude = { code: runtime.code, script: isolate.compileScriptSync(runtime.code, { filename: runtime.file }) };
    }
    holder.prelude.script.runSync(context, { timeout });
    const bundle = isolate.compileScriptSync(message.code, { filename: message.filename, lineOffset: message.lineOffset });
    try {
      entry = bundle.runSync(context, { reference: true, timeout }) as Reference<Record<string, unknown>>;
    } finally {
      bundle.release();
    }
    // As the script's own isolate will: connected first, or its top level used the sandbox's entry.
    // (The entry is the prelude's frozen object: its properties are data, no script code runs to read them.)
    const connect = entry.getSync("connect", { reference: true });
    let connected: unknown;
    try {
      const clock = new SharedArrayBuffer(2 * ENTRY_CLOCK_SLOTS * Float64Array.BYTES_PER_ELEMENT);
      connected = connect.applySync(
        undefined,
        [new ivm.Callback(() => undefined, { ignored: true }), new ivm.ExternalCopy(clock).copyInto({ release: true })],
        {
          timeout,
        },
      );
    } finally {
      connect.release();
    }
    if (connected !== true) return undefined;
    const meta = entry.getSync("meta", { reference: true });
    let json: unknown;
    try {
      json = meta.applySync(undefined, [], { timeout });
    } finally {
      meta.release();
    }
    if (typeof json !== "string") return undefined;
    failed = false;
    return json;
  } catch {
    return undefined;
  } finally {
    entry?.release();
    context?.release();
    // After a failure (a time limit, an exception at any step) nothing of that script stays: the
    // next probe gets a new isolate.
    if (failed) drop(message.memoryMb);
  }
}

let unavailable: string | undefined;
try {
  isolatedVm();
} catch (error) {
  unavailable = (error as Error).message.split("\n")[0] ?? String(error);
  parentPort!.postMessage({ unavailable } satisfies ProbeAnswer);
}

/**
 * The isolates' JavaScript handles are collected before the thread ends, while isolated-vm's state
 * for this thread is still there. Node removes that state first when a thread ends, then does its
 * own last work: under `--cpu-prof` or `--heap-prof` it writes the thread's profile, under
 * NODE_V8_COVERAGE its coverage. When that work triggered a collection, the handles' weak callbacks
 * ran without isolated-vm's state, and isolated-vm 5 aborted the whole process on an assertion
 * (`IsolateEnvironment::GetCurrent(): Assertion environment != nullptr`): a server run with
 * `node --cpu-prof` died two seconds after its scripts loaded, when its probe workers ended.
 */
async function collectThenClose(): Promise<void> {
  // vm.measureMemory is the one full collection Node offers without --expose-gc (which would give
  // every new context, the scripts' too, a global gc()). It is flagged experimental, and the
  // warning would say nothing to an admin: not printed, from this thread only.
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    await vm.measureMemory({ mode: "summary", execution: "eager" });
  } catch {
    // Nothing was measured: the thread ends as before.
  } finally {
    process.emitWarning = emitWarning;
  }
  parentPort!.close();
}

let closing = false;

parentPort!.on("message", (message: ProbeMessage) => {
  if (closing) return;
  if ("close" in message) {
    closing = true;
    for (const memoryMb of [...isolates.keys()]) drop(memoryMb);
    void collectThenClose();
    return;
  }
  if (unavailable !== undefined) return;
  if (message.runtime !== undefined) runtime = message.runtime;
  parentPort!.postMessage({ id: message.id, meta: probe(message) } satisfies ProbeAnswer);
});
