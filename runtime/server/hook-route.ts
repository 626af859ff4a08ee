import { performance } from "node:perf_hooks";
import type { FastifyBaseLogger, FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { Capabilities } from "../capabilities/types.js";
import type { Config } from "../config.js";
import { callHook } from "../dispatch/hook-call.js";
import { parseHookInput, unknownHook } from "../schema/hook-input.js";
import { ShadowRunner, type ShadowCall } from "../registry/shadow-runner.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { recordPair } from "../record/recording.js";
import type { HookAnswer, HookFailure } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";
import type { Invocation } from "../sandbox/sandbox.js";
import { estimateBytes, type CallsBuffer } from "./calls-buffer.js";
import { Catastrophe } from "./catastrophe.js";
import { httpErrorBody, withIssues } from "./error-handler.js";
import { UNKNOWN_HOOK, type ServerMetrics } from "./metrics.js";
import { answerSchema, httpErrorSchema } from "./schemas.js";
import { logScriptLines } from "./script-logs.js";

export interface HookRoutesOptions {
  config: Config;
  registry: ScriptRegistry;
  metrics: ServerMetrics;
  /** Tripped by isolated-vm's onCatastrophicError: every request is then answered with an error at once. */
  catastrophe?: Catastrophe;
  /** The console's recent calls (config console.calls); absent when it keeps none. */
  calls?: CallsBuffer | undefined;
  /** What the scripts may reach (ctx.fetch, ctx.kv): given to every invocation, read-only to shadows. */
  capabilities?: Capabilities | undefined;
}

/** What the one log line of a hook request says. */
interface HookRequestSummary {
  outcome?: string;
  scripts?: string[];
  cancelledBy?: string;
  skipped?: { script: string | null; reason: string }[];
  disabled?: true;
  error?: Omit<HookFailure, "stack">;
  code?: string;
  /** For the console's calls buffer, when there is one: what the request made, by reference. */
  capture?: { input: unknown; answer: HookAnswer; invocations: readonly Invocation[] };
}

declare module "fastify" {
  interface FastifyRequest {
    /** A hook request's log line, made as the request goes (undefined on other routes). */
    hookSummary: HookRequestSummary | undefined;
    /** A hook request whose scripts have shadows, to run once the answer is sent. */
    shadowCall: ShadowCall | undefined;
  }
}

const debugEnabled = (log: FastifyBaseLogger) => log.level === "debug" || log.level === "trace";
const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * `POST /hooks/<hook>` for every hook of the catalog, and `POST /hooks/:hook` for the rest (404,
 * naming the known hooks, before the body is read).
 *
 * - 200 `{ state: "success", data }`, or `{ state: "error", error }` when a script failed: the
 *   connector then falls back to its default; data is `{}` only when a script cancelled.
 * - 503 with `Retry-After: 1` and the error answer when a script's queue was full (`overloaded`).
 * - 400 when the body is not JSON or not a valid input of the hook, naming every bad field.
 */
export const hookRoutes: FastifyPluginAsync<HookRoutesOptions> = async (
  app,
  { config: startConfig, registry, metrics, catastrophe = new Catastrophe(), calls, capabilities },
) => {
  // Per-request state lives on the request (fastify's decorations), not in WeakMaps keyed by it.
  // V8's young-generation collection keeps every value of an old WeakMap whose key is young alive
  // (only a full collection clears them): each request's summary, with the input it holds, was
  // copied and promoted, and the young collections of a hook with no script took 5–6 ms instead of
  // 1.3 (2.4 MB promoted each time instead of none; docs/benchmarks.md).
  app.decorateRequest("hookSummary", undefined);
  app.decorateRequest("shadowCall", undefined);
  const shadows = new ShadowRunner(() => registry.activeConfig, registry.shadows, {
    onResult: (script, hook, result) => metrics.shadow(script, hook, result),
    ...(capabilities ? { capabilities } : {}),
  });

  async function answer(request: FastifyRequest, reply: FastifyReply): Promise<HookAnswer> {
    const hook = request.routeOptions.config.hook as HookName;
    // The configuration in force for this request: a config reload swaps it whole.
    const config = registry.activeConfig;
    const summary: HookRequestSummary = {};
    request.hookSummary = summary;
    const parsed = parseHookInput(hook, request.body, request.bodyText);
    if (!parsed.ok) throw withIssues(parsed.error, parsed.issues);

    const log = request.log;
    if (debugEnabled(log)) log.debug({ hook, input: parsed.input }, "hook input");
    const started = performance.now();
    // Leased, so that a version swapped out meanwhile is disposed as soon as no request holds it.
    const lease = registry.lease(hook);
    let result;
    try {
      result = await catastrophe.race(() =>
        callHook(config, hook, parsed.input, lease.scripts, {
          requestId: request.id,
          failed: lease.failed,
          inputJson: parsed.inputJson,
          ...(capabilities ? { capabilities } : {}),
          onInvocation(invocation) {
            registry.count(invocation);
            metrics.invocation(hook, invocation);
            logScriptLines(log, hook, invocation);
          },
        }),
      );
    } finally {
      lease.release();
    }
    const seconds = (performance.now() - started) / 1000;

    const answer = result.answer;
    // Dispatch turns a request away whole, before any script runs, when a script's queue is full
    // (scripts of a request let in are never refused halfway): that is the only `overloaded`.
    const overload = answer.state === "error" && answer.error.reason === "overloaded";
    if (overload) reply.code(503).header("retry-after", "1");

    summary.scripts = result.invocations.map((invocation) => invocation.script);
    if (config.hooks[hook]?.enabled === false) summary.disabled = true;
    if (result.skipped.length > 0) summary.skipped = result.skipped.map((failure) => ({ script: failure.script, reason: failure.reason }));
    if (answer.state === "success") {
      summary.outcome = result.cancelledBy ? "cancel" : "success";
      if (result.cancelledBy) summary.cancelledBy = result.cancelledBy;
    } else {
      summary.outcome = answer.error.reason;
      const { stack: _, ...error } = answer.error;
      summary.error = error;
    }
    metrics.answer(hook, summary.outcome, seconds);
    if (calls) summary.capture = { input: parsed.input, answer, invocations: result.invocations };
    if (registry.shadows.size > 0 && !overload) {
      request.shadowCall = { hook, input: parsed.input, inputJson: parsed.inputJson, requestId: request.id, result, scripts: lease.scripts };
    }
    if (config.record && !overload) {
      // Real calls as test fixtures (config `record`): the body as the connector sent it and the
      // answer it got, saved after the answer is made, never in its way. An overloaded request
      // says nothing about the scripts and is not kept.
      const { dir, anonymize } = config.record;
      const status = reply.statusCode;
      const versions = Object.fromEntries(lease.scripts.map(({ sandbox }) => [sandbox.name, sandbox.version]));
      recordPair(dir, hook, request.body, answer, { anonymize, id: request.id, requestId: request.id, status, scripts: versions }).then(
        (file) => log.debug({ hook, file }, "hook call recorded"),
        (error: unknown) => log.warn({ hook, err: error }, "hook call not recorded"),
      );
    }
    if (debugEnabled(log)) log.debug({ hook, answer }, "hook answer");
    return answer;
  }

  function onError(request: FastifyRequest, _reply: FastifyReply, error: FastifyError, done: HookHandlerDoneFunction): void {
    const summary = (request.hookSummary ??= {});
    summary.code = httpErrorBody(error, request.id, startConfig.bodyLimitBytes).code;
    done();
  }

  /** One line per hook request: hook, scripts run, outcome, status, time; never the payload at info. */
  function onResponse(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const hook = request.routeOptions.config.hook;
    // The answer is out: now the shadows may run (never before, never in its way).
    const shadowCall = request.shadowCall;
    if (shadowCall && catastrophe.failure === undefined) void shadows.afterAnswer(shadowCall, request.log);
    const status = reply.statusCode;
    metrics.request(hook ?? UNKNOWN_HOOK, status);
    const { code, capture, ...summary } = request.hookSummary ?? {};
    const fields = {
      hook: hook ?? String((request.params as { hook?: unknown }).hook ?? ""),
      status,
      outcome: summary.outcome ?? code ?? "refused",
      ...summary,
      ms: round(reply.elapsedTime),
    };
    // Requests without the token are not the connector's: they never push its calls out. Successful
    // calls are kept at most console.callsPerSecond a second (calls-buffer.ts).
    if (calls && status !== 401 && calls.admit(status !== 200 || (summary.outcome !== "success" && summary.outcome !== "cancel"))) {
      keepCall(calls, request, fields, capture);
    }
    if (summary.outcome === undefined) {
      if (status >= 500) request.log.error(fields, "hook request failed");
      else request.log.warn(fields, "hook request refused");
    } else if (summary.outcome === "success" || summary.outcome === "cancel") {
      request.log.info(fields, "hook answered");
    } else {
      request.log.warn(fields, "hook answered with an error");
    }
    done();
  }

  function keepCall(
    buffer: CallsBuffer,
    request: FastifyRequest,
    fields: { hook: string; status: number; outcome: string; ms: number },
    capture: HookRequestSummary["capture"],
  ): void {
    const input = capture?.input ?? request.body ?? null;
    const invocations = capture?.invocations ?? [];
    const call = {
      id: request.id,
      hook: fields.hook,
      at: Date.now() - fields.ms,
      ms: fields.ms,
      status: fields.status,
      outcome: fields.outcome,
      scripts: invocations.map((invocation) => invocation.script),
      input,
      answer: capture?.answer ?? null,
      invocations,
    };
    buffer.add(call, estimateBytes(request.bodyText?.length ?? 0, invocations));
  }

  const answers = { hide: true, response: { 200: answerSchema, 503: answerSchema, "4xx": httpErrorSchema, "5xx": httpErrorSchema } };
  for (const hook of hookNames) {
    app.post(`/hooks/${hook}`, { schema: answers, config: { hook }, onError, onResponse }, answer);
  }
  app.post<{ Params: { hook: string } }>(
    "/hooks/:hook",
    {
      schema: { hide: true, response: { "4xx": httpErrorSchema } },
      config: { hook: null },
      onRequest: (request, _reply, done) => done(unknownHook(request.params.hook)),
      onError,
      onResponse,
    },
    async () => undefined,
  );
};
