import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseYaml } from "../util/yaml.js";
import { z } from "zod";
import { cannedFetchSchema, cannedKvSchema } from "../capabilities/canned.js";
import { parseHookInput, unknownHook } from "../schema/hook-input.js";
import { closest } from "../util/closest.js";
import { failureReason } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";

/**
 * The cases file: test cases for one script (`NAME.cases.json` beside `NAME.ts`) or for a hook's
 * whole pipeline (`pipeline.cases.json`, `NAME.pipeline.cases.json`). JSON or YAML. This schema
 * is the one definition of the format: the runner parses with it and `init` writes its JSON
 * Schema for editors.
 */

const settingsRecord = z.record(z.string(), z.unknown());

/** zod's message for a missing field is "expected object, received undefined"; say what is missing. */
const required = (what: string) => ({ error: (issue: { input?: unknown }) => (issue.input === undefined ? `required: ${what}` : undefined) });

export const caseExpect = z
  .strictObject(
    {
      data: settingsRecord.optional().describe("The answer's data, compared whole (deep equality): the hook's defaults with the script's changes"),
      changes: settingsRecord
        .optional()
        .describe(
          "Only the fields the scripts change, with their values: the answer's data must be the hook's defaults for this input with exactly these fields changed ({} : nothing changed)",
        ),
      cancel: z.literal(true).optional().describe("The script cancels the CRM request (returns cancel())"),
      error: failureReason.optional().describe("The answer is an error with this reason"),
      kv: settingsRecord
        .optional()
        .describe(
          "Besides the answer: the script's KV after the case, compared whole (key → JSON value; {} : no key). In a pipeline cases file: keyed by script name",
        ),
    },
    required('the answer expected: { "changes": {...} }, { "data": {...} }, { "cancel": true } or { "error": "<reason>" }'),
  )
  .superRefine((value, ctx) => {
    const given = (["data", "changes", "cancel", "error"] as const).filter((key) => value[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message: `expect needs exactly one of changes, data, cancel, error${given.length ? ` (got ${given.join(", ")})` : ""}`,
      });
    }
  })
  .describe("What the answer must be: { changes }, { data }, { cancel: true } or { error: reason }");
export type CaseExpect = z.output<typeof caseExpect>;

/** A typo gets its suggestion alone; anything else gets the list of hooks. */
function unknownHookMessage(input: unknown): string {
  if (input === undefined) return "required: the hook to call, e.g. need_registration";
  const suggestion = typeof input === "string" ? closest(input, hookNames) : undefined;
  return suggestion ? `Unknown hook '${String(input)}'. Did you mean '${suggestion}'?` : unknownHook(String(input)).message;
}

export const testCase = z
  .strictObject({
    name: z.string(required("the case's name")).min(1, "name must not be empty").describe("Shown in the report; --filter matches it"),
    hook: z.enum(hookNames as [HookName, ...HookName[]], { error: (issue) => unknownHookMessage(issue.input) }).describe("The hook to call"),
    input: settingsRecord.optional().describe("The hook input, as the connector POSTs it"),
    inputFile: z
      .string()
      .min(1)
      .optional()
      .describe("A JSON file with the hook input, relative to this cases file (e.g. payloads/need_registration.incoming-missed.json)"),
    settings: settingsRecord
      .optional()
      .describe("Settings for this case, over the script's defaults and the config's. In a pipeline cases file: keyed by script name"),
    skip: z.union([z.boolean(), z.string()]).optional().describe("Skip this case (true, or the reason why)"),
    fetch: z
      .array(cannedFetchSchema)
      .optional()
      .describe(
        "The answers the scripts' ctx.fetch calls get: each entry answers one call of its method and URL, in list order. Nothing reaches the network: a fetch no entry answers fails the case, naming its URL, and so does an entry no fetch used",
      ),
    kv: cannedKvSchema
      .optional()
      .describe("The script's KV (ctx.kv) at the start of the case: key → JSON value; empty when absent. In a pipeline cases file: keyed by script name"),
    expect: caseExpect,
  })
  .superRefine((value, ctx) => {
    if ((value.input === undefined) === (value.inputFile === undefined)) {
      ctx.addIssue({ code: "custom", path: ["input"], message: "give exactly one of input, inputFile" });
    }
  });
export type TestCase = z.output<typeof testCase>;

/**
 * The file: `{ "$schema": "./cases.schema.json", "cases": [...] }` (the form `init` writes: the
 * `$schema` gives editor completion), or the list of cases alone. Each case is checked on its own,
 * so that one bad case fails alone.
 */
function casesFileOf(item: z.ZodType) {
  const list = z.array(item).describe("The test cases");
  return z
    .union([
      z.strictObject({
        $schema: z.string().optional().describe("The JSON Schema of this file, for editor completion"),
        cases: list,
      }),
      list,
    ])
    .describe("callscript test cases");
}

export const casesFile = casesFileOf(z.unknown());
const casesFileForEditors = casesFileOf(testCase);

/** JSON Schema of the cases file, for editors (`$schema`): draft-07, which every editor reads. */
export function casesJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(casesFileForEditors, {
    target: "draft-7",
    io: "input",
    override: (ctx) => {
      // What the superRefines check, in a form editors understand.
      if (ctx.zodSchema === testCase) {
        ctx.jsonSchema.oneOf = [{ required: ["input"] }, { required: ["inputFile"] }];
      } else if (ctx.zodSchema === caseExpect) {
        ctx.jsonSchema.oneOf = [{ required: ["data"] }, { required: ["changes"] }, { required: ["cancel"] }, { required: ["error"] }];
      }
    },
  }) as Record<string, unknown>;
  return { ...schema, title: "callscript cases file" };
}

export const CASES_SCHEMA_FILE = "cases.schema.json";

const CASES_EXTENSIONS = [".cases.json", ".cases.yaml", ".cases.yml"];
const CASES_FILE = /\.cases\.(json|ya?ml)$/i;
const PIPELINE_CASES_FILE = /(^|\.)pipeline\.cases\.(json|ya?ml)$/i;

export function isCasesFile(file: string): boolean {
  return CASES_FILE.test(path.basename(file));
}

/** Pipeline cases run against every script of the folder that implements the hook. */
export function isPipelineCasesFile(file: string): boolean {
  return PIPELINE_CASES_FILE.test(path.basename(file));
}

/** The cases files of a script that exist: `NAME.cases.json` (or `.yaml`, `.yml`) beside `NAME.ts`. */
export function casesFilesOf(scriptFile: string): string[] {
  const base = scriptFile.replace(/\.m?ts$/, "");
  return CASES_EXTENSIONS.map((extension) => base + extension).filter((file) => existsSync(file));
}

/** The script a cases file belongs to: `NAME.cases.json` → `NAME.ts` beside it. */
export function scriptFileOf(casesFile: string): string {
  return path.join(path.dirname(casesFile), path.basename(casesFile).replace(CASES_FILE, ".ts"));
}

/** A problem found in a cases file or an input, named by file and field path. */
export interface CaseProblem {
  file: string;
  /** The field path inside the file, e.g. `cases[2].expect.error` or `call_full.channel.type`. */
  path?: string;
  message: string;
}

export type CaseEntry = { index: number; name: string; ok: true; testCase: TestCase } | { index: number; name: string; ok: false; problems: CaseProblem[] };

export type ReadCases = { ok: true; entries: CaseEntry[] } | { ok: false; problems: CaseProblem[] };

function pathText(base: string, segments: readonly PropertyKey[]): string {
  let text = base;
  for (const segment of segments) {
    text += typeof segment === "number" ? `[${segment}]` : text === "" ? String(segment) : `.${String(segment)}`;
  }
  return text;
}

function readText(file: string): { ok: true; text: string } | { ok: false; reason: string } {
  try {
    return { ok: true, text: readFileSync(file, "utf8") };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === "ENOENT" ? "no such file" : code === "EISDIR" ? "it is a folder" : String(code ?? error) };
  }
}

function parseText(file: string, text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  const yaml = /\.ya?ml$/i.test(file);
  try {
    return { ok: true, value: yaml ? parseYaml(text) : JSON.parse(text) };
  } catch (error) {
    return { ok: false, message: `is not valid ${yaml ? "YAML" : "JSON"}: ${(error as Error).message}` };
  }
}

/**
 * Read a cases file. The file as a whole must parse and hold `{ cases: [...] }`; each case is
 * then checked on its own, so a malformed case is reported (with its field path) and fails alone.
 */
export function readCasesFile(file: string): ReadCases {
  const read = readText(file);
  if (!read.ok) return { ok: false, problems: [{ file, message: `cannot be read: ${read.reason}` }] };
  const parsed = parseText(file, read.text);
  if (!parsed.ok) return { ok: false, problems: [{ file, message: parsed.message }] };
  const shape = casesFile.safeParse(parsed.value);
  if (!shape.success) {
    // Inside an object meant to be { cases }: what is wrong there (the union's first branch).
    const isObject = parsed.value !== null && typeof parsed.value === "object" && !Array.isArray(parsed.value);
    const issues = isObject
      ? shape.error.issues.flatMap((issue) => (issue.code === "invalid_union" ? (issue.errors[0] ?? []) : [issue]))
      : [{ path: [], message: 'must hold { "cases": [ ... ] } or a list of cases' }];
    return { ok: false, problems: issues.map((issue) => ({ file, path: pathText("", issue.path) || "(file)", message: issue.message })) };
  }
  const cases = Array.isArray(shape.data) ? shape.data : shape.data.cases;
  const entries = cases.map((raw, index): CaseEntry => {
    const given = raw !== null && typeof raw === "object" ? (raw as { name?: unknown }).name : undefined;
    const name = typeof given === "string" && given !== "" ? given : `case #${index + 1}`;
    const checked = testCase.safeParse(raw);
    if (checked.success) return { index, name, ok: true, testCase: checked.data };
    return {
      index,
      name,
      ok: false,
      problems: checked.error.issues.map((issue) => ({ file, path: pathText(`cases[${index}]`, issue.path), message: issue.message })),
    };
  });
  return { ok: true, entries };
}

export type CaseInput = { ok: true; input: Record<string, unknown>; inputJson: string } | { ok: false; problems: CaseProblem[] };

/**
 * The case's hook input, read (inputFile, relative to the cases file) and checked against the
 * hook's input schema exactly as the server checks a request body.
 */
export function caseInput(testCaseValue: TestCase, index: number, casesFilePath: string): CaseInput {
  let body: unknown;
  let file = casesFilePath;
  let base = `cases[${index}].input`;
  if (testCaseValue.inputFile !== undefined) {
    file = path.resolve(path.dirname(casesFilePath), testCaseValue.inputFile);
    base = "";
    const read = readText(file);
    if (!read.ok) {
      return {
        ok: false,
        problems: [{ file: casesFilePath, path: `cases[${index}].inputFile`, message: `${testCaseValue.inputFile} cannot be read: ${read.reason} (${file})` }],
      };
    }
    const parsed = parseText(file, read.text);
    if (!parsed.ok) return { ok: false, problems: [{ file, message: parsed.message }] };
    body = parsed.value;
  } else {
    body = testCaseValue.input;
  }
  const checked = parseHookInput(testCaseValue.hook, body);
  if (checked.ok) return { ok: true, input: checked.input, inputJson: checked.inputJson };
  return {
    ok: false,
    problems: checked.issues.map((issue) => ({
      file,
      path: issue.path === "(body)" ? base || "(file)" : base ? `${base}.${issue.path}` : issue.path,
      message: `not a valid ${testCaseValue.hook} input: ${issue.message}`,
    })),
  };
}
