import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { passesAsIs } from "../../runtime/schema/as-is.js";
import { hookCatalog, isHookName, type HookName } from "../../runtime/schema/hooks.js";

/**
 * passesAsIs is a shortcut past zod: a body it accepts is used as it came, without zod's parse.
 * So it must never accept what zod refuses or would change; these tests hold it to that, on the
 * recorded payloads, on named edge cases and on generated variations of them.
 */

const PAYLOADS = new URL("../../examples/payloads/", import.meta.url);
const recorded = readdirSync(PAYLOADS)
  .filter((name) => name.endsWith(".json"))
  .sort()
  .map((file) => {
    const hook = file.slice(0, file.indexOf("."));
    if (!isHookName(hook)) throw new Error(`${file}: not a hook`);
    return { file, hook, body: JSON.parse(readFileSync(new URL(file, PAYLOADS), "utf8")) as Record<string, unknown> };
  });

const schemaOf = (hook: HookName): z.ZodType => hookCatalog[hook].input;

/** What zod gives back for the body, or undefined when it refuses it. */
function zodOutput(hook: HookName, body: unknown): unknown {
  const parsed = schemaOf(hook).safeParse(body);
  return parsed.success ? parsed.data : undefined;
}

/** The rule: accepted as is ⇒ zod accepts it and gives back the same value. */
function expectAgrees(hook: HookName, body: unknown): void {
  if (!passesAsIs(schemaOf(hook), body)) return;
  const output = zodOutput(hook, body);
  expect(output, `zod refuses a ${hook} body that passed as is: ${JSON.stringify(body).slice(0, 300)}`).toBeDefined();
  expect(output).toStrictEqual(body);
}

const callFull = () => structuredClone(recorded.find((r) => r.file === "need_registration.incoming-answered.json")!.body);

describe("recorded payloads", () => {
  it.each(recorded.map((r) => [r.file, r] as const))("%s passes as is, and zod gives back the same value", (_file, { hook, body }) => {
    expect(passesAsIs(schemaOf(hook), body)).toBe(true);
    expect(zodOutput(hook, body)).toStrictEqual(body);
  });
});

describe("what zod must see (it would change the body, or refuse it)", () => {
  const cases: [string, (body: any) => void][] = [
    ["a list sent as null (zod makes it [])", (b) => (b.call_full.channel.from.variants = null)],
    ["a map sent as PHP's [] (zod makes it {})", (b) => (b.call_full.channel.extra = [])],
    ["conversations sent as null", (b) => (b.call_full.conversations = null)],
    ["a time not in the PBX's format", (b) => (b.call_full.channel.start_time = "2026-11-20T17:02:51")],
    ["a number where a string goes", (b) => (b.call_full.channel.id = 17)],
    ["a missing field", (b) => delete b.call_full.channel.id],
    ["a result that is not an integer", (b) => (b.call_full.result = 200.5)],
    ["a channel state not in the enum", (b) => (b.call_full.channel.state = "ringing ")],
    ["a string where a boolean goes", (b) => (b.call_full.is_ivr = "false")],
    ["call_full as an array", (b) => (b.call_full = [])],
  ];
  it.each(cases)("%s", (_what, change) => {
    const body = callFull();
    change(body);
    expect(passesAsIs(schemaOf("need_registration"), body)).toBe(false);
    expect(zodOutput("need_registration", body)).not.toStrictEqual(body);
  });

  it("unknown keys pass at every level (the objects are loose), as zod passes them through", () => {
    const body = callFull() as any;
    body.new_field = { any: ["thing"] };
    body.call_full.channel.from.extra_info = 1;
    expect(passesAsIs(schemaOf("need_registration"), body)).toBe(true);
    expect(zodOutput("need_registration", body)).toStrictEqual(body);
  });
});

describe("a key named __proto__ (JSON.parse makes it an own key; zod's copy drops it)", () => {
  it("in a loose map or at the top: not as is, so zod's copy is what runs", () => {
    for (const where of ["top", "raw"] as const) {
      const body = callFull() as any;
      const extra = JSON.parse('{"__proto__": []}') as Record<string, unknown>;
      if (where === "top") Object.defineProperty(body, "__proto__", { value: [], enumerable: true, writable: true, configurable: true });
      else body.call_full.entity = { ...(body.call_full.entity ?? {}), raw: extra };
      expect(Object.keys(where === "top" ? body : body.call_full.entity.raw)).toContain("__proto__");
      expect(passesAsIs(schemaOf("need_registration"), body)).toBe(false);
    }
  });
});

/** Every path to a value in a body. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (value === null || typeof value !== "object") return [prefix];
  return [prefix, ...Object.entries(value as Record<string, unknown>).flatMap(([key, child]) => paths(child, [...prefix, key]))];
}

function replaced(body: Record<string, unknown>, path: string[], value: unknown): unknown {
  if (path.length === 0) return value;
  const copy = structuredClone(body);
  let holder = copy as Record<string, unknown>;
  for (const key of path.slice(0, -1)) holder = holder[key] as Record<string, unknown>;
  holder[path.at(-1)!] = value;
  return copy;
}

const anyValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom(null, true, false, [], {}, "", "0001-01-01 00:00:00", "2026-13-45 99:99:99", 0, -0, 1.5, 2 ** 53 + 1, 1e308, 200, "200"),
  fc.string({ unit: "binary", maxLength: 20 }),
  fc.array(fc.oneof(fc.string(), fc.integer(), fc.constant(null)), { maxLength: 3 }),
);

describe("generated variations of the recorded payloads", () => {
  it("one value replaced anywhere: accepted as is only when zod accepts it unchanged", () => {
    const variation = fc
      .constantFrom(...recorded)
      .chain(({ hook, body }) =>
        fc.tuple(fc.constant(hook), fc.constantFrom(...paths(body)), anyValue).map(([h, path, value]) => ({ hook: h, body: replaced(body, path, value) })),
      );
    fc.assert(
      fc.property(variation, ({ hook, body }) => expectAgrees(hook, body)),
      { numRuns: 3000 },
    );
  });

  it("and the other way: what zod accepts unchanged passes as is (else the shortcut is lost, not the answer)", () => {
    let unchanged = 0;
    const variation = fc
      .constantFrom(...recorded)
      .chain(({ hook, body }) =>
        fc.tuple(fc.constant(hook), fc.constantFrom(...paths(body)), anyValue).map(([h, path, value]) => ({ hook: h, body: replaced(body, path, value) })),
      );
    fc.assert(
      fc.property(variation, ({ hook, body }) => {
        const output = zodOutput(hook, body);
        if (output === undefined) return;
        try {
          expect(output).toStrictEqual(body);
        } catch {
          return;
        }
        unchanged++;
        expect(passesAsIs(schemaOf(hook), body), JSON.stringify(body).slice(0, 300)).toBe(true);
      }),
      { numRuns: 1000 },
    );
    expect(unchanged).toBeGreaterThan(100);
  });
});
