import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import type { Config } from "../config.js";
import { codeRoot } from "../paths.js";
import { loadScriptFile } from "../registry/load-script.js";
import { isScriptFile } from "../registry/registry.js";
import { isShadowFile, variantOf } from "../registry/variants.js";

/**
 * `callscript check`: the scripts folder type-checked against the SDK's types with the TypeScript
 * compiler, then every script compiled and loaded as the server would. The compiler options are
 * the ones `init` writes into the folder's tsconfig.json, so the editor and `check` agree.
 */

/** The globals a script has inside its sandbox beyond the language itself (see the guest prelude). */
export const SANDBOX_GLOBALS_FILE = "callscript-env.d.ts";
export const SANDBOX_GLOBALS = `// What scripts have inside the callscript sandbox beyond the language itself (written by callscript init).
// There is no require, process, timers, fetch or file system: only the hook's input, ctx and this.
interface CallscriptConsole {
  /** Lines go to the script's log, like ctx.log.info. */
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  trace(...args: unknown[]): void;
}
declare var console: CallscriptConsole;
`;

/** The SDK's types, without extension: `sdk/index.ts` in the sources, `dist/sdk/index.d.ts` when built. */
export function sdkTypes(): string {
  return path.join(codeRoot, "sdk", "index");
}

/** The tsconfig.json of a scripts folder: `callscript` resolves to the SDK that runs the scripts. */
export function scriptsTsconfig(dir: string, options: { absolute?: boolean } = {}): {
  compilerOptions: Record<string, unknown>;
  include: string[];
} {
  let sdk = sdkTypes();
  if (!options.absolute) {
    sdk = path.relative(path.resolve(dir), sdk).split(path.sep).join("/");
    if (!sdk.startsWith(".")) sdk = `./${sdk}`;
  }
  return {
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "Bundler",
      // The sandbox is a bare V8 isolate: the language and nothing else (no DOM, no Node).
      lib: ["ES2022"],
      types: [],
      strict: true,
      // Each file is compiled on its own (esbuild), as in production.
      isolatedModules: true,
      noEmit: true,
      skipLibCheck: true,
      paths: { callscript: [sdk] },
    },
    include: ["**/*.ts"],
  };
}

export interface CheckProblem {
  /** Absolute path. */
  file: string;
  line?: number;
  column?: number;
  /** `TS2322`, or `compile` / `load` for what the server's compiler and loader found. */
  code: string;
  message: string;
}

export interface CheckReport {
  /** The scripts (top-level .ts) checked, shadows included, absolute paths. */
  scripts: string[];
  /** Every .ts file type-checked (scripts and helpers). */
  files: string[];
  problems: CheckProblem[];
}

/**
 * Every .ts file in the folder and its subfolders, but not node_modules or hidden folders, nor
 * `NAME.previous.ts`: the version a promote replaced is kept to roll back to, not checked.
 */
function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFiles(file));
    else if (/\.m?ts$/.test(entry.name) && variantOf(entry.name) !== "previous") out.push(file);
  }
  return out.sort();
}

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return !relative.startsWith("..") && !path.isAbsolute(relative);
}

/** Type-check the folder's .ts files against the SDK. */
export async function typeCheck(dir: string, files: readonly string[]): Promise<CheckProblem[]> {
  // Loaded only here: the compiler takes most of a second to load, and only `check` needs it.
  const { default: ts } = await import("typescript");
  const root = path.resolve(dir);
  const { options, errors } = ts.convertCompilerOptionsFromJson(scriptsTsconfig(root, { absolute: true }).compilerOptions, root);
  if (errors.length > 0) throw new Error(ts.flattenDiagnosticMessageText(errors[0]!.messageText, "\n"));
  const globalsFile = path.join(root, SANDBOX_GLOBALS_FILE);
  const virtualGlobals = !existsSync(globalsFile);
  const host = ts.createCompilerHost(options, true);
  if (virtualGlobals) {
    const { fileExists, readFile, getSourceFile } = host;
    host.fileExists = (file) => file === globalsFile || fileExists.call(host, file);
    host.readFile = (file) => (file === globalsFile ? SANDBOX_GLOBALS : readFile.call(host, file));
    host.getSourceFile = (file, language, onError, create) =>
      file === globalsFile ? ts.createSourceFile(file, SANDBOX_GLOBALS, language) : getSourceFile.call(host, file, language, onError, create);
  }
  const rootNames = virtualGlobals ? [...files, globalsFile] : [...files];
  const program = ts.createProgram({ rootNames, options, host });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => !diagnostic.file || isInside(diagnostic.file.fileName, root))
    .map((diagnostic) => {
      const problem: CheckProblem = {
        file: diagnostic.file ? path.resolve(diagnostic.file.fileName) : root,
        code: `TS${diagnostic.code}`,
        message: ts.flattenDiagnosticMessageText(diagnostic.messageText, "\n"),
      };
      if (diagnostic.file && diagnostic.start !== undefined) {
        const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
        problem.line = line + 1;
        problem.column = character + 1;
      }
      return problem;
    });
}

/** Compile and load every script as the server would: import rules, defineScript, top-level code. */
async function compileAndLoad(dir: string, scripts: readonly string[], config: Config): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  for (const file of scripts) {
    const loaded = await loadScriptFile(file, dir, config);
    if (loaded.ok) {
      await loaded.script.sandbox.drainAndDispose();
      continue;
    }
    const located = loaded.diagnostics.filter((diagnostic) => diagnostic.location);
    if (located.length > 0) {
      for (const diagnostic of located) {
        const { location } = diagnostic;
        problems.push({ file: path.resolve(dir, location!.file), line: location!.line, column: location!.column, code: loaded.stage, message: diagnostic.message });
      }
      continue;
    }
    const problem: CheckProblem = { file, code: loaded.stage, message: loaded.failure.message };
    if (loaded.failure.location) {
      problem.file = path.resolve(dir, loaded.failure.location.file);
      problem.line = loaded.failure.location.line;
      problem.column = loaded.failure.location.column;
    }
    problems.push(problem);
  }
  return problems;
}

export async function checkFolder(dir: string, config: Config): Promise<CheckReport> {
  const root = path.resolve(dir);
  const files = tsFiles(root);
  // Shadows are checked as scripts: each is about to be promoted to one.
  const scripts = files.filter((file) => isScriptFile(file, root) || isShadowFile(file, root));
  const buildProblems = await compileAndLoad(root, scripts, config);
  // A syntax error or a forbidden import is reported by both compilers: keep the server's, which
  // says what to do instead ("Node built-in module 'fs' is not available to scripts: ...").
  const key = (problem: CheckProblem) => `${problem.file}:${problem.line}:${problem.column}`;
  const built = new Set(buildProblems.filter((problem) => problem.line !== undefined).map(key));
  const typeProblems = (await typeCheck(root, files)).filter((problem) => !built.has(key(problem)));
  const problems = [...typeProblems, ...buildProblems].sort(
    (a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0)),
  );
  return { scripts, files, problems };
}
