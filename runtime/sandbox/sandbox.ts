import { performance } from "node:perf_hooks";
import { z } from "zod";
import type { CompiledScript } from "../compile/compile.js";
import { hookNames, isHookName, type HookName } from "../schema/hooks.js";
import type { HookFailure } from "../schema/envelope.js";
import { disposeIsolate, tracked } from "./isolates.js";
import { isolatedVm, type Context, type Isolate, type Reference } from "./ivm.js";
import { partialLimitsSchema, resolveLimits, type Limits } from "./limits.js";
import { InvocationLine, type Turn } from "./line.js";
import { InlinePolicy } from "./inline-policy.js";
import {
  GUEST_BUSY,
  GUEST_PARKED,
  LOG_LEVELS,
  MAX_DATA_DEPTH,
  MAX_MESSAGE_CHARS,
  MAX_META_CHARS,
  MAX_STACK_CHARS,
  OUTBOX_MARK,
  maxAnswerChars,
  type GuestLogs,
  type InlineAnswer,
  type GuestOutcome,
  type HostSend,
} from "./protocol.js";
import { ReturnSites, shapeOf, type ReturnShape } from "./return-site.js";
import { BundleSourceMap } from "./source-map.js";
import { CPU_SHARE_FOR_TIMEOUT, endsAsWaiting, maxWallTimeoutMs, ranToItsTimeout, retryTimeoutMs, stoppedLate, waitBackstopMs } from "./time-limit.js";
import { closest } from "../util/closest.js";
import type { Capabilities } from "../capabilities/types.js";
import { CapabilityError, isCapabilityError } from "../capabilities/errors.js";
import { ScriptLoadFailure } from "../errors.js";
import { busiestThreadMs, threadCpuTimes, type ThreadCpu } from "./thread-cpu.js";
import { newEntryClock, ranForMs, type EntryClock } from "./entry-clock.js";
import { handOver, handOverSoon } from "./handover.js";
import { BATCH_FAILED, EntryBatch, type BatchAnswer } from "./batch.js";
import type { LoadProbes } from "./load-probe.js";
import { connectGuest, runScript } from "./script-context.js";

export interface SandboxOptions {
  defaults: Limits;
  max: Limits;
  /** Invocations that may wait behind the running one; past it: `overloaded` at once. */
  maxQueue: number;
  /** Called when isolated-vm reports that V8 lost control of an isolate. */
  onCatastrophicError?: (script: string, message: string) => void;
  /**
   * Called when a script's isolate could not be booted (a version loaded in a probe) or rebuilt
   * (after a call that took it down): once per failure, not again while the next tries fail the
   * same way. The calls that wait for it fail with the same message.
   */
  onBootFailure?: (script: string, message: string, rebuild: boolean) => void;
  /** Short calls of short scripts run on the host's thread (inline-policy.ts); default true. */
  inline?: boolean;
  /** Short calls in a row before that (default INLINE_AFTER_SHORT_CALLS; 0 in tests: every call, from the first). */
  inlineAfter?: number;
  /** True while the event loop is busy (loop-load.ts): calls then go to their isolates' threads, which work beside it. */
  loopBusy?: () => boolean;
  /** Calls of a short script gathered while the loop is busy go to its isolate in one task (batch.ts); default true. */
  batch?: boolean;
  /**
   * Load in a probe isolate (load-probe.ts): the script's own isolate boots later, at its first
   * call or when warm() or bootLater() asks (config `bootIsolates`); without it, the isolate boots
   * as the script loads.
   */
  loadProbes?: LoadProbes;
}

export interface InvocationRequest {
  hook: HookName;
  inputJson: string;
  dataJson: string;
  settingsJson: string;
  requestId: string;
  /**
   * What the script may reach (ctx.fetch, ctx.kv): the server's CapabilityHost, a case's canned
   * capabilities, or none (every request of the script then fails with CS_CAP_NONE).
   */
  capabilities?: Capabilities;
  /** Aborted when the answer no longer matters (the request's deadline): host requests in flight stop. */
  signal?: AbortSignal;
  /**
   * When the request's deadline passes (performance.now()): a call runs on the host's thread only
   * if its time limit ends before, since nothing on that thread, the deadline's timer included,
   * runs until it returns.
   */
  deadlineAt?: number;
}

export interface InvocationStats {
  /** Wall time from the start of the call into the isolate to its answer. */
  wallMs: number;
  /** CPU time the isolate spent on this invocation. */
  cpuMs: number;
  /** Time spent waiting behind other invocations of this script. */
  queuedMs: number;
  outputBytes: number;
  logBytes: number;
  /** Heap in use after the invocation, when measured. */
  heapUsedBytes?: number;
}

export type InvocationOutcome =
  { kind: "data"; data: Record<string, unknown> } | { kind: "none" } | { kind: "cancel" } | { kind: "failure"; failure: HookFailure };

export interface Invocation {
  script: string;
  version: string;
  outcome: InvocationOutcome;
  logs: GuestLogs;
  stats: InvocationStats;
}

const guestMetaSchema = z.object({
  hooks: z.array(z.string()),
  order: z.number({ error: "order must be a number" }).int("order must be an integer").optional(),
  limits: partialLimitsSchema.optional(),
  settings: z.record(z.string(), z.unknown(), { error: "settings must be an object" }).optional(),
  // Checked line by line: the registry writes these lines to the server log, and a script that
  // replaces Object.prototype.toJSON at load decides what the definition says.
  logs: z.object({
    lines: z.array(z.object({ level: z.enum(LOG_LEVELS), message: z.string(), atMs: z.number() })),
    bytes: z.number(),
    dropped: z.number(),
    droppedBytes: z.number(),
  }),
});
export type ScriptMeta = Omit<z.output<typeof guestMetaSchema>, "hooks"> & { hooks: HookName[] };

interface Booted {
  isolate: Isolate;
  context: Context;
  invoke: Reference<(...args: unknown[]) => Promise<string> | InlineAnswer | string>;
  /** The guest's invokeBatch: several invocations in one entry (batch.ts). */
  invokeBatch: Reference<(...args: unknown[]) => Promise<string>>;
  /** The batch that calls join until it is handed over or full (see runSlice). */
  openBatch?: EntryBatch | undefined;
  /** Thrown away by the host (retire): invocations it still held are run again on the next one. */
  retired?: boolean;
  /** Found holding more than its heap limit allows (see HEAP_SLACK_FACTOR). */
  overHeap?: boolean;
  /** Heap readings after heavy calls, asked for and not yet answered (see heapAfter). */
  heavyReadings?: number;
  /** Those of them for calls that used CPU enough to fill the heap (FASTEST_FILL_MB_PER_MS, heapAfter). */
  fillSuspects?: number;
  /** A call has failed with `memory` for this isolate: the one that filled it (see attempt). */
  blamed?: boolean;
  /** A call failed with the script's unhandled rejection: its invocation may still hang in the guest. */
  rejected?: boolean;
  /** An entry was stopped at its time limit: what ran after it is not trusted (see attempt). */
  terminated?: boolean;
  /** The guest's `settle(id, ok, text, entry)`: answers to the requests of its invocations. */
  settle: Reference<(...args: unknown[]) => unknown>;
  /** When the guest began each entry (see entry-clock.ts). */
  clock: EntryClock;
  /** Entries handed to the isolate so far: the last one's number. */
  entries: number;
}

/** One entry into the isolate, as the host saw it (see runSlice); BATCH_FAILED only for a call sent in a batch. */
interface SliceRun<Batched = never> {
  settled: Settled | typeof TIMED_OUT | typeof NEVER_SETTLES | Batched;
  turn: Turn;
  atHead: boolean;
  headAt: number;
  wallMs: number;
  cpuMs: number;
  alive: boolean;
}

/** How an invocation that waited for the host ended. */
type Later = { kind: "answer"; value: string } | { kind: "failure"; invocation: Invocation; stats?: Partial<InvocationStats> };

/** An attempt at an invocation while its isolate may run it: what its requests need (see hostRequest). */
interface LiveCall {
  token: number;
  booted: Booted;
  request: InvocationRequest;
  /** Aborted when the invocation ends (or the request's deadline passes): its requests in flight stop. */
  controller: AbortController | undefined;
  /** Requests it sent, and those not yet answered. */
  requests: number;
  outstanding: number;
  /** Its first entry answered GUEST_PARKED: the rest of it runs in entries that settle its requests. */
  parked: boolean;
  /** CPU and wall time of those later entries. */
  laterCpuMs: number;
  laterWallMs: number;
  /** CPU time of its first entry: the later entries' time limit is what is left of the invocation's. */
  firstCpuMs: number;
  /** Set while it waits with no request of its own in flight (see waitingForNothing). */
  idleTimer?: NodeJS.Timeout;
  /** Set once: the answer or failure that ends it. */
  ended?: Later;
  whenEnded?: (later: Later) => void;
}

/** One invocation across its attempts. */
interface CallState {
  /** isolated-vm's timeout for the next attempt: the limit, more after a busy host stopped one (time-limit.ts). */
  wallTimeoutMs: number;
  /** Attempts run again for that reason. */
  timeRetries: number;
  /** Run again once already because an attempt was stopped late (see stoppedLate). */
  lateRetried?: boolean;
  /** The last attempt ran on the host's thread (see runInline). */
  inline?: boolean;
  /** Its batch failed as a whole: it runs again alone (see batch.ts). */
  unbatched?: boolean;
  /** The current attempt, while its isolate may still run it. */
  live?: LiveCall;
  /** CPU and wall time of those attempts, counted in the invocation's figures. */
  spentCpuMs: number;
  spentWallMs: number;
}

const EMPTY_LOGS: GuestLogs = { lines: [], bytes: 0, dropped: 0, droppedBytes: 0 };
const TIMED_OUT = Symbol("timed out");
/** A call run inline whose promise had not settled when it returned: nothing can settle it later. */
const NEVER_SETTLES = Symbol("never settles");
/** How an invocation's call into isolated-vm ended. */
type Settled = { ok: true; value: string } | { ok: false; error: unknown };
/** An attempt that ran no script code (the guest was busy, or its isolate was retired under it). */
const RUN_AGAIN = Symbol("run again");

/**
 * The heap is read after a call only when the call used at least this much CPU (or the caller
 * wants the figure): a read costs 3–10 µs and a context switch or two, and with calls behind it
 * would wait for the isolate's lock. Filling twice even the smallest heap (2 × 8 MB) takes V8
 * 6 ms or more here (it writes what it allocates, 2–2.6 MB/ms flattening strings or filling
 * arrays), over twenty times this; and the CPU figure is isolated-vm's, which no script can forge.
 */
const HEAVY_CALL_CPU_MS = 0.25;
/**
 * Three times the fastest V8 filled a heap here (2–2.6 MB/ms, above). A call that used less CPU
 * than the heap limit takes at this rate, or less than FILL_SUSPECT_MIN_CPU_MS, did not fill it:
 * when its isolate dies at its heap limit before its reading, during a later call, that later call
 * is the one (a first call of 0.9 ms, lazy compilation and all, was taken for it, and its answer
 * replaced by `memory`). The floor is for a busy host, where isolated-vm's CPU figure, which counts
 * wall time while the isolate runs, makes a short call read a few milliseconds; a 128 MB string
 * past V8's own check takes 50 ms to flatten.
 */
const FASTEST_FILL_MB_PER_MS = 8;
const FILL_SUSPECT_MIN_CPU_MS = 10;
/** A call whose heap reading found its isolate gone, at its heap limit, because of a later call: it keeps its answer. */
const FILLED_LATER = Symbol("filled later");
/**
 * While a call lasts, the host reads its CPU time this often (from the first poll on: a call that
 * ends sooner costs one timer, set and cleared, as before): the figure reported for a call whose
 * isolate V8 disposes at its heap limit.
 */
const CPU_POLL_MS = 20;

/** The process's CPU time at some point of a call (each thread's too, when known), and how long after the call started that was. */
interface CpuMark {
  usage: NodeJS.CpuUsage;
  afterMs: number;
  threads?: ThreadCpu;
}

/**
 * A call's CPU time. isolated-vm's `cpuTime` is not the CPU time of the isolate's thread here: it
 * counts wall-clock time while the isolate runs (a call that used 114 ms of CPU read 880 ms with
 * six busy processes beside it, on isolated-vm 5.0.4, 6.2.0 and 7.0.1 alike; it even counts time
 * the process was stopped). The process's own CPU time over the call is a bound from the other side
 * (it adds other threads': the host, V8's GC helpers, other isolates), and the busiest single
 * thread's, where Linux tells each thread's (thread-cpu.ts), a tighter one: over a heap bomb's
 * calls beside three busy processes on two cores, the process's CPU read 186–274 ms, the busiest
 * thread's 134–215 ms (V8's GC helpers work beside the isolate's thread), and a call counted with
 * the first more often ran past its 250 ms limit before its heap one. Read only for calls that last
 * past the first poll, so as to cost nothing on short ones; the time before that poll counts whole.
 */
function cpuSince(mark: CpuMark | undefined, isolateMs: number): number {
  if (!mark) return isolateMs;
  const used = process.cpuUsage(mark.usage);
  let bound = (used.user + used.system) / 1000;
  const threadsNow = mark.threads ? threadCpuTimes() : undefined;
  if (mark.threads && threadsNow) bound = Math.min(bound, busiestThreadMs(mark.threads, threadsNow));
  return Math.min(isolateMs, mark.afterMs + bound);
}
/**
 * Inline calls made since the event loop last reached its check phase (setImmediate). An inline
 * call settles with promises only, so callers that await calls one after another (a loop of
 * calls in a test or the runner, shadows) would otherwise keep the loop in its microtasks and
 * starve its timers and I/O (a file watcher, the server's sockets): past this many, the next call
 * first lets the loop turn.
 */
let inlineThisTurn = 0;
const MAX_INLINE_PER_TURN = 32;
const loopTurned = () => new Promise<void>((resolve) => setImmediate(resolve));

function countInline(): void {
  if (inlineThisTurn++ === 0) setImmediate(() => (inlineThisTurn = 0));
}

/** Isolates booted ahead of their calls at once (ScriptSandbox.warm). */
const WARM_BOOTS = 2;
/** How long a script's top-level code may run when it loads. */
const LOAD_TIMEOUT_MS = 2_000;
const LOG_LEVEL_SET = new Set<string>(LOG_LEVELS);
const OUTCOME_KINDS = new Set(["data", "none", "cancel", "invalid_output", "exception"]);
const MB = 1024 * 1024;
/**
 * V8 stops an isolate at its heap limit only when a garbage collection finds it over; one large
 * allocation is not checked (a 16 MB isolate flattened a 512 MB string and answered). An isolate
 * holding more than this many times its limit after a call, or after loading, is over it. Twice
 * the limit leaves room for the young generation: a busy script stays below 1.2 times.
 */
const HEAP_SLACK_FACTOR = 2;
/**
 * A call stopped at its time limit while its heap holds at least this share of the limit ran out of
 * heap: V8 was collecting, again and again, what it could not free. A heap bomb takes V8 tens to
 * hundreds of ms of such collections before it gives up (`a.push(new Array(1e6))` in 32 MB: 210-270
 * ms of CPU here, while the heap goes 23 → 31 → 39 MB), and whether the time limit or the heap
 * limit came first would otherwise depend on the machine.
 */
const HEAP_FULL_SHARE = 0.9;
/**
 * A failure's message and stack, as the answer and the server log carry them. The prelude cuts a
 * script's messages (4 KB) and stacks (16 KB) with a marker; the host cuts what the guest sends at
 * twice that, in case the prelude was made to send more.
 */
const GUEST_SLACK = 2;
/** As in the prelude: returned data nested deeper than this is refused. */

/** Text from a script cut to `max` characters, with a visible marker of what was cut. */
export function clip(text: string, max = MAX_MESSAGE_CHARS): string {
  return text.length <= max ? text : `${text.slice(0, max)}… [${text.length - max} more characters]`;
}

/** Whether an isolate holds more than its heap limit allows (see HEAP_SLACK_FACTOR). */
function overHeap(isolate: Isolate, memoryMb: number): boolean {
  return (heapUsedOf(isolate) ?? 0) > HEAP_SLACK_FACTOR * memoryMb * MB;
}

/**
 * Where returned data, as the host parsed it, is not what the prelude lets through: nested too
 * deep, or with a `__proto__` key (`.a.__proto__ is not allowed as a key`); undefined when it is fine.
 */
function badData(value: unknown, depth: number): string | undefined {
  if (value === null || typeof value !== "object") return undefined;
  if (depth > MAX_DATA_DEPTH) return ` is nested deeper than ${MAX_DATA_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const bad = badData(value[i], depth + 1);
      if (bad !== undefined) return `[${i}]${bad}`;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const at = /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
    if (key === "__proto__") return `${at} is not allowed as a key`;
    const bad = badData((value as Record<string, unknown>)[key], depth + 1);
    if (bad !== undefined) return `${at}${bad}`;
  }
  return undefined;
}

/**
 * The guest's data checked again on the host, and its size in bytes of JSON. The prelude checks
 * all of it, but a script that replaces a built-in JSON.stringify consults (Object.prototype.toJSON)
 * decides what the answer says, so the host does not take the prelude's word for it.
 */
function checkData(data: Record<string, unknown>, outputLimit: number): { bytes: number } | { problem: string } {
  const bad = badData(data, 0);
  if (bad !== undefined) return { problem: `data${bad}` };
  const bytes = Buffer.byteLength(JSON.stringify(data));
  if (bytes > outputLimit) return { problem: `the data is ${bytes} bytes of JSON, over the output limit of ${outputLimit} bytes` };
  return { bytes };
}

/**
 * The log lines within the log limit, counted again on the host for the same reason: lines past
 * the limit are dropped and counted, as the prelude does. The prelude's count is never below the
 * host's, so lines it kept are never dropped here.
 */
function withinLogLimit(logs: GuestLogs, limit: number): GuestLogs {
  let bytes = 0;
  for (let i = 0; i < logs.lines.length; i++) {
    const size = Buffer.byteLength(logs.lines[i]!.message) + 1;
    if (bytes + size <= limit) {
      bytes += size;
      continue;
    }
    let droppedBytes = logs.droppedBytes;
    for (const line of logs.lines.slice(i)) droppedBytes += Buffer.byteLength(line.message) + 1;
    return { lines: logs.lines.slice(0, i), bytes, dropped: logs.dropped + logs.lines.length - i, droppedBytes };
  }
  return logs;
}

/**
 * The guest's answer as the prelude writes it. A script can still break that (by replacing a
 * built-in the prelude uses after it loaded, such as Object.prototype.toJSON), so the host checks
 * the shape instead of trusting it.
 */
function isGuestOutcome(value: unknown): value is GuestOutcome {
  if (value === null || typeof value !== "object") return false;
  const outcome = value as Record<string, unknown>;
  if (typeof outcome.kind !== "string" || !OUTCOME_KINDS.has(outcome.kind)) return false;
  if (outcome.outputBytes !== undefined && typeof outcome.outputBytes !== "number") return false;
  const logs = outcome.logs as Record<string, unknown> | null | undefined;
  if (logs === null || typeof logs !== "object" || !Array.isArray(logs.lines)) return false;
  if (typeof logs.bytes !== "number" || typeof logs.dropped !== "number" || typeof logs.droppedBytes !== "number") return false;
  for (const line of logs.lines as unknown[]) {
    const { level, message, atMs } = (line ?? {}) as Record<string, unknown>;
    if (typeof level !== "string" || !LOG_LEVEL_SET.has(level) || typeof message !== "string" || typeof atMs !== "number") return false;
  }
  switch (outcome.kind) {
    case "data":
      return outcome.data !== null && typeof outcome.data === "object" && !Array.isArray(outcome.data);
    case "invalid_output":
      return typeof outcome.message === "string";
    case "exception": {
      const error = outcome.error as Record<string, unknown> | null | undefined;
      return (
        error !== null &&
        typeof error === "object" &&
        typeof error.name === "string" &&
        typeof error.message === "string" &&
        (error.stack === undefined || typeof error.stack === "string")
      );
    }
    default:
      return true;
  }
}

/**
 * One version of one script in its own isolate. Invocations run one at a time, behind a bounded
 * queue; a timeout or heap exhaustion disposes the isolate and a fresh one is built from the same
 * compiled code, so the next call finds the script as it was after loading.
 */
export class ScriptSandbox {
  private booted: Booted | undefined;
  private booting: Promise<Booted> | undefined;
  /** Whether an isolate of this version has booted yet (see SandboxOptions.loadProbes). */
  private bootedOnce: boolean;
  private readonly line = new InvocationLine();
  /** A quarter of the isolate's memory limit, in characters of two bytes (see InvocationLine.stretchOver). */
  private readonly stretchBudgetChars: number;
  /** isolated-vm's options for an invocation: the same for every call of this version. */
  private readonly applyOptions: { timeout: number; result: { promise: true } };
  private pending = 0;
  private drained: { promise: Promise<void>; resolve: () => void } | undefined;
  private disposed = false;
  /** Drained and disposed: an isolate that finishes booting now is thrown away at once. */
  private closed = false;
  private readonly sourceMap: BundleSourceMap;
  private returnSites: ReturnSites | undefined;
  /** Attempts whose isolate may still run them, by the token their requests carry. */
  private readonly calls = new Map<number, LiveCall>();
  private tokens = 0;
  /** Whether its next call may run on the host's thread. */
  readonly inline: InlinePolicy;

  private constructor(
    readonly compiled: CompiledScript,
    readonly meta: ScriptMeta,
    readonly limits: Limits,
    readonly warnings: string[],
    private readonly options: SandboxOptions,
    /** Undefined when it boots later (SandboxOptions.loadProbes). */
    booted: Booted | undefined,
    private readonly link: RequestLink,
  ) {
    this.booted = booted;
    this.bootedOnce = booted !== undefined;
    link.request = (from, token, id, op, payload) => this.hostRequest(from, token, id, op, payload);
    this.sourceMap = new BundleSourceMap(compiled.sourceMap, compiled.scriptsDir, compiled.runtime.lines);
    this.applyOptions = { timeout: limits.timeoutMs, result: { promise: true } };
    this.stretchBudgetChars = (limits.memoryMb * MB) / 8;
    this.inline = new InlinePolicy(options.inline !== false, options.inlineAfter);
  }

  get name(): string {
    return this.compiled.name;
  }

  get version(): string {
    return this.compiled.version;
  }

  /** Invocations running or waiting. */
  get queueDepth(): number {
    return this.pending;
  }

  implements(hook: HookName): boolean {
    return this.meta.hooks.includes(hook);
  }

  /** Load a compiled script: boot an isolate, run its top level, read and check its definition. */
  static async load(compiled: CompiledScript, options: SandboxOptions): Promise<ScriptSandbox> {
    if (options.loadProbes) {
      const probed = await ScriptSandbox.probe(compiled, options, options.loadProbes);
      if (probed) return probed;
    }
    const sourceMap = new BundleSourceMap(compiled.sourceMap, compiled.scriptsDir, compiled.runtime.lines);
    let bootedMb = options.defaults.memoryMb;
    let booted: Booted;
    const link: RequestLink = {};
    try {
      booted = await boot(compiled, bootedMb, sourceMap, options, link);
    } catch (error) {
      // The heap a script asks for is known only once its top level has run: a script that asks
      // for more than the default, and needs it to load, gets the server's maximum to say so.
      if (!(error instanceof HeapExhaustedAtLoad) || options.max.memoryMb <= bootedMb) throw error;
      bootedMb = options.max.memoryMb;
      try {
        booted = await boot(compiled, bootedMb, sourceMap, options, link);
      } catch (retried) {
        if (!(retried instanceof HeapExhaustedAtLoad)) throw retried;
        throw new ScriptLoadFailure(
          compiled.name,
          `its top-level code ran out of heap, even with the server's maximum of ${bootedMb} MB`,
          retried.location,
          retried.mappedStack,
        );
      }
    }
    let meta: ScriptMeta;
    try {
      meta = await readMeta((booted as Booted & { entry: Reference<Record<string, unknown>> }).entry, compiled.name);
    } catch (error) {
      disposeIsolate(booted.isolate);
      throw error;
    }
    const { limits, warnings } = resolveLimits(meta.limits, options.defaults, options.max);
    if (limits.memoryMb !== bootedMb) {
      // The heap size is fixed when an isolate is made, and known only once the script has said it.
      disposeIsolate(booted.isolate);
      booted = await boot(compiled, limits.memoryMb, sourceMap, options, link);
    }
    return new ScriptSandbox(compiled, meta, limits, warnings, options, booted, link);
  }

  /**
   * Loaded in a probe isolate, its own to boot later: undefined when the probe failed,
   * or when the script asks for a smaller heap than the probe's (its top level is then checked in
   * an isolate of its size), and load() goes the full way.
   */
  private static async probe(compiled: CompiledScript, options: SandboxOptions, probes: LoadProbes): Promise<ScriptSandbox | undefined> {
    const probeMb = options.defaults.memoryMb;
    const json = await probes.run(compiled, probeMb, LOAD_TIMEOUT_MS);
    if (json === undefined) return undefined;
    let meta: ScriptMeta;
    try {
      meta = parseMeta(json, compiled.name);
    } catch {
      return undefined;
    }
    const { limits, warnings } = resolveLimits(meta.limits, options.defaults, options.max);
    if (limits.memoryMb < probeMb) return undefined;
    return new ScriptSandbox(compiled, meta, limits, warnings, options, undefined, {});
  }

  /** The `overloaded` answer when this script's queue is full now; undefined when it takes calls. */
  refusal(): Invocation | undefined {
    if (this.pending <= this.options.maxQueue) return undefined;
    return this.failed(
      "overloaded",
      `${this.pending} invocations of this script are already running or waiting (queue limit ${this.options.maxQueue}); retry later`,
      0,
    );
  }

  /**
   * `admitted`: the caller checked refusal() when the request arrived (dispatch does, for every
   * script of a pipeline), so the call is not refused now that it is its turn.
   */
  async invoke(request: InvocationRequest, measure: { heap?: boolean; admitted?: boolean } = {}): Promise<Invocation> {
    if (this.disposed) {
      return this.failed("exception", "This script version was unloaded", 0);
    }
    if (!measure.admitted) {
      const refused = this.refusal();
      if (refused) return refused;
    }
    this.pending++;
    const enqueuedAt = performance.now();
    const call: CallState = { wallTimeoutMs: this.limits.timeoutMs, timeRetries: 0, spentCpuMs: 0, spentWallMs: 0 };
    try {
      for (let attempt = 1; ; attempt++) {
        let result: Invocation | typeof RUN_AGAIN;
        try {
          result = await this.attempt(request, enqueuedAt, measure, call);
        } finally {
          this.closeCall(call.live);
        }
        if (result !== RUN_AGAIN) {
          const failed = result.outcome.kind === "failure" ? result.outcome.failure.reason : undefined;
          this.inline.observe(result.stats.cpuMs, failed !== "timeout" && failed !== "memory", call.inline === true);
          return result;
        }
        // A request already sent (a fetch, a kv write) has had its effect: running the invocation
        // again would send it twice. It fails instead, saying so.
        if (call.live && call.live.requests > 0) {
          return this.failed(
            "exception",
            `This invocation was stopped (its isolate was rebuilt, or a busy host stopped it) after it had sent ${call.live.requests} fetch/kv request(s); it is not run again, so that they are not sent twice`,
            performance.now() - enqueuedAt,
          );
        }
        // Each new attempt follows an earlier invocation that failed and took the isolate with it,
        // and no more than the queue holds came earlier: past that, something is wrong. (Attempts
        // run again because a busy host stopped them are bounded by time-limit.ts.)
        if (attempt - call.timeRetries > this.options.maxQueue + 1) {
          return this.failed(
            "exception",
            `Not run: the script's isolate was rebuilt ${attempt} times while this invocation waited, each time because an earlier invocation timed out or ran out of memory`,
            performance.now() - enqueuedAt,
          );
        }
      }
    } finally {
      this.pending--;
      if (this.pending === 0 && this.drained) {
        this.drained.resolve();
        this.drained = undefined;
      }
    }
  }

  /** Dispose once every started invocation has finished. */
  async drainAndDispose(): Promise<void> {
    this.disposed = true;
    if (this.pending > 0) {
      if (!this.drained) {
        let resolve!: () => void;
        const promise = new Promise<void>((done) => (resolve = done));
        this.drained = { promise, resolve };
      }
      await this.drained.promise;
    }
    // A timeout or out-of-memory may have started a rebuild (retire) that nobody waits for; it
    // must not leave a live isolate behind this version once it is gone.
    this.closed = true;
    const booted = this.booted;
    this.booted = undefined;
    if (booted) disposeIsolate(booted.isolate);
    await this.booting?.catch(() => undefined);
  }

  /**
   * Boot its isolate ahead of its call when it has none and none is on its way (a version loaded
   * in a probe, before its first call): ahead of the boots bootLater() queued. Boots asked for
   * either way start WARM_BOOTS at a time: `new Isolate` holds the event loop for about 3 ms, and
   * a long pipeline's all at once held it for the whole pipeline.
   */
  warm(): void {
    if (!this.awaitingBoot || this.bootQueued === "now") return;
    this.bootQueued = "now";
    ScriptSandbox.warmWaiting.push(this);
    ScriptSandbox.pumpWarm();
  }

  /** Boot its isolate in the background, behind the boots warm() asks for (config bootIsolates: afterLoad). */
  bootLater(): void {
    if (!this.awaitingBoot || this.bootQueued !== undefined) return;
    this.bootQueued = "later";
    ScriptSandbox.laterWaiting.push(this);
    ScriptSandbox.pumpWarm();
  }

  /** Whether its isolate is up now (a version loaded in a probe has none until it boots). */
  get isolateUp(): boolean {
    return this.booted !== undefined && !this.booted.isolate.isDisposed;
  }

  /** No isolate, none on its way, and still serving: what warm() and bootLater() start a boot for. */
  private get awaitingBoot(): boolean {
    return this.booted === undefined && this.booting === undefined && !this.disposed;
  }

  /** The queue it waits in for a boot (so that each request's warm() does not queue it again). */
  private bootQueued: "now" | "later" | undefined;
  private static readonly warmWaiting: ScriptSandbox[] = [];
  private static readonly laterWaiting: ScriptSandbox[] = [];
  private static warmBooting = 0;

  private static pumpWarm(): void {
    while (ScriptSandbox.warmBooting < WARM_BOOTS && ScriptSandbox.warmWaiting.length + ScriptSandbox.laterWaiting.length > 0) {
      const sandbox = (ScriptSandbox.warmWaiting.shift() ?? ScriptSandbox.laterWaiting.shift())!;
      sandbox.bootQueued = undefined;
      // Booted meanwhile, by its own call or an earlier warm().
      if (!sandbox.awaitingBoot) continue;
      ScriptSandbox.warmBooting++;
      sandbox
        .ready()
        .catch(() => undefined)
        .finally(() => {
          ScriptSandbox.warmBooting--;
          ScriptSandbox.pumpWarm();
        });
    }
  }

  /** Heap in use by this script's isolate now, if it is up. */
  heapUsedBytes(): number | undefined {
    const isolate = this.booted?.isolate;
    return isolate && !isolate.isDisposed ? heapUsedOf(isolate) : undefined;
  }

  /** Why its isolate could not be booted or rebuilt the last time it was tried; undefined once one is up. */
  get lastBootError(): string | undefined {
    return this.bootError;
  }

  private bootError: string | undefined;

  private async ready(): Promise<Booted> {
    if (this.booted && !this.booted.isolate.isDisposed) return this.booted;
    if (!this.booting) {
      const rebuild = this.bootedOnce;
      this.booting = boot(this.compiled, this.limits.memoryMb, this.sourceMap, this.options, this.link)
        .then(
          (booted) => {
            this.bootError = undefined;
            return booted;
          },
          (error: unknown) => {
            // Boots in the background (bootLater, a rebuild after a timeout) have no caller to tell.
            const message = error instanceof Error ? error.message : String(error);
            if (message !== this.bootError && !this.closed) this.options.onBootFailure?.(this.name, message, rebuild);
            this.bootError = message;
            throw error;
          },
        )
        .finally(() => {
          this.booting = undefined;
        });
    }
    const booted = await this.booting;
    if (this.closed) {
      disposeIsolate(booted.isolate);
      throw new Error("This script version was unloaded");
    }
    this.booted = booted;
    this.bootedOnce = true;
    return booted;
  }

  /** Throw the broken isolate away and start building the next one before anyone asks (once: later calls for it do nothing). */
  private retire(booted: Booted): void {
    if (booted.retired) return;
    booted.retired = true;
    disposeIsolate(booted.isolate);
    if (this.booted === booted) this.booted = undefined;
    if (!this.disposed) this.ready().catch(() => undefined);
    // Invocations waiting for the host in it have lost their state with it; they are not run again
    // (their requests had effects), and stop waiting now.
    for (const live of this.calls.values()) {
      if (live.booted !== booted || !live.parked || live.ended) continue;
      this.end(live, {
        kind: "failure",
        invocation: this.failed(
          "exception",
          `The script's isolate was rebuilt (another invocation of it timed out, ran out of memory or never settled) while this invocation waited for ${live.outstanding > 0 ? "its fetch/kv request" : "the host"}; it is not run again, so that its ${live.requests} request(s) are not sent twice`,
          0,
        ),
      });
    }
  }

  private anyParked(): boolean {
    for (const live of this.calls.values()) if (live.parked) return true;
    return false;
  }

  /** A new attempt's entry in `calls`, with the token its requests carry. */
  private openCall(booted: Booted, request: InvocationRequest): LiveCall {
    // The abort signal is made with the first request (most calls send none: a controller and its
    // listener per call were 12% of the event loop's samples under load, docs/benchmarks.md §7).
    const live: LiveCall = {
      token: ++this.tokens,
      booted,
      request,
      controller: undefined,
      requests: 0,
      outstanding: 0,
      parked: false,
      firstCpuMs: 0,
      laterCpuMs: 0,
      laterWallMs: 0,
    };
    this.calls.set(live.token, live);
    return live;
  }

  private closeCall(live: LiveCall | undefined): void {
    if (!live) return;
    this.calls.delete(live.token);
    clearTimeout(live.idleTimer);
    live.controller?.abort();
  }

  private end(live: LiveCall, later: Later): void {
    if (live.ended) return;
    live.ended = later;
    clearTimeout(live.idleTimer);
    live.controller?.abort();
    live.whenEnded?.(later);
  }

  /** The end of an invocation that waits for the host. */
  private answered(live: LiveCall): Promise<Later> {
    live.parked = true;
    if (live.ended) return Promise.resolve(live.ended);
    return new Promise((resolve) => (live.whenEnded = resolve));
  }

  /** An entry's own answer; answers of other invocations it carries (see OUTBOX_MARK) end them. */
  private unpackOutbox(value: unknown): unknown {
    if (typeof value !== "string" || !value.startsWith(OUTBOX_MARK)) return value;
    let parsed: unknown;
    try {
      parsed = JSON.parse(value.slice(OUTBOX_MARK.length));
    } catch {
      return "";
    }
    if (!Array.isArray(parsed) || parsed.length !== 2 || !Array.isArray(parsed[1])) return "";
    for (const item of parsed[1] as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== "number" || typeof item[1] !== "string") continue;
      const live = this.calls.get(item[0]);
      if (live && !live.ended) this.end(live, { kind: "answer", value: item[1] });
    }
    return parsed[0];
  }

  /**
   * A request of an invocation, sent by the guest through isolated-vm's callback (so it runs on
   * the host's event loop, after the entry that sent it). Answered through `settle`, in the line.
   */
  private hostRequest(booted: Booted, token: unknown, id: unknown, op: unknown, payload: unknown): void {
    // Only the prelude holds the callback, and it always sends these types.
    if (typeof token !== "number" || typeof id !== "number" || typeof op !== "string" || typeof payload !== "string") return;
    const live = this.calls.get(token);
    if (!live || live.booted !== booted) {
      // An invocation that has ended (a request sent and not awaited), or a forged token: refused.
      if (!booted.retired && !booted.isolate.isDisposed)
        void this.deliver(booted, undefined, id, false, failureText("CS_CAP_ABORTED", `${op}: the invocation has ended`));
      return;
    }
    live.requests++;
    live.outstanding++;
    this.inline.requested();
    const { request } = live;
    const capabilities = request.capabilities;
    const handled = capabilities
      ? capabilities.handle(op, payload, { script: this.name, version: this.version, hook: request.hook, requestId: request.requestId, signal: signalOf(live) })
      : Promise.reject(new CapabilityError("CS_CAP_NONE", `${op}: fetch and kv are not available in this run`));
    void handled.then(
      (text) => this.deliver(booted, live, id, true, typeof text === "string" ? text : "null"),
      (error: unknown) =>
        this.deliver(
          booted,
          live,
          id,
          false,
          isCapabilityError(error)
            ? failureText(error.code, error.message)
            : failureText("CS_CAP_ABORTED", `${op}: failed inside callscript (the server log says why)`),
        ),
    );
  }

  /** The answer to request `id` into the isolate: an entry that runs the rest of the invocation, up to its end or its next request. */
  private async deliver(booted: Booted, live: LiveCall | undefined, id: number, ok: boolean, text: string): Promise<void> {
    try {
      await this.settleRequest(booted, live, id, ok, text);
    } catch (error) {
      // A fault of ours: the invocation fails with it rather than waiting forever.
      if (live && !live.ended)
        this.end(live, {
          kind: "failure",
          invocation: this.failed("exception", `The answer to a fetch/kv request could not be given to the script: ${(error as Error).message}`, 0),
        });
    }
  }

  private async settleRequest(booted: Booted, live: LiveCall | undefined, id: number, ok: boolean, text: string): Promise<void> {
    if (live) live.outstanding--;
    if (booted.retired || booted.isolate.isDisposed) return;
    const running = live && !live.ended ? live : undefined;
    const timeoutMs = running ? Math.max(1, Math.ceil(this.limits.timeoutMs - running.firstCpuMs - running.laterCpuMs)) : this.limits.timeoutMs;
    const slice = await this.runSlice(booted, booted.settle, [id, ok, text], timeoutMs);
    if (running) {
      running.laterCpuMs += slice.cpuMs;
      running.laterWallMs += slice.wallMs;
    }
    const fail = (reason: HookFailure["reason"], message: string, stats?: Partial<InvocationStats>) => {
      if (running) this.end(running, { kind: "failure", invocation: this.failed(reason, message, 0), stats });
    };
    // Each failure ends its own invocation first: retire() then ends the others waiting in the isolate.
    if (slice.settled === TIMED_OUT || slice.settled === NEVER_SETTLES) {
      fail(
        "timeout",
        `The script's promise did not settle within ${Math.round(slice.wallMs)} ms after its request was answered, and nothing could settle it later (a promise that never settles)`,
      );
      this.retire(booted);
      return;
    }
    if (!slice.settled.ok) {
      if (booted.retired) return;
      if (!slice.alive) {
        booted.overHeap = true;
        booted.blamed = true;
        fail("memory", `The script ran out of its heap of ${this.limits.memoryMb} MB`, { heapUsedBytes: this.limits.memoryMb * MB });
        this.retire(booted);
        return;
      }
      if (ranToItsTimeout(slice.wallMs, timeoutMs)) {
        booted.terminated = true;
        if (running) {
          const cpuMs = running.firstCpuMs + running.laterCpuMs;
          this.end(running, { kind: "failure", invocation: this.failedWith(this.timeoutFailure(slice.settled.error, cpuMs, slice.wallMs), 0) });
        }
        this.retire(booted);
        return;
      }
      // The script left a promise rejected while this entry ran: isolated-vm fails the entry with it.
      booted.rejected = true;
      if (running) this.end(running, { kind: "failure", invocation: this.failedWith(this.rejectionFailure(slice.settled.error), 0) });
      return;
    }
    if (booted.terminated) return;
    const value = this.unpackOutbox(slice.settled.value);
    if (value === GUEST_BUSY) {
      // An earlier entry never finished (stopped at its time limit, or waiting forever): this one ran nothing.
      this.retire(booted);
      return;
    }
    if (!running) return;
    if (value !== GUEST_PARKED && value !== "") this.end(running, { kind: "answer", value: typeof value === "string" ? value : "" });
    else this.waitingForNothing(running, booted);
  }

  /**
   * A parked invocation that the last entry neither ended nor left waiting for a request of its own
   * (its answer unreadable, or it awaits a promise only another call could settle): if nothing
   * ends it within the backstop of a promise that never settles, it fails with `timeout`, as such
   * a promise does, rather than holding its version's drain forever.
   */
  private waitingForNothing(live: LiveCall, booted: Booted): void {
    if (live.ended || live.outstanding > 0 || live.idleTimer) return;
    live.idleTimer = setTimeout(() => {
      live.idleTimer = undefined;
      if (live.ended || live.outstanding > 0) return;
      this.end(live, {
        kind: "failure",
        invocation: this.failed(
          "timeout",
          "The script's promise did not settle after its last fetch/kv answer, and nothing of its own could settle it later (a promise that never settles)",
          0,
        ),
      });
      this.retire(booted);
    }, waitBackstopMs(this.limits.timeoutMs));
    live.idleTimer.unref();
  }

  /**
   * Lets the isolate's thread end its stretch of work and free what the stretch held (see
   * InvocationLine.stretchOver): waits until every entry handed over has answered, then enters the
   * isolate from this thread, which isolated-vm lets it do only once the isolate's thread has left
   * its stretch (it holds the isolate's lock until then). With the line empty no script code of the
   * host's runs there, so that wait is short (unlike a reading taken while a call runs: see
   * metrics.ts). An empty line alone was not enough on a loaded machine, where the host sometimes
   * handed over the next entries before the isolate's thread had looked for more.
   */
  private async endStretch(): Promise<void> {
    await this.line.whenIdle();
    // Only the first call to resume finds the line empty (and its count back to 0); those behind it go on.
    const booted = this.booted;
    if (this.line.idle && booted && !booted.isolate.isDisposed) heapUsedOf(booted.isolate);
  }

  /**
   * One attempt at an invocation. Every invocation is handed to isolated-vm as soon as it arrives,
   * so that a busy script's calls reach its isolate's thread in one go instead of one round trip
   * each; isolated-vm runs them one after the other, in order, each with its own time limit. Its
   * wall time, CPU and promise deadline count from when it is the head of the line. An attempt
   * that ran no script code (the guest answered GUEST_BUSY behind an invocation that never
   * settled, or the isolate was retired under it), or that a busy host stopped before it used its
   * CPU time (see time-limit.ts), is RUN_AGAIN, once every earlier one has settled.
   *
   * Why a call failed comes only from what the host knows: its own timer, the isolate's state,
   * its wall and CPU times and its heap, as isolated-vm measures them. Never from the error's
   * message, which a script writes when it leaves a promise rejected.
   */
  private async attempt(request: InvocationRequest, enqueuedAt: number, measure: { heap?: boolean }, call: CallState): Promise<Invocation | typeof RUN_AGAIN> {
    // A short script's calls run on the host's thread once what was handed to its isolate is done:
    // they wait for that rather than join it, or under steady load the isolate would never be idle.
    if (this.inline.ready && call.timeRetries === 0 && this.options.loopBusy?.() !== true) {
      if (!this.line.idle) await this.line.whenIdle();
      if (inlineThisTurn >= MAX_INLINE_PER_TURN) await loopTurned();
    }
    if (this.line.stretchOver(this.stretchBudgetChars)) await this.endStretch();
    let booted: Booted;
    try {
      booted = this.booted && !this.booted.isolate.isDisposed ? this.booted : await this.ready();
    } catch (error) {
      // Its first boot, when it was loaded in a probe (its top level then ran the same way there).
      const what = this.bootedOnce ? "rebuilt" : "booted at its first call";
      return this.failed("exception", `The script's isolate could not be ${what}: ${(error as Error).message}`, performance.now() - enqueuedAt);
    }
    const { limits } = this;
    const wallTimeoutMs = call.wallTimeoutMs;
    // On the host's thread only with nothing else of the script's in its isolate or on its way
    // there, and no call waiting for the host in it (a stop at the budget rebuilds the isolate).
    const inline =
      this.inline.ready &&
      this.options.loopBusy?.() !== true &&
      call.timeRetries === 0 &&
      this.line.idle &&
      !booted.heavyReadings &&
      !this.anyParked() &&
      (request.deadlineAt === undefined || performance.now() + wallTimeoutMs < request.deadlineAt);
    call.inline = inline;
    // Several calls in one task to the isolate's thread (batch.ts): where inline calls would run,
    // but the loop is busy, so they go to the isolate's thread, which works beside it.
    const batched =
      !inline &&
      this.options.batch !== false &&
      !call.unbatched &&
      this.inline.short &&
      this.options.loopBusy?.() === true &&
      call.timeRetries === 0 &&
      wallTimeoutMs === limits.timeoutMs &&
      !booted.heavyReadings &&
      !this.anyParked();
    const live = this.openCall(booted, request);
    call.live = live;
    const args: unknown[] = [
      live.token,
      request.hook,
      request.inputJson,
      request.dataJson,
      request.settingsJson,
      request.requestId,
      limits.logBytes,
      limits.outputBytes,
      inline,
    ];
    const slice = inline ? this.runInline(booted, args, wallTimeoutMs) : await this.runSlice(booted, booted.invoke, args, wallTimeoutMs, batched);
    const { settled, turn, atHead, headAt, alive } = slice;
    if (settled === BATCH_FAILED) {
      // Its batch did not answer as a whole: which call of it failed, and why, is found by running
      // each again, alone, on a rebuilt isolate (the calls that fail so fail with their own
      // figures). Batches wait until the script has shown itself short again.
      if (!booted.retired) {
        this.retire(booted);
        this.inline.batchFailed();
      }
      call.unbatched = true;
      return RUN_AGAIN;
    }
    if (batched) this.inline.batchedCalls++;
    let { wallMs, cpuMs } = slice;
    const queuedMs = headAt - enqueuedAt;
    let base = { wallMs: call.spentWallMs + wallMs, cpuMs: call.spentCpuMs + cpuMs, queuedMs, outputBytes: 0, logBytes: 0 };

    // (Inline, a call that returns unsettled is known at once to wait for nothing.)
    if (settled === TIMED_OUT || settled === NEVER_SETTLES) {
      this.retire(booted);
      return this.failed(
        "timeout",
        `The script's promise did not settle within ${Math.round(wallMs)} ms, and nothing could settle it later: ` +
          "scripts have no timers or I/O to wait for (a promise that never settles)",
        queuedMs,
        base,
      );
    }
    if (!settled.ok) {
      // Retired by the host because of an earlier invocation: this one may not even have started.
      if (booted.retired) return RUN_AGAIN;
      if (!alive) {
        // Only isolated-vm disposes an isolate the host has not retired: at its heap limit.
        // Killed for memory while the heap reading of an earlier call that could have filled it
        // is on its way, or after that reading found the isolate gone: that call filled the heap
        // and fails for it; this one runs again on the rebuilt isolate.
        const victim = (booted.fillSuspects ?? 0) > 0 || booted.overHeap === true;
        booted.overHeap = true;
        this.retire(booted);
        if (victim) return RUN_AGAIN;
        booted.blamed = true;
        return this.failed("memory", `The script ran out of its heap of ${limits.memoryMb} MB`, queuedMs, { ...base, heapUsedBytes: limits.memoryMb * MB });
      }
      if (ranToItsTimeout(wallMs, wallTimeoutMs)) {
        // isolated-vm stopped it at its wall-clock timeout: a script filling its heap (V8 was
        // collecting when the time ran out), one that used its CPU time, or one the host did not
        // give a core to.
        const heapUsed = heapUsedOf(booted.isolate);
        booted.terminated = true;
        this.retire(booted);
        if (heapUsed !== undefined && heapUsed >= HEAP_FULL_SHARE * limits.memoryMb * MB) {
          booted.blamed = true;
          return this.failed("memory", `The script ran out of its heap of ${limits.memoryMb} MB`, queuedMs, { ...base, heapUsedBytes: heapUsed });
        }
        let retryMs = retryTimeoutMs(limits.timeoutMs, wallTimeoutMs, cpuMs);
        if (retryMs === undefined && !call.lateRetried && stoppedLate(limits.timeoutMs, wallTimeoutMs, cpuMs)) {
          call.lateRetried = true;
          retryMs = Math.min(2 * wallTimeoutMs, maxWallTimeoutMs(limits.timeoutMs));
        }
        if (retryMs !== undefined) {
          call.wallTimeoutMs = retryMs;
          call.timeRetries++;
          call.spentCpuMs += cpuMs;
          call.spentWallMs += wallMs;
          return RUN_AGAIN;
        }
        return this.failedWith(this.timeoutFailure(settled.error, call.spentCpuMs + cpuMs, call.spentWallMs + wallMs), queuedMs, base);
      }
      // The script left a promise rejected (isolated-vm fails the call with it): its own exception.
      // The isolate stays, unless the invocation is still hanging in it (see GUEST_BUSY below).
      booted.rejected = true;
      return this.failedWith(this.rejectionFailure(settled.error), queuedMs, base);
    }
    // An earlier entry was stopped at its time limit after its invocation had started waiting for
    // the host, so the guest could not tell: whatever ran after it may have seen its half-done state.
    if (booted.terminated) return RUN_AGAIN;
    let value = this.unpackOutbox(settled.value);
    if (value === GUEST_BUSY) {
      // Every entry handed over before this one has been answered and heard by now: an earlier
      // entry that its time limit stopped, or that never settled, retired the isolate already;
      // one the script's own rejection failed (booted.rejected) left its invocation unsettled in
      // the guest, which would refuse every later entry. Either way this one runs again on the
      // rebuilt isolate.
      const stuckByEarlier = !atHead || booted.rejected === true;
      this.retire(booted);
      if (stuckByEarlier) return RUN_AGAIN;
      // Nothing of the host's was in the isolate: the script itself left a call of the sandbox's
      // entry unsettled (from its top-level code, say), and the isolate would refuse every call.
      return this.failed(
        "exception",
        "The script's isolate refused the invocation: the script's own code left a call of the sandbox's entry unsettled; its isolate is rebuilt for the next call",
        queuedMs,
        base,
      );
    }
    let lastTurn: Turn | undefined = turn;
    if (value === GUEST_PARKED) {
      live.firstCpuMs = cpuMs;
      // It waits for the host: its answer comes from the entry that settles its last request.
      this.waitingForNothing(live, booted);
      const later = await this.answered(live);
      wallMs += live.laterWallMs;
      cpuMs += live.laterCpuMs;
      base = { ...base, wallMs: call.spentWallMs + wallMs, cpuMs: call.spentCpuMs + cpuMs };
      if (later.kind === "failure") return { ...later.invocation, stats: { ...base, ...later.stats } };
      value = later.value;
      lastTurn = undefined;
    }
    // Past its heap limit without V8 noticing (one huge allocation): the memory goes with the isolate.
    const reading = await this.heapAfter(booted, lastTurn, cpuMs, measure.heap === true);
    const heapUsed = reading === FILLED_LATER ? undefined : reading;
    if (reading !== FILLED_LATER && (booted.overHeap || (heapUsed !== undefined && heapUsed > HEAP_SLACK_FACTOR * limits.memoryMb * MB))) {
      booted.overHeap = true;
      this.retire(booted);
      // One call fails for an isolate over its heap: the first heavy one whose reading finds it so
      // (readings are answered in the order they were asked). The calls after it find what it
      // left, and V8 collecting that can make them heavy too: they keep their answers.
      if (!booted.blamed && (atHead || cpuMs >= HEAVY_CALL_CPU_MS)) {
        booted.blamed = true;
        return this.failed("memory", `The script ran out of its heap of ${limits.memoryMb} MB`, queuedMs, {
          ...base,
          heapUsedBytes: heapUsed ?? limits.memoryMb * MB,
        });
      }
    }
    const answer: unknown = value;
    if (typeof answer === "string" && answer.length > maxAnswerChars(limits.outputBytes, limits.logBytes)) {
      return this.failed("invalid_output", `The script's answer is ${answer.length} characters, more than its output and log limits allow`, queuedMs, base);
    }
    let outcome: unknown;
    try {
      outcome = typeof answer === "string" ? JSON.parse(answer) : undefined;
    } catch {
      outcome = undefined;
    }
    if (!isGuestOutcome(outcome)) {
      // The sandbox's own code in the isolate no longer works as written: start from a clean one.
      this.retire(booted);
      return this.failed(
        "invalid_output",
        "The sandbox could not read the script's answer: the script changed a built-in the sandbox relies on " +
          "(such as Object.prototype.toJSON or JSON.stringify); its isolate is rebuilt for the next call",
        queuedMs,
        base,
      );
    }
    let outputBytes = outcome.outputBytes ?? 0;
    if (outcome.kind === "data") {
      const checked = checkData(outcome.data, limits.outputBytes);
      if ("problem" in checked) {
        this.retire(booted);
        return this.failed(
          "invalid_output",
          `The sandbox could not use the script's answer (${clip(checked.problem, 256)}): the script changed a built-in the ` +
            "sandbox relies on (such as Object.prototype.toJSON); its isolate is rebuilt for the next call",
          queuedMs,
          base,
        );
      }
      outputBytes = checked.bytes;
    }
    const logs = withinLogLimit(outcome.logs, limits.logBytes);
    const stats: InvocationStats = { ...base, outputBytes, logBytes: logs.bytes };
    if (measure.heap && heapUsed !== undefined) stats.heapUsedBytes = heapUsed;
    return { script: this.name, version: this.version, outcome: this.toOutcome(outcome, request.hook), logs, stats };
  }

  /**
   * An invocation's first entry run on the host's thread (see inline-policy.ts), when its isolate
   * has nothing else of the host's: no hop, no timer, no promise. V8 runs the isolate's microtasks
   * before the call returns, within its time limit, so the box holds the answer unless the
   * invocation waits: for the host (GUEST_PARKED), or for nothing that can ever settle it.
   */
  private runInline(booted: Booted, args: unknown[], timeoutMs: number): SliceRun {
    const turn = this.line.take();
    this.inline.inlineCalls++;
    countInline();
    const headAt = performance.now();
    const cpuBefore = cpuTimeOf(booted.isolate);
    let settled: SliceRun["settled"];
    try {
      args.push(++booted.entries);
      const answer = booted.invoke.applySync(undefined, args, { timeout: timeoutMs, result: { copy: true } });
      if (typeof answer === "string") settled = { ok: true, value: answer };
      else {
        const boxed = answer !== null && typeof answer === "object" ? (answer as { answer?: unknown }).answer : undefined;
        settled = boxed === undefined ? NEVER_SETTLES : { ok: true, value: boxed as string };
      }
    } catch (error) {
      settled = { ok: false, error };
    } finally {
      this.line.settle(turn);
    }
    const wallMs = performance.now() - headAt;
    const alive = !booted.isolate.isDisposed;
    // On this thread, the call's wall time bounds its CPU time (a disposed isolate has no figures left).
    const cpuMs = alive ? Math.min(wallMs, cpuOf(booted.isolate, cpuBefore)) : wallMs;
    return { settled, turn, atHead: true, headAt, wallMs, cpuMs, alive };
  }

  /**
   * One entry into the isolate (an invocation's start, or the answer to one of its requests), in
   * the line with every other. Every entry is handed to isolated-vm as soon as it is ready, so that
   * a busy script's calls reach its isolate's thread in one go instead of one round trip each;
   * isolated-vm runs them one after the other, in order, each with its own time limit. Its wall
   * time, CPU and promise deadline count from when it is the head of the line.
   */
  // Only an invocation's first entry may go in a batch, never the answer to one of its requests:
  // only that call can come back BATCH_FAILED.
  private runSlice(booted: Booted, fn: Reference<(...args: unknown[]) => unknown>, args: unknown[], wallTimeoutMs: number): Promise<SliceRun>;
  private runSlice(
    booted: Booted,
    fn: Reference<(...args: unknown[]) => unknown>,
    args: unknown[],
    wallTimeoutMs: number,
    batched: boolean,
  ): Promise<SliceRun<typeof BATCH_FAILED>>;
  private async runSlice(
    booted: Booted,
    fn: Reference<(...args: unknown[]) => unknown>,
    args: unknown[],
    wallTimeoutMs: number,
    batched = false,
  ): Promise<SliceRun<typeof BATCH_FAILED>> {
    const applyOptions = wallTimeoutMs === this.limits.timeoutMs ? this.applyOptions : { timeout: wallTimeoutMs, result: { promise: true as const } };
    // From here to the apply, nothing awaits: the line's order is the order isolated-vm runs them.
    const turn = this.line.take(textChars(args));
    const atHead = turn.isHead;
    const entry = ++booted.entries;
    args.push(entry);
    let headAt = 0;
    let cpuBefore = 0n;
    let cpuSeen = 0n;
    /** The process's CPU time at the first poll, and how long after the head that was (see cpuSince). */
    let process0: CpuMark | undefined;
    let timer: NodeJS.Timeout | undefined;
    let batch: EntryBatch | undefined;
    let inBatch = 0;
    /** Answered with its batch before it became the head: nothing to time. */
    let answered = false;
    const settled = await new Promise<Settled | typeof TIMED_OUT | typeof BATCH_FAILED>((resolve) => {
      if (batched) {
        batch = this.batchFor(booted);
        inBatch = batch.add(args, (answer: BatchAnswer) => {
          answered = true;
          resolve(answer);
        });
        if (batch.sealed && booted.openBatch === batch) {
          booted.openBatch = undefined;
          handOverSoon();
        }
      } else {
        // An entry that goes alone closes the batch before it: the isolate runs them in line order.
        booted.openBatch = undefined;
      }
      turn.whenHead(() => {
        headAt = performance.now();
        if (answered) return;
        cpuBefore = cpuSeen = cpuTimeOf(booted.isolate);
        if (batch && batch.startedAt === undefined) {
          batch.startedAt = headAt;
          batch.cpuBefore = cpuBefore;
        }
        // isolated-vm's own timeout stops code that runs; this one ends a call that waits (a
        // promise that never settles). While the call lasts, its CPU time is read now and then: a
        // call V8 stops at its heap limit takes its isolate, and the isolate's figures, with it.
        const backstopMs = waitBackstopMs(wallTimeoutMs);
        let idleSince = headAt;
        const poll = () => {
          const cpuNow = cpuTimeOf(booted.isolate) || cpuSeen;
          const now = performance.now();
          if (cpuNow !== cpuSeen) idleSince = now;
          cpuSeen = cpuNow;
          const waited = now - headAt;
          process0 ??= { usage: process.cpuUsage(), afterMs: waited, threads: threadCpuTimes() };
          if (endsAsWaiting(waited, now - idleSince, Number(cpuNow - cpuBefore) / 1e6, wallTimeoutMs)) {
            if (batch) batch.fail();
            else resolve(TIMED_OUT);
          } else timer = setTimeout(poll, Math.min(CPU_POLL_MS, backstopMs - waited));
        };
        timer = setTimeout(poll, Math.min(CPU_POLL_MS, wallTimeoutMs / 2));
      });
      if (batched) return;
      // Handed over with the others of this loop turn (handover.ts), in the same order, on a
      // near-empty stack: isolated-vm records its caller's stack with every async call, and under a
      // request's deep, optimized stack that walk was 4% of the server's CPU (perf:
      // v8::StackTrace::CurrentStackTrace).
      handOver(() => {
        try {
          (fn.apply(undefined, args, applyOptions) as Promise<string>).then(
            (value) => resolve({ ok: true, value }),
            (error: unknown) => resolve({ ok: false, error }),
          );
        } catch (error) {
          resolve({ ok: false, error });
        }
      }, this.options.loopBusy?.() === true);
    });
    if (typeof settled === "object" && settled.ok) this.line.answered(settled.value.length);
    try {
      // Answers arrive in order, but the host may still be finishing an earlier one (a heap
      // check): this one's figures, and any retry, start after it.
      if (!turn.isHead) await new Promise<void>((resolve) => turn.whenHead(resolve));
    } finally {
      clearTimeout(timer);
      this.line.settle(turn);
    }
    if (batch) {
      if (settled === BATCH_FAILED) return { settled, turn, atHead, headAt, wallMs: 0, cpuMs: 0, alive: !booted.isolate.isDisposed };
      // An equal share of the batch's figures: the isolate's CPU time is read per task.
      const wallMs = batch.wallMs / batch.size;
      const cpuMs = batch.cpuMs / batch.size;
      return { settled, turn, atHead, headAt: (batch.startedAt ?? headAt) + inBatch * wallMs, wallMs, cpuMs, alive: true };
    }
    let wallMs = performance.now() - headAt;
    const alive = !booted.isolate.isDisposed;
    // A disposed isolate has no figures left: its CPU time as last read while the call ran.
    let cpuMs = cpuSince(process0, alive ? cpuOf(booted.isolate, cpuBefore) : Number(cpuSeen - cpuBefore) / 1e6);
    if (settled !== TIMED_OUT && settled !== BATCH_FAILED && !settled.ok) {
      // Why it failed depends on how long it ran (ranToItsTimeout): from when the guest began it,
      // not from the host's mark (entry-clock.ts). Time it ran before that mark counts whole, as CPU too.
      const ranMs = ranForMs(booted.clock, entry);
      if (ranMs !== undefined) {
        if (ranMs > wallMs) cpuMs += ranMs - wallMs;
        wallMs = ranMs;
      }
    }
    return { settled, turn, atHead, headAt, wallMs, cpuMs, alive };
  }

  /**
   * The batch a call of `booted` joins: the open one, or a new one handed over with the entries of
   * this loop turn (handover.ts), in its place in the line.
   */
  private batchFor(booted: Booted): EntryBatch {
    const open = booted.openBatch;
    if (open && !open.sealed) return open;
    const batch = new EntryBatch();
    booted.openBatch = batch;
    this.inline.batches++;
    handOver(() => {
      if (booted.openBatch === batch) booted.openBatch = undefined;
      batch.run(
        (requests) => booted.invokeBatch.apply(undefined, requests, this.applyOptions),
        () => ({
          wallMs: batch.startedAt === undefined ? 0 : performance.now() - batch.startedAt,
          cpuMs: booted.isolate.isDisposed ? 0 : cpuOf(booted.isolate, batch.cpuBefore),
        }),
      );
    }, true);
    return batch;
  }

  /**
   * The isolate's heap after a heavy invocation (see HEAVY_CALL_CPU_MS), or when `wanted`: read at
   * once when nothing was handed to the isolate after it, otherwise asynchronously, behind the
   * invocations that followed it.
   */
  private async heapAfter(booted: Booted, turn: Turn | undefined, cpuMs: number, wanted: boolean): Promise<number | undefined | typeof FILLED_LATER> {
    // Also when a lighter call behind this one read the heap first and found it over (overHeap).
    if (booted.isolate.isDisposed) return undefined;
    if (!wanted && cpuMs < HEAVY_CALL_CPU_MS) return undefined;
    // (An invocation that waited for the host has no turn of its own left: read behind the line.)
    if (turn && this.line.isLast(turn)) return heapUsedOf(booted.isolate);
    const suspect = cpuMs >= Math.max(this.limits.memoryMb / FASTEST_FILL_MB_PER_MS, FILL_SUSPECT_MIN_CPU_MS);
    booted.heavyReadings = (booted.heavyReadings ?? 0) + 1;
    if (suspect) booted.fillSuspects = (booted.fillSuspects ?? 0) + 1;
    try {
      return (await booted.isolate.getHeapStatistics()).used_heap_size;
    } catch {
      // The isolate went away before the reading: when not by the host's hand, V8 found it over its
      // heap while a later call ran (that call is run again), and this call is why, if it used CPU
      // enough to fill it (also when the later call, finding the isolate gone first, retired it).
      if (!suspect) return FILLED_LATER;
      if (!booted.retired) booted.overHeap = true;
      return undefined;
    } finally {
      booted.heavyReadings--;
      if (suspect) booted.fillSuspects!--;
    }
  }

  /**
   * Where `hook`'s handler returned data of this shape (see return-site.ts): the return statement's
   * .ts line, or the handler's, when it can be found. Only for answers that fail; parsed once.
   */
  returnLocation(hook: HookName, shape: ReturnShape): HookFailure["location"] {
    this.returnSites ??= new ReturnSites(this.compiled.code, this.sourceMap, this.compiled.runtime.lines);
    return this.returnSites.locate(hook, shape);
  }

  private toOutcome(outcome: GuestOutcome, hook: HookName): InvocationOutcome {
    switch (outcome.kind) {
      case "data":
        return { kind: "data", data: outcome.data };
      case "none":
        return { kind: "none" };
      case "cancel":
        return { kind: "cancel" };
      case "invalid_output": {
        const failure: HookFailure = { reason: "invalid_output", script: this.name, message: clip(outcome.message, GUEST_SLACK * MAX_MESSAGE_CHARS) };
        const location = this.returnLocation(hook, shapeOf(outcome.message));
        if (location) failure.location = location;
        return { kind: "failure", failure };
      }
      case "exception": {
        const { name, message, stack } = outcome.error;
        const failure: HookFailure = {
          reason: "exception",
          script: this.name,
          message: clip(name && name !== "Error" ? `${name}: ${message}` : message, GUEST_SLACK * MAX_MESSAGE_CHARS),
        };
        return { kind: "failure", failure: withMappedStack(failure, this.sourceMap, stack) };
      }
    }
  }

  private failed(reason: HookFailure["reason"], message: string, queuedMs: number, stats?: InvocationStats): Invocation {
    return this.failedWith({ reason, script: this.name, message }, queuedMs, stats);
  }

  private failedWith(failure: HookFailure, queuedMs: number, stats?: InvocationStats): Invocation {
    return {
      script: this.name,
      version: this.version,
      outcome: { kind: "failure", failure },
      logs: EMPTY_LOGS,
      stats: stats ?? { wallMs: 0, cpuMs: 0, queuedMs, outputBytes: 0, logBytes: 0 },
    };
  }

  /** A call that used its time limit, with where isolated-vm interrupted it (its stack), mapped to the .ts line. */
  private timeoutFailure(error: unknown, cpuMs: number, wallMs: number): HookFailure {
    const limit = this.limits.timeoutMs;
    const message =
      cpuMs >= CPU_SHARE_FOR_TIMEOUT * limit
        ? `The script ran past its time limit of ${limit} ms of CPU time (a loop that does not end, or one that does too much)`
        : `The script did not get its ${limit} ms of CPU time within ${Math.round(wallMs)} ms: the host was too busy (it ran for ${Math.round(cpuMs)} ms)`;
    return withMappedStack({ reason: "timeout", script: this.name, message }, this.sourceMap, stackOf(error), message);
  }

  /** A rejection the script left unhandled, which isolated-vm turns into the call's failure: the script's own error. */
  private rejectionFailure(error: unknown): HookFailure {
    const message = error instanceof Error ? errorMessage(error) : clip(`a promise was rejected with a non-Error value: ${describeValue(error)}`);
    return withMappedStack({ reason: "exception", script: this.name, message }, this.sourceMap, stackOf(error));
  }
}

/** The call's abort signal, made on its first request: aborted when the call ends or its request's deadline passes. */
function signalOf(live: LiveCall): AbortSignal {
  if (!live.controller) {
    const controller = (live.controller = new AbortController());
    const outer = live.request.signal;
    if (live.ended || outer?.aborted) controller.abort();
    else outer?.addEventListener("abort", () => controller.abort(), { once: true, signal: controller.signal });
  }
  return live.controller.signal;
}

/** A refusal as the guest's settle reads it. */
function failureText(code: string, message: string): string {
  return JSON.stringify({ code, message });
}

/** The characters of an entry's text arguments. */
function textChars(args: unknown[]): number {
  let chars = 0;
  for (const arg of args) if (typeof arg === "string") chars += arg.length;
  return chars;
}

function heapUsedOf(isolate: Isolate): number | undefined {
  try {
    return isolate.getHeapStatisticsSync().used_heap_size;
  } catch {
    // The isolate went away meanwhile.
    return undefined;
  }
}

function stackOf(error: unknown): string | undefined {
  const stack = error instanceof Error ? (error as { stack?: unknown }).stack : undefined;
  return typeof stack === "string" ? stack : undefined;
}

/** A value a script threw or rejected with, as text for a message (bounded, never throwing). */
function describeValue(value: unknown): string {
  try {
    return typeof value === "string" ? JSON.stringify(clip(value, 256)) : clip(String(value), 256);
  } catch {
    return "an uninspectable value";
  }
}

/**
 * `failure` with the stack mapped to the .ts sources and the script's own top frame as its
 * location, when the stack has one; `firstLine` replaces the stack's first line (isolated-vm's own
 * "Script execution timed out." would read as the script's).
 */
function withMappedStack(failure: HookFailure, sourceMap: BundleSourceMap, stack: string | undefined, firstLine?: string): HookFailure {
  if (!stack) return failure;
  const mapped = sourceMap.mapStack(stack);
  const lines = mapped.stack.split("\n");
  if (firstLine !== undefined) {
    // Without a frame of its own, the stack would only repeat the message.
    if (lines.length < 2) return failure;
    lines[0] = firstLine;
  }
  failure.stack = clip(lines.join("\n"), GUEST_SLACK * (MAX_STACK_CHARS + MAX_MESSAGE_CHARS));
  if (mapped.location) failure.location = mapped.location;
  return failure;
}

function cpuTimeOf(isolate: Isolate): bigint {
  try {
    return isolate.cpuTime;
  } catch {
    return 0n;
  }
}

function cpuOf(isolate: Isolate, before: bigint): number {
  const now = cpuTimeOf(isolate);
  return now === 0n ? 0 : Number(now - before) / 1e6;
}

/**
 * A new isolate with the script loaded: its top-level code run, within LOAD_TIMEOUT_MS of CPU time
 * (a load stopped by a busy host before it used that is run again on a fresh isolate: time-limit.ts).
 */
/** Where an isolate's requests go: the sandbox, once it exists (a script's top-level code has no ctx to send any). */
interface RequestLink {
  request?: (booted: Booted, token: unknown, id: unknown, op: unknown, payload: unknown) => void;
}

async function boot(compiled: CompiledScript, memoryMb: number, sourceMap: BundleSourceMap, options: SandboxOptions, link: RequestLink): Promise<Booted> {
  for (let wallTimeoutMs = LOAD_TIMEOUT_MS; ;) {
    const booted = await bootOnce(compiled, memoryMb, sourceMap, options, wallTimeoutMs, link);
    if (typeof booted !== "number") return booted;
    wallTimeoutMs = booted;
  }
}

/** One try at boot(): the isolate, or the wall-clock timeout to try again with. */
async function bootOnce(
  compiled: CompiledScript,
  memoryMb: number,
  sourceMap: BundleSourceMap,
  options: SandboxOptions,
  wallTimeoutMs: number,
  link: RequestLink,
): Promise<Booted | number> {
  const ivm = isolatedVm();
  const isolate = tracked(
    new ivm.Isolate({
      memoryLimit: memoryMb,
      onCatastrophicError: (message) => options.onCatastrophicError?.(compiled.name, message),
    }),
  );
  let loading: { startedAt: number; cpuBefore: bigint; process: CpuMark } | undefined;
  try {
    const context = await isolate.createContext();
    const entry = await runScript(isolate, context, compiled, wallTimeoutMs, () => {
      loading = { startedAt: performance.now(), cpuBefore: cpuTimeOf(isolate), process: { usage: process.cpuUsage(), afterMs: 0 } };
    });
    loading = undefined;
    if (overHeap(isolate, memoryMb)) throw new HeapOverLimit();
    // Together: each is a task of its own on the isolate's thread, and a cold start boots hundreds.
    const [invoke, invokeBatch, settle] = (await Promise.all([
      entry.get("invoke", { reference: true }),
      entry.get("invokeBatch", { reference: true }),
      entry.get("settle", { reference: true }),
    ])) as [Booted["invoke"], Booted["invokeBatch"], Booted["settle"]];
    const clock = newEntryClock();
    const booted: Booted = { isolate, context, invoke, invokeBatch, settle, clock, entries: 0 };
    // The guest's way out for requests (fetch, kv): a plain function in the isolate, held only by
    // the prelude's closure; it copies primitives to the host and returns nothing.
    const send: HostSend = (token, id, op, payloadJson) => link.request?.(booted, token, id, op, payloadJson);
    if (!(await connectGuest(entry, send, clock.buffer, LOAD_TIMEOUT_MS))) {
      // Only the script's own top-level code can have connected first (through the entry global).
      throw new ScriptLoadFailure(compiled.name, "its top-level code called the sandbox's entry (connect): scripts must not use __callscript_entry");
    }
    (booted as Booted & { entry: Reference }).entry = entry;
    return booted;
  } catch (error) {
    const mapped = stackOf(error) && !(error instanceof HeapOverLimit) ? sourceMap.mapStack(stackOf(error)!) : undefined;
    const outOfHeap = () => new HeapExhaustedAtLoad(compiled.name, `its top-level code ran out of its heap of ${memoryMb} MB`, mapped?.location, mapped?.stack);
    // As for an invocation (see attempt): why the load failed comes from the isolate, not the message.
    if (isolate.isDisposed || error instanceof HeapOverLimit) {
      disposeIsolate(isolate);
      throw outOfHeap();
    }
    if (loading && ranToItsTimeout(performance.now() - loading.startedAt, wallTimeoutMs)) {
      const heapUsed = heapUsedOf(isolate);
      const cpuMs = cpuSince(loading.process, cpuOf(isolate, loading.cpuBefore));
      disposeIsolate(isolate);
      if (heapUsed !== undefined && heapUsed >= HEAP_FULL_SHARE * memoryMb * MB) throw outOfHeap();
      const retryMs = retryTimeoutMs(LOAD_TIMEOUT_MS, wallTimeoutMs, cpuMs);
      if (retryMs !== undefined) return retryMs;
      if (wallTimeoutMs === LOAD_TIMEOUT_MS && stoppedLate(LOAD_TIMEOUT_MS, wallTimeoutMs, cpuMs)) return 2 * LOAD_TIMEOUT_MS;
      throw new ScriptLoadFailure(compiled.name, `its top-level code ran past ${LOAD_TIMEOUT_MS} ms`, mapped?.location, mapped?.stack);
    }
    disposeIsolate(isolate);
    const message = error instanceof Error ? errorMessage(error) : clip(`a non-Error value was thrown or rejected: ${describeValue(error)}`);
    throw new ScriptLoadFailure(compiled.name, message, mapped?.location, mapped?.stack);
  }
}

/** The top-level code ran out of heap: with a larger heap it might load. */
class HeapExhaustedAtLoad extends ScriptLoadFailure {}

/** The top-level code left the isolate holding more than its limit (see HEAP_SLACK_FACTOR). */
class HeapOverLimit extends Error {}

/** As for an exception in a handler: the error's name, unless it is a plain Error, then its message. */
function errorMessage(error: Error): string {
  const name = typeof error?.name === "string" ? error.name : "";
  const message = typeof error?.message === "string" ? error.message : String(error);
  return clip(name && name !== "Error" ? `${name}: ${message}` : message);
}

async function readMeta(entry: Reference<Record<string, unknown>>, name: string): Promise<ScriptMeta> {
  const metaFn = (await entry.get("meta", { reference: true })) as Reference<() => string>;
  let json: unknown;
  try {
    json = await metaFn.apply(undefined, [], { timeout: LOAD_TIMEOUT_MS });
  } catch (error) {
    throw new ScriptLoadFailure(name, clip((error as Error).message));
  }
  return parseMeta(json, name);
}

/** A script's definition from the JSON of its entry's meta() (what a probe answers, too), checked. */
function parseMeta(json: unknown, name: string): ScriptMeta {
  if (typeof json === "string" && json.length > MAX_META_CHARS) {
    throw new ScriptLoadFailure(
      name,
      `defineScript(): the definition is ${json.length} characters of JSON (settings and top-level log lines), over the limit of ` +
        `${MAX_META_CHARS}; keep large tables in a helper module of the scripts folder`,
    );
  }
  let meta: unknown;
  try {
    meta = JSON.parse(json as string);
  } catch {
    throw new ScriptLoadFailure(
      name,
      "The script's definition could not be read: its top-level code changed a built-in the sandbox relies on (such as Object.prototype.toJSON)",
    );
  }
  const parsed = guestMetaSchema.safeParse(meta);
  if (!parsed.success) {
    throw new ScriptLoadFailure(name, `defineScript(): ${parsed.error.issues.map((i) => `${i.path.join(".") || "definition"}: ${i.message}`).join("; ")}`);
  }
  const unknown = parsed.data.hooks.filter((hook) => !isHookName(hook));
  if (unknown.length > 0) {
    const hints = unknown.map((hook) => {
      const suggestion = closest(hook, hookNames);
      return suggestion ? `'${hook}' (did you mean '${suggestion}'?)` : `'${hook}'`;
    });
    throw new ScriptLoadFailure(name, `Unknown hook ${hints.join(", ")} in defineScript({ hooks }). Known hooks: ${hookNames.join(", ")}`);
  }
  if (parsed.data.hooks.length === 0) {
    throw new ScriptLoadFailure(name, "defineScript({ hooks }) has no handlers; add at least one, e.g. need_registration(input, ctx) { ... }");
  }
  return { ...parsed.data, hooks: parsed.data.hooks as HookName[] };
}
