import { z } from "zod";
import { limitsSchema } from "../sandbox/limits.js";
import { errorAnswer, failureReason, hookFailure, skippedScript, successAnswer } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";
import type { ConfigReport } from "../registry/apply-config.js";
import type { ScriptState } from "../registry/registry.js";
import { fetchGrantSchema } from "../capabilities/config.js";

/**
 * The JSON Schemas of what the server sends, derived from zod (one source of truth): fastify
 * compiles them into its serializer, and @fastify/swagger puts them in the OpenAPI document.
 */

export type JsonSchema = Record<string, unknown>;

/** A zod schema as JSON Schema (draft 2020-12, as OpenAPI 3.1 uses), without `$schema`. */
export function jsonSchemaOf(schema: z.ZodType, io: "input" | "output" = "output"): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as JsonSchema;
  return rest;
}

// ---- the answer ------------------------------------------------------------------------------

const states = [successAnswer.shape.state.value, errorAnswer.shape.state.value];

/**
 * What the serializer compiles for a hook's answer: `{ state, data }` or `{ state, error }` as ONE
 * object schema. A `oneOf` of the two (what `z.toJSONSchema(hookAnswer)` gives) makes
 * fast-json-stringify test each branch at run time, and a typed `data` would be re-checked and
 * could drop keys; here `data` is an open object written as it is. Measured against
 * JSON.stringify (bench/answer-serializer.mjs), this is faster for every typical answer.
 */
export const answerSchema: JsonSchema = {
  type: "object",
  description: "The hook's answer: { state: success, data } or { state: error, error }",
  properties: {
    state: { type: "string", enum: states },
    data: { description: successAnswer.shape.data.description },
    skipped: { type: "array", description: successAnswer.shape.skipped.description, items: jsonSchemaOf(skippedScript) },
    error: jsonSchemaOf(hookFailure),
  },
  required: ["state"],
  additionalProperties: false,
};

// ---- errors ------------------------------------------------------------------------------------

export const inputIssue = z.object({
  path: z.string().describe("Where in the body, dotted (call_full.channel.type), or (body)"),
  message: z.string(),
});

/** The body of every answer that is not a hook's answer (4xx, 5xx): one shape, never HTML. */
export const httpError = z.object({
  statusCode: z.number().int(),
  code: z.string().describe("Stable error code, e.g. CS_ERR_INVALID_INPUT"),
  error: z.string().describe("The HTTP status text"),
  message: z.string(),
  issues: z.array(inputIssue).optional().describe("Every bad field of an invalid input"),
});
export type HttpErrorBody = z.output<typeof httpError>;

export const httpErrorSchema = jsonSchemaOf(httpError);

// ---- ops ---------------------------------------------------------------------------------------

const problemAt = z.object({ file: z.string(), line: z.number().int(), column: z.number().int() });

export const loadStage = z.enum(["compile", "typecheck", "load", "config"]);

const problem = z.object({
  at: z.string(),
  stage: loadStage
    .describe("compile: esbuild; typecheck: a type error against the SDK; load: its isolate (top-level code, defineScript); config: the settings the config gives it"),
  message: z.string(),
  location: problemAt.optional(),
  errors: z
    .array(problemAt.extend({ code: z.string(), message: z.string() }))
    .optional()
    .describe("Every error at its place (each type error of a typecheck problem)"),
});

const settingInForce = z.object({
  value: z.unknown().describe("The value the script runs with; secret-looking values masked"),
  from: z.string().describe("Where it came from: the script's default, the config file, an environment variable"),
});

const at = z.string().describe("ISO 8601");

const answerView = z
  .union([
    z.strictObject({ data: z.record(z.string(), z.unknown()).describe("The data after the script") }),
    z.strictObject({ cancel: z.literal(true) }),
    z.strictObject({ error: failureReason }),
  ])
  .describe("A script's answer as a shadow run compares it");

export const shadowState = z
  .object({
    file: z.string().describe("NAME.shadow.ts, relative to the scripts folder"),
    version: z.string().nullable(),
    state: z.enum(["active", "failed", "stale"]),
    lastError: problem.nullable().describe("Why the newest version of the shadow did not load"),
    calls: z.number().int().describe("Shadow runs compared: same + different + failed"),
    same: z.number().int(),
    different: z.number().int(),
    failed: z.number().int().describe("Runs in which the shadow failed (threw, timed out, ...)"),
    shed: z.number().int().describe("Live calls on which the shadow was not run, to spare the server"),
    lastDifference: z
      .object({ hook: z.enum(hookNames as [HookName, ...HookName[]]), at, active: answerView, shadow: answerView })
      .nullable()
      .describe("The last live call on which the shadow answered differently"),
    lastFailure: z
      .object({ hook: z.enum(hookNames as [HookName, ...HookName[]]), at, error: hookFailure.omit({ stack: true }) })
      .nullable(),
  })
  .describe("NAME.shadow.ts: runs after NAME's live answer on the same input, compared, never answering");

export const scriptState = z.object({
  name: z.string(),
  file: z.string().describe("Relative to the scripts folder"),
  state: z.enum(["active", "failed", "stale", "disabled"]).describe(
    "active: serving; failed: never loaded; stale: an older version serves because the newest failed; disabled in the config",
  ),
  version: z.string().nullable().describe("Hash of the serving version's bundle"),
  previousVersion: z.string().nullable(),
  loadedAt: z.string().nullable(),
  hooks: z
    .array(z.enum(hookNames as [HookName, ...HookName[]]))
    .describe("The serving version's hooks; for a failed script, the hooks its source names, which answer its failure"),
  order: z.number().int().nullable(),
  limits: limitsSchema.nullable(),
  settings: z.record(z.string(), settingInForce).nullable().describe("The serving version's settings (ctx.settings), key by key"),
  capabilities: z
    .object({
      fetch: fetchGrantSchema.nullable().describe("scripts.NAME.fetch: the origins it may fetch and the bounds; null: no network"),
      secrets: z.array(z.string()).describe("scripts.NAME.secrets: the names of the secrets its fetches may carry (never their values)"),
    })
    .describe("What the script may reach beyond its input (docs/capabilities.md); every script has its own kv"),
  warnings: z.array(z.string()),
  lastError: problem.nullable().describe("Why the newest version did not load"),
  queueDepth: z.number().int().describe("Invocations running or waiting"),
  invocations: z.number().int(),
  outcomes: z.record(z.string(), z.number().int()).describe("Invocations by outcome: data, none, cancel, or a failure reason"),
  shadow: shadowState.optional(),
});

// The registry's type and this schema must describe the same object (the serializer drops
// anything the schema does not name).
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameState: Same<z.output<typeof scriptState>, ScriptState> = true;
void sameState;

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

// As with the states: the registry's report and this schema describe the same object.
const sameReport: Same<z.output<typeof configReport>, ConfigReport> = true;
void sameReport;

export const scriptsResponse = z.object({
  ready: z.boolean(),
  config: configReport,
  scripts: z.array(scriptState),
});

export const readyResponse = z.object({
  ready: z.literal(true),
  scripts: z.number().int().describe("Scripts serving"),
});

export const healthResponse = z.object({
  status: z.literal("ok"),
  uptimeSeconds: z.number(),
});
