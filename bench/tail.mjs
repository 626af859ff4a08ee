// @ts-check
// Where a hook's latency tail is: `callscript serve` with the examples at log level info, where
// every hook request writes one line with its time inside the server (`ms`, from fastify's
// onRequest to the answer sent), loaded by autocannon in this process at 16 connections. Reported
// side by side: the server's own percentiles (the log lines) and the client's (autocannon, which
// also counts the time its own process waits for a core: on 2 cores the server's threads and the
// client take turns). Variants (a config file, Node flags) are alternated in rounds, each server
// started afresh; figures are medians over the rounds.
//
// Not part of `npm run bench`: a tool for docs/benchmarks.md ("The latency tail at 16 connections").
// Run: npm run build && node --no-node-snapshot bench/tail.mjs
// Env: BENCH_TAIL_HOOK (process_client_phone; need_registration for three scripts),
//      BENCH_TAIL_VARIANTS ("label=<config file or empty>|<node flags>|<another built checkout>;…",
//      default the examples' config in this checkout alone), BENCH_ROUNDS (3), BENCH_DURATION_S (5)
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { median, percentile, repoRoot, round, serveExamplesArgs, spawnUntil, stopChild, table, SERVING_LINE } from "./lib.mjs";

const HOOK = process.env.BENCH_TAIL_HOOK ?? "process_client_phone";
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const FILES = /** @type {Record<string, string>} */ ({
  process_client_phone: "process_client_phone.incoming-8-format.json",
  need_registration: "need_registration.incoming-answered.json",
  process_call_params: "process_call_params.kommo-incoming.json",
});
const file = FILES[HOOK];
if (!file) throw new Error(`BENCH_TAIL_HOOK: no payload for ${HOOK} (${Object.keys(FILES).join(", ")})`);
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", file), "utf8")));

/** @typedef {{ label: string; config: string | undefined; flags: string[]; root: string }} Variant */
/** @type {Variant[]} */
const variants = (process.env.BENCH_TAIL_VARIANTS ?? "examples=|")
  .split(";")
  .filter(Boolean)
  .map((spec) => {
    const at = spec.indexOf("=");
    const [label, rest] = at < 0 ? [spec, ""] : [spec.slice(0, at), spec.slice(at + 1)];
    const [config = "", flags = "", root = ""] = rest.split("|");
    return { label, config: config ? path.resolve(config) : undefined, flags: flags.split(" ").filter(Boolean), root: root ? path.resolve(root) : repoRoot };
  });

/** @param {Variant} variant */
function serveArgs(variant) {
  const args = serveExamplesArgs(0).map((arg) => (arg === "examples/callscript.config.json" && variant.config ? variant.config : arg));
  return [...variant.flags, ...args];
}

/** The `ms` of every "hook answered" line in a stretch of the server's log. @param {string} log */
function serverTimes(log) {
  const times = [];
  for (const line of log.split("\n")) {
    if (!line.includes('"hook answered"')) continue;
    try {
      const ms = JSON.parse(line).ms;
      if (typeof ms === "number") times.push(ms);
    } catch {
      // A line cut at the end of the stretch.
    }
  }
  return times.sort((a, b) => a - b);
}

/** @type {Record<string, Record<string, number>[]>} */
const runs = Object.fromEntries(variants.map((variant) => [variant.label, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const variant of r % 2 ? [...variants].reverse() : variants) {
    const server = await spawnUntil(process.execPath, serveArgs(variant), { ready: SERVING_LINE, env: { CALLSCRIPT_LOG_LEVEL: "info" }, cwd: variant.root });
    let log = "";
    server.child.stdout?.setEncoding("utf8").on("data", (chunk) => (log += chunk));
    try {
      const url = `${server.match[1]}/hooks/${HOOK}`;
      const load = (/** @type {number} */ seconds) =>
        autocannon({ url, method: "POST", headers: { "content-type": "application/json" }, body, connections: 16, duration: seconds });
      await load(3);
      log = "";
      const result = await load(DURATION_S);
      const times = serverTimes(log);
      const row = {
        "req/s": Math.round(result.requests.total / DURATION_S),
        "server p50": percentile(times, 50),
        "server p99": percentile(times, 99),
        "server p99.9": percentile(times, 99.9),
        "client p50": result.latency.p50,
        "client p99": result.latency.p99,
        "client p99.9": result.latency.p99_9,
      };
      runs[variant.label]?.push(row);
      process.stderr.write(`round ${r + 1} ${variant.label}: ${JSON.stringify(row)}\n`);
    } finally {
      await stopChild(server.child);
    }
  }
}

const rows = variants.map(({ label }) => {
  const list = runs[label] ?? [];
  /** @type {Record<string, string | number>} */
  const row = { variant: label };
  for (const key of Object.keys(list[0] ?? {})) row[key] = round(median(list.map((run) => run[key] ?? NaN)), key === "req/s" ? 0 : 2);
  return row;
});
console.log(`${HOOK} at 16 connections, log level info, ${ROUNDS} rounds of ${DURATION_S} s (medians); times in ms`);
console.log(table(rows, ["variant", "req/s", "server p50", "server p99", "server p99.9", "client p50", "client p99", "client p99.9"]));
