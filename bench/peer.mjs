// @ts-check
// The peer benchmark (issue 16): `callscript serve` side by side with workerd, Cloudflare's
// open-source Workers runtime, serving the same customization as a Worker (bench/peer/worker.js,
// which runs the examples' own code), and with a bare fastify route that parses the body and
// answers a same-sized JSON (bench/http-bare.mjs). Each server runs in its own process; autocannon
// drives them from this process, one at a time, alternated in the same rounds (the order rotates
// every round), at 1, 16 and 64 connections, for:
//
// - process_client_phone: one script on the hook (client-phone-format), 2.2 KB body;
// - need_registration: the three-script pipeline (blacklist-extensions, trunk-whitelist,
//   skip-short-and-ivr; the Worker runs the three rules in a row), 3.4 KB body.
//
// Beside them, the floor of callscript's design: an isolate per script and nothing else
// (bench/http-hop.mjs: fastify, isolated-vm's async apply with a time limit, JSON text in and out,
// the examples' own code), so that callscript's own path around the hop shows apart from the hop.
//
// Before measuring, every example payload of both hooks is sent to callscript, to the Worker and
// to the isolate-hop server, and their answers must be equal (the bench stops otherwise).
//
// Reported per server: req/s, p50/p99 latency of the 200 answers, and server CPU per request:
// utime + stime from /proc/<pid>/stat of the server's process and of every process under it,
// delta over the run / requests answered (200 and 503). callscript runs at log level warn (the
// figures compared with the targets) and, at 16 connections, also at info, its default.
//
// Run: npm run build && node --no-node-snapshot bench/peer.mjs     (~3.5 min)
// Env: BENCH_QUICK=1, BENCH_ROUNDS (3), BENCH_DURATION_S (3), BENCH_CONNECTIONS (1,16,64),
//      BENCH_PEER_CHECK=1 (only start the servers and compare their answers; no load),
//      BENCH_PEER_BASELINE=<dir> (another built checkout alternated as "baseline": before/after),
//      BENCH_PEER_BASELINE_LOG=info (the baseline's log level; warn by default),
//      BENCH_PEER_SERVERS=callscript,baseline (load only these; targets need bare and workerd),
//      BENCH_PEER_HOP_MODES=sync-notimeout,… (more isolate-hop floors, see bench/http-hop.mjs),
//      BENCH_PEER_FLAGS="--flag …" (Node/V8 flags for this checkout's callscript only)
import { spawn } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import * as esbuild from "esbuild";
import workerd from "workerd";
import {
  benchDir,
  machine,
  median,
  quick,
  repoRoot,
  round,
  sleep,
  spawnUntil,
  stopChild,
  table,
  writeResult,
  SERVING_LINE,
  serveExamplesArgs,
} from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 3));
const WARMUP_S = quick ? 1 : 2;
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,16,64").split(",").map(Number);
/** Where the targets are measured, and where the info-level server is measured too. */
const AT = 16;
const EXAMPLES = path.join(repoRoot, "examples");
const CONFIG_FILE = path.join(EXAMPLES, "callscript.config.json");
/** BENCH_PEER_CHECK=1: start the servers, compare the answers, print them, no load. */
const CHECK_ONLY = process.env.BENCH_PEER_CHECK === "1";
/**
 * BENCH_PEER_BASELINE=<another checkout of callscript, built>: its `callscript serve` (log warn)
 * joins the rounds as "baseline", for before/after figures of a change taken side by side.
 */
const BASELINE = process.env.BENCH_PEER_BASELINE ? path.resolve(process.env.BENCH_PEER_BASELINE) : undefined;
/**
 * BENCH_PEER_HOP_MODES: more isolate-hop floors to run beside "hop" (bench/http-hop.mjs's HOP_MODE
 * "async"), as "hop-<mode>": async-notimeout, sync, sync-notimeout.
 */
const HOP_MODES = [
  "async",
  ...(process.env.BENCH_PEER_HOP_MODES ?? "")
    .split(",")
    .map((mode) => mode.trim())
    .filter(Boolean),
];
const hopKey = (/** @type {string} */ mode) => /** @type {"hop"} */ (mode === "async" ? "hop" : `hop-${mode}`); // one type for all of them
/** BENCH_PEER_BASELINE_LOG: the baseline's log level (warn; info to set it beside callscript-info). */
const BASELINE_LOG = process.env.BENCH_PEER_BASELINE_LOG ?? "warn";
/** BENCH_PEER_FLAGS: Node/V8 flags for this checkout's callscript (not the baseline's): a flag's before/after. */
const PEER_FLAGS = (process.env.BENCH_PEER_FLAGS ?? "").split(" ").filter(Boolean);
/** BENCH_PEER_SERVERS: which servers to load (default all): bare, workerd, hop, callscript, callscript-info, baseline. */
const ONLY_SERVERS = process.env.BENCH_PEER_SERVERS?.split(",").map((name) => name.trim());

const payload = (/** @type {string} */ file) => readFileSync(path.join(EXAMPLES, "payloads", file), "utf8");
/** @typedef {"process_client_phone" | "need_registration"} HookName */
// One line, as the connector sends it (`body`, set from `file` right below).
const hooks = /** @type {Record<HookName, { scripts: number; file: string; body: string }>} */ ({
  process_client_phone: { scripts: 1, file: "process_client_phone.incoming-8-format.json" },
  need_registration: { scripts: 3, file: "need_registration.incoming-answered.json" },
});
for (const hook of Object.values(hooks)) hook.body = JSON.stringify(JSON.parse(payload(hook.file)));

// ---- CPU of a process tree -------------------------------------------------------------------

const CLOCK_TICKS = 100; // USER_HZ on Linux

/**
 * The process and every process under it (workerd or node may start helpers).
 * @param {number} pid
 */
function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${pids[i]}/task`);
    } catch {
      continue; // gone meanwhile
    }
    for (const tid of tasks) {
      try {
        for (const child of readFileSync(`/proc/${pids[i]}/task/${tid}/children`, "utf8").split(" ").filter(Boolean)) pids.push(Number(child));
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return pids;
}

/**
 * utime + stime in seconds of every thread of every process of the tree, by pid (for deltas).
 * @param {number} pid
 */
function treeCpu(pid) {
  /** @type {Map<number, number>} */
  const byPid = new Map();
  for (const each of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${each}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      byPid.set(each, (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS);
    } catch {
      // ended between the listing and the read
    }
  }
  return byPid;
}

/**
 * CPU seconds used between two readings, counting processes that appeared in between from zero.
 * @param {Map<number, number>} before
 * @param {Map<number, number>} after
 */
function cpuDelta(before, after) {
  let seconds = 0;
  for (const [pid, value] of after) seconds += value - (before.get(pid) ?? 0);
  return seconds;
}

// ---- the servers -----------------------------------------------------------------------------

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
      server.close(() => resolve(port));
    });
  });
}

/**
 * @param {string} url
 * @param {string} body
 */
async function post(url, body) {
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  return { status: response.status, text: await response.text() };
}

/**
 * The examples' top-level scripts and the config, bundled for the Worker as ES module `rules.js`
 * (its shape, for the type check: bench/peer/rules.d.ts).
 * @param {string} outFile
 */
async function bundleRules(outFile, format = /** @type {"esm" | "iife"} */ ("esm")) {
  const config = JSON.parse(readFileSync(CONFIG_FILE, "utf8"));
  const names = readdirSync(EXAMPLES)
    .filter((file) => file.endsWith(".ts") && !file.endsWith(".d.ts"))
    .map((file) => file.slice(0, -3))
    .sort();
  const entry = [
    ...names.map((name, i) => `import s${i} from ${JSON.stringify(path.join(EXAMPLES, `${name}.ts`))};`),
    `export const scripts = { ${names.map((name, i) => `${JSON.stringify(name)}: s${i}`).join(", ")} };`,
    // Only what the Worker reads of the config: the scripts' settings and the hooks' failure policy.
    `export const config = ${JSON.stringify({ scripts: config.scripts ?? {}, hooks: config.hooks ?? {} })};`,
  ].join("\n");
  await esbuild.build({
    stdin: { contents: entry, resolveDir: EXAMPLES, loader: "js", sourcefile: "rules-entry.js" },
    bundle: true,
    format,
    ...(format === "iife" ? { globalName: "rules" } : {}),
    platform: "neutral",
    target: "es2022",
    outfile: outFile,
    alias: { callscript: path.join(repoRoot, "sdk", "index.ts") },
    logLevel: "error",
  });
  return names;
}

/** workerd serving bench/peer/worker.js, with a config written for a free port. */
async function startWorkerd() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-peer-"));
  copyFileSync(path.join(benchDir, "peer", "worker.js"), path.join(dir, "worker.js"));
  const scripts = await bundleRules(path.join(dir, "rules.js"));
  const port = await freePort();
  writeFileSync(
    path.join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [ (name = "main", worker = .peerWorker) ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);

const peerWorker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "worker.js"),
    (name = "rules.js", esModule = embed "rules.js"),
  ],
  compatibilityDate = "${workerd.compatibilityDate}",
);
`,
  );
  const startedAt = performance.now();
  const child = spawn(workerd.default, ["serve", path.join(dir, "config.capnp")], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (chunk) => (output += chunk));
  child.stderr.setEncoding("utf8").on("data", (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  // workerd prints nothing when it listens: ready is its first answer.
  for (;;) {
    if (child.exitCode !== null) throw new Error(`workerd exited (${child.exitCode}):\n${output}`);
    try {
      const { status } = await post(`${url}/hooks/none`, "{}");
      if (status === 404) break;
    } catch {
      // not listening yet
    }
    if (performance.now() - startedAt > 30_000) {
      child.kill("SIGKILL");
      throw new Error(`workerd not answering within 30 s:\n${output}`);
    }
    await sleep(20);
  }
  return { name: `workerd ${workerd.version}`, child, url, readyMs: performance.now() - startedAt, dir, scripts };
}

/**
 * `callscript serve` with the examples, from this checkout or from another one (`root`, built).
 * @param {string} logLevel
 */
async function startCallscript(logLevel, root = repoRoot, label = "") {
  const flags = root === repoRoot ? PEER_FLAGS : [];
  const { child, match, readyMs } = await spawnUntil(process.execPath, [...flags, ...serveExamplesArgs(0)], {
    ready: SERVING_LINE,
    env: { CALLSCRIPT_LOG_LEVEL: logLevel },
    stdout: "ignore",
    cwd: root,
  });
  return { name: `callscript${label} (log ${logLevel})`, child, url: /** @type {string} */ (match[1]), readyMs };
}

/** @param {Record<string, unknown>} answers */
async function startBare(answers) {
  const { child, match, readyMs } = await spawnUntil(process.execPath, [path.join(benchDir, "http-bare.mjs")], {
    ready: /listening (http:\/\/\S+)/,
    env: { BARE_ANSWERS: JSON.stringify(answers) },
  });
  return { name: "bare fastify", child, url: /** @type {string} */ (match[1]), readyMs };
}

/**
 * The floor of an isolate per script (bench/http-hop.mjs): fastify and an isolated-vm isolate per
 * script, the examples' code, JSON text in and out, nothing of callscript around the hop.
 * @param {string} mode HOP_MODE
 */
async function startHop(mode) {
  const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-hop-"));
  await bundleRules(path.join(dir, "rules.js"), "iife");
  const { child, match, readyMs } = await spawnUntil(process.execPath, ["--no-node-snapshot", path.join(benchDir, "http-hop.mjs")], {
    ready: /listening (http:\/\/\S+)/,
    env: { HOP_RULES: path.join(dir, "rules.js"), HOP_CONFIG: CONFIG_FILE, HOP_MODE: mode },
  });
  return { name: mode === "async" ? "isolate hop" : `isolate hop (${mode})`, child, url: /** @type {string} */ (match[1]), readyMs, dir };
}

// ---- load ------------------------------------------------------------------------------------

/**
 * One autocannon run; latency from every 200 response.
 * @param {{ name: string; child: import("node:child_process").ChildProcess; url: string }} server
 * @param {HookName} hook
 * @param {number} connections
 * @param {number} durationS
 */
async function load(server, hook, connections, durationS) {
  /** @type {number[]} */
  const latencies = [];
  let shed = 0;
  const before = treeCpu(/** @type {number} */ (server.child.pid)); // started, so it has a pid
  const instance = autocannon({
    url: `${server.url}/hooks/${hook}`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: hooks[hook].body,
    connections,
    duration: durationS,
  });
  instance.on("response", (_client, status, _bytes, ms) => {
    if (status === 200) latencies.push(ms);
    else if (status === 503) shed++;
  });
  const result = await instance;
  const after = treeCpu(/** @type {number} */ (server.child.pid));
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000 || durationS;
  latencies.sort((a, b) => a - b);
  const at = (/** @type {number} */ p) =>
    /** @type {number} */ (latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))]);
  const bad = result.non2xx - shed + result.errors + result.timeouts;
  if (bad > 0)
    throw new Error(
      `${server.name} ${hook} @${connections}: ${result.non2xx - shed} non-2xx other than 503, ${result.errors} errors, ${result.timeouts} timeouts`,
    );
  const answered = latencies.length;
  const cpu = cpuDelta(before, after);
  return {
    rps: answered / seconds,
    shedShare: shed / Math.max(1, answered + shed),
    cpuUsPerRequest: (cpu * 1e6) / Math.max(1, answered + shed),
    serverCores: cpu / seconds,
    p50Ms: at(50),
    p99Ms: at(99),
    processes: after.size,
  };
}

// ---- run -------------------------------------------------------------------------------------

const servers = {};
/** @typedef {keyof typeof servers} ServerKey */
try {
  servers.callscript = await startCallscript("warn");
  servers["callscript-info"] = await startCallscript("info");
  if (BASELINE) servers.baseline = await startCallscript(BASELINE_LOG, BASELINE, ` baseline ${path.basename(BASELINE)}`);
  servers.workerd = await startWorkerd();
  servers.hop = await startHop("async");
  for (const mode of HOP_MODES.slice(1)) servers[hopKey(mode)] = await startHop(mode);

  // Same logic, same answers: every example payload of both hooks, callscript against the Worker.
  const checked = [];
  for (const hook of Object.keys(hooks)) {
    for (const file of readdirSync(path.join(EXAMPLES, "payloads")).filter((name) => name.startsWith(`${hook}.`))) {
      const body = payload(file);
      const [ours, theirs] = await Promise.all([post(`${servers.callscript.url}/hooks/${hook}`, body), post(`${servers.workerd.url}/hooks/${hook}`, body)]);
      if (ours.status !== 200 || theirs.status !== 200 || !isDeepStrictEqual(JSON.parse(ours.text), JSON.parse(theirs.text))) {
        throw new Error(`${hook} ${file}: callscript answered ${ours.status} ${ours.text}, the Worker ${theirs.status} ${theirs.text}`);
      }
      for (const mode of HOP_MODES) {
        const hop = await post(`${servers[hopKey(mode)].url}/hooks/${hook}`, body);
        if (hop.status !== 200 || !isDeepStrictEqual(JSON.parse(ours.text), JSON.parse(hop.text)))
          throw new Error(`${hook} ${file}: callscript answered ${ours.status} ${ours.text}, ${servers[hopKey(mode)].name} ${hop.status} ${hop.text}`);
      }
      checked.push({ hook, file, answer: ours.text, sameText: ours.text === theirs.text });
    }
  }
  /** @type {Record<string, unknown>} */
  const answers = {};
  for (const [hook, { body }] of Object.entries(hooks)) {
    const ours = await post(`${servers.callscript.url}/hooks/${hook}`, body);
    const theirs = await post(`${servers.workerd.url}/hooks/${hook}`, body);
    if (ours.text !== theirs.text) throw new Error(`${hook}: callscript ${ours.text}, the Worker ${theirs.text}`);
    answers[hook] = JSON.parse(ours.text);
  }
  servers.bare = await startBare(answers);
  for (const [hook, { body }] of Object.entries(hooks)) {
    const fromBare = await post(`${servers.bare.url}/hooks/${hook}`, body);
    if (fromBare.status !== 200 || fromBare.text !== JSON.stringify(answers[hook])) throw new Error(`bare ${hook}: ${fromBare.status} ${fromBare.text}`);
  }
  process.stderr.write(
    `answers equal: ${checked.length} example payloads (${checked.filter((c) => c.sameText).length} byte for byte); workerd ${workerd.version} ready in ${Math.round(servers.workerd.readyMs)} ms\n`,
  );
  if (CHECK_ONLY)
    for (const { hook, file, answer, sameText } of checked) console.log(`${hook} ${file}: ${answer}${sameText ? "" : " (same value, other text)"}`);
  else await measure(answers, checked);
} finally {
  await Promise.all(Object.values(servers).map((server) => stopChild(server.child)));
  if (servers.workerd) rmSync(servers.workerd.dir, { recursive: true, force: true });
  for (const mode of HOP_MODES) if (servers[hopKey(mode)]) rmSync(servers[hopKey(mode)].dir, { recursive: true, force: true });
}

/** @typedef {Awaited<ReturnType<typeof load>>} Run */
/**
 * One server's medians at one hook and connection count; a ratio is null without the server it
 * compares with.
 * @typedef {{ name: string; rps: number; p50Ms: number; p99Ms: number; cpuUsPerRequest: number; serverCores: number; shedShare: number; vsBare: number | null; vsWorkerd: number | null; p99OverWorkerdMs: number | null }} Figures
 */

/**
 * @param {Record<string, unknown>} answers
 * @param {{ hook: string; file: string; answer: string; sameText: boolean }[]} checked
 */
async function measure(answers, checked) {
  const loaded = (/** @type {string} */ key) =>
    servers[/** @type {ServerKey} */ (key)] !== undefined && (ONLY_SERVERS === undefined || ONLY_SERVERS.includes(key));
  // Warm-up: every server measured, every hook, untimed (JIT, isolates' ICs, connection pools).
  for (const key of Object.keys(servers).filter(loaded))
    for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) await load(servers[/** @type {ServerKey} */ (key)], hook, AT, WARMUP_S);

  const KEYS = ["bare", "workerd", ...HOP_MODES.map(hopKey), "callscript", "baseline"].filter(loaded);
  /** @type {Record<string, Run[]>} */
  const samples = {}; // `${hook}|${connections}|${key}` → run[]
  for (let r = 0; r < ROUNDS; r++) {
    for (const connections of CONNECTIONS) {
      for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) {
        const keys = connections === AT && loaded("callscript-info") ? [...KEYS, "callscript-info"] : KEYS;
        // Rotate the order every round, so that no server always follows the same one.
        const order = keys.map((_, i) => /** @type {ServerKey} */ (keys[(i + r) % keys.length]));
        for (const key of order) {
          const run = await load(servers[key], hook, connections, DURATION_S);
          (samples[`${hook}|${connections}|${key}`] ??= []).push(run);
          process.stderr.write(
            `round ${r + 1}/${ROUNDS} ${hook} @${connections} ${key}: ${Math.round(run.rps)} req/s, p50 ${round(run.p50Ms, 2)} p99 ${round(run.p99Ms, 2)} ms, ` +
              `${Math.round(run.cpuUsPerRequest)} µs CPU/req (${run.processes} process${run.processes === 1 ? "" : "es"})${run.shedShare > 0 ? `, ${Math.round(run.shedShare * 100)}% shed` : ""}\n`,
          );
        }
      }
    }
  }

  /** @type {{ hook: HookName; scripts: number; connections: number; servers: Record<string, Figures> }[]} */
  const results = [];
  const rows = [];
  for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) {
    for (const connections of CONNECTIONS) {
      // Undefined for a server not loaded: callers check before they read.
      const runs = (/** @type {string} */ key) => /** @type {Run[]} */ (samples[`${hook}|${connections}|${key}`]);
      /** @type {(key: string, of: string) => number | null} */
      const ratio = (key, of) => (runs(of) ? round(median(runs(key).map((run, i) => run.rps / /** @type {Run} */ (runs(of)[i]).rps)), 3) : null);
      /** @type {(typeof results)[number]} */
      const entry = { hook, scripts: hooks[hook].scripts, connections, servers: {} };
      for (const key of [...KEYS, "callscript-info"].filter((k) => runs(k))) {
        const overWorkerd = runs("workerd") ? round(median(runs(key).map((run, i) => run.p99Ms - /** @type {Run} */ (runs("workerd")[i]).p99Ms)), 3) : null;
        entry.servers[key] = {
          name: servers[/** @type {ServerKey} */ (key)].name,
          rps: Math.round(median(runs(key).map((run) => run.rps))),
          p50Ms: round(median(runs(key).map((run) => run.p50Ms)), 3),
          p99Ms: round(median(runs(key).map((run) => run.p99Ms)), 3),
          cpuUsPerRequest: Math.round(median(runs(key).map((run) => run.cpuUsPerRequest))),
          serverCores: round(median(runs(key).map((run) => run.serverCores)), 2),
          shedShare: round(median(runs(key).map((run) => run.shedShare)), 3),
          vsBare: ratio(key, "bare"),
          vsWorkerd: ratio(key, "workerd"),
          // Per round, then the median: a neighbour's load that comes and goes hits both alike.
          p99OverWorkerdMs: overWorkerd,
        };
      }
      results.push(entry);
      for (const [key, s] of Object.entries(entry.servers)) {
        rows.push({
          hook: `${hook} (${hooks[hook].scripts} script${hooks[hook].scripts === 1 ? "" : "s"})`,
          conns: connections,
          server: s.name,
          "req/s": s.rps,
          "vs bare": s.vsBare === null ? "" : `${Math.round(s.vsBare * 100)}%`,
          "vs workerd": s.vsWorkerd === null ? "" : `${Math.round(s.vsWorkerd * 100)}%`,
          "p50 ms": s.p50Ms,
          "p99 ms": s.p99Ms,
          "CPU µs/req": s.cpuUsPerRequest,
          cores: s.serverCores,
          shed: s.shedShare > 0 ? `${Math.round(s.shedShare * 100)}%` : "",
        });
      }
    }
  }

  // The issue's targets, at 16 connections, callscript at log warn.
  // Read only where bare and workerd ran as well (checked below), so callscript's ratios are numbers there.
  const at = (/** @type {string} */ hook) =>
    /** @type {Record<string, Figures & { vsBare: number; vsWorkerd: number; p99OverWorkerdMs: number }> | undefined} */ (
      results.find((r) => r.hook === hook && r.connections === AT)?.servers
    );
  const targets = [];
  const one = at("process_client_phone");
  const three = at("need_registration");
  if (one?.bare && one.workerd && one.callscript) {
    targets.push(
      {
        target: "1 script: server CPU per request vs workerd",
        goal: "≤ workerd",
        measured: `${one.callscript.cpuUsPerRequest} vs ${one.workerd.cpuUsPerRequest} µs`,
        pass: one.callscript.cpuUsPerRequest <= one.workerd.cpuUsPerRequest,
      },
      {
        target: "1 script: req/s vs workerd",
        goal: "≥ 100%",
        measured: `${Math.round(one.callscript.vsWorkerd * 100)}% (${one.callscript.rps} vs ${one.workerd.rps})`,
        pass: one.callscript.vsWorkerd >= 1,
      },
      {
        target: "1 script: req/s vs bare fastify",
        goal: "≥ 70%",
        measured: `${Math.round(one.callscript.vsBare * 100)}% (${one.callscript.rps} vs ${one.bare.rps})`,
        pass: one.callscript.vsBare >= 0.7,
      },
      {
        target: "1 script: p99 vs workerd",
        goal: "≤ +2 ms",
        measured: `${one.callscript.p99Ms} vs ${one.workerd.p99Ms} ms (+${one.callscript.p99OverWorkerdMs})`,
        pass: one.callscript.p99OverWorkerdMs <= 2,
      },
    );
  }
  if (three?.bare && three.workerd && three.callscript) {
    targets.push(
      {
        target: "3 scripts: req/s vs bare fastify",
        goal: "≥ 50%",
        measured: `${Math.round(three.callscript.vsBare * 100)}% (${three.callscript.rps} vs ${three.bare.rps})`,
        pass: three.callscript.vsBare >= 0.5,
      },
      {
        target: "3 scripts: p99 vs workerd",
        goal: "≤ +2 ms",
        measured: `${three.callscript.p99Ms} vs ${three.workerd.p99Ms} ms (+${three.callscript.p99OverWorkerdMs})`,
        pass: three.callscript.p99OverWorkerdMs <= 2,
      },
      {
        target: "3 scripts: server CPU per request vs workerd",
        goal: "(no target)",
        measured: `${three.callscript.cpuUsPerRequest} vs ${three.workerd.cpuUsPerRequest} µs`,
        pass: null,
      },
    );
  }

  const output = {
    quick,
    rounds: ROUNDS,
    durationS: DURATION_S,
    connections: CONNECTIONS,
    workerd: {
      version: workerd.version,
      compatibilityDate: workerd.compatibilityDate,
      readyMs: round(servers.workerd.readyMs, 0),
      scriptsBundled: servers.workerd.scripts,
    },
    callscriptReadyMs: round(servers.callscript.readyMs, 0),
    bodyBytes: Object.fromEntries(Object.entries(hooks).map(([hook, { body }]) => [hook, Buffer.byteLength(body)])),
    answers,
    checked,
    targets,
    results,
    samples,
  };
  // A before/after or partial run goes to a file of its own, so that npm run bench's summary reads only full runs.
  const file = writeResult(BASELINE || ONLY_SERVERS ? "peer-ab" : "peer", { ...output, baseline: BASELINE ?? null, servers: KEYS });
  console.log(`Peer: bare fastify, workerd and callscript serve side by side, medians of ${ROUNDS} rounds × ${DURATION_S} s — ${JSON.stringify(machine())}`);
  console.log(table(rows, ["hook", "conns", "server", "req/s", "vs bare", "vs workerd", "p50 ms", "p99 ms", "CPU µs/req", "cores", "shed"]));
  if (targets.length > 0) {
    console.log(`targets at ${AT} connections, callscript at log warn:`);
    console.log(
      table(
        targets.map((t) => ({ ...t, status: t.pass === null ? "—" : t.pass ? "PASS" : "MISS" })),
        ["target", "goal", "measured", "status"],
      ),
    );
  }
  console.log(`results: ${path.relative(process.cwd(), file)}`);
}
