import { statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { UsageError } from "../errors.js";
import { checkFolder, type CheckProblem } from "../runner/check.js";
import { codeFrame, dim, displayPath, green, red } from "./format.js";
import { checkScriptNames } from "./inputs.js";

interface CheckOptions {
  config?: string;
  json?: boolean;
}

/** Exit codes: 0 no errors, 1 errors, 2 the command was wrong. */
export function registerCheck(program: Command): void {
  program
    .command("check")
    .description("Type-check the scripts against the SDK, then compile and load each as the server would")
    .argument("[dir]", "the scripts folder", ".")
    .option("--config <file>", "the server's config file (limits)")
    .option("--json", "print the problems as JSON")
    .action(async (dir: string, options: CheckOptions) => {
      process.exitCode = await check(dir, options);
    });
}

async function check(dir: string, options: CheckOptions): Promise<number> {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    // reported below
  }
  if (!isDir) throw new UsageError(`${dir} is not a folder`);
  const config = loadConfig(options.config ? { file: options.config } : {});
  checkScriptNames(config, path.resolve(dir), options.config);
  const report = await checkFolder(dir, config);
  if (report.scripts.length === 0) throw new UsageError(`No scripts in ${dir}: scripts are the .ts files at its top level`);
  const display = (file: string) => displayPath(file);
  const where = (problem: CheckProblem) => `${display(problem.file)}${problem.line !== undefined ? `:${problem.line}:${problem.column}` : ""}`;

  if (options.json) {
    const problems = report.problems.map((problem) => ({ ...problem, file: display(problem.file) }));
    console.log(JSON.stringify({ scripts: report.scripts.map(display), problems }, null, 2));
    return problems.length > 0 ? 1 : 0;
  }
  const root = path.resolve(dir);
  for (const problem of report.problems) {
    const [first, ...rest] = problem.message.split("\n");
    console.log(`${where(problem)} ${red(`error ${problem.code}`)}: ${first}`);
    for (const line of rest) console.log(`  ${line}`);
    if (problem.line !== undefined) {
      const frame = codeFrame(root, { file: path.relative(root, problem.file), line: problem.line, column: problem.column ?? 1 });
      console.log([...frame, ""].join("\n"));
    }
  }
  const files = new Set(report.problems.map((problem) => problem.file)).size;
  const count = report.problems.length;
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  const checked = `${plural(report.scripts.length, "script")}, ${plural(report.files.length, "file")} checked`;
  console.log(count === 0 ? green(`${checked}: no errors`) : red(`${plural(count, "error")} in ${plural(files, "file")}`) + dim(` · ${checked}`));
  return count > 0 ? 1 : 0;
}
