// @ts-check
// Where `callscript serve` spends its CPU under load: the examples served in a child process,
// autocannon on one hook from this process, and a profile of the load window only (not the start
// nor the shutdown), summarized as self time by function and by module.
//
// Two profilers:
// - PROFILE=cpu (default): V8's sampling profiler (`node --cpu-prof`), the event loop's thread
//   only: JavaScript by function, plus "(program)" and "(garbage collector)". The samples of the
//   load window are picked by their time stamps (both processes read CLOCK_MONOTONIC).
// - PROFILE=perf: Linux `perf record -g` of every thread of the server (isolated-vm's threads and
//   the kernel included), node run with --perf-basic-prof so that JIT code has names; summary by
//   thread, shared object and symbol.
//
// Not part of `npm run bench`: a tool for docs/benchmarks.md's profile section.
// Run: npm run build && node --no-node-snapshot bench/profile-serve.mjs
// Env: PROFILE (cpu | perf), PROFILE_HOOK (process_client_phone), PROFILE_CONNECTIONS (16),
//      PROFILE_SECONDS (10), PROFILE_WARMUP_SECONDS (3: JIT, isolates; the compiler's warm-up in its worker may
//      fall in a short one when the loop is not busy), PROFILE_LOG_LEVEL (warn), PROFILE_TOP (30), PROFILE_KEEP (keep files)
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { repoRoot, round, sleep, spawnUntil, stopChild, table, SERVING_LINE, serveExamplesArgs } from "./lib.mjs";

const MODE = process.env.PROFILE ?? "cpu";
const HOOK = process.env.PROFILE_HOOK ?? "process_client_phone";
const CONNECTIONS = Number(process.env.PROFILE_CONNECTIONS ?? 16);
const SECONDS = Number(process.env.PROFILE_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.PROFILE_WARMUP_SECONDS ?? 3);
const LOG_LEVEL = process.env.PROFILE_LOG_LEVEL ?? "warn";
const TOP = Number(process.env.PROFILE_TOP ?? 30);
const FILES = {
  process_client_phone: "process_client_phone.incoming-8-format.json",
  need_registration: "need_registration.incoming-answered.json",
  process_call_params: "process_call_params.kommo-incoming.json",
};
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", FILES[/** @type {keyof typeof FILES} */ (HOOK)]), "utf8")));
const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-profile-"));

const nodeFlags = MODE === "cpu" ? ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--cpu-prof-interval=50"] : ["--perf-basic-prof-only-functions"];
const server = await spawnUntil(process.execPath, [...nodeFlags, ...serveExamplesArgs(0)], {
  ready: SERVING_LINE,
  env: { CALLSCRIPT_LOG_LEVEL: LOG_LEVEL },
  stdout: "ignore",
});
const url = `${server.match[1]}/hooks/${HOOK}`;

/** @param {number} seconds */
async function load(seconds) {
  const result = await autocannon({ url, method: "POST", headers: { "content-type": "application/json" }, body, connections: CONNECTIONS, duration: seconds });
  return { rps: Math.round(result.requests.average), non2xx: result.non2xx, total: result.requests.total };
}

let window;
/** @type {import("node:child_process").ChildProcess | undefined} */
let perf;
try {
  await load(WARMUP_SECONDS);
  if (MODE === "perf") {
    perf = spawn("perf", ["record", "-F", "999", "-g", "-o", path.join(dir, "perf.data"), "-p", String(server.child.pid)], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    await sleep(300);
  }
  const start = process.hrtime.bigint() / 1000n;
  const run = await load(SECONDS);
  const end = process.hrtime.bigint() / 1000n;
  window = { start, end, ...run };
  if (perf) {
    perf.kill("SIGINT");
    await new Promise((resolve) => /** @type {import("node:child_process").ChildProcess} */ (perf).once("exit", resolve));
  }
} finally {
  await stopChild(server.child);
}
console.log(`${HOOK} @${CONNECTIONS} connections, log ${LOG_LEVEL}: ${window.rps} req/s, ${window.total} requests in ${SECONDS} s (non-2xx ${window.non2xx})`);

const pct = (/** @type {number} */ part, /** @type {number} */ whole) => `${round((part / whole) * 100, 1)}%`;

if (MODE === "cpu") {
  // The event loop's own: node writes one per thread (CPU.<date>.<time>.<pid>.<thread id>.<n>.cpuprofile), 0 for the main thread.
  const file = readdirSync(dir).find((name) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(name));
  if (!file) throw new Error(`no profile written in ${dir}`);
  /** @type {Required<import("node:inspector").Profiler.Profile>} */
  const profile = JSON.parse(readFileSync(path.join(dir, file), "utf8"));
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  // Self time of each node within the load window.
  /** @type {Map<number, number>} */
  const self = new Map();
  let t = profile.startTime;
  let total = 0;
  // A profile has as many time deltas as samples, so [i] is there.
  for (let i = 0; i < profile.samples.length; i++) {
    t += /** @type {number} */ (profile.timeDeltas[i]);
    if (t < window.start || t > window.end) continue;
    const delta = profile.timeDeltas[i + 1] ?? 0;
    self.set(/** @type {number} */ (profile.samples[i]), (self.get(/** @type {number} */ (profile.samples[i])) ?? 0) + delta);
    total += delta;
  }
  const moduleOf = (/** @type {string} */ url) => {
    if (!url) return "(native / V8)";
    const relative = url.replace(/^file:\/\//, "");
    const nm = relative.lastIndexOf("node_modules/");
    if (nm >= 0) {
      const parts = /** @type {[string, ...string[]]} */ (relative.slice(nm + "node_modules/".length).split("/")); // split gives one at least
      return parts[0].startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0];
    }
    if (relative.startsWith("node:")) return relative;
    return path.relative(repoRoot, relative);
  };
  /** @type {Map<string, number>} */
  const byFunction = new Map();
  /** @type {Map<string, number>} */
  const byModule = new Map();
  for (const [id, us] of self) {
    const { callFrame } = /** @type {import("node:inspector").Profiler.ProfileNode} */ (byId.get(id)); // a sample is a node's id
    const module = moduleOf(callFrame.url);
    const fn = `${callFrame.functionName || "(anonymous)"} ${module}:${callFrame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
    byModule.set(module, (byModule.get(module) ?? 0) + us);
  }
  const requests = window.total;
  const rows = (/** @type {Map<string, number>} */ map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([name, us]) => ({ name, "self ms": round(us / 1000, 0), share: pct(us, total), "µs/req": round(us / requests, 1) }));
  console.log(`\nevent loop thread, ${round(total / 1000, 0)} ms sampled in the window, ${round(total / requests, 1)} µs per request`);
  console.log("\nby module (self time)");
  console.log(table(rows(byModule), ["name", "self ms", "share", "µs/req"]));
  console.log("\nby function (self time)");
  console.log(table(rows(byFunction), ["name", "self ms", "share", "µs/req"]));
  // Inclusive time: a sample counts for every distinct function on its stack, so a caller's
  // figure holds what its callees cost (a function that recurses counts once).
  /** @type {Map<number, number>} */
  const parentOf = new Map();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  /** @type {Map<string, number>} */
  const inclusive = new Map();
  for (const [id, us] of self) {
    const names = new Set();
    for (let at = /** @type {number | undefined} */ (id); at !== undefined; at = parentOf.get(at)) {
      const { callFrame } = /** @type {import("node:inspector").Profiler.ProfileNode} */ (byId.get(at));
      names.add(`${callFrame.functionName || "(anonymous)"} ${moduleOf(callFrame.url)}:${callFrame.lineNumber + 1}`);
    }
    for (const name of names) inclusive.set(name, (inclusive.get(name) ?? 0) + us);
  }
  console.log("\nby function (inclusive: with what it calls)");
  console.log(
    table(
      rows(inclusive).map(({ "self ms": ms, ...row }) => ({ ...row, "total ms": ms })),
      ["name", "total ms", "share", "µs/req"],
    ),
  );
} else {
  const pid = server.child.pid;
  const report = (/** @type {string} */ sort) =>
    spawnSync("perf", ["report", "-i", path.join(dir, "perf.data"), "--no-children", "--stdio", "--percent-limit", "0", "-g", "none", "--sort", sort], {
      encoding: "utf8",
      maxBuffer: 256 << 20,
    }).stdout;
  // perf's `pid` key is the thread (tid:comm). The event loop's thread is the one whose id is the
  // process's; the others are isolated-vm's (scripts), libuv's pool and V8's helpers (GC,
  // compiler), all named "node".
  const rows = report("pid,dso,sym")
    .split("\n")
    .filter((line) => /^\s*[\d.]+%/.test(line))
    // Columns are padded with two spaces or more (a dso may hold one: "[JIT] tid 123").
    .map((line) => /** @type {[string, string, string, string?]} */ (line.trim().split(/\s{2,}/))) // share, thread, dso, then the symbol if any
    .map(([share, thread, dso, sym = ""]) => ({
      share: Number.parseFloat(share),
      tid: Number.parseInt(thread, 10),
      dso: dso.startsWith("[JIT]") ? "[JIT]" : dso,
      sym: sym.replace(/^\[[.k]\]\s+/, ""),
    }))
    .map((row) => ({ ...row, main: row.tid === pid }));
  const sum = (/** @type {typeof rows} */ list) =>
    round(
      list.reduce((total, row) => total + row.share, 0),
      2,
    );
  /**
   * @param {typeof rows} list
   * @param {(row: (typeof rows)[number]) => unknown} key
   */
  const top = (list, key) => {
    /** @type {Map<unknown, number>} */
    const groups = new Map();
    for (const row of list) groups.set(key(row), (groups.get(key(row)) ?? 0) + row.share);
    return [...groups]
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
      .map(([name, share]) => ({ name, share: `${round(share, 2)}%` }));
  };
  const main = rows.filter((row) => row.main);
  const others = rows.filter((row) => !row.main);
  const perThread = top(others, (row) => row.tid)
    .slice(0, 6)
    .map((t) => t.share);
  console.log(`\nall threads' CPU samples: event loop ${sum(main)}%, other threads ${sum(others)}% (largest: ${perThread.join(", ")})`);
  console.log("\nby shared object, event loop");
  console.log(
    table(
      top(main, (row) => row.dso),
      ["name", "share"],
    ),
  );
  console.log("\nby shared object, other threads");
  console.log(
    table(
      top(others, (row) => row.dso),
      ["name", "share"],
    ),
  );
  console.log("\nby symbol, event loop (share of all samples)");
  console.log(
    table(
      top(main, (row) => `${row.sym}  [${row.dso}]`),
      ["name", "share"],
    ),
  );
  console.log("\nby symbol, other threads (share of all samples)");
  console.log(
    table(
      top(others, (row) => `${row.sym}  [${row.dso}]`),
      ["name", "share"],
    ),
  );
  const requests = window.total;
  console.log(`\n(${requests} requests in the window)`);
}
if (process.env.PROFILE_KEEP) console.log(`files kept in ${dir}`);
else rmSync(dir, { recursive: true, force: true });
