import type { Config } from "../../runtime/config.js";
import type { DispatchResult, PipelineScript } from "../../runtime/dispatch/dispatch.js";
import { callHook, type HookCallOptions } from "../../runtime/dispatch/hook-call.js";
import type { ScriptRegistry } from "../../runtime/registry/registry.js";
import type { HookName } from "../../runtime/schema/hooks.js";

/**
 * The scripts that run for `hook` now, in pipeline order: leased and let go at once, to look at
 * them or to call a version that no reload retires meanwhile (a retired version no request holds
 * is disposed at once: hold a lease, or use callLeased, across a reload).
 */
export function pipelineNow(registry: ScriptRegistry, hook: HookName): readonly PipelineScript[] {
  const lease = registry.lease(hook);
  lease.release();
  return lease.scripts;
}

/**
 * Call a hook's pipeline as the hook route does: leased for the call, let go after. The failed
 * scripts of the lease are not passed on (give `options.failed` for that).
 */
export async function callLeased(
  registry: ScriptRegistry,
  config: Config,
  hook: HookName,
  input: Record<string, unknown>,
  options?: HookCallOptions,
): Promise<DispatchResult> {
  const lease = registry.lease(hook);
  try {
    return await callHook(config, hook, input, lease.scripts, options);
  } finally {
    lease.release();
  }
}
