import { performance } from "node:perf_hooks";
import type { FastifyBaseLogger, FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { Config } from "../config.js";
import { callHook, parseHookInput, unknownHook } from "../dispatch/hook-call.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { recordInput } from "../runner/record.js";
import type { HookAnswer, HookFailure } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";
import type { Invocation } from "../sandbox/sandbox.js";
import { bodyTexts } from "./body.js";
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
}

const summaries = new WeakMap<FastifyRequest, HookRequestSummary>();

const debugEnabled = (log: FastifyBaseLogger) => log.level === "debug" || log.level === "trace";
const round = (ms: number) => Math.round(ms * 100) / 100;

/** The first `overloaded` failure among the invocations: the whole request is then a 503. */
function overloadOf(invocations: readonly Invocation[]): HookFailure | undefined {
  for (const { outcome } of invocations) {
    if (outcome.kind === "failure" && outcome.failure.reason === "overloaded") return outcome.failure;
  }
  return undefined;
}

/**
 * `POST /hooks/<hook>` for every hook of the catalog, and `POST /hooks/:hook` for the rest (404,
 * naming the known hooks, before the body is read).
 *
 * - 200 `{ state: "success", data }`, or `{ state: "error", error }` when a script failed: the
 *   connector then falls back to its default; data is `{}` only when a script cancelled.
 * - 503 with `Retry-After: 1` and the error answer when a script's queue was full (`overloaded`).
 * - 400 when the body is not JSON or not a valid input of the hook, naming every bad field.
 */
export const hookRoutes: FastifyPluginAsync<HookRoutesOptions> = async (app, { config: startConfig, registry, metrics, catastrophe = new Catastrophe() }) => {
  async function answer(request: FastifyRequest, reply: FastifyReply): Promise<HookAnswer> {
    const hook = request.routeOptions.config.hook as HookName;
    // The configuration in force for this request: a config reload swaps it whole.
    const config = registry.activeConfig;
    const summary: HookRequestSummary = {};
    summaries.set(request, summary);
    const bodyText = bodyTexts.get(request);
    const parsed = parseHookInput(hook, request.body, bodyText);
    if (!parsed.ok) throw withIssues(parsed.error, parsed.issues);

    const log = request.log;
    if (debugEnabled(log)) log.debug({ hook, input: parsed.input }, "hook input");
    if (config.record) {
      // Real calls as test fixtures (config `record`): the body as the connector sent it, saved
      // beside the answer, never in its way.
      const { dir, anonymize } = config.record;
      recordInput(dir, hook, request.body, { anonymize, id: request.id }).then(
        (file) => log.debug({ hook, file }, "hook input recorded"),
        (error: unknown) => log.warn({ hook, err: error }, "hook input not recorded"),
      );
    }
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

    let answer = result.answer;
    const overload = overloadOf(result.invocations);
    if (overload) {
      if (answer.state !== "error" || answer.error.reason !== "overloaded") answer = { state: "error", error: overload };
      reply.code(503).header("retry-after", "1");
    }

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
    if (debugEnabled(log)) log.debug({ hook, answer }, "hook answer");
    return answer;
  }

  function onError(request: FastifyRequest, _reply: FastifyReply, error: FastifyError, done: HookHandlerDoneFunction): void {
    const summary = summaries.get(request) ?? {};
    summary.code = httpErrorBody(error, request.id, startConfig.bodyLimitBytes).code;
    summaries.set(request, summary);
    done();
  }

  /** One line per hook request: hook, scripts run, outcome, status, time; never the payload at info. */
  function onResponse(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const hook = request.routeOptions.config.hook;
    const status = reply.statusCode;
    metrics.request(hook ?? UNKNOWN_HOOK, status);
    const summary = summaries.get(request) ?? {};
    const fields = {
      hook: hook ?? String((request.params as { hook?: unknown }).hook ?? ""),
      status,
      outcome: summary.outcome ?? summary.code ?? "refused",
      ...summary,
      ms: round(reply.elapsedTime),
    };
    delete (fields as { code?: string }).code;
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
