import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hookAnswer } from "../../runtime/schema/envelope.js";
import { hookNames } from "../../runtime/schema/hooks.js";
import { httpError } from "../../runtime/server/schemas.js";
import { script } from "../helpers/scripts.js";
import { LEVEL, payload, startServer, type TestServer } from "../server/helpers.js";

/**
 * Property-based tests of the HTTP API with generated bodies, valid and hostile: arbitrary JSON,
 * valid payloads with one field replaced (wrong types, unicode, huge numbers, deep nesting, long
 * strings), raw texts JSON.parse reads in surprising ways (duplicate keys, 1e400, __proto__ keys,
 * deep nesting, lone surrogates), unknown hooks and odd content types. Whatever comes in:
 * never a 500 and never a crash; the status is one of the contract's (200, 400, 404, 413, 503);
 * 200 and 503 bodies are answers of the envelope schema; 400 bodies name every bad field by its
 * path; and the server answers a valid request right after every run. numRuns is bounded so the
 * file stays within seconds.
 */

const BODY_LIMIT = 32 * 1024;
const STATUSES = [200, 400, 404, 413, 503];
const RUNS = 200;

/** Statuses answered, by property: each hostile generator must reach more than one. */
const statuses = new Map<string, number>();

let server: TestServer;
beforeAll(async () => {
  server = await startServer(
    {
      "registration.ts": script("need_registration", `return { result: input.call_full.channel.type !== "internal" };`),
      "phone.ts": script("process_client_phone", `return { phone: String(input.phone).replace(/\\D/g, "") || input.phone };`),
      "task.ts": script("process_task_creation_params", `return { TITLE: "Missed call", KEYS: Object.keys(input).length };`),
      "entity.ts": script(
        "customize_entity",
        `if (Object.keys(input.entity).length > 5) throw new Error("too many fields"); return { ...input.entity, SEEN: true };`,
      ),
      "record.ts": script("process_record_file_path", `return { path: input.path.toUpperCase() };`),
    },
    { bodyLimitBytes: BODY_LIMIT },
  );
});
afterAll(async () => server?.close());

/** Valid inputs, one per hook under test (process_originate_params has no script: its defaults). */
const valid: Record<string, () => Record<string, unknown>> = {
  need_registration: () => payload("need_registration.incoming-answered"),
  process_client_phone: () => payload("process_client_phone.incoming-8-format"),
  process_task_creation_params: () => ({ ...payload("need_registration.incoming-missed"), TITLE: "t" }),
  customize_entity: () => ({ call_full: payload("need_registration.incoming-answered").call_full, entity: { TITLE: "Acme" } }),
  process_record_file_path: () => payload("process_record_file_path"),
  process_originate_params: () => payload("process_originate_params.click-to-call"),
};
const hooks = Object.keys(valid);

interface Sent {
  hook: string;
  body: string;
  contentType?: string;
}

/** An empty `contentType` sends none. */
function post({ hook, body, contentType = "application/json" }: Sent) {
  return server.post(hook, body, { "content-type": contentType || undefined });
}

/** Every property a response must have, whatever was sent. */
async function expectContract(sent: Sent): Promise<void> {
  const response = await post(sent);
  statuses.set(String(response.statusCode), (statuses.get(String(response.statusCode)) ?? 0) + 1);
  const where = `${sent.hook} ← ${sent.body.slice(0, 300)}`;
  expect(STATUSES, where).toContain(response.statusCode);
  expect(response.headers["content-type"], where).toMatch(/^application\/json/);
  const body = JSON.parse(response.body) as Record<string, unknown>;
  switch (response.statusCode) {
    case 200:
    case 503: {
      const answer = hookAnswer.safeParse(body);
      expect(answer.success, `${where}\n→ ${response.body.slice(0, 300)}`).toBe(true);
      if (response.statusCode === 503) expect(body).toMatchObject({ state: "error", error: { reason: "overloaded" } });
      break;
    }
    case 400: {
      const error = httpError.safeParse(body);
      expect(error.success, where).toBe(true);
      expect(body.code, where).toMatch(/^CS_ERR_INVALID_(INPUT|JSON)$/);
      const issues = body.issues as { path: string; message: string }[];
      expect(issues.length, where).toBeGreaterThan(0);
      for (const issue of issues) {
        expect(issue.path.length, where).toBeGreaterThan(0);
        expect(issue.message.length, where).toBeGreaterThan(0);
      }
      break;
    }
    case 404:
      expect(body, where).toMatchObject({ statusCode: 404 });
      expect(["CS_ERR_UNKNOWN_HOOK", "CS_ERR_NOT_FOUND"], where).toContain(body.code);
      if (body.code === "CS_ERR_UNKNOWN_HOOK") expect(body.message, where).toContain("Known hooks: need_registration");
      break;
    case 413:
      expect(body, where).toMatchObject({ statusCode: 413, code: "CS_ERR_BODY_TOO_LARGE" });
      break;
  }
}

/** After a run: a valid request still gets its right answer, and nothing was logged as a failure. */
async function expectServing(): Promise<void> {
  const answer = await post({ hook: "need_registration", body: JSON.stringify(valid.need_registration!()) });
  expect(answer.statusCode).toBe(200);
  expect(answer.json()).toEqual({ state: "success", data: { result: true } });
  const phone = await post({ hook: "process_client_phone", body: JSON.stringify(valid.process_client_phone!()) });
  expect(phone.json()).toMatchObject({ state: "success" });
  const failures = server.logs.filter((line) => line.level >= LEVEL.error);
  expect(failures.map((line) => line.msg)).toEqual([]);
}

// ---- generators ------------------------------------------------------------------------------

/** Strings of every kind: any code unit (lone surrogates too), graphemes, long runs. */
const anyString = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
  fc.string({ unit: fc.constantFrom("\u0000", "\u2028", "\ud800", "\udfff", "\ufeff", "é", "😀", "\\", '"'), maxLength: 20 }),
  fc.integer({ min: 1, max: 40_000 }).map((n) => "x".repeat(n)),
);

/** Numbers, huge and odd ones included (as values; JSON writes them as it can). */
const anyNumber = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constantFrom(0, -0, 2 ** 53 + 1, 1e308, -1e308, 5e-324));

/** Nested arrays and objects, from shallow to far past any sane depth. */
const nested = fc.tuple(fc.integer({ min: 1, max: 2_000 }), fc.boolean()).map(([depth, arrays]) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
  return value;
});

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  anyString,
  anyNumber,
  fc.constantFrom(null, true, false, [], {}),
  nested,
  fc.dictionary(anyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 8 }),
);

/** Every path to a value in a valid input, to replace one of them. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== "object") return [prefix];
  const own = Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => paths(child, [...prefix, key]));
  return [prefix, ...own];
}

function replaced(input: Record<string, unknown>, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(input) as Record<string, unknown>;
  let holder = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  holder[path.at(-1)!] = value;
  return copy;
}

/** A valid input with one field (or the whole body) replaced by any value, or a field added. */
const mutated = fc.constantFrom(...hooks).chain((hook) => {
  const input = valid[hook]!();
  return fc.record({
    hook: fc.constant(hook),
    body: fc.oneof(
      fc.tuple(fc.constantFrom(...paths(input)), anyValue).map(([path, value]) => JSON.stringify(replaced(input, path, value))),
      fc.tuple(anyString, anyValue).map(([key, value]) => JSON.stringify({ ...input, [key]: value })),
    ),
  });
});

/** Raw texts: what JSON.parse reads in surprising ways, spliced into a valid input of the hook. */
const rawText = fc.constantFrom(...hooks).chain((hook) => {
  const inner = JSON.stringify(valid[hook]!()).slice(1, -1);
  const around = (extra: string) => `{${inner},${extra}}`;
  return fc.record({
    hook: fc.constant(hook),
    body: fc.oneof(
      // Duplicate keys: the last one wins.
      fc
        .tuple(fc.constantFrom("phone", "path", "call_full", "entity", "params", "x"), fc.jsonValue({ maxDepth: 2 }))
        .map(([key, value]) => around(`"${key}": ${JSON.stringify(value)}, "${key}": 1`)),
      // Number literals past a double, or exact integers past 2^53.
      fc
        .constantFrom("1e400", "-1e400", "123456789012345678901234567890", "1E+308", "0.00000000000000000000000000000000000001", "-0")
        .map((n) => around(`"n": ${n}`)),
      fc.constantFrom("1e400", "-1e999").map((n) => `{${inner.replace(/"result":\s*\d+/, `"result": ${n}`)}}`),
      // Keys that would pollute a prototype, at any depth.
      fc
        .constantFrom(`"__proto__": {"polluted": 1}`, `"a": {"b": [{"__proto__": {"polluted": 1}}]}`, `"constructor": {"prototype": {"polluted": 1}}`)
        .map(around),
      // Deep nesting, up to 100 000 levels (200 KB: past the body limit too).
      fc
        .tuple(fc.integer({ min: 1, max: 100_000 }), fc.boolean())
        .map(([depth, arrays]) => around(`"deep": ${arrays ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth)}`)),
      // Escapes JSON allows and UTF-16 does not pair.
      fc.constantFrom("\\ud800", "\\udfff\\ud800", "\\u0000", "\\u2028", "\\\\", '\\"').map((escape) => around(`"s": "${escape}"`)),
      // Not JSON, or not an object.
      fc.constantFrom(
        "",
        " ",
        "{",
        "}",
        "[",
        "null",
        "true",
        "1",
        '"x"',
        "[]",
        "{}",
        "{,}",
        `{${inner}`,
        `${around("")}`,
        "\ufeff{}",
        "{'a': 1}",
        "NaN",
        '{"a": undefined}',
      ),
      // Arbitrary text.
      fc.string({ unit: "binary", maxLength: 200 }),
    ),
  });
});

const contentTypes = fc.constantFrom(
  undefined,
  "application/json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "application/json; charset=utf-8",
  "application/octet-stream",
  "",
);

// ---- properties ------------------------------------------------------------------------------

describe("the HTTP API under generated bodies", () => {
  it("arbitrary JSON as the body of any hook", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...hooks), fc.jsonValue({ maxDepth: 6 }), async (hook, body) => expectContract({ hook, body: JSON.stringify(body) })),
      { numRuns: RUNS },
    );
    await expectServing();
  });

  it("valid inputs with one field replaced by a hostile value (wrong types, unicode, huge numbers, deep nesting, long strings)", async () => {
    statuses.clear();
    await fc.assert(
      fc.asyncProperty(mutated, async (sent) => expectContract(sent)),
      { numRuns: RUNS * 2 },
    );
    expect([...statuses.keys()].sort()).toEqual(["200", "400", "413"]);
    await expectServing();
  });

  it("raw texts: duplicate keys, 1e400, __proto__ keys, 100 000 levels of nesting, lone surrogates, not JSON", async () => {
    statuses.clear();
    await fc.assert(
      fc.asyncProperty(rawText, contentTypes, async (sent, contentType) => expectContract({ ...sent, contentType })),
      { numRuns: RUNS * 2 },
    );
    expect([...statuses.keys()].sort()).toEqual(["200", "400", "413"]);
    await expectServing();
  });

  it("unknown hooks, whatever their name", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary", minLength: 1, maxLength: 60 }).filter((name) => !(hookNames as string[]).includes(name)),
        fc.jsonValue({ maxDepth: 2 }),
        async (hook, body) => {
          const response = await post({ hook, body: JSON.stringify(body) });
          expect(response.statusCode, hook).toBe(404);
          await expectContract({ hook, body: JSON.stringify(body) });
        },
      ),
      { numRuns: RUNS },
    );
    await expectServing();
  });

  it("valid inputs always get their hook's answer", async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...hooks), contentTypes, async (hook, contentType) => {
        const response = await post({ hook, body: JSON.stringify(valid[hook]!()), contentType });
        expect(response.statusCode, hook).toBe(200);
        expect(response.json(), hook).toMatchObject({ state: "success" });
      }),
      { numRuns: 40 },
    );
  });

  it("the answers for the known hostile values, pinned", async () => {
    const input = valid.process_task_creation_params!();
    const send = (extra: string) => post({ hook: "process_task_creation_params", body: `{${JSON.stringify(input).slice(1, -1)},${extra}}` });
    // Duplicate keys: the last wins.
    expect((await send(`"TITLE": "a", "TITLE": "b"`)).json()).toMatchObject({ state: "success", data: { TITLE: "Missed call" } });
    // Past 2^53 an integer reads as the nearest double; it is not refused.
    expect((await send(`"BIG": 123456789012345678901234567890`)).json()).toMatchObject({ state: "success", data: { BIG: 1.2345678901234568e29 } });
    // Past a double it would be Infinity, hence null: refused with its path.
    expect((await send(`"BIG": 1e400`)).json()).toMatchObject({ statusCode: 400, issues: [{ path: "BIG" }] });
    // 64 levels of nesting are accepted; 65 are not.
    expect((await send(`"deep": ${"[".repeat(64)}${"]".repeat(64)}`)).statusCode).toBe(200);
    expect((await send(`"deep": ${"[".repeat(65)}${"]".repeat(65)}`)).json()).toMatchObject({
      statusCode: 400,
      issues: [{ message: "nested deeper than 64 levels" }],
    });
    // A lone surrogate goes through, escaped.
    const lone = await send(`"S": "\\ud800"`);
    expect(lone.statusCode).toBe(200);
    expect(lone.body).toContain('"S":"\\ud800"');
    await expectServing();
  });
});
