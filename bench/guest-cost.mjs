// @ts-check
// Where a script's call costs on the isolate's side: the example guest (blacklist-extensions, the
// 3.4 KB need_registration body, whose Cyrillic names make it a two-byte string of 6.5 KB) called
// straight through isolated-vm in batches of up to 8, as a busy server calls it (config
// batchCalls), 16 calls in flight, next to the same isolate doing less:
//
// - "hop": a function that takes the same arguments and answers at once (isolated-vm's task, the
//   copies of the arguments, the promise back);
// - "parse": that, plus JSON.parse of the input and of the data, as the guest does first;
// - "guest": the guest's own invokeBatch (the protocol, the handler, the checks of its answer).
//
// Each runs in its own isolate, at the scripts' memory limit (the examples' 32 MB) and at 128 MB,
// taking turns in rounds. An input of 1 KB or more reaches an isolate as an external string, which
// isolated-vm counts against the memory limit until a full collection frees it; at the limit it
// calls V8's LowMemoryNotification (full collections that also drop the isolate's optimized code),
// so the limit changes what a call costs (`node --trace-gc` shows them: "low memory notification").
// Reported: CPU per call of every thread of the process, and the event loop's share; medians of the
// rounds.
//
// Not part of `npm run bench`: a tool for docs/benchmarks.md ("A script's call, on its isolate's side").
// Run: npm run build && node --no-node-snapshot bench/guest-cost.mjs
// Env: GUEST_ROUNDS (5), GUEST_CALLS (20000 per variant and round), GUEST_LIMITS (32,128)
import { readFileSync } from "node:fs";
import path from "node:path";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { isolatedVm } from "../dist/runtime/sandbox/ivm.js";
import { threadCpuTimes } from "../dist/runtime/sandbox/thread-cpu.js";
import { gatheredApplies, median, repoRoot, round, table } from "./lib.mjs";

const ROUNDS = Number(process.env.GUEST_ROUNDS ?? 5);
const CALLS = Number(process.env.GUEST_CALLS ?? 20_000);
const LIMITS = (process.env.GUEST_LIMITS ?? "32,128").split(",").map(Number);
const IN_FLIGHT = 16;
const BATCH = 8;

const examples = path.join(repoRoot, "examples");
const input = JSON.stringify(JSON.parse(readFileSync(path.join(examples, "payloads", "need_registration.incoming-answered.json"), "utf8")));
const dataJson = JSON.stringify({ result: true });
const settingsJson = JSON.stringify(JSON.parse(readFileSync(path.join(examples, "callscript.config.json"), "utf8")).scripts["blacklist-extensions"].settings);
const compiled = await compileScript(path.join(examples, "blacklist-extensions.ts"), examples);
if (!compiled.ok) throw new Error("the example does not compile");
const guestCode = compiled.script.runtime.code + compiled.script.code;

const ivm = isolatedVm();
/** Calls of a batch are laid out as the guest's invokeBatch takes them (runtime/sandbox/protocol.ts, GuestInvocation). */
const ARITY = 10;
const HOP = `(function () { let answers = ""; for (let i = 0; i < arguments.length; i += ${ARITY}) answers += (i ? "\\u0000" : "") + "{}"; return answers; })`;
const PARSE = `(function () { let answers = ""; for (let i = 0; i < arguments.length; i += ${ARITY}) { JSON.parse(arguments[i + 2]); JSON.parse(arguments[i + 3]); answers += (i ? "\\u0000" : "") + "{}"; } return answers; })`;

/**
 * @param {"hop" | "parse" | "guest"} kind
 * @param {number} memoryLimit
 * @returns {Promise<import("../dist/runtime/sandbox/ivm.js").Reference>}
 */
async function entryOf(kind, memoryLimit) {
  const isolate = new ivm.Isolate({ memoryLimit });
  const context = await isolate.createContext();
  if (kind === "guest") {
    const guest = await (await isolate.compileScript(guestCode)).run(context, { reference: true });
    return guest.get("invokeBatch", { reference: true });
  }
  return (await isolate.compileScript(kind === "hop" ? HOP : PARSE)).run(context, { reference: true });
}

let token = 0;
/**
 * Calls gathered in a loop turn, up to BATCH, go in one apply (what the sandbox does while the
 * server is busy).
 * @param {import("../dist/runtime/sandbox/ivm.js").Reference} entry
 * @returns {() => Promise<string>}
 */
function batched(entry) {
  const gathered = gatheredApplies(/** @type {Parameters<typeof gatheredApplies>[0]} */ (entry), BATCH);
  return () => {
    const n = ++token;
    return gathered([n, "need_registration", input, dataJson, settingsJson, "b", 8192, 65536, false, n]);
  };
}

/** CPU time (ms) of the event loop's thread and of every other thread of this process. */
function threadTimes() {
  const times = threadCpuTimes();
  if (!times) throw new Error("no per-thread CPU times here (/proc/self/task): this bench needs Linux");
  let loop = 0;
  let others = 0;
  for (const [tid, ms] of times) {
    if (tid === String(process.pid)) loop += ms;
    else others += ms;
  }
  return { loop, others };
}

/** @param {() => Promise<string>} call @param {number} count */
async function closedLoops(call, count) {
  let started = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (started++ < count) await call();
    }),
  );
}

/** @type {Record<string, () => Promise<string>>} */
const variants = {};
for (const limit of LIMITS) {
  for (const kind of /** @type {const} */ (["hop", "parse", "guest"])) variants[`${kind}, ${limit} MB`] = batched(await entryOf(kind, limit));
}
// The guest must answer the script's data: a protocol change once left a bench measuring the
// answer to a call with its arguments in the wrong places (or, here, a script that throws).
for (const [name, call] of Object.entries(variants)) {
  const answer = await call();
  if (name.startsWith("guest") && !answer.startsWith('{"kind":"data"')) throw new Error(`${name}: the guest answered ${answer.slice(0, 300)}`);
}
for (const call of Object.values(variants)) await closedLoops(call, Math.min(3000, CALLS));

/** @type {Record<string, { loop: number; others: number }[]>} */
const rounds = Object.fromEntries(Object.keys(variants).map((name) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, call] of Object.entries(variants)) {
    const before = threadTimes();
    await closedLoops(call, CALLS);
    const after = threadTimes();
    // A thread that ended meanwhile takes its time with it: none of this bench's ends during a round.
    rounds[name]?.push({ loop: ((after.loop - before.loop) * 1000) / CALLS, others: ((after.others - before.others) * 1000) / CALLS });
  }
}

const rows = Object.entries(rounds).map(([name, list]) => ({
  variant: name,
  "CPU µs/call": round(median(list.map((x) => x.loop + x.others))),
  "of it, event loop": round(median(list.map((x) => x.loop))),
  "of it, other threads": round(median(list.map((x) => x.others))),
}));
console.log(
  `${input.length} characters of input (two-byte: ${/[^\u0000-\u00ff]/.test(input)}), ${IN_FLIGHT} calls in flight, batches of up to ${BATCH}, ${ROUNDS} rounds of ${CALLS} calls`,
);
console.log(table(rows, ["variant", "CPU µs/call", "of it, event loop", "of it, other threads"]));
process.exit(0);
