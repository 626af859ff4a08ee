import type { FastifyPluginAsync } from "fastify";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { FaultEvent, FetchEvent, KvEvent } from "../capabilities/capabilities.js";
import type { ScriptRegistry } from "../registry/registry.js";
import type { ScriptProblem } from "../registry/states.js";
import { liveIsolateCount } from "../sandbox/isolates.js";
import type { InlinePolicy } from "../sandbox/inline-policy.js";
import type { Invocation } from "../sandbox/sandbox.js";
import type { HookName } from "../schema/hooks.js";
import { failureReason } from "../schema/envelope.js";
import { MAX_BUFFERED_BYTES } from "./log-destination.js";

/** The failure reasons as the envelope defines them, so the help texts never fall behind. */
const REASONS = failureReason.options.join(", ");

/** Seconds; a script's invocation is typically well under a millisecond, a deadline a few seconds. */
const BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Seconds of a fetch: a CRM answers in tens to hundreds of milliseconds, a fetch times out after 1.5 s by default. */
const FETCH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10];

/** The origin label of a fetch refused before its origin was known to be allowed (so never an unbounded value). */
export const NO_ORIGIN = "none";

/** The label of requests to a hook name the catalog does not have (bounded, unlike the names). */
export const UNKNOWN_HOOK = "unknown";

/** How an invocation ended: data, none, cancel, or the failure reason. */
export function outcomeOf(invocation: Invocation): string {
  return invocation.outcome.kind === "failure" ? invocation.outcome.failure.reason : invocation.outcome.kind;
}

export interface ServerMetrics {
  /** A Registry of this app's own: never prom-client's global one, so many apps can coexist. */
  readonly registry: Registry;
  invocation(hook: HookName, invocation: Invocation): void;
  /** A hook request's answer: `success`, `cancel`, or the failure reason; and its duration. */
  answer(hook: HookName, outcome: string, seconds: number): void;
  request(hook: HookName | typeof UNKNOWN_HOOK, status: number): void;
  /** A live call's shadow run (NAME.shadow.ts): same, different, failed, or shed. */
  shadow(script: string, hook: HookName, result: string): void;
  /** A script's ctx.fetch: by origin and HTTP status, or the error code of its refusal or failure. */
  fetch(event: FetchEvent): void;
  /** A script's ctx.kv operation and its outcome. */
  kv(event: KvEvent): void;
  /** A capability that failed inside callscript or its store (not the script's doing). */
  fault(event: FaultEvent): void;
  /** Stop listening to the script registry. */
  close(): void;
}

export interface MetricsOptions {
  /** Node's process metrics (memory, CPU, event loop lag, GC); default true. */
  processMetrics?: boolean;
  /** The server's log destination (log-destination.ts), whose dropped lines are read at scrape time. */
  logLines?: { readonly droppedLines: number } | undefined;
}

/**
 * The Prometheus metrics of one server. Counters and histograms are updated as requests and
 * reloads happen; the per-script gauges (queue depth, heap, version) are read from the registry
 * when /metrics is scraped, so they cost nothing between scrapes.
 */
export function createMetrics(scripts: ScriptRegistry, options: MetricsOptions = {}): ServerMetrics {
  const registry = new Registry();
  const registers = [registry];

  const invocations = new Counter({
    name: "callscript_invocations_total",
    help: `Script invocations by hook, script and outcome (data, none, cancel, or a failure reason: ${REASONS})`,
    labelNames: ["hook", "script", "outcome"] as const,
    registers,
  });
  const scriptSeconds = new Histogram({
    name: "callscript_script_duration_seconds",
    help: "Wall time of one script invocation in its isolate (queueing excluded; a call in a batch, config batchCalls: an equal share of the batch's), by hook and script",
    labelNames: ["hook", "script"] as const,
    buckets: BUCKETS,
    registers,
  });
  const scriptCpu = new Counter({
    name: "callscript_script_cpu_seconds_total",
    help: "CPU time spent in a script's isolate (a call in a batch, config batchCalls: an equal share of the batch's)",
    labelNames: ["script"] as const,
    registers,
  });
  const hookSeconds = new Histogram({
    name: "callscript_hook_duration_seconds",
    help: "Time to answer a hook request, all its scripts together, by hook",
    labelNames: ["hook"] as const,
    buckets: BUCKETS,
    registers,
  });
  const answers = new Counter({
    name: "callscript_hook_answers_total",
    help: `Hook answers by hook and outcome: success, cancel, or the failure reason (${REASONS})`,
    labelNames: ["hook", "outcome"] as const,
    registers,
  });
  const requests = new Counter({
    name: "callscript_http_requests_total",
    help: `Hook requests by hook (${UNKNOWN_HOOK} for a name the catalog does not have) and HTTP status`,
    labelNames: ["hook", "status"] as const,
    registers,
  });
  const loadFailures = new Counter({
    name: "callscript_script_load_failures_total",
    help: "Versions of a script that failed, by stage: compile, typecheck, load, config (the previous version, if any, keeps serving)",
    labelNames: ["script", "stage"] as const,
    registers,
  });
  const reloads = new Counter({
    name: "callscript_script_reloads_total",
    help: "New versions of a script swapped in after its first load",
    labelNames: ["script"] as const,
    registers,
  });
  const typeErrors = new Gauge({
    name: "callscript_script_type_errors",
    help: "TypeScript errors against the SDK in the newest version of a script (typecheck block keeps such a version out, warn serves it)",
    labelNames: ["script"] as const,
    registers,
  });
  const unloads = new Counter({
    name: "callscript_script_unloads_total",
    help: "Scripts unloaded because their file was removed",
    labelNames: ["script"] as const,
    registers,
  });

  const shadowRuns = new Counter({
    name: "callscript_shadow_runs_total",
    help: "Shadow runs (NAME.shadow.ts after NAME's live answer) by script, hook and result: same, different, failed (the shadow failed), shed (not run, to spare the server)",
    labelNames: ["script", "hook", "result"] as const,
    registers,
  });

  const fetches = new Counter({
    name: "callscript_fetch_requests_total",
    help: `ctx.fetch calls by script, origin (${NO_ORIGIN} when refused before it was known to be allowed) and status: the HTTP status of the answer, or the error code (CS_CAP_FETCH_TIMEOUT, CS_CAP_FETCH_NOT_ALLOWED, ...)`,
    labelNames: ["script", "origin", "status"] as const,
    registers,
  });
  const fetchSeconds = new Histogram({
    name: "callscript_fetch_duration_seconds",
    help: "Time of a ctx.fetch that was sent (redirects and the body included), by script and origin",
    labelNames: ["script", "origin"] as const,
    buckets: FETCH_BUCKETS,
    registers,
  });
  const kvOps = new Counter({
    name: "callscript_kv_operations_total",
    help: "ctx.kv operations by script, op (kv.get, kv.set, kv.delete, kv.incr) and outcome: ok, or the error code",
    labelNames: ["script", "op", "outcome"] as const,
    registers,
  });
  const kvSeconds = new Histogram({
    name: "callscript_kv_duration_seconds",
    help: "Time of a ctx.kv operation, by op",
    labelNames: ["op"] as const,
    buckets: BUCKETS,
    registers,
  });
  const faults = new Counter({
    name: "callscript_capability_faults_total",
    help: "Capability requests that failed inside callscript or its store (the network underneath, the kv store down), by script, op and code; the log has each one's reason",
    labelNames: ["script", "op", "code"] as const,
    registers,
  });

  new Gauge({
    name: "callscript_script_queue_depth",
    help: "Invocations of a script running or waiting, at scrape time",
    labelNames: ["script"] as const,
    registers,
    collect() {
      this.reset();
      for (const sandbox of scripts.sandboxes()) this.set({ script: sandbox.name }, sandbox.queueDepth);
    },
  });

  /** A gauge of the serving versions' call counters (InlinePolicy), one series per script and kind, read at scrape time. */
  const callCounts = (name: string, help: string, kinds: Record<string, (policy: InlinePolicy) => number>) =>
    new Gauge({
      name,
      help,
      labelNames: ["script", "kind"] as const,
      registers,
      collect() {
        this.reset();
        for (const sandbox of scripts.sandboxes()) {
          for (const [kind, count] of Object.entries(kinds)) this.set({ script: sandbox.name, kind }, count(sandbox.inline));
        }
      },
    });
  callCounts(
    "callscript_script_inline_calls",
    "Calls of a script's serving version run on the server's thread (config inlineCalls), at scrape time; kind long: those that used 2 ms of CPU or more, and held the event loop that long",
    { inline: (policy) => policy.inlineCalls, long: (policy) => policy.longInlineCalls },
  );
  callCounts(
    "callscript_script_batched_calls",
    "Calls of a script's serving version handed to its isolate several in one task while the server was busy (config batchCalls), at scrape time; kind batches: the tasks; kind failed: batches that failed as a whole, whose calls ran again alone",
    { calls: (policy) => policy.batchedCalls, batches: (policy) => policy.batches, failed: (policy) => policy.failedBatches },
  );

  // Reading an isolate's heap synchronously waits for the script it is running (isolated-vm takes
  // the isolate's lock), which would stall the server for up to a time limit: a busy isolate keeps
  // the figure of its last idle scrape.
  const lastHeap = new Map<string, number>();
  new Gauge({
    name: "callscript_script_heap_used_bytes",
    help: "Heap in use in a script's isolate, read when it is idle at scrape time (else the last idle reading)",
    labelNames: ["script"] as const,
    registers,
    collect() {
      this.reset();
      const live = new Set<string>();
      for (const sandbox of scripts.sandboxes()) {
        live.add(sandbox.name);
        if (sandbox.queueDepth === 0) {
          const used = sandbox.heapUsedBytes();
          if (used !== undefined) lastHeap.set(sandbox.name, used);
        }
        const used = lastHeap.get(sandbox.name);
        if (used !== undefined) this.set({ script: sandbox.name }, used);
      }
      for (const name of lastHeap.keys()) if (!live.has(name)) lastHeap.delete(name);
    },
  });

  new Gauge({
    name: "callscript_isolates",
    help: "Isolates this process holds at scrape time: each script's own once booted, retired versions still finishing requests, rebuilds of failed ones; with the scripts unchanged it returns to the same figure after any load, so a figure that keeps growing is a leak",
    registers,
    collect() {
      this.set(liveIsolateCount());
    },
  });

  new Gauge({
    name: "callscript_script_info",
    help: "1 for every script the registry knows, with its serving version and state (active, failed, stale, disabled)",
    labelNames: ["script", "version", "state"] as const,
    registers,
    collect() {
      this.reset();
      for (const state of scripts.states()) this.set({ script: state.name, version: state.version ?? "", state: state.state }, 1);
    },
  });

  const logLines = options.logLines;
  if (logLines) {
    new Counter({
      name: "callscript_log_lines_dropped_total",
      help: `Log lines the server could not write: its log's reader fell ${MAX_BUFFERED_BYTES / 1024 / 1024} MB behind, or went away (stderr says when either happens)`,
      registers,
      collect() {
        this.reset();
        this.inc(logLines.droppedLines);
      },
    });
  }

  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });

  /** Scripts with a version loaded: their next version is a reload. */
  const everLoaded = new Set(
    scripts
      .states()
      .filter((state) => state.version !== null)
      .map((state) => state.name),
  );
  const onLoaded = (name: string) => {
    if (everLoaded.has(name)) reloads.inc({ script: name });
    else everLoaded.add(name);
  };
  const onFailed = (name: string, problem: ScriptProblem) => loadFailures.inc({ script: name, stage: problem.stage });
  const onUnloaded = (name: string) => {
    everLoaded.delete(name);
    unloads.inc({ script: name });
    typeErrors.remove({ script: name });
  };
  const onTypeErrors = (name: string, count: number) => typeErrors.set({ script: name }, count);
  scripts.on("loaded", onLoaded);
  scripts.on("failed", onFailed);
  scripts.on("unloaded", onUnloaded);
  scripts.on("typeErrors", onTypeErrors);

  return {
    registry,
    invocation(hook, invocation) {
      invocations.inc({ hook, script: invocation.script, outcome: outcomeOf(invocation) });
      if (invocation.stats.wallMs > 0) scriptSeconds.observe({ hook, script: invocation.script }, invocation.stats.wallMs / 1000);
      if (invocation.stats.cpuMs > 0) scriptCpu.inc({ script: invocation.script }, invocation.stats.cpuMs / 1000);
    },
    answer(hook, outcome, seconds) {
      answers.inc({ hook, outcome });
      hookSeconds.observe({ hook }, seconds);
    },
    request(hook, status) {
      requests.inc({ hook, status: String(status) });
    },
    shadow(script, hook, result) {
      shadowRuns.inc({ script, hook, result });
    },
    fetch(event) {
      const origin = event.origin ?? NO_ORIGIN;
      fetches.inc({ script: event.script, origin, status: event.status !== undefined ? String(event.status) : (event.code ?? "unknown") });
      if (event.origin !== undefined) fetchSeconds.observe({ script: event.script, origin }, event.ms / 1000);
    },
    kv(event) {
      kvOps.inc({ script: event.script, op: event.op, outcome: event.outcome });
      kvSeconds.observe({ op: event.op }, event.ms / 1000);
    },
    fault(event) {
      faults.inc({ script: event.script, op: event.op, code: event.code });
    },
    close() {
      scripts.off("loaded", onLoaded);
      scripts.off("failed", onFailed);
      scripts.off("unloaded", onUnloaded);
      scripts.off("typeErrors", onTypeErrors);
    },
  };
}

/** GET /metrics in the Prometheus text format. */
export const metricsRoute: FastifyPluginAsync<{ metrics: ServerMetrics }> = async (app, { metrics }) => {
  app.addHook("onClose", async () => metrics.close());
  app.get(
    "/metrics",
    {
      schema: {
        summary: "Prometheus metrics",
        description:
          "Invocations, durations, queue depth and heap per script, load failures, reloads, requests by hook and status, fetches by origin and status, kv operations, capability faults",
        tags: ["operations"],
        produces: ["text/plain"],
        response: { 200: { description: "Prometheus text format", type: "string" } },
      },
    },
    async (_request, reply) => {
      const text = await metrics.registry.metrics();
      return reply.type(metrics.registry.contentType).send(text);
    },
  );
};
