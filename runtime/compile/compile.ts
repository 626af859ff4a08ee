import { createHash } from "node:crypto";
import path from "node:path";
import * as esbuild from "esbuild";
import type { SourceLocation } from "../schema/envelope.js";
import { importRules, PRELUDE_SPECIFIER } from "./import-rules.js";

/** One script, bundled with its helpers, the SDK and the guest prelude, ready for an isolate. */
export interface CompiledScript {
  /** The script's name: its file name without `.ts`. */
  name: string;
  /** Absolute path of the script's entry file. */
  file: string;
  scriptsDir: string;
  code: string;
  /** The bundle's source map (JSON); sources are relative to `scriptsDir`. */
  sourceMap: string;
  /** Absolute paths of every file of the scripts folder in the bundle (entry and helpers). */
  inputs: string[];
  /** Content hash of the bundle: the version id. */
  version: string;
}

export interface CompileDiagnostic {
  message: string;
  location?: SourceLocation;
  /** The line of source the diagnostic points at, when known. */
  lineText?: string;
}

export type CompileResult =
  | { ok: true; script: CompiledScript }
  | { ok: false; name: string; file: string; diagnostics: CompileDiagnostic[] };

/** The name under which the bundle's entry object is reachable as the script's completion value. */
const ENTRY_GLOBAL = "__callscript_entry";
/** The file name the bundle carries in the isolate's stack traces. */
export const bundleFileName = (name: string) => `callscript://${encodeURIComponent(name)}.js`;

export function scriptNameOf(file: string): string {
  return path.basename(file).replace(/\.(m?ts|js)$/, "");
}

export function formatDiagnostic(diagnostic: CompileDiagnostic): string {
  const where = diagnostic.location
    ? `${diagnostic.location.file}:${diagnostic.location.line}:${diagnostic.location.column}: `
    : "";
  return `${where}${diagnostic.message}`;
}

function toDiagnostic(message: esbuild.Message, scriptsDir: string): CompileDiagnostic {
  const diagnostic: CompileDiagnostic = { message: message.text };
  if (message.location) {
    diagnostic.location = {
      file: path.relative(scriptsDir, path.resolve(scriptsDir, message.location.file)),
      line: message.location.line,
      column: message.location.column + 1,
    };
    diagnostic.lineText = message.location.lineText;
  }
  return diagnostic;
}

/**
 * Bundle one script for the sandbox. The entry imports the guest prelude first (so it captures
 * the intrinsics before any script code runs), then the script, then binds the script's default
 * export; the bundle's completion value is the bound entry object the host calls into.
 */
export async function compileScript(file: string, scriptsDir: string): Promise<CompileResult> {
  const absoluteFile = path.resolve(file);
  const root = path.resolve(scriptsDir);
  const name = scriptNameOf(absoluteFile);
  const importPath = "./" + path.relative(root, absoluteFile).split(path.sep).join("/");
  const entry =
    `import { bindScript } from ${JSON.stringify(PRELUDE_SPECIFIER)};\n` +
    `import * as scriptModule from ${JSON.stringify(importPath)};\n` +
    `export const entry = bindScript(scriptModule, ${JSON.stringify(name)});\n`;
  try {
    const result = await esbuild.build({
      stdin: { contents: entry, resolveDir: root, sourcefile: "<entry>", loader: "ts" },
      absWorkingDir: root,
      outfile: path.join(root, `${name}.bundle.js`),
      bundle: true,
      write: false,
      format: "iife",
      globalName: ENTRY_GLOBAL,
      footer: { js: `${ENTRY_GLOBAL}.entry;` },
      platform: "neutral",
      target: "es2022",
      sourcemap: "external",
      sourcesContent: true,
      metafile: true,
      logLevel: "silent",
      charset: "utf8",
      legalComments: "none",
      tsconfigRaw: { compilerOptions: {} },
      resolveExtensions: [".ts", ".mts", ".js", ".mjs", ".json"],
      plugins: [importRules(root)],
    });
    const code = result.outputFiles.find((output) => output.path.endsWith(".js"))!.text;
    const sourceMap = result.outputFiles.find((output) => output.path.endsWith(".map"))!.text;
    const inputs = Object.keys(result.metafile.inputs)
      .filter((input) => !input.includes(":") && !input.startsWith("<"))
      .map((input) => path.resolve(root, input))
      .filter((input) => !path.relative(root, input).startsWith(".."));
    const version = createHash("sha256").update(code).digest("hex").slice(0, 12);
    return { ok: true, script: { name, file: absoluteFile, scriptsDir: root, code, sourceMap, inputs, version } };
  } catch (error) {
    const failure = error as esbuild.BuildFailure;
    if (!Array.isArray(failure.errors)) throw error;
    return { ok: false, name, file: absoluteFile, diagnostics: failure.errors.map((m) => toDiagnostic(m, root)) };
  }
}
