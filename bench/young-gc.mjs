// @ts-check
// What the server's own heap pays in young-generation collections under load: `callscript serve`
// with the examples, run with V8's --trace-gc-nvp, autocannon at 16 connections on each hook for a
// few seconds after a warm-up, and V8's figures of every scavenge of the server's isolate (the
// scripts' isolates print theirs too; they are told apart by their heap size) in the loaded window:
// how many, the mean pause, what each one promoted to the old generation and the share of the young
// objects that survived. A request's objects should die young; what survives is copied, and what
// is promoted fills the old generation until a full collection.
//
// Not part of `npm run bench`: a tool for docs/benchmarks.md (the per-request state that WeakMaps
// kept alive was found with it).
// Run: npm run build && node --no-node-snapshot bench/young-gc.mjs
// Env: BENCH_GC_HOOKS (process_call_params,process_client_phone,need_registration),
//      BENCH_DURATION_S (3), BENCH_GC_ROOT=<another built checkout> (measured beside this one),
//      BENCH_GC_CONFIG=<a config file instead of the examples'>, BENCH_GC_FLAGS (Node flags of the
//      servers, e.g. --max-semi-space-size=32: isolated-vm sets each script isolate's young generation
//      itself, so such a flag reaches only the server's own heap)
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { repoRoot, round, spawnUntil, stopChild, table, SERVING_LINE, serveExamplesArgs } from "./lib.mjs";

const HOOKS = (process.env.BENCH_GC_HOOKS ?? "process_call_params,process_client_phone,need_registration").split(",");
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 3);
const FILES = /** @type {Record<string, string>} */ ({
  process_call_params: "process_call_params.kommo-incoming.json",
  process_client_phone: "process_client_phone.incoming-8-format.json",
  need_registration: "need_registration.incoming-answered.json",
});
/** The server's heap is tens of MB; a script's isolate, a few. */
const HOST_HEAP_BYTES = 20e6;
const roots = [["this checkout", repoRoot], ...(process.env.BENCH_GC_ROOT ? [["other", path.resolve(process.env.BENCH_GC_ROOT)]] : [])];
const configArgs = (/** @type {string[]} */ args) =>
  process.env.BENCH_GC_CONFIG
    ? args.map((arg) => (arg === "examples/callscript.config.json" ? path.resolve(/** @type {string} */ (process.env.BENCH_GC_CONFIG)) : arg))
    : args;

/**
 * V8's name=value pairs of each scavenge line.
 * @param {string} output
 */
function scavenges(output) {
  return output
    .split("\n")
    .filter((line) => line.includes("gc=s "))
    .map((line) => Object.fromEntries(line.split(/\s+/).flatMap((pair) => (pair.includes("=") ? [pair.split("=", 2)] : []))))
    .filter((fields) => Number(fields.total_size_before) > HOST_HEAP_BYTES);
}

const rows = [];
for (const hook of HOOKS) {
  const file = FILES[hook];
  if (!file) throw new Error(`BENCH_GC_HOOKS: no payload for ${hook} (${Object.keys(FILES).join(", ")})`);
  const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", file), "utf8")));
  for (const [label, root] of roots) {
    const server = await spawnUntil(
      process.execPath,
      ["--trace-gc-nvp", ...(process.env.BENCH_GC_FLAGS ?? "").split(" ").filter(Boolean), ...configArgs(serveExamplesArgs(0))],
      {
        ready: SERVING_LINE,
        env: { CALLSCRIPT_LOG_LEVEL: "warn" },
        cwd: root,
      },
    );
    let output = "";
    server.child.stdout?.setEncoding("utf8").on("data", (chunk) => (output += chunk));
    try {
      const url = `${server.match[1]}/hooks/${hook}`;
      const load = (/** @type {number} */ seconds) =>
        autocannon({ url, method: "POST", headers: { "content-type": "application/json" }, body, connections: 16, duration: seconds });
      await load(2);
      output = "";
      const result = await load(DURATION_S);
      const found = scavenges(output);
      const mean = (/** @type {string} */ key) => found.reduce((sum, fields) => sum + Number.parseFloat(fields[key] ?? "0"), 0) / Math.max(1, found.length);
      rows.push({
        hook,
        server: label,
        "req/s": Math.round(result.requests.total / DURATION_S),
        scavenges: found.length,
        "pause ms": round(mean("pause"), 2),
        "pause µs/req": round((mean("pause") * found.length * 1000) / Math.max(1, result.requests.total), 1),
        "promoted MB": round(mean("promoted") / 1e6, 2),
        survival: `${round(mean("average_survival_ratio"), 1)}%`,
      });
      process.stderr.write(`${hook} ${label}: ${JSON.stringify(rows.at(-1))}\n`);
    } finally {
      await stopChild(server.child);
    }
  }
}
console.log(`Young-generation collections of the server's heap at 16 connections, ${DURATION_S} s per hook`);
console.log(table(rows, ["hook", "server", "req/s", "scavenges", "pause ms", "pause µs/req", "promoted MB", "survival"]));
