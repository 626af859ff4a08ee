/**
 * The boundary between the sandbox host (runtime/sandbox/) and the capabilities it offers scripts:
 * every request of a script crosses it as an operation name and JSON text, and comes back as JSON
 * text or a CapabilityError (see CAPABILITIES-CONTRACT.md). Nothing here knows isolated-vm.
 */

/** Who is asking: for namespacing (kv per script), logs, metrics and error messages. */
export interface CapabilityCall {
  /** The script's name (its config name: a shadow is configured as NAME). */
  script: string;
  version: string;
  hook: string;
  requestId: string;
  /**
   * Aborted when the invocation ends for any reason (timeout, memory, deadline, isolate rebuilt).
   * One signal per invocation: the per-invocation budgets (fetch.maxCalls, kv.maxOpsPerInvocation)
   * are counted per signal.
   */
  signal: AbortSignal;
}

/** What one invocation of one script may use; undefined in an invocation = no capabilities at all. */
export interface Capabilities {
  /**
   * One request of the script: `op` is "fetch", "kv.get", "kv.set", "kv.delete" or "kv.incr";
   * `payloadJson` and the resolved value are JSON text (never objects: only copied strings cross
   * into the isolate). Rejects with a CapabilityError whose message the script sees as a catchable
   * Error. Any other rejection is a fault of ours: the script sees a generic message and the host
   * logs the real one.
   */
  handle(op: string, payloadJson: string, call: CapabilityCall): Promise<string>;
}

/** The operations of the contract. */
export const CAPABILITY_OPS = ["fetch", "kv.get", "kv.set", "kv.delete", "kv.incr"] as const;
export type CapabilityOp = (typeof CAPABILITY_OPS)[number];

export function isCapabilityOp(op: string): op is CapabilityOp {
  return (CAPABILITY_OPS as readonly string[]).includes(op);
}
