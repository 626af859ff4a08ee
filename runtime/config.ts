import { readFileSync } from "node:fs";
import path from "node:path";
import { parseYaml } from "./util/yaml.js";
import { z } from "zod";
import { ConfigSources, describeSource, interpolateEnv, type ValueSource } from "./config-sources.js";
import { ConfigError } from "./errors.js";
import { hookCatalog, hookNames, isHookName } from "./schema/hooks.js";
import { closest } from "./util/closest.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS, partialLimitsSchema, type PartialLimits } from "./sandbox/limits.js";
import type { ScriptLimits } from "../sdk/define.js";
import { capabilityConfigKeys, parseKvUrl, scriptCapabilityKeys } from "./capabilities/config.js";

/** What happens to the rest of a hook's scripts when one fails. */
const failurePolicy = z
  .enum(["error", "skip"])
  .describe("error: the first failure is the answer (the connector falls back to its default); skip: the failed script changes nothing and the rest run");
export type FailurePolicy = z.output<typeof failurePolicy>;

export const hookSettingsSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("A disabled hook answers its defaults without running scripts"),
  deadlineMs: z.number().int().positive().optional().describe("Over all the hook's scripts"),
  failurePolicy: failurePolicy.default("error"),
});

export const scriptSettingsSchema = z.strictObject({
  enabled: z.boolean().default(true),
  order: z.number().int().optional().describe("Overrides the script's own order"),
  settings: z.record(z.string(), z.unknown()).optional().describe("Overrides the script's default settings, key by key"),
  // What the script may reach beyond its input (docs/capabilities.md): ctx.fetch's origins, the secrets its fetches may carry.
  ...scriptCapabilityKeys,
});

/** The admin console at /console (runtime/server/console.ts). */
export const consoleSchema = z.strictObject({
  enabled: z.boolean().default(true).describe("Serve the admin console at /console (same port, same token)"),
  calls: z
    .number()
    .int()
    .min(0)
    .max(10_000)
    .default(200)
    .describe("Recent hook requests kept in memory for the Calls page (input, answer, each script's data and logs); 0 keeps none"),
  callsMaxBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024)
    .describe("Memory bound of those calls (their JSON size, estimated)"),
  callsPerSecond: z
    .number()
    .int()
    .positive()
    .max(100_000)
    .default(50)
    .describe(
      "At most this many successful calls a second are kept (failed and refused ones always are): under a heavier load the Calls page shows a sample of them and how many were not kept",
    ),
  redact: z.boolean().default(true).describe("Show client phone numbers, names and e-mail addresses replaced, as record.anonymize does"),
  sessionMinutes: z
    .number()
    .int()
    .positive()
    .max(7 * 24 * 60)
    .default(60)
    .describe("How long a console login lasts"),
  saveCases: z.boolean().default(false).describe("Let the Try page write cases files into the scripts folder"),
});

export const configSchema = z.strictObject({
  host: z.string().default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8787),
  token: z.string().min(16, "token must be at least 16 characters").optional(),
  scriptsDir: z.string().default("scripts"),
  watch: z.boolean().default(true).describe("Reload scripts when their files change"),
  logLevel: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  bodyLimitBytes: z
    .number()
    .int()
    .positive()
    .default(1024 * 1024),
  maxQueue: z.number().int().min(0).default(32).describe("Invocations that may wait per script"),
  deadlineMs: z.number().int().positive().default(2_000).describe("Default request deadline over a hook's scripts"),
  inlineCalls: z
    .boolean()
    .default(true)
    .describe(
      "Run the calls of scripts that have been short (16 calls in a row under 2 ms of CPU, no fetch/kv) on the server's thread, with the same limits, instead of a hop to their isolate's thread, while the server has time to spare or one connection is open",
    ),
  batchCalls: z
    .boolean()
    .default(true)
    .describe(
      "While the server is busy, hand the calls of such short scripts to their isolate several at a time (one task for up to 8 calls) instead of one task each",
    ),
  bootIsolates: z
    .enum(["afterLoad", "onFirstCall", "atLoad"])
    .default("afterLoad")
    .describe(
      "When each script's own isolate boots. afterLoad and onFirstCall load the script (top level run, definition checked) in a shared probe isolate, so the server is ready sooner; afterLoad then boots every isolate in the background (a hook's call boots its own scripts first), onFirstCall only at a hook's first call (an idle script holds no isolate). atLoad boots each isolate as its script loads",
    ),
  typecheck: z
    .enum(["block", "warn", "off"])
    .default("block")
    .describe("Type-check each new version against the SDK: block keeps a version with type errors out, warn loads it and reports them, off skips the check"),
  limits: z
    .strictObject({
      defaults: partialLimitsSchema.default({}),
      max: partialLimitsSchema.default({}),
    })
    .default({ defaults: {}, max: {} }),
  hooks: z.partialRecord(z.enum(hookNames as [string, ...string[]]), hookSettingsSchema).default({}),
  scripts: z.record(z.string(), scriptSettingsSchema).default({}),
  console: consoleSchema.default(consoleSchema.parse({})),
  record: z
    .strictObject({
      dir: z.string().describe("Save every incoming hook input here as a JSON file"),
      anonymize: z.boolean().default(true).describe("Replace client phone numbers and names"),
    })
    .optional(),
  // Secret values (ctx.secret) and the key-value store (ctx.kv): docs/capabilities.md.
  ...capabilityConfigKeys,
});

export type Config = z.output<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/**
 * The SDK's `ScriptLimits` (what defineScript may ask for) is written by hand: the SDK imports
 * nothing of the runtime and keeps its doc comments for the editor. The build fails here when it
 * no longer matches the limits the runtime parses.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
// Required: an optional key on one side only would not make the two types differ.
const sdkLimitsAgree: Same<Required<ScriptLimits>, Required<PartialLimits>> = true;
void sdkLimitsAgree;

/** Limits after the built-in values are filled in. */
export function effectiveLimits(config: Config) {
  const max = { ...BUILTIN_MAX_LIMITS, ...config.limits.max };
  const defaults = { ...BUILTIN_DEFAULT_LIMITS, ...config.limits.defaults };
  return { defaults, max };
}

/** What a deadline leaves the server, under the connector's own timeout, to send the answer. */
const ANSWER_MARGIN_MS = 1_000;

export function deadlineFor(config: Config, hook: string): number {
  const own = config.hooks[hook]?.deadlineMs;
  if (own) return own;
  // A hook the connector waits longer for gets that time, less a second to send the answer in.
  const waits = isHookName(hook) ? (hookCatalog[hook] as { connectorTimeoutMs?: number }).connectorTimeoutMs : undefined;
  return waits ? Math.max(config.deadlineMs, waits - ANSWER_MARGIN_MS) : config.deadlineMs;
}

const envFlag = z.stringbool({ truthy: ["true", "1"], falsy: ["false", "0"], case: "sensitive" });
// true/1 or false/0; anything else reaches the schema as it is, to be named there.
const parseFlag = (v: string): unknown => {
  const flag = envFlag.safeParse(v);
  return flag.success ? flag.data : v;
};

/** Environment variables that override the file, for service managers and containers. */
const ENVIRONMENT: Record<string, { key: keyof ConfigInput; parse: (value: string) => unknown }> = {
  CALLSCRIPT_HOST: { key: "host", parse: (v) => v },
  CALLSCRIPT_PORT: { key: "port", parse: (v) => (/^\d+$/.test(v) ? Number(v) : v) },
  CALLSCRIPT_TOKEN: { key: "token", parse: (v) => v },
  CALLSCRIPT_SCRIPTS: { key: "scriptsDir", parse: (v) => v },
  CALLSCRIPT_LOG_LEVEL: { key: "logLevel", parse: (v) => v },
  CALLSCRIPT_WATCH: { key: "watch", parse: parseFlag },
  CALLSCRIPT_TYPECHECK: { key: "typecheck", parse: (v) => v },
  CALLSCRIPT_INLINE_CALLS: { key: "inlineCalls", parse: parseFlag },
  CALLSCRIPT_BATCH_CALLS: { key: "batchCalls", parse: parseFlag },
  CALLSCRIPT_BOOT_ISOLATES: { key: "bootIsolates", parse: (v) => v },
};

/** The command-line flag of each key `serve` takes from its options. */
const FLAGS: Partial<Record<keyof ConfigInput, string>> = { scriptsDir: "--scripts", host: "--host", port: "--port", watch: "--no-watch" };

/** Each issue as `path: message`, naming where the value came from when it was not the file. */
export function formatIssues(error: z.ZodError, sources?: ConfigSources): string {
  return error.issues
    .map((issue) => {
      const where = issue.path.length ? issue.path.join(".") : "(root)";
      const source = sources?.of(issue.path as PropertyKey[]);
      const from = source && source.kind !== "file" && source.kind !== "default" ? ` (from ${describeSource(source)})` : "";
      return `${where}: ${issue.message}${from}`;
    })
    .join("; ");
}

const configSources = new WeakMap<Config, ConfigSources>();

/** Where each value of a loaded configuration came from (a config made by configSchema.parse has none). */
export function sourcesOf(config: Config): ConfigSources | undefined {
  return configSources.get(config);
}

/** The source of one value of a configuration, as a message names it. */
export function sourceOf(config: Config, at: string | readonly PropertyKey[]): ValueSource {
  return sourcesOf(config)?.of(at) ?? { kind: "default" };
}

function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new ConfigError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(file) ? parseYaml(text) : JSON.parse(text);
  } catch (error) {
    throw new ConfigError(file, `is not valid ${/\.ya?ml$/i.test(file) ? "YAML" : "JSON"}: ${(error as Error).message}`);
  }
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw new ConfigError(file, "must hold an object");
  return value as Record<string, unknown>;
}

/** A misspelt hook under `hooks` is named with the hook it most likely meant. */
function checkHookNames(hooks: unknown, file: string | undefined): void {
  if (hooks === null || typeof hooks !== "object" || Array.isArray(hooks)) return;
  const problems = Object.keys(hooks)
    .filter((name) => !isHookName(name))
    .map((name) => {
      const suggestion = closest(name, hookNames);
      return `hooks.${name}: unknown hook${suggestion ? ` (did you mean '${suggestion}'?)` : ""}`;
    });
  if (problems.length > 0) throw new ConfigError(file ?? "the configuration", `${problems.join("; ")}. Known hooks: ${hookNames.join(", ")}`);
}

export interface LoadConfigOptions {
  file?: string;
  /** Command-line values: they win over the environment and the file. */
  overrides?: Partial<ConfigInput>;
  env?: NodeJS.ProcessEnv;
  /**
   * false for the commands that never send a fetch (test, simulate, replay, run without --live):
   * they need the grants, not the secrets' values, so a `secrets.NAME: ${VAR}` whose variable is
   * not set here is left out rather than refused. Default true.
   */
  secretValues?: boolean;
}

/**
 * The configuration: the file (JSON or YAML), then the environment, then the command line. A
 * relative `scriptsDir` or `record.dir` in the file is relative to the file.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const raw = options.file ? readConfigFile(options.file) : {};
  const sources = new ConfigSources(options.file, raw);
  const interpolated = interpolateEnv(raw, env);
  if (options.secretValues === false) withoutUnsetSecrets(interpolated);
  if (interpolated.problems.length > 0) {
    throw new ConfigError(options.file ?? "the configuration", interpolated.problems.map((problem) => `${problem.path}: ${problem.message}`).join("; "));
  }
  for (const [at, vars] of interpolated.used) sources.set(at, { kind: "interpolated", file: options.file!, vars });
  const fromFile = interpolated.value as Record<string, unknown>;
  const base = options.file ? path.dirname(path.resolve(options.file)) : process.cwd();
  const merged: Record<string, unknown> = { ...fromFile };
  // Paths from the file (or the default) are relative to the file; from the environment or the
  // command line, to the working directory.
  let scriptsBase = base;
  for (const [name, { key, parse }] of Object.entries(ENVIRONMENT)) {
    const value = env[name];
    if (value !== undefined && value !== "") {
      merged[key] = parse(value);
      sources.set(key, { kind: "env", name });
      if (key === "scriptsDir") scriptsBase = process.cwd();
    }
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) {
      merged[key] = value;
      sources.set(key, { kind: "flag", name: FLAGS[key as keyof ConfigInput] ?? `--${key}` });
      if (key === "scriptsDir") scriptsBase = process.cwd();
    }
  }
  checkHookNames(merged.hooks, options.file);
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) throw new ConfigError(options.file ?? "the configuration", formatIssues(parsed.error, sources));
  const config = parsed.data;
  configSources.set(config, sources);
  config.scriptsDir = path.resolve(scriptsBase, config.scriptsDir);
  if (config.record) config.record.dir = path.resolve(base, config.record.dir);
  // An SQLite file of the kv store is relative to the file too (there is no environment variable for it).
  const kv = parseKvUrl(config.kv.url, base);
  if (kv.ok && kv.location.kind === "sqlite") config.kv.url = `sqlite:${kv.location.file}`;
  return config;
}

/** Drops the secrets whose `${VAR}` is not set, and their problems (see LoadConfigOptions.secretValues). */
function withoutUnsetSecrets(interpolated: ReturnType<typeof interpolateEnv>): void {
  const unset = new Set(
    interpolated.problems
      .filter((problem) => /^secrets\.[^.]+$/.test(problem.path) && problem.message.includes("is not set in the environment"))
      .map((problem) => problem.path),
  );
  if (unset.size === 0) return;
  interpolated.problems = interpolated.problems.filter((problem) => !unset.has(problem.path));
  const secrets = (interpolated.value as { secrets?: unknown }).secrets;
  if (secrets === null || typeof secrets !== "object") return;
  for (const at of unset) {
    delete (secrets as Record<string, unknown>)[at.slice("secrets.".length)];
    interpolated.used.delete(at);
  }
}
