import path from "node:path";
import { InProcessTypeChecking, tsFilesOf } from "../compile/typecheck.js";
import type { Config } from "../config.js";
import { loadScriptFile } from "../registry/load-script.js";
import { isScriptFile, isShadowFile, variantOf } from "../registry/variants.js";

/**
 * `callscript check`: the scripts folder type-checked against the SDK's types with the TypeScript
 * compiler, then every script compiled and loaded as the server would. The compiler options are
 * the ones `init` writes into the folder's tsconfig.json, so the editor and `check` agree.
 */

export { SANDBOX_GLOBALS, SANDBOX_GLOBALS_FILE, scriptsTsconfig, sdkTypes } from "../compile/typecheck.js";

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
 * Type-check the folder's .ts files against the SDK, with the implementation the server's
 * `typecheck` gate uses (compile/typecheck.ts), so that `check` and a deploy agree.
 */
export async function typeCheck(dir: string, files: readonly string[]): Promise<CheckProblem[]> {
  const checking = new InProcessTypeChecking();
  try {
    const folder = await checking.folder(dir);
    return [...folder.globalProblems(), ...folder.check(files)];
  } finally {
    await checking.close();
  }
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
        problems.push({
          file: path.resolve(dir, location!.file),
          line: location!.line,
          column: location!.column,
          code: loaded.stage,
          message: diagnostic.message,
        });
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
  // `NAME.previous.ts`, the version a promote replaced, is kept to roll back to, not checked.
  const files = tsFilesOf(root).filter((file) => variantOf(file) !== "previous");
  // Shadows are checked as scripts: each is about to be promoted to one.
  const scripts = files.filter((file) => isScriptFile(file, root) || isShadowFile(file, root));
  const buildProblems = await compileAndLoad(root, scripts, config);
  // A syntax error or a forbidden import is reported by both compilers: keep the server's, which
  // says what to do instead ("Node built-in module 'fs' is not available to scripts: ...").
  const key = (problem: CheckProblem) => `${problem.file}:${problem.line}:${problem.column}`;
  const built = new Set(buildProblems.filter((problem) => problem.line !== undefined).map(key));
  const typeProblems = (await typeCheck(root, files)).filter((problem) => !built.has(key(problem)));
  const problems = [...typeProblems, ...buildProblems].sort((a, b) =>
    a.file < b.file ? -1 : a.file > b.file ? 1 : (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0),
  );
  return { scripts, files, problems };
}
