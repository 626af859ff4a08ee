// @ts-check
// The hook answer through fastify's own serializer (compiled from the zod envelope, as the hook
// route does) against plain JSON.stringify, for the answers the connector typically gets.
//   npm run build && node bench/answer-serializer.mjs
import { readFileSync } from "node:fs";
import path from "node:path";
import Fastify from "fastify";
import { answerSchema } from "../dist/runtime/server/schemas.js";
import { machine, repoRoot, round } from "./lib.mjs";

// fastify's serializer for the schema, exactly as a route with `response: { 200: answerSchema }` gets it.
const app = Fastify();
/** @type {(value: Record<string, unknown>) => string} */
let serialize = () => {
  throw new Error("the serializer was not compiled");
};
app.get("/", (request, reply) => {
  serialize = reply.compileSerializationSchema(answerSchema);
  return "";
});
await app.inject({ url: "/" });
await app.close();

const params = JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", "process_registration_params.incoming.json"), "utf8"));
delete params.call_full;
delete params.call_stage;
const answers = {
  "need_registration {result}": { state: "success", data: { result: false } },
  "process_client_phone {phone}": { state: "success", data: { phone: "+79001234567" } },
  "registration params (9 keys)": { state: "success", data: params },
  "cancel {}": { state: "success", data: {} },
  "error with stack": {
    state: "error",
    error: {
      reason: "exception",
      script: "blacklist-extensions",
      message: "TypeError: Cannot read properties of undefined (reading 'base')",
      location: { file: "blacklist-extensions.ts", line: 12, column: 40 },
      stack: "TypeError: Cannot read properties of undefined (reading 'base')\n    at need_registration (blacklist-extensions.ts:12:40)",
    },
  },
};

/**
 * ns per call: the median of 9 rounds of `n` calls, after a warm-up.
 * @template T
 * @param {(value: T) => unknown} fn
 * @param {T} value
 */
function nsPerCall(fn, value, n = 300_000) {
  for (let i = 0; i < n; i++) fn(value);
  const rounds = [];
  for (let r = 0; r < 9; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(value);
    rounds.push(Number(process.hrtime.bigint() - start) / n);
  }
  return /** @type {number} */ (rounds.sort((a, b) => a - b)[4]);
}

const rows = [];
for (const [name, answer] of Object.entries(answers)) {
  if (JSON.stringify(JSON.parse(serialize(answer))) !== JSON.stringify(JSON.parse(JSON.stringify(answer)))) throw new Error(`${name}: outputs differ`);
  const json = nsPerCall(JSON.stringify, answer);
  const fastify = nsPerCall(serialize, answer);
  rows.push({
    answer: name,
    bytes: JSON.stringify(answer).length,
    "JSON.stringify ns": round(json, 0),
    "fastify ns": round(fastify, 0),
    ratio: round(fastify / json, 2),
  });
}
console.log(JSON.stringify(machine()));
console.table(rows);
