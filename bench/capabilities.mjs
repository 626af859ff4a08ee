// @ts-check
// What a call that waits for the host costs, in process, with real isolates, the server's
// CapabilityHost and a real HTTP server on loopback that answers after a delay (a slow CRM):
//
// 1. Overlap: 16 calls of one script at once, each awaiting one fetch of a 200 ms answer. The
//    calls wait together, so the 16 take about one answer's time; run one after the other they
//    would take 16 × 200 ms.
// 2. Bystanders: the invocation time of calls that do not fetch (same script, another branch; and
//    another script), alone and while 32 calls of the script wait for slow answers.
//
// Run: npm run build && node --no-node-snapshot bench/capabilities.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (5)
import { createServer } from "node:http";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { ScriptSandbox } from "../dist/runtime/sandbox/sandbox.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS } from "../dist/runtime/sandbox/limits.js";
import { CapabilityHost } from "../dist/runtime/capabilities/capabilities.js";
import { kvConfigSchema } from "../dist/runtime/capabilities/config.js";
import { median, quick, round, summarize, table, writeResult } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const SLOW_MS = 200;
const CONCURRENT = 16;
const WAITING = 32;
const BYSTANDER_CALLS = quick ? 200 : 2000;

const crm = createServer((req, res) => {
  const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("ms") ?? 0);
  setTimeout(() => {
    res.setHeader("content-type", "application/json");
    res.end('{"result":[{"ID":"1","ASSIGNED_BY_ID":"7"}]}');
  }, delay);
});
await new Promise((resolve) => crm.listen(0, "127.0.0.1", () => resolve(undefined)));
const origin = `http://127.0.0.1:${/** @type {import("node:net").AddressInfo} */ (crm.address()).port}`;

const dir = mkdtempSync(path.join(tmpdir(), "callscript-bench-caps-"));
writeFileSync(
  path.join(dir, "vip.ts"),
  `import { defineScript } from "callscript";
export default defineScript({ hooks: { async process_client_phone(input, ctx) {
  const ms = (input as { ms?: number }).ms;
  if (ms === undefined) return { phone: "1" };
  const res = await ctx.fetch("${origin}/rest/crm.contact.list.json?ms=" + ms);
  return { phone: String((res.json() as { result: { ASSIGNED_BY_ID: string }[] }).result[0]!.ASSIGNED_BY_ID) };
} } });`,
);
writeFileSync(
  path.join(dir, "plain.ts"),
  `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { process_client_phone() { return { phone: "2" }; } } });`,
);

const options = { defaults: BUILTIN_DEFAULT_LIMITS, max: BUILTIN_MAX_LIMITS, maxQueue: 256 };
/** @param {string} name */
async function load(name) {
  const result = await compileScript(path.join(dir, name), dir);
  if (!result.ok) throw new Error(result.diagnostics.map((d) => d.message).join("\n"));
  return ScriptSandbox.load(result.script, options);
}
const vip = await load("vip.ts");
const plain = await load("plain.ts");
const host = new CapabilityHost({
  scripts: { vip: { fetch: { allow: [origin], timeoutMs: 5_000, maxCalls: 5, maxResponseBytes: 1 << 20, maxRequestBytes: 1 << 16 } } },
  secrets: new Map(),
  kv: kvConfigSchema.parse({}),
  baseDir: dir,
});

let requestNumber = 0;
/**
 * @param {ScriptSandbox} sandbox
 * @param {Record<string, unknown>} input
 */
const call = (sandbox, input) =>
  sandbox.invoke({
    hook: "process_client_phone",
    inputJson: JSON.stringify(input),
    dataJson: '{"phone":""}',
    settingsJson: "{}",
    requestId: `r${++requestNumber}`,
    capabilities: host,
  });
/**
 * @param {import("../dist/runtime/sandbox/sandbox.js").Invocation} invocation
 * @param {string} phone
 */
const expectPhone = (invocation, phone) => {
  if (invocation.outcome.kind !== "data" || invocation.outcome.data.phone !== phone)
    throw new Error(`unexpected answer: ${JSON.stringify(invocation.outcome)}`);
};

// 1. Overlap.
const overlapMs = [];
for (let r = 0; r < ROUNDS; r++) {
  const started = performance.now();
  const all = await Promise.all(Array.from({ length: CONCURRENT }, () => call(vip, { ms: SLOW_MS })));
  overlapMs.push(performance.now() - started);
  for (const invocation of all) expectPhone(invocation, "7");
}

// 2. Bystanders, alone and beside WAITING calls parked on slow answers.
/**
 * @param {ScriptSandbox} sandbox
 * @param {Record<string, unknown>} input
 * @param {string} phone
 */
async function bystanders(sandbox, input, phone) {
  const samples = [];
  for (let i = 0; i < BYSTANDER_CALLS; i++) {
    const started = performance.now();
    expectPhone(await call(sandbox, input), phone);
    samples.push(performance.now() - started);
  }
  return summarize(samples);
}
const rows = [];
for (const [name, sandbox, input, phone] of /** @type {const} */ ([
  ["same script, no fetch", vip, {}, "1"],
  ["another script", plain, {}, "2"],
])) {
  await bystanders(sandbox, input, phone); // warm-up
  const alone = await bystanders(sandbox, input, phone);
  const parked = Array.from({ length: WAITING }, () => call(vip, { ms: 1_500 }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const beside = await bystanders(sandbox, input, phone);
  const waited = await Promise.all(parked);
  for (const invocation of waited) expectPhone(invocation, "7");
  rows.push({
    calls: name,
    "alone p50 µs": alone.p50Us,
    "alone p99 µs": alone.p99Us,
    [`beside ${WAITING} waiting p50 µs`]: beside.p50Us,
    [`beside ${WAITING} waiting p99 µs`]: beside.p99Us,
  });
}

const overlap = { calls: CONCURRENT, answerMs: SLOW_MS, medianMs: round(median(overlapMs)), oneAfterAnotherMs: CONCURRENT * SLOW_MS };
console.log(
  `\n${CONCURRENT} calls, each awaiting a ${SLOW_MS} ms fetch: ${overlap.medianMs} ms in all (median of ${ROUNDS}; one after another: ${overlap.oneAfterAnotherMs} ms)\n`,
);
console.log(table(rows, Object.keys(rows[0] ?? {})));
console.log(`\nwritten to ${writeResult("capabilities", { overlap, bystanders: rows })}`);

await Promise.all([vip.drainAndDispose(), plain.drainAndDispose()]);
await host.close();
crm.close();
rmSync(dir, { recursive: true, force: true });
