import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { UsageError } from "../errors.js";
import type { CaseProblem } from "../runner/cases.js";
import { showValue, type Difference } from "../util/diff.js";
import { discover, runCases, type CaseResult, type FileReport, type ScriptUsage, type Step } from "../runner/run-cases.js";
import { checkScriptNames } from "./inputs.js";
import { bold, byRatio, dim, displayPath, formatFailure, formatLogs, formatMs, green, limitRows, red, yellow } from "./format.js";

interface TestOptions {
  pipeline?: boolean;
  filter?: string;
  config?: string;
  json?: boolean;
}

/** Exit codes: 0 every case passed, 1 a case failed, 2 the command was wrong. */
export function registerTest(program: Command): void {
  program
    .command("test")
    .description("Run the scripts' cases (NAME.cases.json beside NAME.ts) in the server's own sandbox and dispatcher")
    .argument("[paths...]", "scripts folders, scripts or cases files (default: the current folder)")
    .option("--pipeline", "run each case through the hook's whole pipeline of the folder, as the server would")
    .option("--filter <text>", "only the cases whose name contains this text")
    .option("--config <file>", "the server's config file (limits, hook policy, script settings, fetch grants)")
    .option("--json", "print the report as JSON")
    .action(async (paths: string[], options: TestOptions) => {
      process.exitCode = await test(paths.length > 0 ? paths : ["."], options);
    });
}

async function test(paths: string[], options: TestOptions): Promise<number> {
  const { casesFiles, untested } = discover(paths);
  if (casesFiles.length === 0) {
    throw new UsageError(`No cases files in ${paths.join(", ")}: write NAME.cases.json beside NAME.ts (callscript init makes an example)`);
  }
  // Cases never send a fetch: the grants count, the secrets' values are not needed.
  const config = loadConfig({ ...(options.config ? { file: options.config } : {}), secretValues: false });
  for (const dir of new Set(casesFiles.map((file) => path.dirname(file)))) checkScriptNames(config, dir, options.config);
  const print = options.json ? () => undefined : (lines: string[]) => console.log(lines.join("\n"));
  const report = await runCases(casesFiles, {
    config,
    pipeline: options.pipeline ?? false,
    ...(options.filter !== undefined ? { filter: options.filter } : {}),
    onFile: (file) => print(fileHeader(file)),
    onCase: (file, result) => print(caseLines(file, result)),
  });
  const noCases = untested.map((file) => displayPath(file));
  const { passed, failed, skipped } = report.summary;

  if (options.json) {
    console.log(JSON.stringify({ ...report, untested: noCases }, null, 2));
  } else {
    const tail: string[] = [""];
    if (noCases.length > 0 && options.filter === undefined) tail.push(yellow(`no cases: ${noCases.join(", ")}`), "");
    if (report.usage.length > 0) tail.push(...usageTable(report.usage), "");
    const line = `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ""}`;
    tail.push(failed > 0 ? red(line) : green(line));
    print(tail);
  }
  if (options.filter !== undefined && passed + failed + skipped === 0) {
    throw new UsageError(`No case name contains "${options.filter}"`);
  }
  return failed > 0 ? 1 : 0;
}

function fileHeader(file: FileReport): string[] {
  const what = file.kind === "pipeline" ? "pipeline" : `${file.script}${file.mode === "pipeline" ? " in the pipeline" : ""}`;
  const lines = ["", `${bold(displayPath(file.file))}  ${dim(`· ${what}`)}`];
  for (const problem of file.problems) lines.push(`  ${red("✗")} ${problemText(problem)}`);
  return lines;
}

function problemText(problem: CaseProblem): string {
  return `${displayPath(problem.file)}${problem.path ? `: ${problem.path}` : ""}: ${problem.message}`;
}

function caseLines(file: FileReport, result: CaseResult): string[] {
  if (result.status === "skipped") return [`  ${yellow("-")} ${result.name} ${dim(`skipped${result.reason ? `: ${result.reason}` : ""}`)}`];
  const mark = result.status === "passed" ? green("✓") : red("✗");
  // A case stopped by a problem before it ran has no time to show.
  const lines = [`  ${mark} ${result.name}${result.problems ? "" : `  ${dim(formatMs(result.ms))}`}`];
  if (result.status === "passed") return lines;
  const indent = "      ";
  for (const problem of result.problems ?? []) lines.push(`${indent}${problemText(problem)}`);
  if (result.differences) lines.push(...diffLines(result.differences, indent));
  if (result.failure) {
    const scriptsDir = path.dirname(file.file);
    lines.push("", ...formatFailure(result.failure, scriptsDir).map((line) => `${indent}${line}`));
  }
  if (result.steps && result.steps.length > 0) lines.push("");
  for (const step of result.steps ?? []) {
    lines.push(`${indent}${bold(step.script)} ${dim(stepText(step))}`);
    lines.push(...formatLogs(step.logs, `${indent}  `));
  }
  return lines;
}

/** What one script of the case did, for seeing who changed what in a pipeline. */
function stepText(step: Step): string {
  switch (step.outcome) {
    case "data":
      return `returned ${showValue(step.returned)}`;
    case "none":
      return "returned nothing";
    case "cancel":
      return "cancelled the request";
    case "failure":
      return `failed: ${step.reason}`;
  }
}

function diffLines(differences: Difference[], indent: string): string[] {
  const lines: string[] = [];
  const absent = dim("(absent)");
  for (const difference of differences) {
    lines.push(`${indent}${bold(difference.path)}`);
    lines.push(`${indent}  expected  ${difference.kind === "unexpected" ? absent : green(showValue(difference.expected))}`);
    lines.push(`${indent}  actual    ${difference.kind === "missing" ? absent : red(showValue(difference.actual))}`);
  }
  return lines;
}

/** One row per script: the worst use of each limit over all its cases. */
function usageTable(usage: ScriptUsage[]): string[] {
  const header = ["script", "cpu time", "heap", "output", "log"];
  const rows = usage.map((entry) => {
    const cells = limitRows(entry.worst, entry.limits).map((row) => ({ text: `${row.used} / ${row.limit}`, ratio: row.ratio }));
    return [{ text: entry.script, ratio: 0 }, ...cells];
  });
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.text.length)));
  const lines = [
    dim("limits: the worst case of each script"),
    `  ${dim(
      header
        .map((title, column) => title.padEnd(widths[column]!))
        .join("   ")
        .trimEnd(),
    )}`,
  ];
  for (const row of rows) {
    lines.push(
      `  ${row
        .map((cell, column) => byRatio(cell.ratio)(cell.text.padEnd(widths[column]!)))
        .join("   ")
        .trimEnd()}`,
    );
  }
  return lines;
}
