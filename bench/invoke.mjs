// @ts-check
// Cost of one invocation in process: a direct function call, node:vm, and the callscript sandbox
// (limits on), for a 2 KB and a 60 KB payload, measured in the same run, the variants taking turns
// in rounds. Beside them, the floor of any call into an isolate: isolated-vm's async apply of a
// function that does nothing (and applySync, which would block the event loop, for scale).
// Run: npm run build && node --no-node-snapshot bench/invoke.mjs
// Env: BENCH_QUICK=1 (2 000 calls instead of 20 000), BENCH_ITERATIONS
import { readFileSync } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import * as esbuild from "esbuild";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { configSchema } from "../dist/runtime/config.js";
import { callHook } from "../dist/runtime/dispatch/hook-call.js";
import { parseHookInput } from "../dist/runtime/schema/hook-input.js";
import { loadScriptFile, sandboxOptionsFrom } from "../dist/runtime/registry/load-script.js";
import { isolatedVm } from "../dist/runtime/sandbox/ivm.js";
import { hookCatalog } from "../dist/runtime/schema/hooks.js";
import { gatheredApplies, machine, median, quick, repoRoot, round, summarize, table, timeCalls, writeResult } from "./lib.mjs";

const examples = path.join(repoRoot, "examples");
const scriptFile = path.join(examples, "blacklist-extensions.ts");
const payloads = {
  "2 KB (one conversation)": "need_registration.incoming-answered.json",
  "60 KB (twenty conversations)": "need_registration.large-20-conversations.json",
};
const iterations = Number(process.env.BENCH_ITERATIONS ?? (quick ? 2000 : 20000));
const TARGET_OVERHEAD_US = 40;
const warmup = Math.min(2000, iterations / 4);

// Direct: the same script, bundled for Node and called in this realm with an already parsed input.
const direct = await esbuild.build({
  entryPoints: [scriptFile],
  bundle: true,
  write: false,
  format: "esm",
  platform: "node",
  alias: { callscript: path.join(repoRoot, "sdk/index.ts") },
});
const directModule = await import(`data:text/javascript;base64,${Buffer.from(direct.outputFiles[0]?.text ?? "").toString("base64")}`);
const directHandler = directModule.default.hooks.need_registration;
const directSettings = Object.freeze({ ...directModule.default.settings });
const noopLog = { debug() {}, info() {}, warn() {}, error() {} };

// node:vm: the callscript bundle (prelude included) in a fresh context of this isolate: the same
// protocol, JSON strings in and out, without a separate isolate or limits.
const compiled = await compileScript(scriptFile, examples);
if (!compiled.ok) throw new Error("example does not compile");
const context = vm.createContext({});
// The prelude and the bundle as one text: node:vm has no line offset to keep them apart.
const vmEntry = new vm.Script(compiled.script.runtime.code + compiled.script.code).runInContext(context);

const config = configSchema.parse({ scriptsDir: examples });
const loaded = await loadScriptFile(scriptFile, examples, config);
if (!loaded.ok) throw new Error(loaded.failure.message);
const { sandbox } = loaded.script;
// The same script as a busy server runs it (its event loop over 80% used): calls gathered in a loop
// turn go to the isolate in one task (config batchCalls), or one task each with batchCalls off.
/** @param {boolean} batch */
async function busyServerSandbox(batch) {
  const busy = await loadScriptFile(scriptFile, examples, config, { sandbox: { ...sandboxOptionsFrom(config), loopBusy: () => true, batch } });
  if (!busy.ok) throw new Error(busy.failure.message);
  return busy.script.sandbox;
}
const batching = await busyServerSandbox(true);
const oneTaskEach = await busyServerSandbox(false);
const { settingsJson } = loaded.script;
/**
 * The guest's entry as the sandbox calls it (runtime/sandbox/protocol.ts, GuestInvocation): token,
 * hook, input, data, settings, request id, log and output limits, inline, entry number.
 * @param {number} i
 * @param {string} inputJson
 * @param {string} dataJson
 * @returns {Promise<string>}
 */
const vmInvoke = (i, inputJson, dataJson) => vmEntry.invoke(i, "need_registration", inputJson, dataJson, settingsJson, "b", 8192, 65536, false, i);

// The floor of one call into an isolate: isolated-vm's async apply of a function that does nothing,
// with the same seven arguments and options (limits.timeoutMs, a promise result), and the same
// with applySync, which runs on the caller's thread and so would block the event loop for as long
// as a script runs (not usable; for scale).
const ivm = isolatedVm();
const bare = new ivm.Isolate({ memoryLimit: 32 });
const bareContext = await bare.createContext();
const noop = await (await bare.compileScript("(async function noop() { return '{}'; })")).run(bareContext, { reference: true });
// applySync: isolated-vm has it; the runtime's declaration of isolated-vm (ivm.ts) leaves it out.
const noopSync =
  /** @type {import("../dist/runtime/sandbox/ivm.js").Reference & { applySync(receiver: undefined, args: unknown[], options?: { timeout?: number }): unknown }} */ (
    await (await bare.compileScript("(function noop() { return '{}'; })")).run(bareContext, { reference: true })
  );

// The guest in an isolate of its own, called straight through isolated-vm, for the calls-in-flight
// table: one apply of its invoke per call (what each call costs without batches), and the calls of
// one loop turn, up to 8, in one apply of its invokeBatch (what a batch costs; config batchCalls).
// 128 MB, not the scripts' 32: isolated-vm keeps what the tasks of an isolate's busy stretch handed
// over until its queue empties, and the 60 KB inputs (outside the heap, counted against the limit)
// of 16 calls in flight killed a 32 MB isolate now and then. The sandbox ends such stretches
// (InvocationLine.stretchOver); this bare loop does not.
const guestIsolate = new ivm.Isolate({ memoryLimit: 128 });
const guestEntry = await (
  await guestIsolate.compileScript(compiled.script.runtime.code + compiled.script.code)
).run(await guestIsolate.createContext(), {
  reference: true,
});
const guestInvoke = await guestEntry.get("invoke", { reference: true });
const guestBatch = await guestEntry.get("invokeBatch", { reference: true });
let guestCalls = 0;
/** @param {string} inputText @param {string} dataText */
const guestArgs = (inputText, dataText) => {
  const n = ++guestCalls;
  return [n, "need_registration", inputText, dataText, loaded.script.settingsJson, "b", 8192, 65536, false, n];
};
/** @param {unknown} answer */
const guestAnswered = (answer) => {
  if (typeof answer !== "string" || !answer.startsWith('{"kind":"') || answer.includes('"kind":"exception"'))
    throw new Error(`the guest did not answer: ${String(answer).slice(0, 200)}`);
  return answer;
};
const gathered = gatheredApplies(guestBatch);

// The example pipeline of need_registration (three scripts, the examples' config: settings,
// failure policy), for the calls-in-flight table.
const examplesConfig = configSchema.parse({ ...JSON.parse(readFileSync(path.join(examples, "callscript.config.json"), "utf8")), scriptsDir: examples });
/** @type {import("../dist/runtime/dispatch/dispatch.js").PipelineScript[]} */
const pipeline = [];
for (const file of ["blacklist-extensions.ts", "trunk-whitelist.ts", "skip-short-and-ivr.ts"]) {
  const script = await loadScriptFile(path.join(examples, file), examples, examplesConfig);
  if (!script.ok) throw new Error(script.failure.message);
  pipeline.push(script.script);
}

/**
 * The same calls with IN_FLIGHT of them at once (as many closed loops), as a loaded server has
 * them: wall time, the process's CPU (every thread) and the event loop's busy time, per call;
 * medians of ROUNDS rounds.
 */
const IN_FLIGHT = 16;
/**
 * @param {Record<string, () => unknown>} variants
 * @param {number} calls
 */
async function inFlight(variants, calls) {
  /** @type {(fn: () => unknown, n: number) => Promise<void>} */
  const run = async (fn, n) => {
    let started = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (started++ < n) await fn();
      }),
    );
  };
  /** @type {Record<string, { wallUs: number; cpuUs: number; loopUs: number }[]>} */
  const rounds = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  for (const fn of Object.values(variants)) await run(fn, Math.min(2000, calls / 4));
  const perRound = Math.max(IN_FLIGHT, Math.round(calls / ROUNDS));
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, fn] of Object.entries(variants)) {
      const cpu = process.cpuUsage();
      const loop = performance.eventLoopUtilization();
      const start = performance.now();
      await run(fn, perRound);
      const wallMs = performance.now() - start;
      const used = process.cpuUsage(cpu);
      rounds[name]?.push({
        wallUs: (wallMs * 1000) / perRound,
        cpuUs: (used.user + used.system) / perRound,
        loopUs: (performance.eventLoopUtilization(loop).active * 1000) / perRound,
      });
    }
  }
  return Object.fromEntries(
    Object.entries(rounds).map(([name, list]) => [
      name,
      {
        wallUsPerCall: round(median(list.map((x) => x.wallUs))),
        cpuUsPerCall: round(median(list.map((x) => x.cpuUs))),
        eventLoopUsPerCall: round(median(list.map((x) => x.loopUs))),
      },
    ]),
  );
}

/**
 * Every variant in turn, in ROUNDS rounds of iterations/ROUNDS calls each (after a warm-up), so
 * that a neighbour's load that comes and goes falls on all of them alike. p50: the median of the
 * rounds' p50s; p99 and calls/s: over all calls.
 */
const ROUNDS = quick ? 3 : 10;
/**
 * @param {Record<string, (i: number) => unknown>} variants
 * @param {{ iterations: number; warmup: number }} counts
 */
async function interleaved(variants, { iterations: n, warmup: w }) {
  for (const fn of Object.values(variants)) await timeCalls(fn, { iterations: 1, warmup: w });
  /** @type {Record<string, number[]>} */
  const samples = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  /** @type {Record<string, number[]>} */
  const roundP50s = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
  const perRound = Math.max(1, Math.round(n / ROUNDS));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      const times = new Array(perRound);
      for (let i = 0; i < perRound; i++) {
        const start = performance.now();
        await fn(i);
        times[i] = performance.now() - start;
      }
      samples[name]?.push(...times);
      roundP50s[name]?.push(summarize(times).p50Us);
    }
  }
  return Object.fromEntries(Object.keys(variants).map((name) => [name, { ...summarize(samples[name] ?? []), p50Us: round(median(roundP50s[name] ?? [])) }]));
}

/** @type {Record<string, unknown>[]} */
const rows = [];
/** @type {Record<string, unknown>[]} */
const flightRows = [];
/** @type {Record<string, Record<string, unknown>>} */
const results = {};
for (const [label, file] of Object.entries(payloads)) {
  // The body as the connector sends it (one line), and parsed, as fastify hands both to the route.
  const text = JSON.stringify(JSON.parse(readFileSync(path.join(examples, "payloads", file), "utf8")));
  const body = JSON.parse(text);
  const input = hookCatalog.need_registration.input.parse(body);
  const bytes = Buffer.byteLength(text);
  // What the server passes into the isolate: the body's own text (parseHookInput hands it on when
  // the schema takes the body as it is), so no variant below serializes the input per call.
  const parsedOnce = parseHookInput("need_registration", body, text);
  if (!parsedOnce.ok) throw parsedOnce.error;
  const inputJson = parsedOnce.inputJson;
  if (inputJson !== text) throw new Error("the payload does not pass as is; the figures would not be the server's");
  const dataJson = JSON.stringify({ result: true });
  const data = { result: true };
  const n = bytes > 10_000 ? Math.round(iterations / 4) : iterations;
  const options = { iterations: n, warmup: Math.min(warmup, n / 4) };

  // The guest must answer the script's data, not a failure: a protocol change once left this row
  // measuring the answer to a call with its arguments in the wrong places.
  const probe = JSON.parse(await vmInvoke(0, inputJson, dataJson));
  if (probe.kind !== "data") throw new Error(`node:vm: the guest answered ${JSON.stringify(probe).slice(0, 300)}`);
  const measured = await interleaved(
    {
      "direct call": () => directHandler(input, { hook: "need_registration", data, settings: directSettings, log: noopLog, requestId: "b", script: "b" }),
      "node:vm (same protocol)": (/** @type {number} */ i) => vmInvoke(i, inputJson, dataJson),
      "isolated-vm hop alone (async apply of a no-op)": () =>
        noop.apply(undefined, ["need_registration", inputJson, dataJson, loaded.script.settingsJson, "b", 8192, 65536], {
          timeout: 250,
          result: { promise: true },
        }),
      "isolated-vm applySync of a no-op (blocks the loop)": () =>
        noopSync.applySync(undefined, ["need_registration", inputJson, dataJson, loaded.script.settingsJson, "b", 8192, 65536], { timeout: 250 }),
      "callscript sandbox.invoke": () =>
        sandbox.invoke({ hook: "need_registration", inputJson, dataJson, settingsJson: loaded.script.settingsJson, requestId: "b" }),
      "callscript parseHookInput + callHook (validate, run, merge)": () => {
        const parsed = parseHookInput("need_registration", body, text);
        if (!parsed.ok) throw parsed.error;
        return callHook(config, "need_registration", parsed.input, [loaded.script], { requestId: "b", inputJson: parsed.inputJson });
      },
    },
    options,
  );
  const concurrent = await inFlight(
    {
      "isolated-vm hop alone (async apply of a no-op)": () =>
        noop.apply(undefined, ["need_registration", inputJson, dataJson, loaded.script.settingsJson, "b", 8192, 65536], {
          timeout: 250,
          result: { promise: true },
        }),
      "isolated-vm: the guest's invoke, one apply per call": async () =>
        guestAnswered(await guestInvoke.apply(undefined, guestArgs(inputJson, dataJson), { timeout: 250, result: { promise: true } })),
      "isolated-vm: the guest's invokeBatch, the calls of a loop turn (up to 8) in one apply": async () =>
        guestAnswered(await gathered(guestArgs(inputJson, dataJson))),
      "callscript sandbox.invoke": () =>
        sandbox.invoke({ hook: "need_registration", inputJson, dataJson, settingsJson: loaded.script.settingsJson, requestId: "b" }),
      "callscript sandbox.invoke, server busy: calls in batches": () =>
        batching.invoke({ hook: "need_registration", inputJson, dataJson, settingsJson: loaded.script.settingsJson, requestId: "b" }),
      "callscript sandbox.invoke, server busy, batchCalls off": () =>
        oneTaskEach.invoke({ hook: "need_registration", inputJson, dataJson, settingsJson: loaded.script.settingsJson, requestId: "b" }),
      "callscript parseHookInput + callHook, the example pipeline (3 scripts)": () => {
        const parsed = parseHookInput("need_registration", body, text);
        if (!parsed.ok) throw parsed.error;
        return callHook(examplesConfig, "need_registration", parsed.input, pipeline, { requestId: "b", inputJson: parsed.inputJson });
      },
    },
    n,
  );
  results[label] = { bytes, ...measured, inFlight: { calls: IN_FLIGHT, ...concurrent } };
  const base = measured["direct call"]?.p50Us ?? NaN;
  for (const [how, stats] of Object.entries(measured)) {
    rows.push({
      payload: label,
      how,
      "p50 µs": stats.p50Us,
      "p99 µs": stats.p99Us,
      "calls/s": stats.perSecond,
      "over direct p50 µs": Math.round((stats.p50Us - base) * 10) / 10,
    });
  }
  for (const [how, stats] of Object.entries(concurrent)) {
    flightRows.push({
      payload: label,
      how,
      "wall µs/call": stats.wallUsPerCall,
      "CPU µs/call (all threads)": stats.cpuUsPerCall,
      "event loop µs/call": stats.eventLoopUsPerCall,
    });
  }
}
// Whether the busy server's calls did go in batches: each variant's figures are only what they say if so.
console.log(
  `busy server, calls in batches: ${batching.inline.batchedCalls} of its calls in ${batching.inline.batches} batches; batchCalls off: ${oneTaskEach.inline.batches} batches`,
);
if (batching.inline.batchedCalls === 0 || oneTaskEach.inline.batches !== 0) throw new Error("the busy-server variants did not run as named");
await Promise.all([sandbox, batching, oneTaskEach].map((each) => each.drainAndDispose()));
await Promise.all(pipeline.map((script) => script.sandbox.drainAndDispose()));
bare.dispose();
guestIsolate.dispose();

const small = results["2 KB (one conversation)"];
if (!small) throw new Error("no results for the 2 KB payload");
/** @param {string} how */
const p50Of = (how) => /** @type {{ p50Us: number } | undefined} */ (small[how])?.p50Us ?? NaN;
const overheadUs = Math.round((p50Of("callscript sandbox.invoke") - p50Of("direct call")) * 10) / 10;
const file = writeResult("invoke", { quick, iterations, target: { overheadP50Us: TARGET_OVERHEAD_US, measured: overheadUs }, results });
console.log(`Invocation cost in process — ${JSON.stringify(machine())}`);
console.log(table(rows, ["payload", "how", "p50 µs", "p99 µs", "calls/s", "over direct p50 µs"]));
console.log(`With ${IN_FLIGHT} calls in flight (closed loops), per call:`);
console.log(table(flightRows, ["payload", "how", "wall µs/call", "CPU µs/call (all threads)", "event loop µs/call"]));
console.log(
  `target: sandbox overhead over a direct call at p50, 2 KB: ${overheadUs} µs (< ${TARGET_OVERHEAD_US}: ${overheadUs < TARGET_OVERHEAD_US ? "PASS" : "MISS"}); ` +
    `of which the isolated-vm hop alone: ${p50Of("isolated-vm hop alone (async apply of a no-op)")} µs`,
);
console.log(`results: ${path.relative(process.cwd(), file)}`);
