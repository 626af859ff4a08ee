import { z } from "zod";
import { configReport, scriptState } from "../registry/states.js";
import { errorAnswer, hookFailure, skippedScript, successAnswer } from "../schema/envelope.js";

/**
 * The JSON Schemas of what the server sends, derived from zod (one source of truth): fastify
 * compiles them into its serializer, and @fastify/swagger puts them in the OpenAPI document. The
 * scripts' states are the registry's own schemas (registry/states.ts), whose types it is written in.
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
