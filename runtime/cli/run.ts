import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { parseHookInput, resolveHook } from "../dispatch/hook-call.js";
import { ConfigError, UsageError } from "../errors.js";
import { runOnce } from "../runner/run-once.js";
import type { HookAnswer } from "../schema/envelope.js";
import type { Limits } from "../sandbox/limits.js";
import type { Invocation } from "../sandbox/sandbox.js";
import { bold, dim, formatFailure, formatLimitUse, formatLogs, green, yellow } from "./format.js";
import { checkScriptNames, readJsonFile, readJsonObject } from "./inputs.js";

interface RunOptions {
  hook: string;
  input: string;
  settings?: string;
  config?: string;
  json?: boolean;
}

/** Exit codes: 0 the scripts answered with data, 1 they failed, 2 the command was wrong. */
export function registerRun(program: Command): void {
  program
    .command("run")
    .description("Run one script for one hook on a recorded input, exactly as the server would")
    .argument("<script>", "the script's .ts file")
    .requiredOption("--hook <name>", "the hook to run")
    .requiredOption("--input <file>", "the hook input JSON, as the connector POSTs it")
    .option("--settings <file>", "JSON object of settings, over the script's defaults and the config's")
    .option("--config <file>", "the server's config file (limits, hook policy, script settings)")
    .option("--json", "print only the answer the server would send")
    .action(async (script: string, options: RunOptions) => {
      process.exitCode = await run(script, options);
    });
}

async function run(scriptFile: string, options: RunOptions): Promise<number> {
  const file = path.resolve(scriptFile);
  if (!existsSync(file)) throw new UsageError(`Script ${scriptFile} does not exist`);
  const hook = resolveHook(options.hook);
  const body = readJsonFile(options.input, "Input file");
  const parsed = parseHookInput(hook, body);
  if (!parsed.ok) {
    const lines = parsed.issues.map((issue) => `  ${issue.path}: ${issue.message}`);
    throw new UsageError(`Input file ${options.input} is not a valid ${hook} input:\n${lines.join("\n")}`);
  }
  const config = loadConfig(options.config ? { file: options.config } : {});
  const settings = options.settings ? readJsonObject(options.settings, "Settings file") : undefined;
  const scriptsDir = path.dirname(file);
  checkScriptNames(config, scriptsDir, options.config);
  const ran = await runOnce(config, scriptsDir, hook, parsed, [
    { file, mustHandle: true, ...(settings ? { settings, settingsFrom: options.settings! } : {}) },
  ]);
  if (ran.kind === "failed" && ran.stage === "config") {
    // Settings the script does not declare (from --settings or the config): the command is wrong.
    throw new ConfigError(options.settings ?? options.config ?? "the configuration", ran.failure.message);
  }
  if (ran.kind === "failed") {
    const answer: HookAnswer = { state: "error", error: ran.failure };
    if (options.json) console.log(JSON.stringify(answer));
    else console.log([`${bold(ran.failure.script ?? "")} does not ${ran.stage}`, "", ...formatFailure(ran.failure, scriptsDir)].join("\n"));
    return 1;
  }
  if (ran.kind === "unhandled") {
    throw new UsageError(`${ran.script.name} has no handler for ${hook}; it handles: ${ran.script.hooks.join(", ")}`);
  }
  const { result } = ran;
  const script = ran.scripts[0]!;
  if (options.json) {
    console.log(JSON.stringify(result.answer));
  } else {
    console.log(report(hook, script.name, script.version, result.answer, result.invocations[0], script.limits, scriptsDir).join("\n"));
  }
  return result.answer.state === "success" ? 0 : 1;
}

function report(
  hook: string,
  name: string,
  version: string,
  answer: HookAnswer,
  invocation: Invocation | undefined,
  limits: Limits,
  scriptsDir: string,
): string[] {
  const lines = [`${bold(name)} ${dim(`· ${hook} · version ${version}`)}`, ""];
  if (answer.state === "success") {
    const cancelled = invocation?.outcome.kind === "cancel";
    // As `test` says it: a handler that returned nothing changed nothing, which is easy to miss.
    if (invocation?.outcome.kind === "none") lines.push(yellow(`${name} returned nothing: the data is ${hook}'s defaults, unchanged`), "");
    lines.push(cancelled ? yellow("cancelled: the CRM request is not sent (data {})") : green("data"));
    if (!cancelled) lines.push(...JSON.stringify(answer.data, null, 2).split("\n").map((line) => `  ${line}`));
  } else {
    lines.push(...formatFailure(answer.error, scriptsDir));
  }
  if (invocation) {
    lines.push("", "log");
    const logLines = formatLogs(invocation.logs);
    lines.push(...(logLines.length ? logLines : [dim("  (nothing logged)")]));
    lines.push("", "limits", ...formatLimitUse(invocation.stats, limits));
  }
  return lines;
}
