import type { Command } from "commander";
import { UsageError } from "../errors.js";
import { showValue } from "../util/diff.js";
import { recordedInputs } from "../record/recording.js";
import { replayRecordings, type ReplayResult } from "../runner/replay.js";
import { ServedFolder } from "../runner/served-folder.js";
import { folderProblemLines } from "./folder-report.js";
import { folderConfig, type FolderOptions } from "./inputs.js";
import { bold, dim, displayPath, formatFailure, formatLogs, green, red, yellow } from "./format.js";

interface ReplayOptions extends FolderOptions {
  json?: boolean;
  shadow?: boolean;
}

/** Exit codes: 0 every answer is the same, 1 one differs or could not be replayed, 2 the command was wrong. */
export function registerReplay(program: Command): void {
  program
    .command("replay")
    .description("Run recorded calls again against the scripts as they are now, and compare each answer with the one that was sent")
    .argument("<recordings...>", "folders of recordings (record.dir of the server's config), or recorded input files")
    .option("--scripts <dir>", "the scripts folder (default: scriptsDir of --config, else the current folder)")
    .option("--config <file>", "the server's config file (limits, hook policies, order, settings, fetch grants)")
    .option("--shadow", "run each script's shadow (NAME.shadow.ts) in its place: the answers once the shadows are promoted")
    .option("--json", "print the results and the summary as JSON")
    .action(async (targets: string[], options: ReplayOptions) => {
      process.exitCode = await replay(targets, options);
    });
}

async function replay(targets: string[], options: ReplayOptions): Promise<number> {
  let files: string[];
  try {
    files = recordedInputs(targets);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (files.length === 0)
    throw new UsageError(`No recorded inputs in ${targets.join(", ")}: recordings are <hook>.<time>-<id>.json beside <...>.answer.json (config record.dir)`);
  const config = folderConfig(options);
  const folder = await ServedFolder.load(config);
  try {
    if (options.shadow && !options.json) console.log(dim(`shadows in place of: ${folder.shadowed().join(", ") || "none (no NAME.shadow.ts loads)"}\n`));
    const print = options.json ? undefined : (result: ReplayResult) => console.log(resultLines(result, config.scriptsDir).join("\n"));
    const report = await replayRecordings(files, folder, { shadows: options.shadow ?? false, ...(print ? { onResult: print } : {}) });
    const problems = folder.problems({ shadows: options.shadow ?? false });
    const { same, different, failed } = report.summary;
    if (options.json) {
      console.log(JSON.stringify({ ...report, results: report.results.map((result) => ({ ...result, file: displayPath(result.file) })) }, null, 2));
      for (const line of folderProblemLines(problems, config.scriptsDir)) console.error(line);
    } else {
      const problemLines = folderProblemLines(problems, config.scriptsDir);
      if (problemLines.length > 0) console.log(["", ...problemLines].join("\n"));
      const line = `${same} same, ${different} different, ${failed} failed`;
      console.log(`\n${different + failed > 0 ? red(line) : green(line)}`);
    }
    return different + failed > 0 ? 1 : 0;
  } finally {
    await folder.close();
  }
}

const short = (version: string | null) => (version === null ? "none" : version.slice(0, 12));

function resultLines(result: ReplayResult, scriptsDir: string): string[] {
  const head = `${displayPath(result.file)}  ${dim(result.hook)}`;
  if (result.status === "failed") return [`${head}  ${red("failed")}: ${result.message}`];
  if (result.status === "same") return [`${head}  ${green("same")}`];
  const lines = [`${head}  ${yellow("different")}`];
  for (const difference of result.differences ?? []) {
    lines.push(`    ${difference.path}`);
    lines.push(`      recorded  ${difference.kind === "unexpected" ? dim("(none)") : showValue(difference.expected)}`);
    lines.push(`      now       ${difference.kind === "missing" ? dim("(none)") : showValue(difference.actual)}`);
  }
  if (result.answer?.state === "error") lines.push("", ...formatFailure(result.answer.error, scriptsDir).map((line) => `    ${line}`));
  const changed = result.versions ?? [];
  if (changed.length > 0) {
    lines.push(
      `    ${dim("changed since the recording:")} ${changed.map((change) => `${bold(change.script)} ${short(change.recorded)} → ${short(change.now)}`).join(", ")}`,
    );
  }
  for (const step of result.steps ?? []) {
    const returned =
      step.outcome === "data"
        ? `returned ${showValue(step.returned, 160)}`
        : step.outcome === "none"
          ? "returned nothing"
          : step.outcome === "cancel"
            ? "cancelled"
            : `failed: ${step.reason}`;
    lines.push(`    ${step.script} ${returned}`, ...formatLogs(step.logs, "      "));
  }
  // Why an answer that depended on the CRM differs now.
  for (const fetch of result.fetches ?? []) lines.push(`    ${yellow("fetch")} ${fetch} ${dim("not answered: a replay reaches no network")}`);
  return lines;
}
