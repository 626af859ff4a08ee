// @ts-check
// Where one hook request's CPU goes, layer by layer, measured in one process: a bare fastify route
// (`bare`), that route invoking the hook's scripts through their sandboxes and nothing else of
// callscript's (`direct`), the same in a fastify made as callscript makes its own (`opts`: logger,
// request ids, answer schema), the bare route with callscript's input checks and dispatch
// (`dispatch`), and callscript's app as `serve` builds it (`full`); FULL_VARIANTS adds `full` with
// parts of its per-request work off (`nometrics`, `nocalls`: no console calls buffer, `nolog`),
// LAYER_VARIANTS the app rebuilt from its plugins without some (`without-requestLog+drain`).
// All of them in one child process (bench/server-layers-child.mjs) over one script registry, so
// that neither the process nor the isolates differ between them: two processes of one build differ
// by 10-15% (docs/benchmarks.md). autocannon in this process, the servers alternated in every
// round, CPU per request of the child process (every thread) from /proc; "vs full" is the median
// of each round's difference. The neighbours' load still moves whole rounds by ±20%.
//
// Run: npm run build && node --no-node-snapshot bench/server-layers.mjs
// Env: BENCH_ROUNDS (5), BENCH_DURATION_S (4), BENCH_CONNECTIONS (16), LAYER_HOOK
// (process_client_phone, need_registration, process_call_params), LAYER_ONLY (servers to load
// besides full), FULL_VARIANTS, LAYER_VARIANTS.
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { median, procStats, repoRoot, round, spawnUntil, stopChild, table, writeResult } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 4);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const HOOK = process.env.LAYER_HOOK ?? "process_client_phone";
/** @type {Record<string, string>} */
const FILES = {
  process_client_phone: "process_client_phone.incoming-8-format.json",
  need_registration: "need_registration.incoming-answered.json",
  process_call_params: "process_call_params.kommo-incoming.json",
};
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", FILES[HOOK] ?? `no payload for ${HOOK}`), "utf8")));

// The bare route answers what callscript answers.
const { child: probe, match } = await spawnUntil(process.execPath, ["--no-node-snapshot", "bench/server-layers-child.mjs"], {
  ready: /^ports (.*)$/m,
  env: { LAYER_VARIANTS: "" },
});
const fullPort = JSON.parse(/** @type {string} */ (match[1])).full;
const answer = await (await fetch(`http://127.0.0.1:${fullPort}/hooks/${HOOK}`, { method: "POST", body })).json();
await stopChild(probe);

const { child, match: ready } = await spawnUntil(process.execPath, ["--no-node-snapshot", "bench/server-layers-child.mjs"], {
  ready: /^ports (.*)$/m,
  env: { BARE_ANSWERS: JSON.stringify({ [HOOK]: answer }) },
});
/** @type {Record<string, number>} */
const ports = JSON.parse(/** @type {string} */ (ready[1]));
/** LAYER_ONLY: the servers to load (default all); `full` is always one, as the reference. */
const only = process.env.LAYER_ONLY?.split(",");
const names = Object.keys(ports).filter((name) => !only || name === "full" || only.includes(name));
const pid = /** @type {number} */ (child.pid);

/** The scripts a request of the hook calls. */
const scriptsReport = /** @type {{ scripts: { hooks: string[]; state: string }[] }} */ (await (await fetch(`http://127.0.0.1:${ports.full}/scripts`)).json());
const scriptsOnHook = scriptsReport.scripts.filter((script) => script.state === "active" && script.hooks.includes(HOOK)).length;

/**
 * The calls of the process's scripts so far that ran on the event loop (inline) and in batches, from
 * the full app's /metrics (the variants share the registry, and one is loaded at a time); the rest
 * went alone to their isolate's thread.
 */
async function callModes() {
  const text = await (await fetch(`http://127.0.0.1:${ports.full}/metrics`)).text();
  const sum = (/** @type {RegExp} */ pattern) => [...text.matchAll(pattern)].reduce((total, match) => total + Number(match[1]), 0);
  return {
    inline: sum(/^callscript_script_inline_calls\{[^}]*kind="inline"\} (\d+)$/gm),
    batched: sum(/^callscript_script_batched_calls\{[^}]*kind="calls"\} (\d+)$/gm),
  };
}

/** @param {string} name @param {number} seconds */
async function load(name, seconds) {
  const modesBefore = await callModes();
  const before = procStats(pid).cpuSeconds;
  const result = await autocannon({
    url: `http://127.0.0.1:${ports[name]}/hooks/${HOOK}`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: seconds,
  });
  const cpu = procStats(pid).cpuSeconds - before;
  if (result.non2xx + result.errors + result.timeouts > 0)
    throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  const modes = await callModes();
  const calls = result.requests.total * scriptsOnHook;
  return {
    rps: result.requests.average,
    cpuUs: (cpu * 1e6) / result.requests.total,
    inlineShare: (modes.inline - modesBefore.inline) / calls,
    batchedShare: (modes.batched - modesBefore.batched) / calls,
  };
}

for (const name of names) await load(name, 2);
/** @typedef {{ rps: number; cpuUs: number; inlineShare: number; batchedShare: number }} Run */
/** @type {Map<string, Run[]>} */
const runs = new Map(names.map((name) => [name, []]));
const runsOf = (/** @type {string} */ name) => /** @type {Run[]} */ (runs.get(name));
for (let r = 0; r < ROUNDS; r++) {
  for (let i = 0; i < names.length; i++) {
    const name = /** @type {string} */ (names[(i + r) % names.length]);
    runsOf(name).push(await load(name, DURATION_S));
  }
  console.error(`round ${r + 1}: ${names.map((name) => `${name} ${round(runsOf(name)[r]?.cpuUs ?? NaN)}`).join(", ")}`);
}
await stopChild(child);
const full = runsOf("full");
const rows = names.map((name) => ({
  server: name,
  "req/s": round(median(runsOf(name).map((run) => run.rps)), 0),
  "CPU µs/req": round(median(runsOf(name).map((run) => run.cpuUs))),
  "vs full, µs (median of rounds)": round(median(runsOf(name).map((run, i) => run.cpuUs - (full[i]?.cpuUs ?? NaN)))),
  // Calls on the event loop cost less CPU (no hop) but take the loop's time: compare like with like.
  "calls inline / batched": `${round(100 * median(runsOf(name).map((run) => run.inlineShare)), 0)}% / ${round(100 * median(runsOf(name).map((run) => run.batchedShare)), 0)}%`,
}));
console.log(`${HOOK}, ${CONNECTIONS} connections, ${ROUNDS} rounds × ${DURATION_S} s`);
console.log(table(rows, ["server", "req/s", "CPU µs/req", "vs full, µs (median of rounds)", "calls inline / batched"]));
writeResult("server-layers", { hook: HOOK, connections: CONNECTIONS, rounds: ROUNDS, durationS: DURATION_S, rows, runs: Object.fromEntries(runs) });
