import type { FastifyBaseLogger } from "fastify";
import { deadlineFor, type Config } from "../config.js";
import type { ShadowEntry, ShadowScripts } from "./shadows.js";
import type { AnswerView } from "./states.js";
import { diffValues } from "../util/diff.js";
import type { Invocation } from "../sandbox/sandbox.js";
import type { HookFailure } from "../schema/envelope.js";
import type { HookName } from "../schema/hooks.js";
import type { Capabilities } from "../capabilities/types.js";
import { dispatch, type DispatchResult, type PipelineScript } from "../dispatch/dispatch.js";
import { shadowCapabilities } from "./shadow-capabilities.js";

/**
 * Shadow runs: after the live answer of a hook request is sent, each script of its pipeline that
 * has a shadow (`NAME.shadow.ts`) has the shadow run on the same input and the data so far that
 * NAME saw, in the shadow's own isolate with its own limits; the shadow's answer is compared with
 * NAME's and never returned.
 *
 * Shadows never delay an answer: they start once the answer is written, on isolates of their own.
 * And they are shed first under load: a live call's shadow is not run (and is counted as `shed`)
 * when, at that moment,
 *   - the shadow is still running for an earlier call (one run per shadow at a time, never a
 *     queue: a slow shadow cannot pile up work or memory), or
 *   - NAME itself has calls running or waiting (the server is busy with live calls of it), or
 *   - MAX_SHADOW_RUNS_IN_FLIGHT shadow runs are already going on across the server (they would
 *     compete with live calls for the cores), or
 *   - the server has started SHADOW_RUNS_PER_SECOND shadow runs in the last second (a token
 *     bucket as deep as a second's worth): under a flood of requests that each find the script
 *     idle (one connection sending back to back), shadows would otherwise double the CPU of every
 *     request; this bounds what they take to a few percent of a core (bench/shadow.mjs).
 * A connector sends a few hooks per call, a few calls a second on a busy PBX, so at ordinary load
 * every call is compared.
 *
 * Capabilities are real in a shadow run, and read-only (shadow-capabilities.ts): a shadow reads
 * NAME's kv and fetches with GET or HEAD under NAME's grant; a write or any other method fails with
 * CS_CAP_READ_ONLY, so a shadow never changes anything.
 */

/** Shadow runs going on at once across the server, at most; past it a shadow run is shed. */
export const MAX_SHADOW_RUNS_IN_FLIGHT = 2;
/** Shadow runs started per second across the server, at most (the bucket holds one second's worth). */
export const SHADOW_RUNS_PER_SECOND = 50;
/** One log line per shadow at most this often; the next line says how many it left out. */
export const SHADOW_LOG_INTERVAL_MS = 10_000;

export type ShadowResult = "same" | "different" | "failed" | "shed";

export interface ShadowCall {
  hook: HookName;
  input: Record<string, unknown>;
  inputJson: string;
  requestId: string;
  result: DispatchResult;
  /** The pipeline that answered, with the versions that ran. */
  scripts: readonly PipelineScript[];
}

type Log = Pick<FastifyBaseLogger, "info" | "warn" | "debug" | "level">;

/** What a live invocation answered, as a shadow's answer is compared with it. */
function liveView(invocation: Invocation, seen: Record<string, unknown>): AnswerView {
  const { outcome } = invocation;
  if (outcome.kind === "data") return { data: { ...seen, ...outcome.data } };
  if (outcome.kind === "none") return { data: seen };
  if (outcome.kind === "cancel") return { cancel: true };
  return { error: outcome.failure.reason };
}

function withoutStack(failure: HookFailure): Omit<HookFailure, "stack"> {
  const { stack: _, ...rest } = failure;
  return rest;
}

export interface ShadowRunnerOptions {
  onResult?: (script: string, hook: HookName, result: ShadowResult) => void;
  /** SHADOW_RUNS_PER_SECOND unless given (tests). */
  runsPerSecond?: number;
  /** The server's capabilities: a shadow gets them read-only, in its live script's name. */
  capabilities?: Capabilities;
}

export class ShadowRunner {
  private readonly runsPerSecond: number;
  private readonly onResult: ShadowRunnerOptions["onResult"];
  private readonly capabilities: Capabilities | undefined;
  /** The token bucket of shadow runs: how many may start now, and when it was last filled. */
  private tokens: number;
  private filledAt = performance.now();

  constructor(
    /** The configuration in force when a shadow runs (a config reload replaces it). */
    private readonly configInForce: () => Config,
    private readonly shadows: ShadowScripts,
    options: ShadowRunnerOptions = {},
  ) {
    this.runsPerSecond = options.runsPerSecond ?? SHADOW_RUNS_PER_SECOND;
    this.tokens = Math.max(1, this.runsPerSecond);
    this.onResult = options.onResult;
    this.capabilities = options.capabilities;
  }

  /** Whether one more shadow run may start now (and if so, it is counted). */
  private take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(Math.max(1, this.runsPerSecond), this.tokens + ((now - this.filledAt) / 1000) * this.runsPerSecond);
    this.filledAt = now;
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  /**
   * Run the shadows of a request whose answer has been sent. Returns the runs started (the route
   * does not wait for them; tests may).
   */
  afterAnswer(call: ShadowCall, log: Log): Promise<void>[] {
    const runs: Promise<void>[] = [];
    if (this.shadows.size === 0 || this.shadows.isClosed) return runs;
    const at = new Date().toISOString();
    for (const invocation of call.result.invocations) {
      const entry = this.shadows.of(invocation.script);
      const seenJson = call.result.dataSeen?.get(invocation.script);
      const shadow = entry?.script;
      if (!entry || !shadow || seenJson === undefined) continue;
      // Turned away before it ran: there is nothing to compare with.
      if (invocation.outcome.kind === "failure" && invocation.outcome.failure.reason === "overloaded") continue;
      if (!shadow.sandbox.implements(call.hook)) {
        // Promoted, this version would not handle the hook: it would change nothing (and costs nothing to say so).
        const seen = JSON.parse(seenJson) as Record<string, unknown>;
        this.compare(entry, shadow, call.hook, at, liveView(invocation, seen), { data: seen }, log);
        continue;
      }
      const live = call.scripts.find((script) => script.sandbox.name === invocation.script);
      const busy = this.shadows.inFlight >= MAX_SHADOW_RUNS_IN_FLIGHT || shadow.sandbox.queueDepth > 0 || (live?.sandbox.queueDepth ?? 0) > 0;
      if (busy || !this.take()) {
        entry.counts.shed++;
        this.onResult?.(entry.live, call.hook, "shed");
        continue;
      }
      const seen = JSON.parse(seenJson) as Record<string, unknown>;
      const active = liveView(invocation, seen);
      this.shadows.inFlight++;
      const run = dispatch(call.hook, call.input, seen, [shadow], {
        requestId: call.requestId,
        policy: "error",
        deadlineMs: deadlineFor(this.configInForce(), call.hook),
        inputJson: call.inputJson,
        ...(this.capabilities ? { capabilities: shadowCapabilities(this.capabilities, entry.live) } : {}),
      })
        .then((shadowed) => {
          for (const line of shadowed.invocations) this.logScriptLines(log, call.hook, line);
          const { answer } = shadowed;
          if (answer.state === "error") this.fail(entry, shadow, call.hook, at, answer.error, log);
          else this.compare(entry, shadow, call.hook, at, active, shadowed.cancelledBy !== undefined ? { cancel: true } : { data: answer.data }, log);
        })
        .finally(() => {
          this.shadows.inFlight--;
        });
      runs.push(run);
    }
    return runs;
  }

  private compare(entry: ShadowEntry, shadow: PipelineScript, hook: HookName, at: string, active: AnswerView, shadowed: AnswerView, log: Log): void {
    // A result of a version that was replaced meanwhile does not count for the new one.
    if (entry.script !== shadow) return;
    const differences = diffValues(active, shadowed);
    if (differences.length === 0) {
      entry.counts.same++;
      this.onResult?.(entry.live, hook, "same");
      return;
    }
    entry.counts.different++;
    entry.lastDifference = { hook, at, active, shadow: shadowed };
    this.onResult?.(entry.live, hook, "different");
    this.sampled(entry, (notLogged) =>
      log.info(
        {
          script: entry.live,
          shadow: shadow.sandbox.version,
          hook,
          differences: differences.map((difference) => ({ path: difference.path, active: difference.expected, shadow: difference.actual })),
          ...(notLogged > 0 ? { notLogged } : {}),
        },
        "shadow answered differently",
      ),
    );
  }

  private fail(entry: ShadowEntry, shadow: PipelineScript, hook: HookName, at: string, failure: HookFailure, log: Log): void {
    if (entry.script !== shadow) return;
    entry.counts.failed++;
    entry.lastFailure = { hook, at, error: withoutStack(failure) };
    this.onResult?.(entry.live, hook, "failed");
    this.sampled(entry, (notLogged) =>
      log.warn(
        { script: entry.live, shadow: shadow.sandbox.version, hook, error: withoutStack(failure), ...(notLogged > 0 ? { notLogged } : {}) },
        "shadow failed",
      ),
    );
  }

  /** At most one line per shadow per SHADOW_LOG_INTERVAL_MS; the next one says how many were left out. */
  private sampled(entry: ShadowEntry, write: (notLogged: number) => void): void {
    const now = performance.now();
    if (now - entry.loggedAt < SHADOW_LOG_INTERVAL_MS) {
      entry.notLogged++;
      return;
    }
    write(entry.notLogged);
    entry.loggedAt = now;
    entry.notLogged = 0;
  }

  /** A shadow's own console lines: at debug only, tagged as the shadow's, never mixed with the live script's. */
  private logScriptLines(log: Log, hook: HookName, invocation: Invocation): void {
    if (log.level !== "debug" && log.level !== "trace") return;
    for (const line of invocation.logs.lines) {
      log.debug({ hook, script: invocation.script, version: invocation.version, source: "shadow", lineLevel: line.level, atMs: line.atMs }, line.message);
    }
  }
}
