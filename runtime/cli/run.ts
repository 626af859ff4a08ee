import { existsSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { CapabilityHost, type FaultEvent, type FetchEvent, type KvEvent } from "../capabilities/capabilities.js";
import type { Capabilities } from "../capabilities/types.js";
import { loadConfig, type Config } from "../config.js";
import { checkedGrants } from "../config-capabilities.js";
import { cannedFor, underConfigNames } from "../runner/case-capabilities.js";
import { parseHookInput, resolveHook } from "../schema/hook-input.js";
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
  live?: boolean;
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
    .option("--config <file>", "the server's config file (limits, hook policy, script settings, fetch grants, secrets, kv)")
    .option("--live", "real capabilities, as the server has them: fetches reach the network under the config's grants, ctx.kv is the config's store")
    .option("--json", "print only the answer the server would send")
    .action(async (script: string, options: RunOptions) => {
      process.exitCode = await run(script, options);
    });
}

/** What a run's scripts did with their capabilities, for the report. */
interface CapabilityUse {
  fetches: string[];
  kv: string[];
  faults: string[];
}

/**
 * The capabilities of a run: with --live, a CapabilityHost of the config (the network under its
 * grants, its kv store; a granted secret without a value is a config error, as for serve);
 * otherwise canned ones with no answers (a fetch fails as not foreseen) and a kv in memory.
 */
function capabilitiesFor(config: Config, options: RunOptions, use: CapabilityUse): { capabilities: Capabilities; close(): Promise<void> } {
  if (!options.live) {
    const { canned, capabilities } = cannedFor(config, options.config ? "config" : "any");
    return {
      capabilities,
      close: async () => {
        for (const call of canned.calls()) use.fetches.push(`${call.method} ${call.url}: not answered (run reaches no network; --live does)`);
      },
    };
  }
  const grants = checkedGrants(config, options.config);
  const round = (ms: number) => `${Math.round(ms)} ms`;
  const host = new CapabilityHost({
    scripts: grants.scripts,
    secrets: grants.secrets,
    kv: config.kv,
    baseDir: options.config ? path.dirname(path.resolve(options.config)) : process.cwd(),
    hooks: {
      onFetch: (event: FetchEvent) =>
        use.fetches.push(`${event.method ?? "fetch"} ${event.origin ?? "(refused)"}: ${event.status ?? event.code} ${dim(round(event.ms))}`),
      onKv: (event: KvEvent) => use.kv.push(`${event.op}: ${event.outcome}`),
      onFault: (event: FaultEvent) => use.faults.push(`${event.op} (${event.code}): ${event.detail.split("\n")[0]}`),
    },
  });
  return { capabilities: underConfigNames(host), close: () => host.close() };
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
  // Without --live no fetch is sent: the grants count, the secrets' values are not needed.
  const config = loadConfig({ ...(options.config ? { file: options.config } : {}), secretValues: options.live ?? false });
  const settings = options.settings ? readJsonObject(options.settings, "Settings file") : undefined;
  const scriptsDir = path.dirname(file);
  checkScriptNames(config, scriptsDir, options.config);
  const use: CapabilityUse = { fetches: [], kv: [], faults: [] };
  const { capabilities, close } = capabilitiesFor(config, options, use);
  let ran;
  try {
    ran = await runOnce(
      config,
      scriptsDir,
      hook,
      parsed,
      [{ file, mustHandle: true, ...(settings ? { settings, settingsFrom: options.settings! } : {}) }],
      "run",
      capabilities,
    );
  } finally {
    await close();
  }
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
    const lines = report(hook, script.name, script.version, result.answer, result.invocations[0], script.limits, scriptsDir);
    console.log([...lines, ...capabilityLines(use, options.live ?? false)].join("\n"));
  }
  return result.answer.state === "success" ? 0 : 1;
}

/** What the script fetched and kept, under the limits (nothing when it used no capability). */
function capabilityLines(use: CapabilityUse, live: boolean): string[] {
  const lines: string[] = [];
  if (use.fetches.length > 0) lines.push("", live ? "fetch" : "fetch (canned)", ...use.fetches.map((line) => `  ${line}`));
  if (use.kv.length > 0) lines.push("", "kv", ...use.kv.map((line) => `  ${line}`));
  if (use.faults.length > 0) lines.push("", yellow("failed underneath"), ...use.faults.map((line) => `  ${line}`));
  return lines;
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
    if (!cancelled)
      lines.push(
        ...JSON.stringify(answer.data, null, 2)
          .split("\n")
          .map((line) => `  ${line}`),
      );
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
