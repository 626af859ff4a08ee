import type { FastifyPluginAsync } from "fastify";
import { NotReadyError } from "../errors.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { httpErrorBody } from "./error-handler.js";
import { healthResponse, httpErrorSchema, jsonSchemaOf, readyResponse, scriptsResponse } from "./schemas.js";

/** The body of GET /scripts; the console's Scripts page shows the same. */
export function scriptsReport(registry: ScriptRegistry) {
  return { ready: registry.ready, config: registry.configReport, scripts: registry.states() };
}

export interface OpsRoutesOptions {
  registry: ScriptRegistry;
}

/**
 * /healthz: the process answers (open, for liveness probes). /readyz: scripts are loaded and none
 * is failed (open: probes rarely carry secrets; it names failed scripts, not their code).
 * /scripts: each script's state and settings in force, and the configuration's (token required).
 * Probe answers are logged at debug level, whatever their status.
 */
export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, { registry }) => {
  const startedAt = performance.now();

  app.get(
    "/healthz",
    {
      config: { public: true, probe: true },
      schema: {
        summary: "Liveness: the process answers",
        tags: ["operations"],
        security: [],
        response: { 200: jsonSchemaOf(healthResponse) },
      },
    },
    async () => ({ status: "ok" as const, uptimeSeconds: Math.round((performance.now() - startedAt) / 10) / 100 }),
  );

  app.get(
    "/readyz",
    {
      config: { public: true, probe: true },
      schema: {
        summary: "Readiness: scripts serve, and no enabled script is without a version to serve",
        description:
          "503 while no script serves yet, or while any enabled script failed to compile, type-check or load with no earlier version to fall back on (its hooks answer errors): `issues` lists them",
        tags: ["operations"],
        security: [],
        response: { 200: jsonSchemaOf(readyResponse), 503: httpErrorSchema },
      },
    },
    async (request, reply) => {
      const states = registry.states();
      const serving = states.filter((state) => state.version !== null).length;
      if (registry.ready) return { ready: true as const, scripts: serving };
      // Answered here, not thrown: a probe every few seconds is not an error with a stack in the log.
      const failed = registry.failedScripts();
      const reason =
        failed.length > 0
          ? `${failed.length} enabled script${failed.length === 1 ? " has" : "s have"} no version to serve: ${failed.map((script) => script.name).join(", ")} (GET /scripts says why)`
          : states.length === 0
            ? "no script is loaded (the scripts folder has none yet, or it is still loading)"
            : `no script is serving: ${states.filter((state) => state.state === "failed").length} of ${states.length} failed to load (GET /scripts says why)`;
      const body = httpErrorBody(new NotReadyError(reason), request.id, 0);
      if (failed.length > 0) body.issues = failed.map((script) => ({ path: script.file, message: `${script.problem.stage}: ${script.problem.message}` }));
      return reply.code(503).send(body);
    },
  );

  app.get(
    "/scripts",
    {
      schema: {
        summary: "Every script: version, hooks, state, last load error, limits, counters",
        tags: ["operations"],
        response: { 200: jsonSchemaOf(scriptsResponse), "4xx": httpErrorSchema },
      },
    },
    async () => scriptsReport(registry),
  );
};
