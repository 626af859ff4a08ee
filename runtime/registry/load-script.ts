import { compileScript, formatDiagnostic, scriptNameOf, type CompileDiagnostic, type CompileResult } from "../compile/compile.js";
import { effectiveLimits, type Config } from "../config.js";
import type { PipelineScript } from "../dispatch/dispatch.js";
import type { HookFailure } from "../schema/envelope.js";
import { ScriptLoadFailure, ScriptSandbox, type SandboxOptions } from "../sandbox/sandbox.js";
import { configNameOf } from "./variants.js";

export type LoadedScript =
  | { ok: true; script: PipelineScript }
  | { ok: false; stage: "compile" | "load"; failure: HookFailure; diagnostics: CompileDiagnostic[] };

export function sandboxOptionsFrom(config: Config): SandboxOptions {
  const { defaults, max } = effectiveLimits(config);
  return { defaults, max, maxQueue: config.maxQueue };
}

/**
 * The settings a script runs with: its declared defaults, then the config, then an override. A
 * shadow (`NAME.shadow.ts`) is configured as NAME, the script it would replace.
 */
export function settingsJsonFor(config: Config, sandbox: ScriptSandbox, override?: Record<string, unknown>): string {
  const name = configNameOf(sandbox.compiled.file, sandbox.name);
  return JSON.stringify({ ...(sandbox.meta.settings ?? {}), ...(config.scripts[name]?.settings ?? {}), ...(override ?? {}) });
}

/**
 * Compile and load one script file into a pipeline entry, as the server does. A failure at either
 * stage is reported as the `compile` failure the connector would see for it.
 */
export async function loadScriptFile(
  file: string,
  scriptsDir: string,
  config: Config,
  options: { sandbox?: SandboxOptions; settings?: Record<string, unknown>; compiled?: CompileResult } = {},
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
    const order = config.scripts[configNameOf(file, name)]?.order ?? sandbox.meta.order ?? 0;
    return { ok: true, script: { sandbox, order, settingsJson: settingsJsonFor(config, sandbox, options.settings) } };
  } catch (error) {
    if (!(error instanceof ScriptLoadFailure)) throw error;
    const failure: HookFailure = { reason: "compile", script: name, message: error.message };
    if (error.location) failure.location = error.location;
    if (error.mappedStack) failure.stack = error.mappedStack;
    return { ok: false, stage: "load", failure, diagnostics: [] };
  }
}
