import { compileScript, type CompileDiagnostic, type CompiledScript, type CompileResult } from "../compile/compile.js";
import type { Capabilities } from "../capabilities/types.js";
import type { Config } from "../config.js";
import { callHook } from "../dispatch/hook-call.js";
import { pipelineFor, type DispatchResult, type PipelineScript } from "../dispatch/dispatch.js";
import { loadScriptFile } from "../registry/load-script.js";
import type { LoadStage } from "../registry/states.js";
import type { HookFailure } from "../schema/envelope.js";
import type { HookName } from "../schema/hooks.js";
import type { Limits } from "../sandbox/limits.js";

/** A script to run once: its file, or a draft of it, or a version already compiled (a live one). */
export interface RunTarget {
  /** The script's .ts file in the scripts folder (it need not exist for a draft). */
  file: string;
  /** A draft's source, read in place of the file. */
  source?: string;
  /** A bundle compiled before (the registry's serving version): loaded as it is. */
  compiled?: CompiledScript;
  /** Settings over the script's defaults and the config's. */
  settings?: Record<string, unknown>;
  /** Where `settings` came from, for the message when the script does not declare one of them. */
  settingsFrom?: string;
  /** It must handle the hook: when it does not, nothing runs and that is the answer. */
  mustHandle?: boolean;
}

export interface RanScript {
  name: string;
  version: string;
  limits: Limits;
  hooks: HookName[];
}

export type RunOnceResult =
  | { kind: "failed"; stage: LoadStage; failure: HookFailure; diagnostics: CompileDiagnostic[] }
  | { kind: "unhandled"; script: RanScript }
  | { kind: "ran"; result: DispatchResult; scripts: RanScript[] };

async function compiledFor(target: RunTarget, scriptsDir: string): Promise<CompileResult | undefined> {
  if (target.compiled) return { ok: true, script: target.compiled };
  if (target.source !== undefined) return compileScript(target.file, scriptsDir, { source: target.source });
  return undefined;
}

/**
 * Load scripts into fresh sandboxes, call one hook on them as the server would (config, defaults,
 * order, merge, policy, deadline, with the heap measured), and dispose of them: `callscript run`
 * and the console's Try page. Nothing here touches a loaded script of a running server.
 */
export async function runOnce(
  config: Config,
  scriptsDir: string,
  hook: HookName,
  input: { input: Record<string, unknown>; inputJson: string },
  targets: readonly RunTarget[],
  requestId = "run",
  /** What the scripts may reach (ctx.fetch, ctx.kv); none when absent. */
  capabilities?: Capabilities,
): Promise<RunOnceResult> {
  const loaded: PipelineScript[] = [];
  try {
    for (const target of targets) {
      const compiled = await compiledFor(target, scriptsDir);
      const script = await loadScriptFile(target.file, scriptsDir, config, {
        ...(compiled ? { compiled } : {}),
        ...(target.settings ? { settings: target.settings, ...(target.settingsFrom ? { settingsFrom: target.settingsFrom } : {}) } : {}),
      });
      if (!script.ok) return { kind: "failed", stage: script.stage, failure: script.failure, diagnostics: script.diagnostics };
      loaded.push(script.script);
      if (target.mustHandle && !script.script.sandbox.implements(hook)) return { kind: "unhandled", script: describe(script.script) };
    }
    const pipeline = pipelineFor(hook, loaded);
    const result = await callHook(config, hook, input.input, pipeline, {
      requestId,
      measureHeap: true,
      inputJson: input.inputJson,
      ...(capabilities ? { capabilities } : {}),
    });
    return { kind: "ran", result, scripts: pipeline.map(describe) };
  } finally {
    await Promise.all(loaded.map(({ sandbox }) => sandbox.drainAndDispose()));
  }
}

function describe({ sandbox }: PipelineScript): RanScript {
  return { name: sandbox.name, version: sandbox.version, limits: sandbox.limits, hooks: sandbox.meta.hooks };
}
