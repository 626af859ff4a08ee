import { z } from "zod";
import { fetchGrantSchema } from "../capabilities/config.js";
import { settingInForce } from "../config-scripts.js";
import { limitsSchema } from "../sandbox/limits.js";
import { failureReason, hookFailure, sourceLocation } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";

/**
 * What the registry tells about its scripts (GET /scripts, the console, `check`), as zod schemas:
 * the one source of these shapes. The registry's types are inferred from them, and the server
 * turns them into the JSON Schemas of its serializer and of the OpenAPI document (server/schemas.ts).
 */

const hookName = z.enum(hookNames as [HookName, ...HookName[]]);
const at = z.string().describe("ISO 8601");

/**
 * Where a version failed: esbuild (`compile`), the TypeScript check against the SDK (`typecheck`),
 * its isolate (`load`: top-level code, defineScript), or the config's settings for it (`config`).
 * The connector sees each as the reason `compile`: the version does not serve.
 */
export const loadStage = z.enum(["compile", "typecheck", "load", "config"]);
export type LoadStage = z.output<typeof loadStage>;

/** One error of a version, at its place: each TypeScript error of a `typecheck` problem. */
const problemAt = sourceLocation.extend({ code: z.string(), message: z.string() });
export type ProblemAt = z.output<typeof problemAt>;

export const scriptProblem = z.object({
  at: z.string(),
  stage: loadStage.describe(
    "compile: esbuild; typecheck: a type error against the SDK; load: its isolate (top-level code, defineScript); config: the settings the config gives it",
  ),
  message: z.string(),
  location: sourceLocation.optional(),
  errors: z.array(problemAt).optional().describe("Every error at its place (each type error of a typecheck problem)"),
});
export type ScriptProblem = z.output<typeof scriptProblem>;

/** A script's answer as a shadow run compares it: the data after the script, a cancel, or a failure. */
const answerView = z
  .union([
    z.strictObject({ data: z.record(z.string(), z.unknown()).describe("The data after the script") }),
    z.strictObject({ cancel: z.literal(true) }),
    z.strictObject({ error: failureReason }),
  ])
  .describe("A script's answer as a shadow run compares it");
export type AnswerView = z.output<typeof answerView>;

const shadowDifference = z.object({
  hook: hookName,
  /** When the live call was answered. */
  at,
  /** What NAME answered. */
  active: answerView,
  /** What the shadow would have answered. */
  shadow: answerView,
});
export type ShadowDifference = z.output<typeof shadowDifference>;

export const shadowState = z
  .object({
    file: z.string().describe("NAME.shadow.ts, relative to the scripts folder"),
    version: z.string().nullable(),
    state: z.enum(["active", "failed", "stale"]),
    lastError: scriptProblem.nullable().describe("Why the newest version of the shadow did not load"),
    calls: z.number().int().describe("Shadow runs compared: same + different + failed"),
    same: z.number().int(),
    different: z.number().int(),
    failed: z.number().int().describe("Runs in which the shadow failed (threw, timed out, ...)"),
    shed: z.number().int().describe("Live calls on which the shadow was not run, to spare the server"),
    lastDifference: shadowDifference.nullable().describe("The last live call on which the shadow answered differently"),
    lastFailure: z.object({ hook: hookName, at, error: hookFailure.omit({ stack: true }) }).nullable(),
  })
  .describe("NAME.shadow.ts: runs after NAME's live answer on the same input, compared, never answering");
export type ShadowState = z.output<typeof shadowState>;

export const scriptState = z.object({
  name: z.string(),
  file: z.string().describe("Relative to the scripts folder"),
  state: z
    .enum(["active", "failed", "stale", "disabled"])
    .describe("active: serving; failed: never loaded; stale: an older version serves because the newest failed; disabled in the config"),
  version: z.string().nullable().describe("Hash of the serving version's bundle"),
  previousVersion: z.string().nullable(),
  loadedAt: z.string().nullable(),
  hooks: z.array(hookName).describe("The serving version's hooks; for a failed script, the hooks its source names, which answer its failure"),
  order: z.number().int().nullable(),
  limits: limitsSchema.nullable(),
  // Secrets masked (config-scripts.ts settingsInForce).
  settings: z.record(z.string(), settingInForce).nullable().describe("The serving version's settings (ctx.settings), key by key"),
  capabilities: z
    .object({
      fetch: fetchGrantSchema.nullable().describe("scripts.NAME.fetch: the origins it may fetch and the bounds; null: no network"),
      secrets: z.array(z.string()).describe("scripts.NAME.secrets: the names of the secrets its fetches may carry (never their values)"),
    })
    .describe("What the script may reach beyond its input (docs/capabilities.md); every script has its own kv"),
  warnings: z.array(z.string()),
  lastError: scriptProblem.nullable().describe("Why the newest version did not load"),
  queueDepth: z.number().int().describe("Invocations running or waiting"),
  isolateUp: z
    .boolean()
    .describe(
      "Whether the serving version's isolate is up: with config bootIsolates afterLoad or onFirstCall it boots after the script loads, or at its hook's first call",
    ),
  bootError: z
    .string()
    .nullable()
    .describe("Why the serving version's isolate could not be booted or rebuilt the last time it was tried (its calls fail with it); null once one is up"),
  invocations: z.number().int(),
  outcomes: z.record(z.string(), z.number().int()).describe("Invocations by outcome: data, none, cancel, or a failure reason"),
  shadow: shadowState.optional(),
});
export type ScriptState = z.output<typeof scriptState>;

/** The configuration's file and its last reload (kept by the config reloader, shown by GET /scripts). */
export const configReport = z.object({
  file: z.string().nullable().describe("The config file, when there is one"),
  loadedAt: z.string().describe("When the configuration in force was read"),
  lastReload: z
    .object({
      at: z.string(),
      ok: z.boolean().describe("false: refused, the configuration before it stays in force"),
      problems: z.array(z.string()).describe("Why it was refused"),
      changed: z.array(z.string()).describe("Top-level keys that changed"),
      restartRequired: z.array(z.string()).describe("Changed keys that take effect only after a restart"),
    })
    .nullable()
    .describe("The last reload of the configuration (saving the file, SIGHUP)"),
});
export type ConfigReport = z.output<typeof configReport>;
