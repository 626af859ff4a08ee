import type { Command } from "commander";
import { showValue } from "../util/diff.js";
import { ServedFolder } from "../runner/served-folder.js";
import { readCall, simulateCall, type SimulatedStep, type SimulationReport } from "../runner/simulate.js";
import { bold, dim, displayPath, formatFailure, formatLogs, formatMs, green, red, yellow } from "./format.js";
import { folderProblemLines } from "./folder-report.js";
import { folderConfig, type FolderOptions } from "./inputs.js";

interface SimulateOptions extends FolderOptions {
  json?: boolean;
  shadow?: boolean;
  call?: string;
}

/** Exit codes: 0 every step answered, 1 a step failed (or a script does not load), 2 the command was wrong. */
export function registerSimulate(program: Command): void {
  program
    .command("simulate")
    .description("Play a whole call hook by hook against the scripts, as the connector would call the server")
    .argument("<call>", "a call file { name, steps: [{ hook, input }] }, or a folder of one call's recorded inputs")
    .option("--scripts <dir>", "the scripts folder (default: scriptsDir of --config, else the current folder)")
    .option("--config <file>", "the server's config file (limits, hook policies, order, settings, fetch grants)")
    .option("--call <id>", "only the steps of this call (call_full.channel.id): one call out of a folder of recordings")
    .option("--shadow", "run each script's shadow (NAME.shadow.ts) in its place: the call once the shadows are promoted")
    .option("--json", "print [{ hook, answer }] in step order")
    .action(async (target: string, options: SimulateOptions) => {
      process.exitCode = await simulate(target, options);
    });
}

async function simulate(target: string, options: SimulateOptions): Promise<number> {
  const call = readCall(target, options.call);
  const config = folderConfig(options);
  const folder = await ServedFolder.load(config);
  try {
    const report = await simulateCall(call, folder, { shadows: options.shadow ?? false });
    const problems = folder.problems({ shadows: options.shadow ?? false });
    if (options.json) {
      console.log(JSON.stringify(report.steps.map(jsonStep), null, 2));
      for (const line of folderProblemLines(problems, config.scriptsDir)) console.error(line);
      for (const warning of report.warnings) console.error(`warning: ${warning}`);
    } else {
      const loaded = Object.keys(folder.versions()).length;
      const lines = timeline(report, config.scriptsDir, loaded, problems.length);
      if (options.shadow) lines.splice(1, 0, dim(`shadows in place of: ${folder.shadowed().join(", ") || "none (no NAME.shadow.ts loads)"}`));
      console.log(lines.join("\n"));
      const problemLines = folderProblemLines(problems, config.scriptsDir);
      if (problemLines.length > 0) console.log(["", ...problemLines].join("\n"));
    }
    return report.failed > 0 || problems.length > 0 ? 1 : 0;
  } finally {
    await folder.close();
  }
}

/** `[{ hook, answer }]`: the answer the connector would get at each step (null when it could not be called). */
function jsonStep(step: SimulatedStep): Record<string, unknown> {
  const out: Record<string, unknown> = { hook: step.hook, answer: step.answer ?? null };
  if (step.problem !== undefined) out.problem = step.problem;
  return out;
}

/** `call.json#steps[2]` or a recorded input's file, relative to the current folder. */
function displaySource(source: string): string {
  const [file, step] = source.split("#");
  return `${displayPath(file!)}${step ? `#${step}` : ""}`;
}

/** `+1:05`: seconds into the call. */
function offset(seconds: number | null): string {
  if (seconds === null) return "";
  const whole = Math.round(seconds);
  const sign = whole < 0 ? "-" : "+";
  const abs = Math.abs(whole);
  const hours = Math.floor(abs / 3600);
  const minutes = Math.floor((abs % 3600) / 60);
  const secs = String(abs % 60).padStart(2, "0");
  return hours > 0 ? `${sign}${hours}:${String(minutes).padStart(2, "0")}:${secs}` : `${sign}${minutes}:${secs}`;
}

const INDENT = "         ";

function timeline(report: SimulationReport, scriptsDir: string, loaded: number, notLoaded: number): string[] {
  const steps = report.steps.length;
  const folder = `${displayPath(scriptsDir)} (${loaded} script${loaded === 1 ? "" : "s"}${notLoaded > 0 ? `, ${notLoaded} not loading` : ""})`;
  const lines = [`${bold(report.name)} ${dim(`· ${steps} step${steps === 1 ? "" : "s"} · scripts from ${folder}`)}`];
  if (report.description) lines.push(dim(report.description));
  for (const warning of report.warnings) lines.push(yellow(`warning: ${warning}`));
  for (const step of report.steps) lines.push("", ...stepLines(step, scriptsDir));
  const answered = steps - report.failed;
  const summary = `${steps} step${steps === 1 ? "" : "s"}: ${answered} answered, ${report.failed} failed`;
  lines.push("", report.failed > 0 ? red(summary) : green(summary));
  return lines;
}

function stepLines(step: SimulatedStep, scriptsDir: string): string[] {
  const when = step.offsetSeconds === null ? "".padEnd(8) : offset(step.offsetSeconds).padEnd(8);
  const clock = step.time ? dim(step.time.slice(11)) : dim("--:--:--");
  const stage = step.stage ? dim(` · ${step.stage}`) : "";
  const lines = [`${when} ${clock}  ${bold(step.hook)}${stage}${step.note ? dim(`  ${step.note}`) : ""}`];
  if (step.problem !== undefined) {
    const [first, ...rest] = step.problem.split("\n");
    lines.push(`${INDENT}${red("not called")}: ${first}`, ...rest.map((line) => `${INDENT}${line}`), `${INDENT}${dim(displaySource(step.source))}`);
    return lines;
  }
  if (step.scripts.length === 0) lines.push(`${INDENT}${dim("no script handles this hook: the defaults")}`);
  const width = Math.max(...step.scripts.map((script) => script.script.length), 0) + 2;
  for (const script of step.scripts) {
    const returned =
      script.outcome === "data"
        ? showValue(script.returned, 160)
        : script.outcome === "none"
          ? dim("nothing")
          : script.outcome === "cancel"
            ? yellow("cancel()")
            : red(`failed: ${script.reason}`);
    lines.push(`${INDENT}${script.script.padEnd(width)}${returned}  ${dim(formatMs(script.ms))}`);
    lines.push(...formatLogs(script.logs, `${INDENT}  `));
  }
  for (const fetch of step.fetches) lines.push(`${INDENT}${yellow("fetch")} ${fetch} ${dim("not answered: a simulation reaches no network")}`);
  const answer = step.answer!;
  if (answer.state === "error") {
    lines.push(...formatFailure(answer.error, scriptsDir).map((line) => `${INDENT}${line}`));
  } else if (step.cancelledBy === undefined) {
    lines.push(`${INDENT}${dim("data")}   ${showValue(answer.data, 200)}`);
    for (const change of step.changes) {
      const before = change.kind === "unexpected" ? "(none)" : showValue(change.expected, 60);
      const after = change.kind === "missing" ? "(removed)" : showValue(change.actual, 60);
      lines.push(`${INDENT}${dim("change")} ${change.path}: ${before} → ${after}`);
    }
  }
  const effect = `→ ${step.effect}`;
  lines.push(`${INDENT}${answer.state === "error" ? red(effect) : step.cancelledBy !== undefined ? yellow(effect) : green(effect)}`);
  return lines;
}
