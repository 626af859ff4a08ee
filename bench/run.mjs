// @ts-check
// `npm run bench`: every benchmark, each in its own child process, one after the other (so that
// none runs beside another), then one summary: each target, where it stands, PASS or MISS. Each
// bench prints its own table as it finishes and writes bench/results/<name>.json; the summary is
// written to bench/results/summary.json and, as a Markdown table, bench/results/summary.md.
//
// Run: npm run bench            (npm run build first; `npm run bench` does)
// Env: BENCH_QUICK=1            fewer iterations and rounds: a smoke run, not figures to quote
//      BENCH_ONLY=invoke,http   a subset (the summary still reads every result present)
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { benchDir, machine, quick, table } from "./lib.mjs";

const BENCHES = ["invoke", "http", "peer", "scale", "reload", "cores", "shadow", "capabilities"];
const only = process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(",").map((name) => name.trim()) : BENCHES;
const unknown = only.filter((name) => !BENCHES.includes(name));
if (unknown.length > 0) {
  console.error(`BENCH_ONLY: unknown bench ${unknown.join(", ")}; known: ${BENCHES.join(", ")}`);
  process.exit(2);
}

const startedAt = new Date();
const runs = [];
for (const name of BENCHES.filter((bench) => only.includes(bench))) {
  console.log(`\n=== bench/${name}.mjs ${quick ? "(quick)" : ""}`);
  const start = performance.now();
  const child = spawnSync(process.execPath, ["--no-node-snapshot", path.join(benchDir, `${name}.mjs`)], { stdio: "inherit", env: process.env });
  const seconds = Math.round((performance.now() - start) / 1000);
  runs.push({ name, status: child.status, signal: child.signal, seconds });
  if (child.status !== 0) console.error(`bench/${name}.mjs failed (${child.signal ?? `exit ${child.status}`}) after ${seconds} s`);
}

/**
 * A bench's results, if written by this run (the JSON it wrote: read as it is, untyped).
 * @param {string} name
 * @returns {any}
 */
function result(name) {
  const file = path.join(benchDir, "results", `${name}.json`);
  if (!existsSync(file)) return { missing: "not run" };
  const data = JSON.parse(readFileSync(file, "utf8"));
  if (new Date(data.at) < startedAt) return { ...data, stale: `not run now; figures from ${data.at}` };
  return data;
}

/** @type {{ area: string; target: string; measured: string; goal: string; status: string; note: string }[]} */
const rows = [];
/** @type {(area: string, target: string, measured: string, goal: string, pass: boolean | null, note?: string) => unknown} */
const add = (area, target, measured, goal, pass, note = "") =>
  rows.push({ area, target, measured, goal, status: pass === null ? "—" : pass ? "PASS" : "MISS", note });
/** @type {(area: string, target: string, goal: string, why: string) => unknown} */
const skipped = (area, target, goal, why) => rows.push({ area, target, measured: "", goal, status: "n/a", note: why });

const invoke = result("invoke");
if (invoke.missing) skipped("invoke", "sandbox overhead over a direct call, p50, 2 KB", "< 40 µs", invoke.missing);
else {
  const small = invoke.results["2 KB (one conversation)"];
  const overhead = Math.round((small["callscript sandbox.invoke"].p50Us - small["direct call"].p50Us) * 10) / 10;
  add(
    "invoke",
    "sandbox overhead over a direct call, p50, 2 KB",
    `${overhead} µs`,
    "< 40 µs",
    overhead < 40,
    invoke.stale ?? `p99 ${small["callscript sandbox.invoke"].p99Us} µs; node:vm p50 ${small["node:vm (same protocol)"].p50Us} µs`,
  );
}

const http = result("http");
if (http.missing) skipped("http", "req/s vs bare fastify, 16 connections", "≥ 85%", http.missing);
else {
  for (const entry of http.results.filter((/** @type {{ connections: number }} */ r) => r.connections === 16)) {
    const label = `req/s vs bare fastify, 16 conns, ${entry.hook} (${entry.scripts} script${entry.scripts === 1 ? "" : "s"})`;
    const note = [
      http.stale,
      entry.info ? `log info ${Math.round(entry.info.ratio * 100)}%` : "",
      `p99 +${entry.warn.p99AddedMs} ms`,
      `server CPU ${entry.warn.cpuUsPerRequest} vs ${entry.bare.cpuUsPerRequest} µs/req`,
    ].filter(Boolean);
    add("http", label, `${Math.round(entry.warn.ratio * 100)}%`, "≥ 85%", entry.warn.ratio >= 0.85, note.join("; "));
  }
}

// The peer benchmark (issue 16): callscript against workerd running the same logic, and the bare route.
const peer = result("peer");
if (peer.missing) skipped("peer", "callscript vs workerd and bare fastify, 16 connections", "issue 16", peer.missing);
else {
  for (const t of peer.targets) add("peer", t.target, t.measured, t.goal, t.pass, peer.stale ?? "");
}

const scale = result("scale");
if (scale.missing) skipped("scale", "cold start, 500 scripts", "< 2 s", scale.missing);
else {
  const largest = scale.starts.at(-1);
  const second = scale.starts.at(-2);
  add(
    "scale",
    `cold start, ${largest.scripts} scripts (process start → serving)`,
    `${largest.readyMs} ms`,
    "< 2000 ms",
    largest.readyMs < 2000,
    scale.stale ?? `compile ${scale.breakdown.compileMs} ms + boots ${scale.breakdown.bootMs} ms in process`,
  );
  const marginal =
    second && second.scripts > scale.starts[0].scripts
      ? Math.round(((largest.rssBytes - second.rssBytes) / (largest.scripts - second.scripts) / 1e6) * 1000) / 1000
      : null;
  add(
    "scale",
    `resident memory per idle script (${largest.scripts} vs ${scale.starts[0].scripts})`,
    `${largest.perScriptMB} MB`,
    "< 1.2 MB",
    largest.perScriptMB < 1.2,
    scale.stale ?? (marginal !== null ? `${marginal} MB per script from ${second.scripts} to ${largest.scripts}` : ""),
  );
  const tuned = scale.startsArenas2?.at(-1);
  if (tuned)
    add(
      "scale",
      `resident memory per idle script, MALLOC_ARENA_MAX=2 (systemd unit)`,
      `${tuned.perScriptMB} MB`,
      "< 1.2 MB",
      tuned.perScriptMB < 1.2,
      scale.stale ?? `ready in ${tuned.readyMs} ms`,
    );
}

const reload = result("reload");
if (reload.missing) skipped("reload", "save → first answer from the new version, p95", "< 100 ms", reload.missing);
else {
  for (const [label, r] of Object.entries(reload.results)) {
    add(
      "reload",
      `save → new version answering, p95: ${label}`,
      `${r.saveToAnswerMs.p95} ms`,
      "< 100 ms",
      label === "script saved in place" ? r.saveToAnswerMs.p95 < 100 : null,
      reload.stale ?? `p50 ${r.saveToAnswerMs.p50} ms`,
    );
  }
  // With the type check that gates a deploy (typecheck: block, the default).
  for (const [label, r] of Object.entries(reload.typecheck?.block?.results ?? {})) {
    add(
      "reload",
      `save → new version answering, typecheck block, p95: ${label}`,
      `${r.saveToAnswerMs.p95} ms`,
      "< 500 ms",
      label === "script saved in place" ? r.saveToAnswerMs.p95 < 500 : null,
      reload.stale ?? `p50 ${r.saveToAnswerMs.p50} ms`,
    );
  }
}

const cores = result("cores");
if (cores.missing) skipped("cores", "2 busy scripts vs 1 (throughput)", "≈ ×2 on 2 cores", cores.missing);
else {
  const byLabel = Object.fromEntries(cores.results.map((/** @type {{ scenario: string }} */ r) => [r.scenario, r]));
  const control = byLabel["control: 2 plain threads spinning"]?.processCores;
  for (const label of ["2 scripts", "4 scripts", "1 script, 4 callers"]) {
    const r = byLabel[label];
    if (!r) continue;
    add(
      "cores",
      `${label} vs 1 script, CPU-bound handler`,
      `×${r.speedup}`,
      label === "1 script, 4 callers" ? "×1 (one at a time)" : "≈ ×2 on 2 cores",
      null,
      cores.stale ?? `process ${r.processCores} cores; loop delay p99 ${r.loopDelayP99Ms} ms; control threads got ${control} cores`,
    );
  }
}

const columns = ["area", "target", "measured", "goal", "status", "note"];
const summary = { machine: machine(), quick, at: new Date().toISOString(), runs, rows };
writeFileSync(path.join(benchDir, "results", "summary.json"), JSON.stringify(summary, null, 2) + "\n");
const markdown = [
  `| ${columns.join(" | ")} |`,
  `| ${columns.map(() => "---").join(" | ")} |`,
  ...rows.map((row) => `| ${columns.map((c) => String(row[/** @type {keyof typeof row} */ (c)]).replace(/\|/g, "\\|")).join(" | ")} |`),
].join("\n");
writeFileSync(
  path.join(benchDir, "results", "summary.md"),
  `Machine: ${JSON.stringify(machine())}${quick ? " — QUICK run, not figures to quote" : ""}\n\n${markdown}\n`,
);

console.log(`\n=== summary ${quick ? "(QUICK: smoke run, not figures to quote) " : ""}— ${JSON.stringify(machine())}`);
console.log(table(rows, columns));
console.log(`benches: ${runs.map((r) => `${r.name} ${r.status === 0 ? "ok" : "FAILED"} (${r.seconds} s)`).join(", ")}`);
console.log(`summary: bench/results/summary.json, bench/results/summary.md`);
if (runs.some((r) => r.status !== 0)) process.exitCode = 1;
