import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll } from "vitest";
import { compileScript, type CompiledScript } from "../../runtime/compile/compile.js";
import type { PipelineScript } from "../../runtime/dispatch/dispatch.js";
import type { HookName } from "../../runtime/schema/hooks.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS, type Limits } from "../../runtime/sandbox/limits.js";
import { ScriptLoadFailure } from "../../runtime/errors.js";
import { ScriptSandbox, type Invocation, type InvocationRequest, type SandboxOptions } from "../../runtime/sandbox/sandbox.js";

const made: string[] = [];
// Registered when a test file first imports this module, so it runs after that file's own
// afterAll hooks (vitest runs them last-registered first): servers and watchers are closed by then.
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh scripts folder with the given files (path → source); removed after the test file. */
export function scriptsFolder(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "callscript-test-"));
  made.push(dir);
  writeFiles(dir, files);
  return dir;
}

/** A config file with `config`, in a folder of its own (not a scripts folder: the watcher would see it). */
export function writeConfigFile(config: Record<string, unknown>): string {
  const file = path.join(scriptsFolder({}), "callscript.json");
  writeFileSync(file, JSON.stringify(config));
  return file;
}

/** Write files (path relative to `dir` → source), making folders as needed. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, source] of Object.entries(files)) {
    const file = path.join(dir, name);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, source);
  }
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

/** The load failure of a script that compiles but must not load; fails the test if it loads. */
export async function loadFailure(source: string, options: SandboxOptions = sandboxOptions(), name = "script.ts"): Promise<ScriptLoadFailure> {
  let sandbox: ScriptSandbox;
  try {
    sandbox = await loadScript(source, options, name);
  } catch (error) {
    if (error instanceof ScriptLoadFailure) return error;
    throw error;
  }
  await sandbox.drainAndDispose();
  throw new Error("the script loaded, but it should not have");
}

/** Sandboxes loaded by a test file, to be disposed after it. */
export class Sandboxes {
  private readonly all: ScriptSandbox[] = [];

  async load(source: string, options: SandboxOptions = sandboxOptions(), name = "script.ts"): Promise<ScriptSandbox> {
    const sandbox = await loadScript(source, options, name);
    this.all.push(sandbox);
    return sandbox;
  }

  add(sandbox: ScriptSandbox): ScriptSandbox {
    this.all.push(sandbox);
    return sandbox;
  }

  async disposeAll(): Promise<void> {
    const all = this.all.splice(0);
    await Promise.all(all.map((sandbox) => sandbox.drainAndDispose()));
  }
}

export interface RequestParts {
  input?: unknown;
  data?: unknown;
  settings?: unknown;
  requestId?: string;
}

/** An invocation request for `hook`, with JSON made from plain values. */
export function request(hook: HookName = "need_registration", parts: RequestParts = {}): InvocationRequest {
  return {
    hook,
    inputJson: JSON.stringify(parts.input ?? {}),
    dataJson: JSON.stringify(parts.data ?? { result: true }),
    settingsJson: JSON.stringify(parts.settings ?? {}),
    requestId: parts.requestId ?? "test-request",
  };
}

/** A pipeline entry for the dispatcher. */
export function pipelineScript(sandbox: ScriptSandbox, order = 0, settings: Record<string, unknown> = {}): PipelineScript {
  return { sandbox, order, settingsJson: JSON.stringify(settings) };
}

/** The outcome's failure, or a test failure that shows what came instead. */
export function failureOf(invocation: Invocation) {
  if (invocation.outcome.kind !== "failure") {
    throw new Error(`expected a failure, got ${JSON.stringify(invocation.outcome)}`);
  }
  return invocation.outcome.failure;
}

/** The outcome's data, or a test failure that shows what came instead. */
export function dataOf(invocation: Invocation): Record<string, unknown> {
  if (invocation.outcome.kind !== "data") {
    throw new Error(`expected data, got ${JSON.stringify(invocation.outcome)}`);
  }
  return invocation.outcome.data;
}

/** `import { defineScript, cancel } from "callscript";` and a newline: line 1 of most test scripts. */
export const HEADER = `import { defineScript, cancel } from "callscript";\n`;

/**
 * Source of a script for one hook: its handler `hook(input, ctx)` runs `body`, on line 6 of the
 * file; `extra` goes into defineScript's object (line 3: limits, settings, order). `top`, when
 * given, is top-level code on its own line after the import, and moves the rest one line down.
 */
export function script(hook: string, body: string, extra = "", top?: string): string {
  return `${HEADER}${top === undefined ? "" : `${top}\n`}export default defineScript({
  ${extra}
  hooks: {
    ${hook}(input, ctx) {
      ${body}
    },
  },
});
`;
}

/** A handler body that keeps its isolate busy for `ms` (a CPU-bound script). */
export const busy = (ms: number) => `const until = Date.now() + ${ms}; while (Date.now() < until) {}`;

/**
 * A script whose need_registration misbehaves as `bad` says (a whole method, on line 6), and whose
 * process_client_phone is healthy and counts its calls in this isolate: `PHONE#calls`, with
 * " overlapped" should two of its calls ever interleave in the isolate (each awaits between
 * reading and writing its state).
 */
export function misbehaving(bad: string, limits = "{ timeoutMs: 100 }"): string {
  return (
    `${HEADER}let calls = 0, running = 0;\n` +
    `export default defineScript({\n` +
    `  limits: ${limits},\n` +
    `  hooks: {\n` +
    `    ${bad},\n` +
    `    async process_client_phone(input) { running++; const overlap = running; await null; await null; calls++; running--; return { phone: input.phone + "#" + calls + (overlap > 1 ? " overlapped" : "") }; },\n` +
    `  },\n` +
    `});\n`
  );
}

/**
 * A script for `hook` that esbuild refuses (the call to defineScript is left open: the error is at
 * the end of the file, line 3), and the same script fixed. The hook's name is in the source, so
 * while it is broken the hook answers its failure.
 */
export function brokenScript(hook: string, body = "return undefined;"): { broken: string; fixed: string } {
  const fixed = `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { ${hook}() { ${body} } } });\n`;
  return { broken: fixed.replace(/\);\n$/, "\n"), fixed };
}

/** What a call of MIXED_CALLS does, by its input's phone: a healthy call's "x", or one of these. */
export type MixedKind = "healthy" | "throw" | "loop" | "hang";

/**
 * A script whose calls are healthy (count, answering "ok#<count>"), throw, loop until their 60 ms
 * limit or never settle, by their input's phone: for generated mixes of calls handed over together.
 */
export const MIXED_CALLS =
  `${HEADER}let calls = 0;\n` +
  `export default defineScript({ limits: { timeoutMs: 60 }, hooks: {\n` +
  `  async process_client_phone(input) {\n` +
  `    if (input.phone === "throw") throw new Error("thrown");\n` +
  `    if (input.phone === "loop") for (;;) {}\n` +
  `    if (input.phone === "hang") await new Promise(() => {});\n` +
  `    await null;\n` +
  `    calls++;\n` +
  `    return { phone: "ok#" + calls };\n` +
  `  },\n` +
  `} });\n`;
