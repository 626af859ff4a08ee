import type { FastifyPluginAsync, FastifyPluginOptions } from "fastify";
import fp from "fastify-plugin";
import type { HookName } from "../schema/hooks.js";

declare module "fastify" {
  interface FastifyContextConfig {
    /** Served without the bearer token (health probes). */
    public?: boolean;
    /** A health or readiness probe: its answers are logged at debug level. */
    probe?: boolean;
    /** The hook a hook route serves; `null` on the route that answers unknown hook names. */
    hook?: HookName | null;
    /** A console route: a console session opens it as the token does (auth.ts). */
    session?: boolean;
  }
}

/**
 * Let a plugin's hooks, handlers and decorations apply to the instance that registers it instead
 * of an encapsulated child (fastify-plugin), under a name that fastify's errors and its plugin
 * tree show.
 */
export function shared<O extends FastifyPluginOptions = FastifyPluginOptions>(name: string, plugin: FastifyPluginAsync<O>): FastifyPluginAsync<O> {
  return fp(plugin, { name, fastify: "5.x" });
}
