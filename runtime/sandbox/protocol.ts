/**
 * What crosses the isolate boundary, both ways: JSON text and numbers, never objects. Shared by the
 * host and the guest prelude (the prelude bundles its constants: GUEST_BUSY, GUEST_PARKED, the
 * bounds), so each fact about the boundary is written once.
 */

/**
 * The guest's answer to an invocation that arrived while an earlier one had not settled: it ran
 * no script code, and the host runs it again once the earlier one is over. Not JSON, so no answer
 * a script can make the prelude write is mistaken for it.
 */
export const GUEST_BUSY = "busy";

/**
 * The guest's answer to an entry whose invocation now waits for the host (a fetch or kv request):
 * its answer comes later, from the entry that settles the last of its requests. Not JSON either.
 */
export const GUEST_PARKED = "parked";

/**
 * Marks an entry's answer that also carries answers of other invocations, finished while no entry
 * of theirs was waiting (a call that finished without awaiting its own request, or one resumed by
 * another call's work): `OUTBOX_MARK + JSON [answer, [[token, answer], ...]]`.
 */
export const OUTBOX_MARK = "\u0001";

/**
 * The host's function as the guest calls it, to send one request of an invocation: only
 * primitives cross, copied; it returns nothing (isolated-vm's "ignored" callback), and the answer
 * comes through the binding's `settle(id, ok, text)`.
 */
export type HostSend = (token: number, id: number, op: string, payloadJson: string) => void;

/** Requests one invocation may send, over all kinds: above what any config allows (fetch.maxCalls 100 + kv.maxOpsPerInvocation 10 000). */
export const MAX_HOST_REQUESTS = 10_100;
/** A request's JSON, at most: a fetch body (fetch.maxRequestBytes ≤ 16 MiB) or a kv value (kv.maxValueBytes ≤ 16 MiB) and its envelope. */
export const MAX_HOST_PAYLOAD_CHARS = 17 * 1024 * 1024;

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

/** An error's message and stack as an answer carries them (the guest clips to these; the host, more loosely, again). */
export const MAX_MESSAGE_CHARS = 4096;
export const MAX_STACK_CHARS = 16 * 1024;
/** Returned data nested deeper is refused (a cycle made of getters would never end). */
export const MAX_DATA_DEPTH = 64;

/** The script's definition as JSON (settings and the top-level code's log lines), at most. */
export const MAX_META_CHARS = 2 * 1024 * 1024;

/** The arguments of the guest's `invoke`: primitives only, so they cross without a copy step. */
export type GuestInvocation = [
  /** The host's number for this invocation: its requests carry it. */
  token: number,
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
  /**
   * The host calls on its own thread (isolated-vm's applySync): the answer comes in an
   * InlineAnswer box that the call's promise fills while V8 runs the isolate's microtasks,
   * before the call returns; the box is still empty when the invocation never settles.
   */
  inline: boolean,
  /** This entry's number in its isolate, for the entry clock (ENTRY_CLOCK_SLOTS). */
  entry: number,
];

/** How many values one invocation's arguments are (GuestInvocation): invokeBatch takes them one after another. */
export const INVOCATION_ARITY = 10;

/**
 * Between the answers of invokeBatch, joined into one string: JSON text never holds it
 * (JSON.stringify escapes every control character), nor do GUEST_BUSY, GUEST_PARKED or OUTBOX_MARK.
 */
export const BATCH_SEPARATOR = "\u0000";

/**
 * When each entry into an isolate (an invoke or a settle) began, by the guest's clock: the host
 * makes a SharedArrayBuffer of ENTRY_CLOCK_SLOTS pairs of float64 and hands it to `connect`; the
 * guest, first thing in each entry, writes [entry number, Date.now()] into slot entry %
 * ENTRY_CLOCK_SLOTS (the number last, so that a slot being rewritten never reads as whole). The
 * host hears that an entry has begun only when the one before it has answered, late when its
 * event loop is busy; a failed entry's time counts from when it began (see entry-clock.ts).
 */
export const ENTRY_CLOCK_SLOTS = 256;

/** What invoke() answers a call made inline: a box with no prototype (nothing a script set on Object.prototype reaches it). */
export interface InlineAnswer {
  answer?: string;
}

/** The levels of a script's console lines, as the server log writes them (console.log is info, trace is debug). */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface GuestLogLine {
  level: LogLevel;
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
