import { CapabilityError } from "../capabilities/errors.js";
import type { Capabilities, CapabilityCall } from "../capabilities/types.js";

/**
 * What a shadow (NAME.shadow.ts) may reach in its runs beside NAME's live calls: the same world as
 * NAME, read-only. A shadow must never change anything, since its answer is thrown away and NAME's
 * own run already did whatever the call needs:
 *
 * - kv: `kv.get` of NAME's keys (what NAME keeps is what the shadow would find once promoted);
 *   `kv.set`, `kv.delete` and `kv.incr` fail with CS_CAP_READ_ONLY, and a script that catches
 *   the error goes on without the write;
 * - fetch: GET and HEAD under NAME's grant (its origins, secrets, limits); any other method fails
 *   with CS_CAP_READ_ONLY before anything is sent. A GET that changes something on the other side
 *   is that API's doing: allow only origins whose GETs read.
 *
 * The shadow's requests are made in NAME's name (grants, kv namespace, metrics and log lines);
 * its own budgets (fetch.maxCalls, kv.maxOpsPerInvocation) are per run, as NAME's are.
 */

const READ_METHODS = new Set(["GET", "HEAD"]);

function readOnly(op: string, call: CapabilityCall, live: string, what: string): CapabilityError {
  return new CapabilityError(
    "CS_CAP_READ_ONLY",
    `${op}: shadows are read-only: ${call.script} runs beside ${live}'s live calls and may only read (kv.get, fetch with GET or HEAD), so ${what} was not done`,
  );
}

/** The method of a fetch payload, or undefined when the payload is not readable (the host then refuses it as a bad request). */
function methodOf(payloadJson: string): string | undefined {
  try {
    const payload = JSON.parse(payloadJson) as { method?: unknown } | null;
    if (payload === null || typeof payload !== "object") return undefined;
    return typeof payload.method === "string" ? payload.method.toUpperCase() : "GET";
  } catch {
    return undefined;
  }
}

/** `capabilities` as a shadow of `live` may use them. */
export function shadowCapabilities(capabilities: Capabilities, live: string): Capabilities {
  return {
    handle(op: string, payloadJson: string, call: CapabilityCall): Promise<string> {
      const asLive: CapabilityCall = { ...call, script: live };
      switch (op) {
        case "kv.get":
          return capabilities.handle(op, payloadJson, asLive);
        case "kv.set":
        case "kv.delete":
        case "kv.incr":
          return Promise.reject(readOnly(op, call, live, `this ${op}`));
        case "fetch": {
          const method = methodOf(payloadJson);
          if (method !== undefined && !READ_METHODS.has(method)) return Promise.reject(readOnly(op, call, live, `this ${method}`));
          return capabilities.handle(op, payloadJson, asLive);
        }
        default:
          return capabilities.handle(op, payloadJson, asLive);
      }
    },
  };
}
