import { pino } from "pino";
import type { CannedCall } from "../capabilities/canned.js";
import type { Config } from "../config.js";
import { pipelineFor, pipelineOrderBy, type DispatchResult, type PipelineScript } from "../dispatch/dispatch.js";
import { callHook } from "../dispatch/hook-call.js";
import { ScriptRegistry } from "../registry/registry.js";
import type { ScriptProblem } from "../registry/states.js";
import type { HookName } from "../schema/hooks.js";
import { cannedFor, grantsFrom, type CaseCapabilities } from "./case-capabilities.js";

/**
 * A scripts folder loaded exactly as `serve` loads it (the server's registry: the same compiler,
 * sandbox, order, config and disabled scripts), for the commands that play calls against it:
 * `simulate` and `replay`. Each call goes through `callHook`, the function the hook route calls.
 *
 * Capabilities are canned, never real: a simulated or replayed call must not reach a CRM nor
 * change a store. ctx.kv is in memory, one for the whole run (a counter goes on from one call to
 * the next), empty at the start; ctx.fetch has no answers, so each fetch fails with
 * CS_CAP_FETCH_NOT_FORESEEN (a script that catches it goes on as it would without the CRM), and
 * the call says which fetches its scripts made. Grants are the config's when it came from a file.
 */

export interface FolderProblem {
  script: string;
  problem: ScriptProblem;
}

export interface FolderCall {
  result: DispatchResult;
  /** The hook's pipeline as it ran: the scripts and their versions. */
  scripts: readonly PipelineScript[];
  /** The pipeline's versions by script name (a shadow under the name of the script it stands in for). */
  versions: Record<string, string>;
  /** The fetches the scripts made (none answered: nothing reaches the network). */
  fetches: CannedCall[];
}

export interface CallOptions {
  /**
   * Each script's shadow (NAME.shadow.ts) in its place: the pipeline as it will be once every
   * shadow is promoted. A shadow that does not handle the hook leaves NAME out, as its promotion would.
   */
  shadows?: boolean;
}

export class ServedFolder {
  private readonly capabilities: CaseCapabilities;

  private constructor(
    readonly config: Config,
    readonly registry: ScriptRegistry,
  ) {
    this.capabilities = cannedFor(config, grantsFrom(config));
  }

  static async load(config: Config): Promise<ServedFolder> {
    // The registry's own log lines (loaded, reloaded) are the server's; here its state says it all.
    const registry = new ScriptRegistry(config, pino({ level: "silent" }));
    await registry.loadAll();
    return new ServedFolder(config, registry);
  }

  get scriptsDir(): string {
    return this.config.scriptsDir;
  }

  /** Scripts that do not load: the server would leave them out of every pipeline. With `shadows`, the shadows that do not either. */
  problems(options: CallOptions = {}): FolderProblem[] {
    const scripts = this.registry.states().flatMap((state) => (state.lastError ? [{ script: state.name, problem: state.lastError }] : []));
    if (!options.shadows) return scripts;
    const shadows = this.registry.shadows.all().flatMap((entry) => (entry.lastError ? [{ script: `${entry.live}.shadow`, problem: entry.lastError }] : []));
    return [...scripts, ...shadows];
  }

  /** The scripts whose shadow is loaded. */
  shadowed(): string[] {
    return this.registry.shadows
      .all()
      .filter((entry) => entry.script !== undefined)
      .map((entry) => entry.live)
      .sort();
  }

  /** The scripts that serve, by name, with their versions. */
  versions(): Record<string, string> {
    return Object.fromEntries(this.registry.states().flatMap((state) => (state.version ? [[state.name, state.version]] : [])));
  }

  /** One hook call, as the hook route makes it. */
  async call(hook: HookName, input: Record<string, unknown>, inputJson: string, requestId: string, options: CallOptions = {}): Promise<FolderCall> {
    const lease = this.registry.lease(hook);
    try {
      const named = options.shadows ? this.promoted(hook, lease.scripts) : lease.scripts.map((script) => ({ name: script.sandbox.name, script }));
      // A promoted shadow may declare another order than its live script.
      const scripts = pipelineFor(
        hook,
        named.map(({ script }) => script),
      );
      const before = this.capabilities.canned.calls().length;
      const result = await callHook(this.config, hook, input, scripts, {
        requestId,
        inputJson,
        measureHeap: true,
        capabilities: this.capabilities.capabilities,
      });
      const fetches = this.capabilities.canned.calls().slice(before);
      return { result, scripts, versions: Object.fromEntries(named.map(({ name, script }) => [name, script.sandbox.version])), fetches };
    } finally {
      lease.release();
    }
  }

  /** The hook's pipeline with every shadow promoted, ordered as the server would order it then. */
  private promoted(hook: HookName, live: readonly PipelineScript[]): Array<{ name: string; script: PipelineScript }> {
    const shadows = this.registry.shadows;
    const named: Array<{ name: string; script: PipelineScript }> = [];
    for (const script of live) {
      const shadow = shadows.of(script.sandbox.name)?.script;
      if (!shadow) named.push({ name: script.sandbox.name, script });
      else if (shadow.sandbox.implements(hook)) named.push({ name: script.sandbox.name, script: shadow });
    }
    // A shadow that handles a hook its script does not (or beside no script at all) joins that hook.
    for (const entry of shadows.all()) {
      const shadow = entry.script;
      if (!shadow?.sandbox.implements(hook) || named.some(({ name }) => name === entry.live)) continue;
      if (this.config.scripts[entry.live]?.enabled === false) continue;
      named.push({ name: entry.live, script: shadow });
    }
    return named.sort(
      pipelineOrderBy(
        (entry) => entry.script.order,
        (entry) => entry.name,
      ),
    );
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}
