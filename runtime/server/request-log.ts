import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import { shared } from "./plugin.js";

/**
 * fastify's own two lines per request are off: hook routes write one line each (hook-route.ts),
 * the rest are logged here, quietly when all is well (probes at debug level, even a 503 of
 * /readyz). A refused token is a warning: someone is knocking. Every answer carries its request id in X-Request-Id.
 */
export const requestLog = shared("callscript-request-log", async (app) => {
  // The id every log line of the request carries (the caller's X-Request-Id when it sent one).
  app.addHook("onRequest", (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    reply.header("x-request-id", request.id);
    done();
  });
  app.addHook("onResponse", (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (request.routeOptions.config.hook === undefined) {
      const status = reply.statusCode;
      const fields = { method: request.method, url: request.url, status, ms: Math.round(reply.elapsedTime * 100) / 100 };
      // Health and readiness probes come every few seconds; a 503 from /readyz is an answer, not a fault.
      if (request.routeOptions.config.probe === true) request.log.debug(fields, "probe answered");
      else if (status >= 500) request.log.error(fields, "request failed");
      else if (status === 401) request.log.warn(fields, "request refused: no valid token");
      else if (status >= 400) request.log.info(fields, "request refused");
      else request.log.debug(fields, "request completed");
    }
    done();
  });
});
