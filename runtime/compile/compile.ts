import { createHash } from "node:crypto";
import { realpathSync } from "node:fs";
import path from "node:path";
import type * as esbuild from "esbuild";
import type { SourceLocation } from "../schema/envelope.js";
import { BundleCache } from "./compile-cache.js";
import { build, releaseEsbuild } from "./esbuild-service.js";
import { guestRuntime, RUNTIME_GLOBAL, type GuestRuntime } from "./guest-runtime.js";
import { importRules } from "./import-rules.js";

/**
 * One script, bundled with its helpers and the SDK, ready for an isolate, where it runs after the
 * guest prelude (`runtime`, shared by all scripts): see runtime/sandbox/script-context.ts.
 */
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
  /** Content hash of the bundle and the runtime: the version id. */
  version: string;
  /** The guest prelude this bundle runs after. */
  runtime: GuestRuntime;
}

export interface CompileDiagnostic {
  message: string;
  location?: SourceLocation;
  /** The line of source the diagnostic points at, when known. */
  lineText?: string;
}

export type CompileResult =
  /** `reused`: the bundle an earlier run made from the same files (compile-cache.ts), not bundled again. */
  { ok: true; script: CompiledScript; reused?: true } | { ok: false; name: string; file: string; diagnostics: CompileDiagnostic[] };

/** The name under which the bundle's entry object is reachable as the script's completion value. */
const ENTRY_GLOBAL = "__callscript_entry";
/** The file name the bundle carries in the isolate's stack traces. */
export const bundleFileName = (name: string) => `callscript://${encodeURIComponent(name)}.js`;

export function scriptNameOf(file: string): string {
  return path.basename(file).replace(/\.(m?ts|js)$/, "");
}

export function formatDiagnostic(diagnostic: CompileDiagnostic): string {
  const where = diagnostic.location ? `${diagnostic.location.file}:${diagnostic.location.line}:${diagnostic.location.column}: ` : "";
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

function entrySource(name: string, importPath: string): string {
  return (
    `import * as scriptModule from ${JSON.stringify(importPath)};\n` +
    `export const entry = (globalThis as any)[${JSON.stringify(RUNTIME_GLOBAL)}].bindScript(scriptModule, ${JSON.stringify(name)});\n`
  );
}

const importPathOf = (root: string, file: string) => "./" + path.relative(root, file).split(path.sep).join("/");

function commonOptions(root: string): esbuild.BuildOptions {
  return {
    absWorkingDir: root,
    bundle: true,
    write: false,
    format: "iife",
    globalName: ENTRY_GLOBAL,
    // The bundle runs as a classic script: without the directive the scripts' module code would
    // run sloppy, and a write to a frozen object (ctx.settings) would be ignored without an error.
    banner: { js: '"use strict";' },
    footer: { js: `${ENTRY_GLOBAL}.entry;` },
    platform: "neutral",
    target: "es2022",
    sourcemap: "external",
    // Errors are mapped with the mappings alone; the sources' text (the SDK and the prelude, three
    // times the map's size) would only be kept in memory beside every loaded script.
    sourcesContent: false,
    metafile: true,
    logLevel: "silent",
    // ASCII output (esbuild's default: other characters as \u escapes, same strings at run time).
    // One character past ASCII, anywhere in the bundle, makes V8 keep the whole source as two bytes
    // a character, in the host and in the isolate, which keeps the source of a script for its life.
    legalComments: "none",
    // Whitespace only (names are kept, for stacks); a quarter less source for each isolate to parse
    // and keep. Errors are mapped back to the .ts lines through the source map as before.
    minifyWhitespace: true,
    tsconfigRaw: { compilerOptions: {} },
    resolveExtensions: [".ts", ".mts", ".js", ".mjs", ".json"],
  };
}

/**
 * The scripts folder as esbuild sees it, and `files` in it. esbuild resolves symbolic links, so a
 * folder reached through one (`/var/lib/callscript/current/scripts`, flipped by a git pull) would
 * make every helper import look as if it left the folder, and the bundle's inputs name files the
 * watcher never reports: the folder is taken at its real path, and files given under the path
 * through the link are moved under the real one.
 */
export function onDisk(scriptsDir: string, files: readonly string[]): { root: string; files: string[] } {
  const given = path.resolve(scriptsDir);
  let root = given;
  try {
    root = realpathSync.native(given);
  } catch {
    // A folder that does not exist (yet): esbuild reports the missing files.
  }
  return {
    root,
    files: files.map((file) => {
      const absolute = path.resolve(file);
      const relative = path.relative(given, absolute);
      return root !== given && !relative.startsWith("..") && !path.isAbsolute(relative) ? path.join(root, relative) : absolute;
    }),
  };
}

/** Files of the scripts folder among a bundle's inputs (the SDK and the prelude are ours). */
function ownInputs(root: string, inputs: Iterable<string>): string[] {
  return [...inputs]
    .filter((input) => !input.includes(":") && !input.startsWith("<"))
    .map((input) => path.resolve(root, input))
    .filter((input) => !path.relative(root, input).startsWith(".."));
}

function compiledScript(name: string, file: string, root: string, code: string, sourceMap: string, inputs: string[], runtime: GuestRuntime): CompiledScript {
  // The source map is part of the version: an edit that leaves the code as it was (a comment, a
  // blank line) still moves the .ts lines that errors are mapped to.
  const version = createHash("sha256").update(runtime.version).update("\0").update(code).update("\0").update(sourceMap).digest("hex").slice(0, 12);
  return { name, file, scriptsDir: root, code, sourceMap, inputs, version, runtime };
}

/**
 * Bundle one script for the sandbox. The entry imports the script, then binds its default export
 * with the prelude's bindScript (run before it in the isolate); the bundle's completion value is
 * the bound entry object the host calls into.
 */
export async function compileScript(file: string, scriptsDir: string, options: { source?: string } = {}): Promise<CompileResult> {
  const { root, files } = onDisk(scriptsDir, [file]);
  const absoluteFile = files[0]!;
  const name = scriptNameOf(absoluteFile);
  try {
    // Through the same virtual entry module as compileScripts: one file compiled alone or in a
    // batch gives the same bundle, hence the same version (a save without a change is no reload).
    const runtime = guestRuntime();
    const result = await build({
      ...commonOptions(root),
      entryPoints: [{ in: `${VIRTUAL_ENTRY}:${name}`, out: `${name}.bundle` }],
      outdir: root,
      plugins: [
        entryModules(root, new Map([[name, absoluteFile]])),
        ...(options.source !== undefined ? [draftEntry(absoluteFile, options.source)] : []),
        importRules(root),
      ],
    });
    const code = result.outputFiles!.find((output) => output.path.endsWith(".js"))!.text;
    const sourceMap = result.outputFiles!.find((output) => output.path.endsWith(".map"))!.text;
    const inputs = ownInputs(root, Object.keys(result.metafile!.inputs));
    return { ok: true, script: compiledScript(name, absoluteFile, root, code, sourceMap, inputs, await runtime) };
  } catch (error) {
    const failure = error as esbuild.BuildFailure;
    if (!Array.isArray(failure.errors)) throw error;
    return { ok: false, name, file: absoluteFile, diagnostics: failure.errors.map((m) => toDiagnostic(m, root)) };
  }
}

const VIRTUAL_ENTRY = "callscript-entry";

/**
 * A draft of a script (the console's Try page): `source` is read in place of the script's file,
 * which need not exist, and nothing is written. It is bundled as the file would be, with the
 * folder's helpers, so its errors and source map name the script's own lines.
 */
function draftEntry(absoluteFile: string, source: string): esbuild.Plugin {
  return {
    name: "callscript-draft",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) =>
        args.namespace === VIRTUAL_ENTRY && path.resolve(args.resolveDir, args.path) === absoluteFile ? { path: absoluteFile } : undefined,
      );
      build.onLoad({ filter: /.*/ }, (args) =>
        args.path === absoluteFile ? { contents: source, loader: "ts", resolveDir: path.dirname(absoluteFile) } : undefined,
      );
    },
  };
}

/** The generated entry module of each script, by script name, as `callscript-entry:<name>`. */
function entryModules(root: string, byName: ReadonlyMap<string, string>): esbuild.Plugin {
  return {
    name: "callscript-entries",
    setup(build) {
      build.onResolve({ filter: new RegExp(`^${VIRTUAL_ENTRY}:`) }, (args) => ({ path: args.path.slice(VIRTUAL_ENTRY.length + 1), namespace: VIRTUAL_ENTRY }));
      build.onLoad({ filter: /.*/, namespace: VIRTUAL_ENTRY }, (args) => ({
        contents: entrySource(args.path, importPathOf(root, byName.get(args.path)!)),
        resolveDir: root,
        loader: "ts",
      }));
    },
  };
}

/**
 * Scripts per esbuild run at cold start. esbuild's JS side keeps its read buffer as large as the
 * largest answer it ever got (twice that) for the life of the process: one run for 500 scripts
 * left 50 MB behind. Runs of 100 keep that to a few MB, for the SDK and the prelude parsed once
 * per run rather than once.
 */
const BATCH_SIZE = 100;

/**
 * Bundle many scripts in few esbuild runs, so the SDK and shared helpers are parsed once per run
 * (cold start with hundreds of scripts). If any script of a run fails, each script of that run is
 * compiled on its own so every failure is reported against its own file. A script whose bundle an
 * earlier run kept, made from files that have not changed since, is not bundled again
 * (compile-cache.ts).
 */
export async function compileScripts(
  files: readonly string[],
  scriptsDir: string,
  options: {
    onCacheProblem?: (problem: string) => void;
    /**
     * Each script's result as soon as it is known (`index` into `files`): a kept bundle at once, the
     * others as their esbuild run ends, so that the caller can load the first scripts while the
     * next run bundles the rest (see ScriptRegistry.loadAll).
     */
    onCompiled?: (index: number, result: CompileResult) => void;
  } = {},
): Promise<CompileResult[]> {
  const { root, files: absolute } = onDisk(scriptsDir, files);
  const known = (index: number, result: CompileResult): CompileResult => {
    options.onCompiled?.(index, result);
    return result;
  };
  const alone = () => Promise.all(absolute.map((file, i) => compileScript(file, root).then((result) => known(i, result))));
  if (absolute.length <= 1) return alone();
  if (new Set(absolute.map(scriptNameOf)).size !== absolute.length) return alone();
  const runtime = await guestRuntime();
  const cache = new BundleCache(root, runtime.version, options.onCacheProblem);
  const results: CompileResult[] = new Array(absolute.length);
  const toBundle: number[] = [];
  absolute.forEach((file, i) => {
    const kept = cache.lookup(file);
    if (!kept) toBundle.push(i);
    else {
      const inputs = kept.inputs.map((input) => path.resolve(root, input));
      results[i] = known(i, { ok: true, script: compiledScript(scriptNameOf(file), file, root, kept.code, kept.sourceMap, inputs, runtime), reused: true });
    }
  });
  for (let start = 0; start < toBundle.length; start += BATCH_SIZE) {
    const batch = toBundle.slice(start, start + BATCH_SIZE);
    const compiled = await compileBatch(
      batch.map((i) => absolute[i]!),
      root,
      cache,
    );
    batch.forEach((index, i) => (results[index] = known(index, compiled[i]!)));
  }
  // Also when every bundle was kept: without the build's prelude (guest-runtime.ts) it was bundled now, which started esbuild's service.
  releaseEsbuild();
  cache.save();
  return results;
}

/** One esbuild run for scripts of distinct names; what it bundles is kept in `cache`. */
async function compileBatch(absolute: readonly string[], root: string, cache: BundleCache): Promise<CompileResult[]> {
  const byName = new Map(absolute.map((file) => [scriptNameOf(file), file]));
  const entries = entryModules(root, byName);
  const runtime = guestRuntime();
  let result: esbuild.BuildResult;
  try {
    result = await build({
      ...commonOptions(root),
      entryPoints: [...byName.keys()].map((name) => ({ in: `${VIRTUAL_ENTRY}:${name}`, out: `${name}.bundle` })),
      // Beside the scripts, as in compileScript, so that source map paths are relative to the folder.
      outdir: root,
      plugins: [entries, importRules(root)],
    });
  } catch (error) {
    if (!Array.isArray((error as esbuild.BuildFailure).errors)) throw error;
    return Promise.all(absolute.map((file) => compileScript(file, root)));
  }
  const shared = await runtime;
  const outputs = new Map(result.outputFiles!.map((output) => [output.path, output.text]));
  const hashedAfterBuild = new Map<string, string | undefined>();
  return absolute.map((file) => {
    const name = scriptNameOf(file);
    const outPath = path.join(root, `${name}.bundle.js`);
    const meta = result.metafile!.outputs[path.relative(root, outPath).split(path.sep).join("/")];
    const code = outputs.get(outPath);
    const sourceMap = outputs.get(`${outPath}.map`);
    if (!meta || code === undefined || sourceMap === undefined) {
      throw new Error(`esbuild produced no bundle for ${name}`);
    }
    const inputs = ownInputs(root, Object.keys(meta.inputs));
    // Every file it was made from (the SDK's too); not the generated entry module.
    const read = Object.keys(meta.inputs)
      .filter((input) => !input.includes(":") && !input.startsWith("<"))
      .map((input) => path.resolve(root, input));
    cache.keep(file, { code, sourceMap, inputs: inputs.map((input) => path.relative(root, input)) }, read, hashedAfterBuild);
    return { ok: true, script: compiledScript(name, file, root, code, sourceMap, inputs, shared) };
  });
}
