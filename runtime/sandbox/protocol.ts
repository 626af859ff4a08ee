/**
 * What crosses the isolate boundary, both ways, as JSON text. Shared by the host and the guest
 * prelude (type-only on the guest side).
 */

/**
 * The guest's answer to an invocation that arrived while an earlier one had not settled: it ran
 * no script code, and the host runs it again once the earlier one is over. Not JSON, so no answer
 * a script can make the prelude write is mistaken for it.
 */
export const GUEST_BUSY = "busy";

/**
 * The longest answer an invocation can have: its data within the output limit, its log lines
 * within the log limit (each counted byte can be up to 64 characters of JSON: escapes, and the
 * level and time around an empty line) and the envelope. Anything longer is forged (a replaced
 * Object.prototype.toJSON decides what the prelude's JSON.stringify writes): the prelude does not
 * send it, since isolated-vm would copy it whole into the host's memory, and the host refuses it.
 */
export function maxAnswerChars(outputBytes: number, logBytes: number): number {
  return outputBytes + 64 * logBytes + 64 * 1024;
}

/** The script's definition as JSON (settings and the top-level code's log lines), at most. */
export const MAX_META_CHARS = 2 * 1024 * 1024;

/** The arguments of the guest's `invoke`: primitives only, so they cross without a copy step. */
export type GuestInvocation = [
  hook: string,
  /** The hook input, as JSON. */
  input: string,
  /** The data so far, as JSON. */
  data: string,
  /** The script's settings, as JSON. */
  settings: string,
  requestId: string,
  logBytes: number,
  outputBytes: number,
];

export interface GuestLogLine {
  level: "debug" | "info" | "warn" | "error";
  message: string;
  /** Milliseconds since the invocation started. */
  atMs: number;
}

export interface GuestLogs {
  lines: GuestLogLine[];
  /** UTF-8 bytes of the kept lines, each with its newline: what the log limit counts. */
  bytes: number;
  /** Lines past the log limit, dropped; reported with a visible marker, never silently. */
  dropped: number;
  droppedBytes: number;
}

/** What a handler's call came to, before the logs are attached. */
export type GuestResult = { outputBytes?: number } & (
  | { kind: "data"; data: Record<string, unknown> }
  | { kind: "none" }
  | { kind: "cancel" }
  | { kind: "invalid_output"; message: string }
  | { kind: "exception"; error: { name: string; message: string; stack?: string } }
);

export type GuestOutcome = GuestResult & { logs: GuestLogs };

export interface GuestMeta {
  hooks: string[];
  order?: unknown;
  limits?: unknown;
  settings?: unknown;
  logs: GuestLogs;
}
