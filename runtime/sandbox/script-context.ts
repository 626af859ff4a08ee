import { bundleFileName, type CompiledScript } from "../compile/compile.js";
import { isolatedVm, type Context, type Isolate, type Reference } from "./ivm.js";
import type { HostSend } from "./protocol.js";

/**
 * A script's code in a context: the guest prelude, then the script's bundle, each its own compiled
 * script. Shared by a script's own isolate (sandbox.ts boot) and the probe isolates (load-probe.ts).
 *
 * The prelude is the same text for every script of the process, and V8 keeps what it compiled per
 * isolate (its compilation cache, keyed by the source and its origin): a probe isolate that loads
 * hundreds of scripts compiles the prelude's 19 KB once, not once per script. Compiled together
 * with each bundle, as one text, it was compiled every time: a probe took 2.0 ms against 1.2 ms
 * (docs/benchmarks.md, cold start).
 *
 * The bundle is compiled with the prelude's line count as its line offset, so that its stack
 * traces carry the lines they had as one text: the source map (source-map.ts) and the return
 * sites (return-site.ts) read them as before, and treat every frame on the prelude's lines as the
 * runtime's own, whatever file it names.
 */

/**
 * The file name the prelude's frames carry in stack traces, in the form of a bundle's (see
 * bundleFileName), so that the source map finds them and drops them as the runtime's own.
 */
export const PRELUDE_FILE = bundleFileName("<prelude>");

/**
 * Run the prelude, then `compiled`'s bundle, in `context`, each within `timeoutMs`: the bundle's
 * completion value, the guest's entry object. `beforeBundle` is called once the prelude has run,
 * as the script's own code is about to start (where its load time counts from).
 */
export async function runScript(
  isolate: Isolate,
  context: Context,
  compiled: CompiledScript,
  timeoutMs: number,
  beforeBundle?: () => void,
): Promise<Reference<Record<string, unknown>>> {
  const prelude = await isolate.compileScript(compiled.runtime.code, { filename: PRELUDE_FILE });
  try {
    await prelude.run(context, { timeout: timeoutMs });
  } finally {
    prelude.release();
  }
  const bundle = await isolate.compileScript(compiled.code, { filename: bundleFileName(compiled.name), lineOffset: compiled.runtime.lines });
  try {
    beforeBundle?.();
    return (await bundle.run(context, { reference: true, timeout: timeoutMs })) as Reference<Record<string, unknown>>;
  } finally {
    bundle.release();
  }
}

/**
 * Hand the guest its way out (`send`, a plain function of the host that it can only call with
 * primitives) and the entry clock's memory, through the entry's `connect`. False when the guest
 * refused: only the script's own top-level code can have connected first, through the entry global.
 */
export async function connectGuest(entry: Reference<Record<string, unknown>>, send: HostSend, clock: SharedArrayBuffer, timeoutMs: number): Promise<boolean> {
  const ivm = isolatedVm();
  const connect = await entry.get("connect", { reference: true });
  try {
    const connected = await connect.apply(
      undefined,
      [new ivm.Callback(send as (...args: unknown[]) => void, { ignored: true }), new ivm.ExternalCopy(clock).copyInto({ release: true })],
      { timeout: timeoutMs },
    );
    return connected === true;
  } finally {
    connect.release();
  }
}
