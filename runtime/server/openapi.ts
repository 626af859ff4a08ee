import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { packageRoot } from "../paths.js";
import { callFull } from "../schema/call-full.js";
import { errorAnswer, hookFailure } from "../schema/envelope.js";
import { hookCatalog, hookNames, type HookName } from "../schema/hooks.js";
import { shared } from "./plugin.js";
import { httpError, type JsonSchema } from "./schemas.js";

const COMPONENTS = "#/components/schemas/";
const ref = (id: string) => ({ $ref: `${COMPONENTS}${id}` });

/**
 * The connector writes an empty list or map as `null` (or `[]` for a map), which the schemas
 * accept through a preprocess step; JSON Schema cannot say "preprocess", so the input documents
 * say what is accepted instead.
 */
function acceptEmpties(ctx: { zodSchema: z.core.$ZodType; jsonSchema: JsonSchema }): void {
  const def = ctx.zodSchema._zod.def as { type: string; in?: z.core.$ZodType };
  if (def.type !== "pipe" || def.in?._zod.def.type !== "transform") return;
  const inner = { ...ctx.jsonSchema };
  const description = inner.description;
  delete inner.description;
  for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
  if (description) ctx.jsonSchema.description = description;
  ctx.jsonSchema.anyOf = inner.type === "array" ? [inner, { type: "null" }] : [inner, { type: "null" }, { type: "array", maxItems: 0 }];
}

function stripIds(schemas: Record<string, JsonSchema>): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(schemas).map(([id, { $id: _, $schema: __, ...schema }]) => [id, schema]));
}

/**
 * The schemas of the catalog as OpenAPI components, from zod: `CallFull` once, each hook's input
 * (`<hook>_input`, as the connector sends it) and data (`<hook>_data`, as a script may return it),
 * the failure, the error answer and the HTTP error. Hooks that share a schema get their own
 * component all the same (a described copy), so that every hook's page reads on its own.
 */
export function catalogComponents(): Record<string, JsonSchema> {
  const uri = (id: string) => `${COMPONENTS}${id}`;
  const inputs = z.registry<{ id: string }>();
  inputs.add(callFull, { id: "CallFull" });
  for (const hook of hookNames) inputs.add(hookCatalog[hook].input.describe(`Input of ${hook}`), { id: `${hook}_input` });
  const outputs = z.registry<{ id: string }>();
  outputs.add(hookFailure, { id: "HookFailure" });
  outputs.add(errorAnswer, { id: "ErrorAnswer" });
  outputs.add(httpError, { id: "HttpError" });
  for (const hook of hookNames) outputs.add(hookCatalog[hook].data.describe(`Data of ${hook}`), { id: `${hook}_data` });
  const input = z.toJSONSchema(inputs, { io: "input", unrepresentable: "any", uri, override: acceptEmpties });
  const output = z.toJSONSchema(outputs, { io: "output", unrepresentable: "any", uri });
  return { ...stripIds(input.schemas as Record<string, JsonSchema>), ...stripIds(output.schemas as Record<string, JsonSchema>) };
}

const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: ref("HttpError") } } });

function hookOperation(hook: HookName): JsonSchema {
  const spec = hookCatalog[hook];
  const timeout = "connectorTimeoutMs" in spec ? ` The connector waits ${spec.connectorTimeoutMs} ms for it.` : "";
  return {
    post: {
      operationId: hook,
      tags: ["hooks"],
      summary: spec.summary,
      description:
        `CRM: ${spec.crm}.${timeout} The scripts that implement ${hook} run in order, each over the data so far; ` +
        "with none, or the hook disabled in the config, the answer is the hook's defaults.",
      requestBody: { required: true, content: { "application/json": { schema: ref(`${hook}_input`) } } },
      responses: {
        200: {
          description: "The data with the scripts' changes; or, when a script failed, the error (the connector then falls back to its default behaviour)",
          content: {
            "application/json": {
              schema: {
                oneOf: [
                  {
                    type: "object",
                    properties: {
                      state: { type: "string", const: "success" },
                      data: { anyOf: [ref(`${hook}_data`), { type: "object", maxProperties: 0, description: "{}: a script cancelled the CRM request" }] },
                    },
                    required: ["state", "data"],
                    additionalProperties: false,
                  },
                  ref("ErrorAnswer"),
                ],
              },
            },
          },
        },
        400: errorResponse("The body is not JSON, or not a valid input of the hook: `issues` names every bad field"),
        401: errorResponse("The server has a token and the request did not carry it as `Authorization: Bearer <token>`"),
        413: errorResponse("The body is over bodyLimitBytes"),
        503: {
          description: "A script's queue is full (reason `overloaded`): retry after Retry-After seconds",
          headers: { "Retry-After": { schema: { type: "integer" }, description: "Seconds" } },
          content: { "application/json": { schema: ref("ErrorAnswer") } },
        },
      },
    },
  };
}

export interface OpenApiOptions {
  /** Swagger UI at /docs; default true. */
  ui?: boolean;
}

export function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version?: string }).version ?? "0.0.0";
  } catch {
    return "0.0.0";
  }
}

/**
 * The OpenAPI 3.1 document, from the zod schemas through @fastify/swagger: the operations routes
 * from their own schemas, one path per hook from the catalog. Served at /openapi.json, and as
 * Swagger UI at /docs. Registered before the routes, so that it sees them all.
 */
export const openapi = shared<OpenApiOptions>("callscript-openapi", async (app, { ui = true }) => {
  await app.register(swagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "callscript",
        version: packageVersion(),
        description:
          "Call customization scripts for the telephony–CRM connector. The connector POSTs a hook's input to " +
          "`/hooks/<hook>` and gets `{ state, data }` back. An unknown hook name is a 404 that lists the known ones. " +
          "Every answer other than a hook's is `HttpError`.",
      },
      tags: [
        { name: "hooks", description: "One operation per hook of the catalog" },
        { name: "operations", description: "Health, readiness, scripts, metrics" },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: "http", scheme: "bearer", description: "Required on every route but /healthz and /readyz when the server has a token" },
        },
      },
      security: [{ bearerAuth: [] }],
    },
    transformObject: (documentObject) => {
      const openapiObject = "openapiObject" in documentObject ? documentObject.openapiObject : documentObject.swaggerObject;
      const document = openapiObject as { paths?: Record<string, unknown>; components?: { schemas?: Record<string, unknown> } };
      const hooks = Object.fromEntries(hookNames.map((hook) => [`/hooks/${hook}`, hookOperation(hook)]));
      document.paths = { ...hooks, ...document.paths };
      document.components = { ...document.components, schemas: { ...document.components?.schemas, ...catalogComponents() } };
      return openapiObject;
    },
  });

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
  if (ui) await app.register(swaggerUi, { routePrefix: "/docs" });
});
