// @ts-check
// The servers of bench/server-layers.mjs, all in this one process over one script registry (the
// examples, their isolates shared): a bare fastify route and callscript's app with or without
// each of its layers. Prints `ports <json>` once every one listens.
import path from "node:path";
import Fastify from "fastify";
import { pino } from "pino";
import { loadConfig } from "../dist/runtime/config.js";
import { ScriptRegistry } from "../dist/runtime/registry/registry.js";
import { buildServer } from "../dist/runtime/server/app.js";
import { requestLog } from "../dist/runtime/server/request-log.js";
import { drainConnections } from "../dist/runtime/server/drain.js";
import { jsonBodies } from "../dist/runtime/server/body.js";
import { bearerAuth } from "../dist/runtime/server/auth.js";
import { errorHandling } from "../dist/runtime/server/error-handler.js";
import { openapi } from "../dist/runtime/server/openapi.js";
import { createMetrics, metricsRoute } from "../dist/runtime/server/metrics.js";
import { opsRoutes } from "../dist/runtime/server/ops-routes.js";
import { hookRoutes } from "../dist/runtime/server/hook-route.js";
import { adminConsole, consoleParts } from "../dist/runtime/server/console.js";
import { logDestination } from "../dist/runtime/server/log-destination.js";
import { callHook } from "../dist/runtime/dispatch/hook-call.js";
import { parseHookInput } from "../dist/runtime/schema/hook-input.js";
import { answerSchema } from "../dist/runtime/server/schemas.js";
import { watchLoopLoad } from "../dist/runtime/sandbox/loop-load.js";
import { LogController } from "fastify";

const examples = path.join(path.dirname(new URL(import.meta.url).pathname), "..", "examples");
const config = loadConfig({ file: path.join(examples, "callscript.config.json"), overrides: { scriptsDir: examples, watch: false, logLevel: "warn" } });
const log = pino({ level: "warn" }, logDestination().stream);
// As serve makes it: with the event loop's load, so that short scripts' calls go to their isolates
// in batches while the loop is busy, and run on it when it is not (inline-policy.ts).
const registry = new ScriptRegistry(config, log, { loopLoad: watchLoopLoad() });
await registry.loadAll();

const answers = JSON.parse(process.env.BARE_ANSWERS ?? "{}");

/** fastify's options as buildServer (runtime/server/app.ts) gives them. */
const callscriptOptions = () => ({
  loggerInstance: /** @type {any} */ (log),
  genReqId: () => crypto.randomUUID(),
  logController: new LogController({ disableRequestLogging: true }),
  return503OnClosing: false,
  forceCloseConnections: /** @type {const} */ ("idle"),
  routerOptions: { ignoreTrailingSlash: true },
});

/**
 * The hook's scripts invoked in order as the pipeline does, each one's data merged: no input checks,
 * no metrics, no log.
 * @param {import("../dist/runtime/schema/hooks.js").HookName} hook
 * @param {string} inputJson
 * @param {string} requestId
 */
async function invokeScripts(hook, inputJson, requestId) {
  JSON.parse(inputJson);
  const lease = registry.lease(hook);
  try {
    let data = {};
    for (const script of lease.scripts) {
      const invocation = await script.sandbox.invoke(
        { hook, inputJson, dataJson: JSON.stringify(data), settingsJson: script.settingsJson, requestId },
        { heap: false, admitted: true },
      );
      if (invocation.outcome.kind === "data") data = { ...data, ...invocation.outcome.data };
    }
    return { state: "success", data };
  } finally {
    lease.release();
  }
}
/** @type {Record<string, () => import("fastify").FastifyInstance>} */
const variants = {
  bare() {
    const app = Fastify({ logger: false });
    app.post("/hooks/:hook", async (request) => {
      const answer = answers[/** @type {{ hook: string }} */ (request.params).hook];
      return { state: answer.state, data: { ...answer.data } };
    });
    return app;
  },
  // The bare route with the hook's scripts invoked as the pipeline does, nothing else of callscript's.
  direct() {
    const app = Fastify({ logger: false });
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, text, done) => done(null, text));
    app.post("/hooks/:hook", async (request) => invokeScripts(/** @type {any} */ (request.params).hook, /** @type {string} */ (request.body), "r"));
    return app;
  },
  // direct, in a fastify made as callscript makes its own (logger, request ids), with its answer schema.
  opts() {
    const app = Fastify(callscriptOptions());
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, text, done) => done(null, text));
    app.post("/hooks/:hook", { schema: { response: { 200: answerSchema } } }, async (request) =>
      invokeScripts(/** @type {any} */ (request.params).hook, /** @type {string} */ (request.body), request.id),
    );
    return app;
  },
  // The bare route with the input's checks and the dispatch as the hook route makes them (no metrics, no log line).
  dispatch() {
    const app = Fastify({ logger: false });
    app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, text, done) =>
      done(null, { text, value: JSON.parse(/** @type {string} */ (text)) }),
    );
    app.post("/hooks/:hook", async (request) => {
      const hook = /** @type {any} */ (request.params).hook;
      const { text, value } = /** @type {any} */ (request.body);
      const parsed = parseHookInput(hook, value, text);
      if (!parsed.ok) throw parsed.error;
      const lease = registry.lease(hook);
      try {
        const result = await callHook(registry.activeConfig, hook, parsed.input, lease.scripts, {
          requestId: "r",
          failed: lease.failed,
          inputJson: parsed.inputJson,
        });
        return result.answer;
      } finally {
        lease.release();
      }
    });
    return app;
  },
  full: () => /** @type {any} */ (buildServer({ config, registry, logger: log, docs: false })),
};
/** `full` with parts of its per-request work turned off (FULL_VARIANTS: nometrics, nocalls, nolog). */
for (const name of (process.env.FULL_VARIANTS ?? "").split(",").filter(Boolean)) {
  variants[`full-${name}`] = () => {
    const parts = name.split("+");
    const server = /** @type {any} */ (
      buildServer({
        config: parts.includes("nocalls") ? { ...config, console: { ...config.console, calls: 0 } } : config,
        registry,
        logger: parts.includes("nolog") ? pino({ level: "silent" }) : log,
        docs: false,
      })
    );
    if (parts.includes("nometrics")) for (const key of ["invocation", "answer", "request"]) server.metrics[key] = () => undefined;
    return server;
  };
}
/**
 * callscript's app from its layers, `without` the named ones.
 * @param {string[]} without
 */
function layered(without) {
  const app = Fastify(callscriptOptions());
  const metrics = createMetrics(registry, { processMetrics: false });
  app.decorate("metrics", metrics);
  if (!without.includes("errors")) app.register(errorHandling, { bodyLimit: config.bodyLimitBytes });
  if (!without.includes("requestLog")) app.register(requestLog);
  if (!without.includes("drain")) app.register(drainConnections);
  app.register(jsonBodies);
  if (!without.includes("auth")) app.register(bearerAuth, { token: config.token, sessions: undefined });
  if (!without.includes("openapi")) app.register(openapi, { ui: false });
  app.register(metricsRoute, { metrics });
  app.register(opsRoutes, { registry });
  const { sessions, calls } = without.includes("console") ? { sessions: undefined, calls: undefined } : consoleParts(config, undefined);
  if (!without.includes("console") && config.console.enabled) app.register(adminConsole, { config, registry, metrics, sessions, calls });
  app.register(hookRoutes, { config, registry, metrics, calls });
  return app;
}
for (const name of (process.env.LAYER_VARIANTS ?? "").split(",").filter(Boolean)) {
  const without = name.replace(/^without-/, "").split("+");
  variants[name] = () => layered(without);
}

/** @type {Record<string, number>} */
const ports = {};
for (const [name, make] of Object.entries(variants)) {
  const app = make();
  await app.listen({ host: "127.0.0.1", port: 0 });
  ports[name] = /** @type {import("node:net").AddressInfo} */ (app.server.address()).port;
}
console.log(`ports ${JSON.stringify(ports)}`);
