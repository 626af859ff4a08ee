import { isDeepStrictEqual } from "node:util";
import { scriptNameOf } from "../compile/compile.js";
import { effectiveLimits, type Config } from "../config.js";
import { settingsProblems, unknownScriptNames } from "../config-scripts.js";
import { ScriptSandbox, type SandboxOptions } from "../sandbox/sandbox.js";
import type { LoadStage } from "./states.js";

/** Keys read once, when the server starts: a change waits for a restart (and says so). */
export const RESTART_KEYS = ["host", "port", "token", "bodyLimitBytes", "scriptsDir", "watch", "kv"] as const;

/** What /scripts says of the configuration: which file, since when, and how its last reload went. */

export type ConfigChange =
  | {
      ok: true;
      /** Top-level keys whose value changed. */
      changed: string[];
      /** Of those, the ones that take effect only after a restart. */
      restartRequired: string[];
      /** Scripts loaded because of the change (enabled again, or their settings now fit). */
      reloaded: { name: string; ok: boolean }[];
    }
  | { ok: false; problems: string[] };

/** What applyConfig needs of the registry. */
export interface ApplyContext {
  current: Config;
  scriptFiles(): string[];
  entries: { name: string; file: string; sandbox: ScriptSandbox | undefined; lastError: { stage: LoadStage } | null }[];
  sandboxOptionsFor(config: Config): SandboxOptions;
  /** Swap in the new config, the sandbox options and the isolates remade for new limits, at once. */
  commit(config: Config, options: SandboxOptions, replaced: ReadonlyMap<string, ScriptSandbox>): void;
  reload(files: string[]): Promise<{ name: string; ok: boolean }[]>;
}

const limitsOf = (config: Config) => ({ ...effectiveLimits(config), maxQueue: config.maxQueue, inline: config.inlineCalls, batch: config.batchCalls });

/**
 * A new configuration, checked against the scripts as they are (every `scripts.<name>` names a
 * script file; settings fit what each serving script declares; every script loads with the new
 * limits), then applied at once: nothing of it, or all of it. Isolates that new limits require are
 * made to the side first, as a reload does, so a refused config leaves nothing behind.
 */
export async function applyConfig(next: Config, context: ApplyContext): Promise<ConfigChange> {
  const { current } = context;
  const problems: string[] = [];
  if (next.scriptsDir !== current.scriptsDir) {
    problems.push(`scriptsDir: the scripts folder cannot change while serving (${current.scriptsDir} → ${next.scriptsDir}); restart to serve another folder`);
  }
  const names = context.scriptFiles().map(scriptNameOf);
  problems.push(...unknownScriptNames(next, names, current.scriptsDir));
  for (const entry of context.entries) {
    if (entry.sandbox && next.scripts[entry.name]?.enabled !== false) problems.push(...settingsProblems(next, entry.name, entry.sandbox.meta.settings));
  }

  const options = context.sandboxOptionsFor(next);
  const replaced = new Map<string, ScriptSandbox>();
  if (problems.length === 0 && !isDeepStrictEqual(limitsOf(current), limitsOf(next))) {
    const serving = context.entries.filter((entry) => entry.sandbox && next.scripts[entry.name]?.enabled !== false);
    await Promise.all(
      serving.map(async (entry) => {
        try {
          replaced.set(entry.name, await ScriptSandbox.load(entry.sandbox!.compiled, options));
        } catch (error) {
          problems.push(`${entry.name} does not load with the new limits: ${(error as Error).message}`);
        }
      }),
    );
  }
  if (problems.length > 0) {
    await Promise.all([...replaced.values()].map((sandbox) => sandbox.drainAndDispose()));
    return { ok: false, problems };
  }

  context.commit(next, options, replaced);
  // Loaded in probes with the new limits: their isolates boot now, as after any load (bootIsolates).
  if (next.bootIsolates === "afterLoad") for (const sandbox of replaced.values()) sandbox.bootLater();
  const changed = Object.keys({ ...current, ...next }).filter(
    (key) => !isDeepStrictEqual((current as Record<string, unknown>)[key], (next as Record<string, unknown>)[key]),
  );
  // Scripts that the new config lets load: enabled again, or failed on the settings it gave them.
  const toLoad = context.entries
    .filter((entry) => next.scripts[entry.name]?.enabled !== false)
    .filter((entry) => current.scripts[entry.name]?.enabled === false || entry.lastError?.stage === "config")
    .map((entry) => entry.file);
  const reloaded = toLoad.length > 0 ? await context.reload(toLoad) : [];
  return { ok: true, changed, restartRequired: changed.filter((key) => (RESTART_KEYS as readonly string[]).includes(key)), reloaded };
}
