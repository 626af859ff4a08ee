import { compileScript, formatDiagnostic, scriptNameOf, type CompileDiagnostic, type CompileResult } from "../compile/compile.js";
import { effectiveLimits, type Config } from "../config.js";
import { settingsProblems } from "../config-scripts.js";
import type { PipelineScript } from "../dispatch/dispatch.js";
import type { HookFailure } from "../schema/envelope.js";
import { withSandboxHint } from "../compile/hints.js";
import { ScriptLoadFailure } from "../errors.js";
import { ScriptSandbox, type SandboxOptions } from "../sandbox/sandbox.js";
import type { LoadStage } from "./states.js";
import { configNameOf } from "./variants.js";

export type LoadedScript = { ok: true; script: PipelineScript } | { ok: false; stage: LoadStage; failure: HookFailure; diagnostics: CompileDiagnostic[] };

export function sandboxOptionsFrom(config: Config): SandboxOptions {
  const { defaults, max } = effectiveLimits(config);
  return { defaults, max, maxQueue: config.maxQueue, inline: config.inlineCalls, batch: config.batchCalls };
}

/**
 * The settings a script runs with: its declared defaults, then the config, then an override. A
 * shadow (`NAME.shadow.ts`) is configured as NAME, the script it would replace.
 */
export function settingsJsonFor(config: Config, sandbox: ScriptSandbox, override?: Record<string, unknown>): string {
  const name = configNameOf(sandbox.compiled.file, sandbox.name);
  return JSON.stringify({ ...(sandbox.meta.settings ?? {}), ...(config.scripts[name]?.settings ?? {}), ...(override ?? {}) });
}

/** A loaded version as a hook's pipeline runs it under `config`: its order and its settings. */
export function pipelineEntry(config: Config, sandbox: ScriptSandbox, settings?: Record<string, unknown>): PipelineScript {
  const name = configNameOf(sandbox.compiled.file, sandbox.name);
  return { sandbox, order: config.scripts[name]?.order ?? sandbox.meta.order ?? 0, settingsJson: settingsJsonFor(config, sandbox, settings) };
}

/**
 * Compile and load one script file into a pipeline entry, as the server does. A failure at either
 * stage is reported as the `compile` failure the connector would see for it.
 */
export async function loadScriptFile(
  file: string,
  scriptsDir: string,
  config: Config,
  options: {
    sandbox?: SandboxOptions;
    settings?: Record<string, unknown>;
    /** Where `settings` came from, for its messages (a file, a case). */
    settingsFrom?: string;
    compiled?: CompileResult;
  } = {},
): Promise<LoadedScript> {
  const name = scriptNameOf(file);
  const compiled = options.compiled ?? (await compileScript(file, scriptsDir));
  if (!compiled.ok) {
    const failure: HookFailure = { reason: "compile", script: name, message: compiled.diagnostics.map(formatDiagnostic).join("\n") };
    const location = compiled.diagnostics[0]?.location;
    if (location) failure.location = location;
    return { ok: false, stage: "compile", failure, diagnostics: compiled.diagnostics };
  }
  try {
    const sandbox = await ScriptSandbox.load(compiled.script, options.sandbox ?? sandboxOptionsFrom(config));
    // Settings the script does not declare, or of another kind, are a mistake that would never show.
    const problems = [
      ...settingsProblems(config, configNameOf(file, name), sandbox.meta.settings),
      ...(options.settings
        ? settingsProblems(config, configNameOf(file, name), sandbox.meta.settings, {
            settings: options.settings,
            from: options.settingsFrom ?? "the settings given",
          })
        : []),
    ];
    if (problems.length > 0) {
      await sandbox.drainAndDispose();
      return { ok: false, stage: "config", failure: { reason: "compile", script: name, message: problems.join("; ") }, diagnostics: [] };
    }
    return { ok: true, script: pipelineEntry(config, sandbox, options.settings) };
  } catch (error) {
    if (!(error instanceof ScriptLoadFailure)) throw error;
    const failure: HookFailure = { reason: "compile", script: name, message: withSandboxHint(error.message) };
    if (error.location) failure.location = error.location;
    if (error.mappedStack) failure.stack = error.mappedStack;
    return { ok: false, stage: "load", failure, diagnostics: [] };
  }
}
