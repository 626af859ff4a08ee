/**
 * Errors a script may see. Each has a stable code (for metrics, logs and tests) and a message that
 * is safe to show the script: it names origins, config keys and secret NAMES, never a secret's
 * value, and says which key of the config would allow what was refused. A fault of ours (a bug, the
 * store down) carries its real reason in `detail` for the server log, with secret values masked.
 */

export const CAPABILITY_ERROR_CODES = [
  /** The op is not one of the contract's. */
  "CS_CAP_UNKNOWN_OP",
  /** The payload does not have the contract's shape, or a value in it is malformed. */
  "CS_CAP_BAD_REQUEST",
  /** The run gave the script no capabilities at all (a sandbox used without a server or a case). */
  "CS_CAP_NONE",
  /** The invocation ended (timeout, deadline, memory, isolate rebuilt) while the request waited. */
  "CS_CAP_ABORTED",
  "CS_CAP_FETCH_NO_GRANT",
  "CS_CAP_FETCH_NOT_ALLOWED",
  "CS_CAP_FETCH_ADDRESS_BLOCKED",
  "CS_CAP_FETCH_TOO_MANY_CALLS",
  "CS_CAP_FETCH_TIMEOUT",
  "CS_CAP_FETCH_REQUEST_TOO_LARGE",
  "CS_CAP_FETCH_RESPONSE_TOO_LARGE",
  "CS_CAP_FETCH_REDIRECT",
  "CS_CAP_FETCH_NETWORK",
  /** A canned run (callscript run/test) got a fetch its case did not list. */
  "CS_CAP_FETCH_NOT_FORESEEN",
  "CS_CAP_SECRET_NOT_GRANTED",
  "CS_CAP_SECRET_NO_VALUE",
  "CS_CAP_KV_KEY",
  "CS_CAP_KV_VALUE",
  "CS_CAP_KV_TOO_MANY_OPS",
  "CS_CAP_KV_TOO_MANY_KEYS",
  "CS_CAP_KV_NOT_A_NUMBER",
  "CS_CAP_KV_UNAVAILABLE",
  /** A shadow run (NAME.shadow.ts) asked for a write: kv.set/delete/incr, or a fetch other than GET or HEAD. */
  "CS_CAP_READ_ONLY",
] as const;

export type CapabilityErrorCode = (typeof CAPABILITY_ERROR_CODES)[number];

const BRAND = Symbol.for("callscript.CapabilityError");

export class CapabilityError extends Error {
  override readonly name = "CapabilityError";
  readonly [BRAND] = true;

  constructor(
    readonly code: CapabilityErrorCode,
    /** Shown to the script as is. */
    message: string,
    /** For the server log only (secret values already masked): what went wrong underneath. */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** Also true for a CapabilityError made by another copy of this module (sources and dist/ in one process). */
export function isCapabilityError(error: unknown): error is CapabilityError {
  return typeof error === "object" && error !== null && (error as { [BRAND]?: unknown })[BRAND] === true;
}
