import type { FastifyPluginAsync } from "fastify";
import { NotReadyError } from "../errors.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { healthResponse, httpErrorSchema, jsonSchemaOf, readyResponse, scriptsResponse } from "./schemas.js";

/** The body of GET /scripts; the console's Scripts page shows the same. */
export function scriptsReport(registry: ScriptRegistry) {
  return { ready: registry.ready, scripts: registry.states() };
}

export interface OpsRoutesOptions {
  registry: ScriptRegistry;
}

/**
 * /healthz: the process answers (open, for liveness probes). /readyz: scripts are loaded (open:
 * probes rarely carry secrets, and it tells nothing but a count). /scripts: each script's state
 * (token required: names, versions, errors with file positions).
 */
export const opsRoutes: FastifyPluginAsync<OpsRoutesOptions> = async (app, { registry }) => {
  const startedAt = performance.now();

  app.get(
    "/healthz",
    {
      config: { public: true },
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
      config: { public: true },
      schema: {
        summary: "Readiness: at least one script is loaded and serving",
        tags: ["operations"],
        security: [],
        response: { 200: jsonSchemaOf(readyResponse), 503: httpErrorSchema },
      },
    },
    async () => {
      const states = registry.states();
      const serving = states.filter((state) => state.version !== null).length;
      if (!registry.ready) {
        const failed = states.filter((state) => state.state === "failed").length;
        throw new NotReadyError(
          states.length === 0
            ? "no script is loaded (the scripts folder has none yet, or it is still loading)"
            : `no script is serving: ${failed} of ${states.length} failed to load (GET /scripts says why)`,
        );
      }
      return { ready: true as const, scripts: serving };
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
