import { statSync } from "node:fs";
import { pino } from "pino";
import { loadConfig, type Config } from "../config.js";
import type { DispatchResult, PipelineScript } from "../dispatch/dispatch.js";
import { callHook } from "../dispatch/hook-call.js";
import { UsageError } from "../errors.js";
import { ScriptRegistry, type ScriptProblem } from "../registry/registry.js";
import type { HookName } from "../schema/hooks.js";

/**
 * A scripts folder loaded exactly as `serve` loads it (the server's registry: the same compiler,
 * sandbox, order, config and disabled scripts), for the commands that play calls against it:
 * `simulate` and `replay`. Each call goes through `callHook`, the function the hook route calls.
 *
 * Capabilities (ctx.fetch, ctx.kv: to come) are to be served canned in `call`, from the call file
 * or the recording, never for real: a simulated or replayed call must not reach a CRM.
 */

export interface FolderOptions {
  /** The scripts folder (`--scripts`); default: the config's scriptsDir when a config is given, else the current folder. */
  scripts?: string;
  /** The server's config file (`--config`): limits, hook policies, order, settings. */
  config?: string;
}

export interface FolderProblem {
  script: string;
  problem: ScriptProblem;
}

export interface FolderCall {
  result: DispatchResult;
  /** The hook's pipeline as it ran: the scripts and their versions. */
  scripts: readonly PipelineScript[];
}

/** The config the runner plays calls with: the file's, with the scripts folder of the command line. */
export function folderConfig(options: FolderOptions): Config {
  const scriptsDir = options.scripts ?? (options.config === undefined ? "." : undefined);
  const config = loadConfig({
    ...(options.config !== undefined ? { file: options.config } : {}),
    overrides: { scriptsDir, watch: false },
  });
  let folder = false;
  try {
    folder = statSync(config.scriptsDir).isDirectory();
  } catch {
    folder = false;
  }
  if (!folder) throw new UsageError(`The scripts folder ${config.scriptsDir} does not exist (--scripts, or scriptsDir in the config)`);
  return config;
}

export class ServedFolder {
  private constructor(
    readonly config: Config,
    readonly registry: ScriptRegistry,
  ) {}

  static async load(config: Config): Promise<ServedFolder> {
    // The registry's own log lines (loaded, reloaded) are the server's; here its state says it all.
    const registry = new ScriptRegistry(config, pino({ level: "silent" }));
    await registry.loadAll();
    return new ServedFolder(config, registry);
  }

  get scriptsDir(): string {
    return this.config.scriptsDir;
  }

  /** Scripts that do not load: the server would leave them out of every pipeline. */
  problems(): FolderProblem[] {
    return this.registry.states().flatMap((state) => (state.lastError ? [{ script: state.name, problem: state.lastError }] : []));
  }

  /** The scripts that serve, by name, with their versions. */
  versions(): Record<string, string> {
    return Object.fromEntries(this.registry.states().flatMap((state) => (state.version ? [[state.name, state.version]] : [])));
  }

  /** One hook call, as the hook route makes it. */
  async call(hook: HookName, input: Record<string, unknown>, inputJson: string, requestId: string): Promise<FolderCall> {
    const lease = this.registry.lease(hook);
    try {
      const result = await callHook(this.config, hook, input, lease.scripts, { requestId, inputJson, measureHeap: true });
      return { result, scripts: lease.scripts };
    } finally {
      lease.release();
    }
  }

  close(): Promise<void> {
    return this.registry.close();
  }
}
