import Fastify from "fastify";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { hookAnswer, type HookAnswer } from "../../runtime/schema/envelope.js";
import { answerSchema } from "../../runtime/server/schemas.js";

/** A route that sends what it is given through fastify's serializer compiled from answerSchema. */
const app = Fastify();
let next: HookAnswer = { state: "success", data: {} };
app.post("/", { schema: { response: { 200: answerSchema } } }, async () => next);
afterAll(() => app.close());

const location = fc.record({ file: fc.string(), line: fc.integer({ min: 1, max: 1e6 }), column: fc.integer({ min: 1, max: 1e4 }) });
const failure = fc.record(
  {
    reason: fc.constantFrom("timeout", "memory", "exception", "invalid_output", "overloaded", "compile", "deadline"),
    script: fc.option(fc.string(), { nil: null }),
    message: fc.string(),
    location,
    stack: fc.string(),
  },
  { requiredKeys: ["reason", "script", "message"] },
);
const answer: fc.Arbitrary<HookAnswer> = fc.oneof(
  fc.record({ state: fc.constant("success" as const), data: fc.dictionary(fc.string(), fc.jsonValue()) }),
  fc.record({ state: fc.constant("error" as const), error: failure }),
);

describe("the answer serializer (fastify's, from the zod envelope)", () => {
  it("writes every answer as JSON.stringify would (data is an open object, nothing dropped or coerced)", async () => {
    await fc.assert(
      fc.asyncProperty(answer, async (value) => {
        expect(hookAnswer.safeParse(value).success).toBe(true);
        next = value;
        const res = await app.inject({ method: "POST", url: "/" });
        expect(res.statusCode).toBe(200);
        expect(JSON.parse(res.payload)).toEqual(JSON.parse(JSON.stringify(value)));
      }),
      { numRuns: 300 },
    );
  });

  it("keeps data keys that look like the envelope's own", async () => {
    next = { state: "success", data: { state: "error", error: { x: 1 }, data: [1, "2", null], "": true, __proto__x: 1 } };
    const res = await app.inject({ method: "POST", url: "/" });
    expect(res.payload).toBe(JSON.stringify(next));
  });
});
