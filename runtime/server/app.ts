import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { pino, type Logger } from "pino";
import type { CapabilityHooks } from "../capabilities/capabilities.js";
import type { Capabilities } from "../capabilities/types.js";
import type { Config } from "../config.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { assertSafeBinding, bearerAuth } from "./auth.js";
import { jsonBodies } from "./body.js";
import type { Catastrophe } from "./catastrophe.js";
import { drainConnections } from "./drain.js";
import { errorHandling } from "./error-handler.js";
import { capabilityHooks } from "./capability-events.js";
import { hookRoutes } from "./hook-route.js";
import { createMetrics, metricsRoute, type ServerMetrics } from "./metrics.js";
import { adminConsole, consoleParts } from "./console.js";
import { openapi } from "./openapi.js";
import { opsRoutes } from "./ops-routes.js";
import { requestLog } from "./request-log.js";

export interface BuildServerOptions {
  config: Config;
  registry: ScriptRegistry;
  /** The pino logger of the server; by default one at config.logLevel on stdout. */
  logger?: Logger | FastifyBaseLogger;
  /** The logger's destination, when it is log-destination.ts's: its dropped lines are a metric. */
  logLines?: { readonly droppedLines: number };
  /** Swagger UI at /docs (about 3 ms at startup); default true. */
  docs?: boolean;
  /** Node's process metrics in /metrics; default true. */
  processMetrics?: boolean;
  /** Tripped by isolated-vm's onCatastrophicError (wired by `serve`): hook requests then get an error answer at once. */
  catastrophe?: Catastrophe;
  /** The console's clock, in ms: its sessions' expiry and the calls it keeps per second (tests move it). */
  consoleClock?: () => number;
  /**
   * What the scripts may reach (ctx.fetch, ctx.secret, ctx.kv): made here once the metrics exist,
   * from hooks that count and log every request (`serve` makes a CapabilityHost of the config).
   * Without it, scripts have no capabilities (every request fails with CS_CAP_NONE). The caller
   * closes it, after the server and the registry.
   */
  capabilities?: (hooks: CapabilityHooks) => Capabilities;
}

export type CallscriptServer = FastifyInstance & { metrics: ServerMetrics; capabilities: Capabilities | undefined };

/** A request id from the caller's X-Request-Id when it is a sane token, else a new UUID. */
function requestId(request: IncomingMessage): string {
  const given = request.headers["x-request-id"];
  return typeof given === "string" && /^[\w.:-]{1,64}$/.test(given) ? given : randomUUID();
}

/**
 * The HTTP server, ready to `listen` (or to `inject` in tests). It does not load the scripts:
 * the caller owns the registry, loads it, and closes it after the server.
 *
 * Plugins, in order: one error shape, request logs, connection draining, JSON bodies, bearer
 * auth (global hooks), the OpenAPI document (before the routes, so that it sees them), then the
 * routes: metrics, operations, the console, hooks.
 */
export function buildServer(options: BuildServerOptions): CallscriptServer {
  const { config, registry } = options;
  assertSafeBinding(config);
  const logger = options.logger ?? pino({ level: config.logLevel });
  const app = Fastify({
    loggerInstance: logger as FastifyBaseLogger,
    bodyLimit: config.bodyLimitBytes,
    genReqId: requestId,
    // fastify's own two lines per request are replaced by ours (one per request, see request-log.ts).
    logController: new LogController({ disableRequestLogging: true }),
    // Requests that arrive on a kept-alive connection while the server drains are still
    // answered (the scripts are up until the drain ends), not turned away with a bare 503.
    return503OnClosing: false,
    forceCloseConnections: "idle",
    routerOptions: { ignoreTrailingSlash: true },
  });

  const metrics = createMetrics(registry, { processMetrics: options.processMetrics ?? true, logLines: options.logLines });
  app.decorate("metrics", metrics);
  const capabilities = options.capabilities?.(capabilityHooks(app.log as unknown as Logger, metrics));
  app.decorate("capabilities", capabilities);

  app.register(errorHandling, { bodyLimit: config.bodyLimitBytes });
  app.register(requestLog);
  app.register(drainConnections);
  app.register(jsonBodies);
  const { sessions, calls } = consoleParts(config, options.consoleClock);
  app.register(bearerAuth, { token: config.token, sessions });
  app.register(openapi, { ui: options.docs ?? true });
  app.register(metricsRoute, { metrics });
  app.register(opsRoutes, { registry });
  if (config.console.enabled) app.register(adminConsole, { config, registry, metrics, sessions, calls });
  app.register(hookRoutes, { config, registry, metrics, catastrophe: options.catastrophe, calls, capabilities });
  return app as unknown as CallscriptServer;
}
