/**
 * The code that runs INSIDE each script's isolate, ahead of the script. It owns the guest side of
 * the host boundary: only strings cross it (JSON in, JSON out), so no host object, and no
 * isolated-vm object, is ever reachable from script code.
 *
 * It is evaluated before the script's own modules, so the intrinsics it captures here are the
 * originals even if a script later replaces them (which can only ever break that script).
 */
import {
  BATCH_SEPARATOR,
  INVOCATION_ARITY,
  GUEST_BUSY,
  GUEST_PARKED,
  ENTRY_CLOCK_SLOTS,
  MAX_DATA_DEPTH,
  MAX_MESSAGE_CHARS,
  MAX_META_CHARS,
  MAX_STACK_CHARS,
  OUTBOX_MARK,
  maxAnswerChars,
  type GuestInvocation,
  type InlineAnswer,
  type GuestLogLine,
  type GuestMeta,
  type GuestOutcome,
  type GuestResult,
  type HostSend,
} from "../protocol.js";
import { CapabilityError, capabilitiesFor, type GuestCall } from "./capabilities.js";
import {
  createObject,
  ErrorClass,
  Float64ArrayClass,
  freeze,
  getPrototype,
  isArray,
  isFiniteNumber,
  now,
  objectKeys,
  objectPrototype,
  parseJson,
  PromiseClass,
  promiseThen,
  reflectApply,
  sharedByteLength,
  setPrototype,
  StringOf,
  stringIndexOf,
  stringSlice,
  toJson,
} from "./intrinsics.js";

const SCRIPT_MARK = Symbol.for("callscript.script");
const CANCEL_MARK = Symbol.for("callscript.cancel");

// Built-ins whose memory lives outside the V8 heap, so the isolate's heap limit does not bound
// them: WebAssembly memories (a 16 MB isolate grew one to 100 MB and wrote every page) and Intl's
// ICU objects (20 000 Intl.DateTimeFormat took 420 MB of the host's memory in one second, and
// stay as long as the script holds them). Scripts get neither; Date's and Number's
// toLocaleString and String's localeCompare still work. See docs/security.md.
delete (globalThis as { WebAssembly?: unknown }).WebAssembly;
delete (globalThis as { Intl?: unknown }).Intl;

// Resizable ArrayBuffers and growable SharedArrayBuffers (`maxByteLength`) get their memory from
// V8's page allocator, not from the ArrayBuffer allocator isolated-vm counts against the heap
// limit: a 32 MB isolate held two 256 MB of each and answered, on isolated-vm 5.0.4, 6.2.0 and
// 7.0.1 alike (the initial length bypasses the count too, not only resize() and grow()). Node 22
// and 24 have no V8 flag to turn them off. Scripts get fixed-length buffers only: the constructors
// are replaced by ones that refuse `maxByteLength`, the originals are reachable from nowhere
// (their prototypes' `constructor` is the replacement), and resize() and grow() are removed. See
// docs/security.md.
const reflectConstruct = Reflect.construct;
const defineProperty = Object.defineProperty;
const getOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;

function fixedLengthOnly(name: "ArrayBuffer" | "SharedArrayBuffer", grow: "resize" | "grow"): void {
  const original = (globalThis as Record<string, unknown>)[name] as new (length?: unknown) => object;
  const prototype = original.prototype as Record<string, unknown>;
  // A function, not a class: `extends ArrayBuffer` and Reflect.construct pass their own new.target.
  const FixedLength = function (this: unknown, length?: unknown, options?: unknown): object {
    if (new.target === undefined) throw new TypeError(`Constructor ${name} requires 'new'`);
    if (options !== null && typeof options === "object" && (options as { maxByteLength?: unknown }).maxByteLength !== undefined) {
      throw new RangeError(
        `${name}: resizable buffers (maxByteLength) are not available to scripts: their memory is outside the script's memory limit. Allocate the length you need`,
      );
    }
    return reflectConstruct(original, [length], new.target === FixedLength ? original : new.target);
  };
  defineProperty(FixedLength, "name", { value: name });
  defineProperty(FixedLength, "length", { value: 1 });
  defineProperty(FixedLength, "prototype", { value: prototype, writable: false, enumerable: false, configurable: false });
  const species = getOwnPropertyDescriptor(original, Symbol.species);
  if (species) defineProperty(FixedLength, Symbol.species, species);
  const isView = getOwnPropertyDescriptor(original, "isView");
  if (isView) defineProperty(FixedLength, "isView", isView);
  defineProperty(prototype, "constructor", { value: FixedLength, writable: true, enumerable: false, configurable: true });
  delete prototype[grow];
  defineProperty(globalThis, name, { value: FixedLength, writable: true, enumerable: false, configurable: true });
}
fixedLengthOnly("ArrayBuffer", "resize");
fixedLengthOnly("SharedArrayBuffer", "grow");

// Atomics.waitAsync registers each waiter in V8's process-wide wait list; called in a loop until
// the heap was full it ended the whole process with V8's fatal out-of-memory (abort), on every
// isolated-vm line. With no other thread or timer to wake it, a script has no use for it.
delete (Atomics as { waitAsync?: unknown }).waitAsync;

// Built-ins V8 runs as C++ do not see a request to stop the script while they run, and a loop
// whose body is mostly one call of them (`for (;;) JSON.parse(text)`) did not stop at its time
// limit at all: isolated-vm asked V8 to terminate it for 5 s, then reported a catastrophic error
// ("Script failed to terminate"), on which the server ends (isolated-vm 5.0.4, 6.2.0 and 7.0.1
// alike). Called through a function of the isolate's own, the call's entry checks for the request
// each time, and the loop stops at its limit. These are the ones found so (test/security,
// escapes 72); a script that hunts for another can still end the server, see docs/security.md.
function interruptible(holder: object, names: readonly string[]): void {
  for (const name of names) {
    const descriptor = getOwnPropertyDescriptor(holder, name);
    const original = descriptor?.value as ((...args: unknown[]) => unknown) | undefined;
    if (typeof original !== "function") continue;
    // A method, so that it is not a constructor, as the built-ins are not.
    const wrapper = {
      [name](this: unknown, ...args: unknown[]): unknown {
        return reflectApply(original, this, args);
      },
    }[name]!;
    defineProperty(wrapper, "length", { value: original.length });
    defineProperty(holder, name, { ...descriptor, value: wrapper });
  }
}
interruptible(JSON, ["parse"]);
interruptible(String.prototype, ["normalize", "toUpperCase", "toLowerCase", "toLocaleUpperCase", "toLocaleLowerCase", "localeCompare"]);
interruptible(globalThis, ["encodeURI", "encodeURIComponent", "decodeURI", "decodeURIComponent", "escape", "unescape"]);
interruptible(Array.prototype, ["fill"]);

/**
 * An error's message and stack are clipped (MAX_MESSAGE_CHARS, MAX_STACK_CHARS): a 1 MB message
 * would otherwise make the answer too large to read, and reach the connector and the log whole.
 * The host cuts again, more loosely, whatever arrives. As the host's clip(), with intrinsics
 * captured at load: a script may have replaced String.prototype.slice.
 */
function clip(text: string, max: number): string {
  return text.length <= max ? text : `${reflectApply(stringSlice, text, [0, max]) as string}… [${text.length - max} more characters]`;
}

/** The stack's first line (the message) and its frames, each within its own bound. */
function clipStack(stack: string): string {
  const frames = reflectApply(stringIndexOf, stack, ["\n    at "]) as number;
  if (frames < 0) return clip(stack, MAX_STACK_CHARS);
  return (
    clip(reflectApply(stringSlice, stack, [0, frames]) as string, MAX_MESSAGE_CHARS) +
    clip(reflectApply(stringSlice, stack, [frames]) as string, MAX_STACK_CHARS)
  );
}

/** UTF-8 length of a string, counted without TextEncoder (not in a bare isolate). */
function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

// ---- logging -------------------------------------------------------------------------------

interface LogSink {
  lines: GuestLogLine[];
  bytes: number;
  limit: number;
  dropped: number;
  droppedBytes: number;
  startedAt: number;
}

const newSink = (limit: number): LogSink => ({ lines: [], bytes: 0, limit, dropped: 0, droppedBytes: 0, startedAt: now() });

/** Lines written at load time (top-level code) go here and are reported with the script's meta. */
let loadSink = newSink(16 * 1024);
let sink = loadSink;

function describe(value: unknown, depth: number, seen: unknown[]): string {
  if (typeof value === "string") return depth === 0 ? value : toJson(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return `[Function ${(value as { name?: string }).name || "anonymous"}]`;
  if (typeof value === "symbol" || typeof value !== "object" || value === null) return StringOf(value);
  if (value instanceof ErrorClass) return value.stack ?? `${value.name}: ${value.message}`;
  if (seen.includes(value)) return "[Circular]";
  if (depth > 4) return isArray(value) ? "[Array]" : "[Object]";
  seen.push(value);
  try {
    if (isArray(value)) return `[${value.map((item) => describe(item, depth + 1, seen)).join(", ")}]`;
    const parts = objectKeys(value).map((key) => `${key}: ${describe((value as Record<string, unknown>)[key], depth + 1, seen)}`);
    return `{ ${parts.join(", ")} }`;
  } catch {
    return "[Uninspectable]";
  } finally {
    seen.pop();
  }
}

function write(level: GuestLogLine["level"], args: unknown[]): void {
  let message: string;
  try {
    message = args.map((arg) => describe(arg, 0, [])).join(" ");
  } catch {
    message = "[Uninspectable]";
  }
  // A line costs its newline too, as in a log file: otherwise empty lines would cost nothing and a
  // loop of console.log("") would grow the answer without bound while staying "within" the limit.
  const size = utf8Length(message) + 1;
  if (sink.bytes + size > sink.limit) {
    sink.dropped++;
    sink.droppedBytes += size;
    return;
  }
  sink.bytes += size;
  sink.lines.push({ level, message, atMs: now() - sink.startedAt });
}

const logger = freeze({
  debug: (...args: unknown[]) => write("debug", args),
  info: (...args: unknown[]) => write("info", args),
  warn: (...args: unknown[]) => write("warn", args),
  error: (...args: unknown[]) => write("error", args),
});

(globalThis as { console?: unknown }).console = freeze({
  ...logger,
  log: logger.info,
  trace: logger.debug,
});

function takeLogs(from: LogSink): GuestOutcome["logs"] {
  return { lines: from.lines, bytes: from.bytes, dropped: from.dropped, droppedBytes: from.droppedBytes };
}

// ---- output ----------------------------------------------------------------------------------

class WireError extends ErrorClass {}

/**
 * Whether a key reads as `.key` in a path: ASCII letters, digits, `_` and `$`, not starting with a
 * digit. Not a regular expression: the first one an isolate runs grows its heap by 250 KB, and
 * every script would pay that at load (its definition goes through toWire) even if it never runs.
 * Characters by index and operators only, which a script cannot replace.
 */
function isIdentifier(key: string): boolean {
  if (key.length === 0) return false;
  for (let i = 0; i < key.length; i++) {
    const ch = key[i]!;
    const start = (ch >= "a" && ch <= "z") || (ch >= "A" && ch <= "Z") || ch === "_" || ch === "$";
    if (!start && !(i > 0 && ch >= "0" && ch <= "9")) return false;
  }
  return true;
}

const pathOf = (path: string, key: string | number) =>
  typeof key === "number" ? `${path}[${key}]` : isIdentifier(key) ? `${path}.${key}` : `${path}[${toJson(key)}]`;

/** A plain JSON copy of a returned value, or a WireError that names the first bad path. */
function toWire(value: unknown, path: string, depth: number, ancestors: unknown[]): unknown {
  switch (typeof value) {
    case "string":
    case "boolean":
      return value;
    case "number":
      if (!isFiniteNumber(value)) throw new WireError(`${path} is ${StringOf(value)}; only finite numbers are JSON`);
      return value;
    case "bigint":
      throw new WireError(`${path} is a BigInt; convert it with String() or Number()`);
    case "symbol":
      throw new WireError(`${path} is a Symbol`);
    case "function":
      throw new WireError(`${path} is a function`);
    case "undefined":
      throw new WireError(`${path} is undefined`);
  }
  if (value === null) return null;
  if (depth > MAX_DATA_DEPTH) throw new WireError(`${path} is nested deeper than ${MAX_DATA_DEPTH} levels`);
  if (ancestors.includes(value)) throw new WireError(`${path} refers back to itself (a cycle)`);
  ancestors.push(value);
  try {
    if (isArray(value)) {
      // Elements defined, not assigned: a setter the script put on Array.prototype (or a replaced
      // push) would otherwise decide what the copy holds, silently. Without a prototype, as the
      // object copies below: JSON.stringify writes it as an array all the same.
      const copy: unknown[] = [];
      setPrototype(copy, null);
      for (let i = 0; i < value.length; i++)
        defineProperty(copy, i, { value: toWire(value[i], pathOf(path, i), depth + 1, ancestors), writable: true, enumerable: true, configurable: true });
      return copy;
    }
    const prototype = getPrototype(value);
    if (prototype !== objectPrototype && prototype !== null) {
      const kind = (prototype as { constructor?: { name?: string } })?.constructor?.name || "non-plain object";
      throw new WireError(`${path} is a ${kind}; return plain objects, arrays and JSON values`);
    }
    // Without a prototype, so that a setter the script put on Object.prototype (SandboxJS
    // CVE-2025-34146 defines one through "".sub.__proto__.__proto__) cannot swallow a key of the copy.
    const copy: Record<string, unknown> = createObject(null) as Record<string, unknown>;
    // By index: a for-of would go through Array.prototype[Symbol.iterator], which the script can replace.
    const keys = objectKeys(value as object);
    for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!;
      const item = (value as Record<string, unknown>)[key];
      // As in JSON, a key set to undefined is left out.
      if (item === undefined) continue;
      // Assigned to the copy it would set the copy's prototype and vanish from the data silently.
      if (key === "__proto__") throw new WireError(`${pathOf(path, key)} is not allowed as a key`);
      copy[key] = toWire(item, pathOf(path, key), depth + 1, ancestors);
    }
    return copy;
  } finally {
    ancestors.pop();
  }
}

function describeError(error: unknown): { name: string; message: string; stack?: string } {
  try {
    if (error instanceof ErrorClass) {
      return {
        name: clip(StringOf(error.name), 256),
        message: clip(StringOf(error.message), MAX_MESSAGE_CHARS),
        stack: clipStack(StringOf(error.stack ?? "")),
      };
    }
    return { name: "Thrown value", message: clip(`a non-Error value was thrown: ${describe(error, 1, [])}`, MAX_MESSAGE_CHARS) };
  } catch {
    return { name: "Thrown value", message: "an uninspectable value was thrown" };
  }
}

// ---- settings --------------------------------------------------------------------------------

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const key of objectKeys(value)) deepFreeze((value as Record<string, unknown>)[key]);
    freeze(value);
  }
  return value;
}

// ---- the calls' shapes -----------------------------------------------------------------------

/**
 * The objects of one call in KEEP_SHAPES_EVERY (its input, data, ctx and answer) are held until
 * the next such call, so that the hidden classes JSON.parse and the protocol give them stay alive
 * between calls. Otherwise a full collection of the isolate (isolated-vm asks for one whenever the
 * external strings of the inputs reach the memory limit: every ≈ 1 850 calls of a 3.4 KB input at
 * 32 MB) finds no object of those classes, frees them, and deoptimizes every function optimized
 * against them ("marking dependent code … reason: weak objects": the guest's `run`, the script's
 * own helpers), which are then compiled again and again (498 optimizations in 63 000 calls instead
 * of 136, 19 µs more per call: docs/benchmarks.md, "A script's call, on its isolate's side").
 * Held in this closure, out of the script's reach, in an object without a prototype (no setter a
 * script put on Object.prototype sees them); one call in many, so that what is kept is mostly an
 * old object already, not one each young collection copies again.
 */
const KEEP_SHAPES_EVERY = 1024;
/** An input larger than this is not kept: it would weigh on the script's own heap limit. */
const KEEP_SHAPES_MAX_CHARS = 64 * 1024;
let shapesTurn = 0;
/** What is held: the objects of the last call held, replaced by the next one's. */
const held = createObject(null) as { shapes?: Record<string, unknown> };

/** A holder for this call's objects when it is the one call in KEEP_SHAPES_EVERY, else undefined. */
function shapesHolder(): Record<string, unknown> | undefined {
  if (shapesTurn++ % KEEP_SHAPES_EVERY !== 0) return undefined;
  const holder = createObject(null) as Record<string, unknown>;
  held.shapes = holder;
  return holder;
}

let lastSettingsJson: string | undefined;
let lastSettings: unknown;

/** Settings rarely change, so the frozen object is reused while its JSON is the same. */
function settingsFrom(json: string): unknown {
  if (json !== lastSettingsJson) {
    lastSettings = deepFreeze(parseJson(json));
    lastSettingsJson = json;
  }
  return lastSettings;
}

// ---- binding ---------------------------------------------------------------------------------

type Handler = (input: unknown, ctx: unknown) => unknown;

interface ScriptShape {
  hooks: Record<string, Handler>;
  order?: unknown;
  limits?: unknown;
  settings?: unknown;
}

function definitionOf(module: Record<string, unknown>): ScriptShape {
  const definition = module.default as ScriptShape | undefined;
  if (definition === undefined) {
    throw new ErrorClass("The script has no default export. End it with: export default defineScript({ hooks: { ... } })");
  }
  if (definition === null || typeof definition !== "object" || !(definition as unknown as Record<symbol, unknown>)[SCRIPT_MARK]) {
    throw new ErrorClass("The default export is not a script. Wrap it in defineScript({ hooks: { ... } }) imported from 'callscript'");
  }
  const hooks = definition.hooks as Record<string, Handler> | null | undefined;
  if (hooks === null || hooks === undefined || typeof hooks !== "object") {
    throw new ErrorClass("defineScript({ hooks }) needs a hooks object: { need_registration(input, ctx) { ... } }");
  }
  for (const name of objectKeys(hooks)) {
    if (typeof hooks[name] !== "function") throw new ErrorClass(`hooks.${name} is not a function`);
  }
  return definition;
}

export interface GuestEntry {
  meta(): string;
  /** Once, by the host, right after load: the function requests of every invocation leave through, and the entry clock's memory (ENTRY_CLOCK_SLOTS). */
  connect(send: HostSend, clock: SharedArrayBuffer): boolean;
  invoke(...request: GuestInvocation): Promise<string> | InlineAnswer | string;
  /** Several invocations' arguments one after another (INVOCATION_ARITY each): their answers, joined by BATCH_SEPARATOR. */
  invokeBatch(...requests: unknown[]): Promise<string>;
  /** The host's answer to request `id`: JSON text, or (ok false) JSON `{ code, message }`. */
  settle(id: number, ok: boolean, text: string, entry: number): Promise<string> | string;
}

/** An invocation, with what the binding needs of it between slices. */
interface Call extends GuestCall {
  sink: LogSink;
  /** Its requests sent and not yet settled. */
  outstanding: number;
  /** Resolves the entry (invoke or settle) the host is waiting on for this invocation, if any. */
  wake: ((answer: string) => void) | undefined;
}

interface PendingRequest {
  call: Call;
  resolve: (text: string) => void;
  reject: (error: Error) => void;
  /** Made when the script asked: its stack is the script's line, not the settle's. */
  error: CapabilityError;
}

/** A list whose writes no setter on Array.prototype can intercept. */
function newOutbox(): [number, string][] {
  const list: [number, string][] = [];
  setPrototype(list, null);
  return list;
}

/**
 * The host's refusal as the script's error, with the stack of the line that asked (`early` was
 * made there): the settle's own frames would point into the sandbox.
 */
function withStackOf(early: CapabilityError, code: string, message: string): CapabilityError {
  const error = new CapabilityError(code, message);
  const stack = early.stack;
  if (typeof stack === "string") {
    const frames = reflectApply(stringIndexOf, stack, ["\n"]) as number;
    if (frames >= 0) error.stack = `CapabilityError: ${message}${reflectApply(stringSlice, stack, [frames]) as string}`;
  }
  return error;
}

export function bindScript(module: Record<string, unknown>, scriptName: string): GuestEntry {
  const definition = definitionOf(module);
  const hooks = definition.hooks;

  function meta(): string {
    const value: GuestMeta = {
      hooks: objectKeys(hooks),
      order: definition.order,
      limits: definition.limits,
      settings: definition.settings,
      logs: takeLogs(loadSink),
    };
    let json: string;
    try {
      json = toJson(toWire(value, "definition", 0, []));
    } catch (error) {
      throw new ErrorClass(`defineScript({ order, limits, settings }) must hold JSON values: ${describeError(error).message}`);
    }
    // Checked here too (the host checks again), so that a forged definition of any size is not copied to the host.
    // (What is not a string at all, the host reports as a changed built-in.)
    if (typeof json === "string" && json.length > MAX_META_CHARS) {
      throw new ErrorClass(
        `defineScript(): the definition is ${json.length} characters of JSON (settings and top-level log lines), ` +
          `over the limit of ${MAX_META_CHARS}; keep large tables in a helper module of the scripts folder`,
      );
    }
    return json;
  }

  /**
   * The host hands an isolate several entries at once (invocations, and answers to their
   * requests) and isolated-vm runs them one after the other, each a "slice" with its own time
   * limit. An invocation's code runs only while no other's slice is unfinished: a slice that has
   * not finished (a promise that never settles, or code stopped at its time limit, whose `finally`
   * never runs) leaves this set, and the entries behind it answer GUEST_BUSY without running any
   * script code; the host runs them again once the earlier one has timed out and the isolate is
   * rebuilt (or fails them, when they had already sent requests). An invocation that waits for the
   * host (fetch, kv) has finished its slice: others run meanwhile, and share the module's globals.
   */
  let unsettled = false;
  let send: HostSend | undefined;
  /** Shared with the host, which alone reads it: when each entry began (see ENTRY_CLOCK_SLOTS). */
  let entryClock: Float64Array | undefined;
  let nextRequest = 0;
  /** Requests sent and not yet settled, by id: a prototype-less record, which no script can reach or intercept. */
  const pending = createObject(null) as Record<number, PendingRequest | undefined>;
  /** Answers of invocations that finished while no entry of theirs was waiting: sent with the next entry's. */
  let outbox = newOutbox();

  /** True when `host` is now the way out: the host checks it, so that a script that connected first cannot load. */
  function connect(host: HostSend, clock: SharedArrayBuffer): boolean {
    if (send !== undefined || typeof host !== "function") return false;
    send = host;
    // Only the host's memory, of the host's size: a script calling connect first (it then fails
    // to load) must not make the prelude allocate what it asks.
    if (isEntryClock(clock)) entryClock = new Float64ArrayClass(clock);
    return true;
  }

  function isEntryClock(value: unknown): value is SharedArrayBuffer {
    try {
      return reflectApply(sharedByteLength, value, []) === 2 * ENTRY_CLOCK_SLOTS * Float64ArrayClass.BYTES_PER_ELEMENT;
    } catch {
      return false;
    }
  }

  /** First thing in every entry, before anything can stop it: when it began, for the host. */
  function began(entry: number): void {
    const clock = entryClock;
    if (clock === undefined || typeof entry !== "number") return;
    const slot = 2 * (entry % ENTRY_CLOCK_SLOTS);
    clock[slot] = -1;
    clock[slot + 1] = now();
    clock[slot] = entry;
  }

  /** The entry's own answer, with the outbox if it holds any. */
  function withOutbox(answer: string): string {
    if (outbox.length === 0) return answer;
    const carried = outbox;
    outbox = newOutbox();
    return OUTBOX_MARK + toJson([answer, carried]);
  }

  /** The invocation waits for the host: its slice is over, and its entry answers GUEST_PARKED. */
  function park(call: Call): void {
    unsettled = false;
    const wake = call.wake;
    call.wake = undefined;
    wake?.(GUEST_PARKED);
  }

  function finish(call: Call, answer: string): void {
    call.done = true;
    unsettled = false;
    const wake = call.wake;
    call.wake = undefined;
    if (wake) wake(answer);
    else outbox[outbox.length] = [call.token, answer];
  }

  function sendRequest(call: Call, op: string, payload: string): Promise<string> {
    const host = send;
    if (host === undefined) return PromiseClass.reject(new CapabilityError("CS_CAP_NONE", `${op}: this run gives the script no fetch or kv`));
    const id = ++nextRequest;
    const error = new CapabilityError("CS_CAP_ABORTED", op);
    const answer = new PromiseClass<string>((resolve, reject) => {
      pending[id] = { call, resolve, reject, error };
    });
    call.outstanding++;
    host(call.token, id, op, payload);
    park(call);
    return answer;
  }

  function settle(id: number, ok: boolean, text: string, entry: number): Promise<string> | string {
    began(entry);
    const request = pending[id];
    if (request === undefined) return withOutbox("");
    if (unsettled) return GUEST_BUSY;
    delete pending[id];
    const { call } = request;
    call.outstanding--;
    if (ok) request.resolve(text);
    else {
      let failure: { code?: unknown; message?: unknown } = {};
      try {
        failure = parseJson(text) as typeof failure;
      } catch {
        // The host sends JSON; anything else is reported as what it is.
      }
      request.reject(
        withStackOf(
          request.error,
          typeof failure.code === "string" ? failure.code : "CS_CAP_ABORTED",
          typeof failure.message === "string" ? failure.message : StringOf(text),
        ),
      );
    }
    // A request of an invocation that has ended (sent without being awaited): its continuation runs
    // and is heard by nobody.
    if (call.done) return withOutbox("");
    sink = call.sink;
    // Other requests of the call are still out (Promise.all over several): it stays parked on
    // them; whatever its code does with this answer runs now, and if that ends the call its
    // answer goes out with the entry that settles the next one.
    if (call.outstanding > 0) return withOutbox(GUEST_PARKED);
    unsettled = true;
    return new PromiseClass<string>((resolve) => {
      call.wake = (answer) => resolve(withOutbox(answer));
    });
  }

  // Plain parameters, not `...[hook, input, …]`: destructuring a rest array goes through
  // Array.prototype[Symbol.iterator], and a script that replaced it made every later call fail.
  function invoke(
    token: GuestInvocation[0],
    hook: GuestInvocation[1],
    input: GuestInvocation[2],
    data: GuestInvocation[3],
    settings: GuestInvocation[4],
    requestId: GuestInvocation[5],
    logBytes: GuestInvocation[6],
    outputBytes: GuestInvocation[7],
    inline: GuestInvocation[8],
    entry: GuestInvocation[9],
  ): Promise<string> | InlineAnswer | string {
    began(entry);
    if (unsettled) return GUEST_BUSY;
    unsettled = true;
    const call: Call = { token, done: false, requests: 0, outstanding: 0, sink: newSink(logBytes), wake: undefined };
    sink = call.sink;
    const answer = new PromiseClass<string>((resolve) => {
      call.wake = (text) => resolve(withOutbox(text));
    });
    reflectApply(promiseThen, run(call, hook, input, data, settings, requestId, outputBytes, logBytes), [(text: string) => finish(call, text)]);
    if (inline !== true) return answer;
    const box = createObject(null) as InlineAnswer;
    reflectApply(promiseThen, answer, [(text: string) => (box.answer = text)]);
    return box;
  }

  /**
   * Several invocations in one entry from the host: one isolated-vm task instead of one each, which
   * saves the hop's copies, task and promise per call (docs/benchmarks.md §7). Each runs as its own
   * invoke would, one after the other: the next begins once the one before has answered (finished,
   * parked on a request, or answered GUEST_BUSY). An invocation that never settles holds the rest,
   * and code that runs too long stops them all at the batch's time limit: the host then runs every
   * invocation of the batch again, alone, on a rebuilt isolate, where each meets its own limits.
   *
   * A rest parameter, not `arguments`-like destructuring: the engine fills it without
   * Array.prototype's iterator, and its elements are own properties that no setter can intercept.
   */
  function invokeBatch(...requests: unknown[]): Promise<string> {
    const count = (requests.length / INVOCATION_ARITY) | 0;
    let next = 0;
    let answers = "";
    return new PromiseClass<string>((resolve) => {
      const step = (answer: string | undefined): void => {
        for (;;) {
          if (answer !== undefined) answers = next === 1 ? answer : answers + BATCH_SEPARATOR + answer;
          if (next === count) {
            resolve(answers);
            return;
          }
          const at = next++ * INVOCATION_ARITY;
          const started = invoke(
            requests[at] as GuestInvocation[0],
            requests[at + 1] as GuestInvocation[1],
            requests[at + 2] as GuestInvocation[2],
            requests[at + 3] as GuestInvocation[3],
            requests[at + 4] as GuestInvocation[4],
            requests[at + 5] as GuestInvocation[5],
            requests[at + 6] as GuestInvocation[6],
            requests[at + 7] as GuestInvocation[7],
            false,
            requests[at + 9] as GuestInvocation[9],
          );
          if (typeof started === "string") {
            answer = started;
            continue;
          }
          reflectApply(promiseThen, started, [step]);
          return;
        }
      };
      step(undefined);
    });
  }

  async function run(
    call: Call,
    hook: string,
    input: string,
    data: string,
    settings: string,
    requestId: string,
    outputBytes: number,
    logBytes: number,
  ): Promise<string> {
    let outcome: GuestResult;
    const shapes = shapesHolder();
    try {
      const handler = hooks[hook];
      if (typeof handler !== "function") throw new ErrorClass(`This script has no handler for ${hook}`);
      const { fetch, secret, kv } = capabilitiesFor(call, sendRequest as (call: GuestCall, op: string, payload: string) => Promise<string>);
      const parsedData = parseJson(data);
      const parsedInput = parseJson(input);
      const ctx = freeze({
        hook,
        data: parsedData,
        settings: settingsFrom(settings),
        log: logger,
        requestId,
        script: scriptName,
        fetch,
        secret,
        kv,
      });
      if (shapes) {
        shapes.input = input.length <= KEEP_SHAPES_MAX_CHARS ? parsedInput : undefined;
        shapes.data = parsedData;
        shapes.ctx = ctx;
      }
      const result = await handler(parsedInput, ctx);
      outcome = encodeResult(result, outputBytes);
    } catch (error) {
      outcome = { kind: "exception", error: describeError(error) };
    } finally {
      sink = loadSink = newSink(0);
    }
    let answer: string;
    try {
      const envelope = { ...outcome, logs: takeLogs(call.sink) };
      if (shapes) shapes.envelope = envelope;
      answer = toJson(envelope);
    } catch {
      // Only a script that replaced a built-in JSON.stringify consults (a toJSON that throws) gets
      // here. An answer that is not JSON tells the host so, and the host rebuilds the isolate; a
      // rejection would instead carry the script's own message, which could pass for the host's
      // "timed out" or "memory limit".
      answer = "";
    }
    // Only a forged answer is longer (see maxAnswerChars): not sent, so not copied to the host.
    if (typeof answer !== "string" || answer.length > maxAnswerChars(outputBytes, logBytes)) answer = "";
    // Only now (finish): a toJSON that loops until the time limit stops this invocation before it settles.
    return answer;
  }

  return freeze({ meta, connect, invoke, invokeBatch, settle });
}

function encodeResult(result: unknown, outputLimit: number): GuestResult {
  if (result === undefined) return { kind: "none", outputBytes: 0 };
  if (result !== null && typeof result === "object" && (result as Record<symbol, unknown>)[CANCEL_MARK] === true) {
    return { kind: "cancel", outputBytes: 0 };
  }
  if (result === null) {
    return {
      kind: "invalid_output",
      message: "The handler returned null. Return an object of changes, undefined for no change, or cancel()",
    };
  }
  if (typeof result !== "object" || isArray(result)) {
    return {
      kind: "invalid_output",
      message: `The handler returned ${isArray(result) ? "an array" : `a ${typeof result}`}. Return an object of changes, undefined for no change, or cancel()`,
    };
  }
  let data: unknown;
  try {
    data = toWire(result, "data", 0, []);
  } catch (error) {
    if (error instanceof WireError) return { kind: "invalid_output", message: clip(error.message, MAX_MESSAGE_CHARS) };
    return { kind: "invalid_output", message: `The returned data could not be read: ${describeError(error).message}` };
  }
  const json = toJson(data);
  const outputBytes = utf8Length(json);
  if (outputBytes > outputLimit) {
    return {
      kind: "invalid_output",
      message: `The returned data is ${outputBytes} bytes of JSON, over this script's output limit of ${outputLimit} bytes`,
      outputBytes,
    };
  }
  return { kind: "data", data: data as Record<string, unknown>, outputBytes };
}
