import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { compileScript, type CompiledScript } from "../../runtime/compile/compile.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS, type Limits } from "../../runtime/sandbox/limits.js";
import { ScriptSandbox, type SandboxOptions } from "../../runtime/sandbox/sandbox.js";

/** A fresh scripts folder with the given files (path → source). */
export function scriptsFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "callscript-test-"));
  for (const [name, source] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, source);
  }
  return dir;
}

export async function compiled(dir: string, name: string): Promise<CompiledScript> {
  const result = await compileScript(path.join(dir, name), dir);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return result.script;
}

export function sandboxOptions(defaults: Partial<Limits> = {}, maxQueue = 8): SandboxOptions {
  return { defaults: { ...BUILTIN_DEFAULT_LIMITS, ...defaults }, max: BUILTIN_MAX_LIMITS, maxQueue };
}

/** Compile and load one script from source. */
export async function loadScript(source: string, options: SandboxOptions = sandboxOptions(), name = "script.ts"): Promise<ScriptSandbox> {
  const dir = scriptsFolder({ [name]: source });
  return ScriptSandbox.load(await compiled(dir, name), options);
}
