import { parentPort } from "node:worker_threads";
import { collectDeadHandles } from "./collect-handles.js";
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

/** Disposed, and their handles collected before the thread ends (see collect-handles.ts). */
async function closeWorker(): Promise<void> {
  for (const memoryMb of [...isolates.keys()]) drop(memoryMb);
  await collectDeadHandles();
  parentPort!.close();
}

let closing = false;

parentPort!.on("message", (message: ProbeMessage) => {
  if (closing) return;
  if ("close" in message) {
    closing = true;
    void closeWorker();
    return;
  }
  if (unavailable !== undefined) return;
  if (message.runtime !== undefined) runtime = message.runtime;
  parentPort!.postMessage({ id: message.id, meta: probe(message) } satisfies ProbeAnswer);
});
