import type { z } from "zod";
import { callFull, channel, conversation, entity, numberData, registration, user } from "./call-full.js";
import { callStage, defaultsFor, hookCatalog, hookNames, type HookName } from "./hooks.js";
import { namedJsonSchema, pascal } from "./sdk-types.js";

/**
 * `docs/hooks.md`, the hook reference, written from the hook catalog (runtime/schema/hooks.ts):
 * every hook, its CRM, its input and data fields with their types, and its defaults, which are
 * found by calling the catalog's own defaults() on an input of placeholders. Generated
 * (`npm run generate`), and checked by a test, so it cannot fall behind the catalog.
 */

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  anyOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  description?: string;
};

const NAMED = {
  CallFull: callFull,
  Channel: channel,
  NumberData: numberData,
  User: user,
  Conversation: conversation,
  Entity: entity,
  Registration: registration,
  CallStage: callStage,
};

const jsonSchema = (schema: z.ZodType) => namedJsonSchema<Schema>(schema, NAMED);

/** A field's type, short: `string`, `string \| number`, `NumberData[]`, `CallFull`. */
function typeText(node: Schema): string {
  if (node.$ref) return node.$ref.replace("#/$defs/", "");
  if (node.anyOf) return node.anyOf.map(typeText).join(" \\| ");
  if (node.enum) return node.enum.map((value) => JSON.stringify(value)).join(" \\| ");
  if (Array.isArray(node.type)) return node.type.map((type) => typeText({ type })).join(" \\| ");
  switch (node.type) {
    case "integer":
      return "number";
    case "array":
      return `${node.items ? typeText(node.items) : "unknown"}[]`;
    case "object":
      if (!node.properties && node.additionalProperties !== undefined) {
        const value = typeof node.additionalProperties === "object" ? typeText(node.additionalProperties) : "unknown";
        return `Record<string, ${value}>`;
      }
      return "object";
    case undefined:
      return "unknown";
    default:
      return node.type;
  }
}

const cell = (text: string | undefined) => (text ?? "").replace(/\|/g, "\\|").replace(/\n/g, " ");

function fieldsTable(node: Schema, what: string, sayOpen = true): string[] {
  const properties = Object.entries(node.properties ?? {});
  const open = node.additionalProperties !== undefined && node.additionalProperties !== false;
  if (properties.length === 0) {
    return [open ? `${what}: any keys (none declared), passed through as they are.` : `${what}: none.`];
  }
  const required = new Set(node.required ?? []);
  const lines = [`${what}:`, "", "| field | type | |", "|---|---|---|"];
  for (const [name, property] of properties) {
    const type = typeText(property);
    lines.push(`| \`${name}\`${required.has(name) ? "" : "?"} | \`${type.replace(/`/g, "")}\` | ${cell(property.description)} |`);
  }
  if (open && sayOpen) lines.push("", "Other keys are kept and passed on as they are.");
  return lines;
}

/** Placeholders for an input's declared keys: defaults() run on them shows which keys it copies. */
const OTHER_KEYS = "(the input's other keys)";

function placeholderInput(node: Schema): Record<string, unknown> {
  const input: Record<string, unknown> = {};
  for (const [name, property] of Object.entries(node.properties ?? {})) {
    input[name] = property.type === "object" ? { [`<${name}>`]: true } : `<${name}>`;
  }
  if (node.additionalProperties !== undefined && node.additionalProperties !== false) input[OTHER_KEYS] = OTHER_KEYS;
  return input;
}

/** `{ phone: input.phone }`, `{ result: true }`, `{ ...input.params }`, `{ CALL_ID: input.CALL_ID, …other keys }`. */
function defaultsText(hook: HookName, inputSchema: Schema): string {
  const data = defaultsFor(hook, placeholderInput(inputSchema));
  const parts = Object.entries(data).map(([name, value]) => {
    if (name === OTHER_KEYS) return "…every other key of the input";
    const spread = /^<(.+)>$/.exec(name);
    if (spread && value === true) return `...input.${spread[1]}`;
    const placeholder = typeof value === "string" ? /^<(.+)>$/.exec(value) : null;
    return `${name}: ${placeholder ? `input.${placeholder[1]}` : JSON.stringify(value)}`;
  });
  return parts.length === 0 ? "`{}`" : `\`{ ${parts.join(", ")} }\``;
}

const CRMS = { bitrix24: "Bitrix24", kommo: "Kommo", both: "Bitrix24 and Kommo" } as const;

/** The text of docs/hooks.md. */
export function hooksReference(): string {
  const lines: string[] = [
    "# Hook reference",
    "",
    "<!-- Generated from runtime/schema/hooks.ts by runtime/schema/hooks-reference.ts (npm run generate): do not edit. -->",
    "",
    "Every hook the connector calls, as the hook catalog (`runtime/schema/hooks.ts`) defines it: the",
    "HTTP route is `POST /hooks/<hook>`, a script implements it as `hooks: { <hook>(input, ctx) { ... } }`,",
    "and the SDK types the handler's `input` and return value as `<Hook>Input` and `Partial<<Hook>Data>`",
    "(`sdk/hook-types.generated.ts`). A handler returns the data fields to change; the answer's `data` is",
    "the hook's defaults with every script's changes merged over them. `GET /openapi.json` has the same",
    "schemas as JSON Schema.",
    "",
    "| hook | CRM | what the connector asks |",
    "|---|---|---|",
    ...hookNames.map((hook) => `| [\`${hook}\`](#${hook}) | ${CRMS[hookCatalog[hook].crm]} | ${cell(hookCatalog[hook].summary)} |`),
    "",
  ];
  for (const hook of hookNames) {
    const spec = hookCatalog[hook];
    const input = jsonSchema(spec.input);
    const data = jsonSchema(spec.data);
    lines.push(`## ${hook}`, "");
    lines.push(
      `${spec.summary}. CRM: ${CRMS[spec.crm]}.${spec.connectorTimeoutMs ? ` The connector waits ${spec.connectorTimeoutMs / 1000} s for it.` : ""}`,
      "",
    );
    lines.push(...fieldsTable(input, `Input (\`${pascal(hook)}Input\`)`), "");
    lines.push(...fieldsTable(data, `Data (\`${pascal(hook)}Data\`)`), "");
    lines.push(`Defaults (the data when no script changes anything): ${defaultsText(hook, input)}.`, "");
  }
  lines.push(
    "## The parts of `call_full`",
    "",
    "Scripts see the declared fields below; a field a newer connector adds is still there at run time",
    "(read it with `(call_full as Record<string, unknown>).new_field`).",
    "",
  );
  for (const [name, schema] of Object.entries(NAMED)) {
    const node = jsonSchema(schema);
    lines.push(`### ${name}`, "");
    if (node.description) lines.push(`${node.description}.`, "");
    if (node.enum) lines.push(`One of ${typeText(node).replace(/ \\\| /g, ", ")}.`, "");
    else lines.push(...fieldsTable(node, "Fields", false).slice(2), "");
  }
  return `${lines.join("\n").trimEnd()}\n`;
}
