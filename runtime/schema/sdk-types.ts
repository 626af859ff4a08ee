import { z } from "zod";
import { callFull, channel, channelState, channelType, conversation, entity, numberData, registration, user } from "./call-full.js";
import { callStage, hookCatalog, hookNames } from "./hooks.js";

/**
 * The SDK's types, written out from the zod schemas as plain interfaces:
 * `sdk/hook-types.generated.ts`. Scripts are type-checked against these (by their editor, by
 * `callscript check` and by the server's `typecheck` gate) instead of the types zod infers, for
 * two reasons measured on the examples: checking a script needs 59 declaration files instead of
 * 162 (zod's own), ten times less time; and an error names the SDK's type (`Property 'chanel'
 * does not exist on type 'CallFull'`) instead of printing its whole expansion.
 *
 * The schemas stay the one source of truth: the file is generated from them (`npm run generate`),
 * a test fails when it is not what this function writes, and sdk-types-agree.ts fails the build
 * when a generated type and the type zod infers differ.
 *
 * As the SDK's `Known` did, `call_full` and its parts have their declared fields only (a misspelt
 * field is a compile error); a hook's input and data keep `[key: string]: unknown` where the schema
 * passes unknown keys through.
 */

/** The parts of `call_full`, by the name the SDK gives them; they are written without index signatures. */
const NAMED = {
  CallStage: callStage,
  ChannelState: channelState,
  ChannelType: channelType,
  NumberData: numberData,
  Channel: channel,
  User: user,
  Conversation: conversation,
  Entity: entity,
  Registration: registration,
  CallFull: callFull,
};
const DECLARED_ONLY = new Set(["NumberData", "Channel", "User", "Conversation", "Entity", "Registration", "CallFull"]);

type Schema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: Schema | boolean;
  description?: string;
};

/** `need_registration` → `NeedRegistration`. */
export const pascal = (hook: string) => hook.replace(/(^|_)([a-z])/g, (_, __, letter: string) => letter.toUpperCase());

/**
 * A schema as JSON Schema (its output), with the parts named in `named` as `$ref`s to `$defs` of
 * those names, and the descriptions `.describe()` gave. Those live in zod's global registry, so
 * the names are added there for the length of the call (synchronous: nothing else runs meanwhile)
 * and the registry is put back as it was.
 */
export function namedJsonSchema<S>(schema: z.ZodType, named: Record<string, z.ZodType>): S & { $defs?: Record<string, S> } {
  const registry = z.globalRegistry;
  const saved = new Map<z.ZodType, z.GlobalMeta | undefined>();
  for (const [id, part] of Object.entries(named)) {
    if (part === schema || saved.has(part)) continue;
    saved.set(part, registry.get(part));
    registry.add(part, { ...registry.get(part), id });
  }
  try {
    return z.toJSONSchema(schema, { io: "output", unrepresentable: "any" }) as unknown as S & { $defs?: Record<string, S> };
  } finally {
    for (const [part, meta] of saved) {
      registry.remove(part);
      if (meta) registry.add(part, meta);
    }
  }
}

const jsonSchema = (schema: z.ZodType) => namedJsonSchema<Schema>(schema, NAMED);

const indent = (text: string, by: string) =>
  text
    .split("\n")
    .map((line) => (line ? by + line : line))
    .join("\n");
const doc = (text: string | undefined, by: string) => (text ? `${by}/** ${text.replace(/\*\//g, "*\\/")} */\n` : "");
const key = (name: string) => (/^[A-Za-z_$][\w$]*$/.test(name) ? name : JSON.stringify(name));

function union(types: string[]): string {
  const unique = [...new Set(types)];
  return unique.length === 0 ? "never" : unique.join(" | ");
}

/** A JSON Schema node as a TypeScript type. */
function typeOf(node: Schema, declaredOnly: boolean): string {
  if (node.$ref) return node.$ref.replace("#/$defs/", "");
  if (node.anyOf ?? node.oneOf) return union((node.anyOf ?? node.oneOf)!.map((member) => typeOf(member, declaredOnly)));
  if (node.const !== undefined) return JSON.stringify(node.const);
  if (node.enum) return union(node.enum.map((value) => JSON.stringify(value)));
  if (Array.isArray(node.type)) return union(node.type.map((type) => typeOf({ ...node, type }, declaredOnly)));
  switch (node.type) {
    case "string":
      return "string";
    case "number":
    case "integer":
      return "number";
    case "boolean":
      return "boolean";
    case "null":
      return "null";
    case "array": {
      const item = node.items ? typeOf(node.items, declaredOnly) : "unknown";
      return /[ |]/.test(item) ? `(${item})[]` : `${item}[]`;
    }
    case "object":
      return objectOf(node, declaredOnly);
    case undefined:
      return "unknown";
    default:
      throw new Error(`sdk-types: no TypeScript type for JSON Schema type ${node.type}`);
  }
}

function objectOf(node: Schema, declaredOnly: boolean): string {
  const properties = Object.entries(node.properties ?? {});
  const extra = node.additionalProperties;
  const extraType = extra === undefined || extra === false ? undefined : extra === true ? "unknown" : typeOf(extra, declaredOnly);
  if (properties.length === 0) return extraType === undefined ? "{}" : `Record<string, ${extraType}>`;
  const required = new Set(node.required ?? []);
  const lines: string[] = [];
  if (extraType !== undefined && !declaredOnly) lines.push(`[key: string]: ${extraType};`);
  for (const [name, property] of properties) {
    lines.push(`${doc(property.description, "")}${key(name)}${required.has(name) ? "" : "?"}: ${typeOf(property, declaredOnly)};`);
  }
  return `{\n${indent(lines.join("\n"), "  ")}\n}`;
}

/** A named type: an interface for an object, a type alias otherwise. */
function declaration(name: string, node: Schema, declaredOnly: boolean, description?: string): string {
  const type = typeOf(node, declaredOnly);
  const comment = doc(description ?? node.description, "");
  return type.startsWith("{") ? `${comment}export interface ${name} ${type}\n` : `${comment}export type ${name} = ${type};\n`;
}

/** The text of `sdk/hook-types.generated.ts`. */
export function sdkTypesSource(): string {
  const defs = new Map<string, Schema>();
  const hooks: string[] = [];
  for (const hook of hookNames) {
    const spec = hookCatalog[hook];
    const input = jsonSchema(spec.input);
    const data = jsonSchema(spec.data);
    for (const [name, node] of Object.entries({ ...input.$defs, ...data.$defs })) defs.set(name, node);
    const base = pascal(hook);
    hooks.push(declaration(`${base}Input`, input, false, `The input of ${hook}: ${spec.summary}.`));
    hooks.push(declaration(`${base}Data`, data, false, `The data of ${hook}: its defaults, and what a script may change.`));
  }
  const named = Object.keys(NAMED)
    .filter((name) => defs.has(name))
    .map((name) => declaration(name, defs.get(name)!, DECLARED_ONLY.has(name), NAMED[name as keyof typeof NAMED].description));
  const map = (suffix: string) => hookNames.map((hook) => `  ${hook}: ${pascal(hook)}${suffix};`).join("\n");
  return [
    "// Generated from the zod schemas of runtime/schema/ by runtime/schema/sdk-types.ts (npm run generate):",
    "// do not edit. test/sdk/generated-types.test.ts fails when it falls behind them, and",
    "// runtime/schema/sdk-types-agree.ts fails the build when a type here differs from the one zod infers.",
    "",
    ...named,
    ...hooks,
    `/** Every hook's input, by hook name. */\nexport interface HookInputs {\n${map("Input")}\n}\n`,
    `/** Every hook's data, by hook name. */\nexport interface HookDatas {\n${map("Data")}\n}\n`,
    `/** A hook of the catalog. */\nexport type HookName = keyof HookInputs;\n`,
  ].join("\n");
}
