// @ts-check
// A fresh `callscript serve` taking traffic at once, as a restarted server or a new instance behind
// a load balancer does: the examples served, autocannon at 16 connections from the moment the
// server says it serves, in consecutive windows of 1 s; each window's requests answered and the
// server process's CPU (every thread, from /proc) per request. Several starts, the median of each
// window. A restart reuses the type check's and the bundles' caches, as a real one does.
//
// Not part of `npm run bench`: for docs/benchmarks.md ("A server's first seconds").
// Run: npm run build && node --no-node-snapshot bench/first-seconds.mjs
// Env: FIRST_SECONDS_STARTS (3), FIRST_SECONDS_WINDOWS (6), FIRST_SECONDS_HOOK (process_client_phone)
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { median, procStats, repoRoot, round, serveExamplesArgs, SERVING_LINE, spawnUntil, stopChild, table, writeResult } from "./lib.mjs";

/** @param {string} name @param {number} fallback */
function count(name, fallback) {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name}: a whole number of 1 or more, not ${process.env[name]}`);
  return value;
}
const STARTS = count("FIRST_SECONDS_STARTS", 3);
const WINDOWS = count("FIRST_SECONDS_WINDOWS", 6);
const HOOK = process.env.FIRST_SECONDS_HOOK ?? "process_client_phone";
const FILES = {
  process_client_phone: "process_client_phone.incoming-8-format.json",
  need_registration: "need_registration.incoming-answered.json",
};
const file = FILES[/** @type {keyof typeof FILES} */ (HOOK)];
if (!file) throw new Error(`FIRST_SECONDS_HOOK: one of ${Object.keys(FILES).join(", ")}`);
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", file), "utf8")));

/** @type {{ requests: number; cpuUsPerRequest: number }[][]} */
const starts = [];
for (let s = 0; s < STARTS; s++) {
  const server = await spawnUntil(process.execPath, serveExamplesArgs(0), { ready: SERVING_LINE, env: { CALLSCRIPT_LOG_LEVEL: "warn" }, stdout: "ignore" });
  const pid = /** @type {number} */ (server.child.pid);
  const url = `${server.match[1]}/hooks/${HOOK}`;
  /** @type {{ requests: number; cpuUsPerRequest: number }[]} */
  const windows = [];
  try {
    for (let w = 0; w < WINDOWS; w++) {
      const before = procStats(pid).cpuSeconds;
      const run = await autocannon({ url, method: "POST", headers: { "content-type": "application/json" }, body, connections: 16, duration: 1 });
      if (run.non2xx > 0) throw new Error(`${run.non2xx} answers were not 2xx`);
      const requests = run.requests.total;
      windows.push({ requests, cpuUsPerRequest: requests > 0 ? ((procStats(pid).cpuSeconds - before) * 1e6) / requests : NaN });
    }
  } finally {
    await stopChild(server.child);
  }
  console.log(`start ${s + 1}/${STARTS}: ${windows.map((w) => `${w.requests} req, ${Math.round(w.cpuUsPerRequest)} µs`).join(" | ")}`);
  starts.push(windows);
}

const rows = Array.from({ length: WINDOWS }, (_, w) => ({
  window: `${w}–${w + 1} s`,
  "requests (median)": median(starts.map((windows) => windows[w]?.requests ?? NaN)),
  "server CPU µs/req (median)": round(median(starts.map((windows) => windows[w]?.cpuUsPerRequest ?? NaN)), 0),
  "of the starts": starts.map((windows) => Math.round(windows[w]?.cpuUsPerRequest ?? NaN)).join(", "),
}));
console.log(`\n${HOOK} at 16 connections from ready, ${STARTS} starts, windows of 1 s`);
console.log(table(rows, Object.keys(rows[0] ?? {})));
writeResult("first-seconds", { hook: HOOK, connections: 16, starts: STARTS, windows: rows });
