// @ts-check
// What the console's calls buffer costs the hook route: `callscript serve` with the examples, four
// ways, each in its own child process: the console off (console.enabled false), the console on
// without calls (console.calls 0), the console keeping the last 200 calls (the default: successful
// ones at most console.callsPerSecond, 50, a second), and keeping every one of them. Driven
// by autocannon in this process at 16 connections on need_registration (three scripts, a 3.4 KB
// call_full), the servers alternated within each round (order flipped every round); figures are
// medians over the rounds. Server CPU per request is the figure to compare: it does not depend on
// how much of the machine the neighbours leave, unlike req/s.
//
// Then, in this process, what keeping one call costs in itself: the record the hook route makes
// and CallsBuffer.add over a full buffer (the steady state), per call, from dist/.
//
// Run: npm run build && node --no-node-snapshot bench/console-calls.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (5), BENCH_DURATION_S (3)
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { machine, median, procStats, quick, repoRoot, round, spawnUntil, stopChild, table, writeResult, SERVING_LINE } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 3));
const CONNECTIONS = 16;
const HOOK = "need_registration";
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", "need_registration.incoming-answered.json"), "utf8")));

const exampleConfig = JSON.parse(readFileSync(path.join(repoRoot, "examples", "callscript.config.json"), "utf8"));
const variants = {
  "console off": { enabled: false },
  "console, calls 0": { calls: 0 },
  "console, calls 200": { calls: 200 },
  // Every call kept, as before console.callsPerSecond (50 successful calls a second by default).
  "console, calls 200, every call": { calls: 200, callsPerSecond: 100_000 },
};

const work = mkdtempSync(path.join(tmpdir(), "callscript-bench-console-"));

/**
 * @param {string} name
 * @param {Record<string, unknown>} consoleConfig
 */
async function start(name, consoleConfig) {
  const file = path.join(work, `${name.replace(/\W+/g, "-")}.json`);
  writeFileSync(file, JSON.stringify({ ...exampleConfig, scriptsDir: path.join(repoRoot, "examples"), logLevel: "warn", console: consoleConfig }));
  const { child, match } = await spawnUntil(
    process.execPath,
    ["--no-node-snapshot", "bin/callscript.js", "serve", "--config", file, "--port", "0", "--no-watch"],
    {
      ready: SERVING_LINE,
      stdout: "ignore",
    },
  );
  return { name, child, url: match[1] };
}

/**
 * @param {Awaited<ReturnType<typeof start>>} server
 * @param {number} durationS
 */
async function load(server, durationS) {
  const pid = /** @type {number} */ (server.child.pid);
  const before = procStats(pid);
  const result = await autocannon({
    url: `${server.url}/hooks/${HOOK}`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: durationS,
  });
  const after = procStats(pid);
  if (result.non2xx + result.errors + result.timeouts > 0)
    throw new Error(`${server.name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000 || durationS;
  return {
    rps: result.requests.total / seconds,
    p99Ms: result.latency.p99,
    cpuUsPerRequest: ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.max(1, result.requests.total),
    rssMiB: after.rssBytes / 2 ** 20,
  };
}

/** ns per kept call: the hook route's part (record, size estimate, add) over a full buffer. */
async function keepCost() {
  const { CallsBuffer, estimateBytes } = await import("../dist/runtime/server/calls-buffer.js");
  const buffer = new CallsBuffer(200, 16 * 1024 * 1024);
  const input = JSON.parse(body);
  /** @type {import("../dist/runtime/sandbox/sandbox.js").Invocation[]} */
  const invocations = ["a", "b", "c"].map((script) => ({
    script,
    version: "0123456789ab",
    outcome: { kind: "data", data: { result: false } },
    logs: { lines: [{ level: "info", message: "not registering", atMs: 0.2 }], bytes: 16, dropped: 0, droppedBytes: 0 },
    stats: { wallMs: 0.3, cpuMs: 0.2, queuedMs: 0, outputBytes: 16, logBytes: 16 },
  }));
  /** @type {import("../dist/runtime/schema/envelope.js").HookAnswer} */
  const answer = { state: "success", data: { result: false } };
  const keep = (/** @type {number} */ i) =>
    buffer.add(
      {
        id: `req-${i}`,
        hook: HOOK,
        at: Date.now(),
        ms: 1.5,
        status: 200,
        outcome: "success",
        scripts: invocations.map((x) => x.script),
        input,
        answer,
        invocations,
      },
      estimateBytes(body.length, invocations),
    );
  for (let i = 0; i < 200_000; i++) keep(i);
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const n = 500_000;
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) keep(i);
    runs.push(Number(process.hrtime.bigint() - started) / n);
  }
  return round(median(runs), 0);
}

/** @type {Awaited<ReturnType<typeof start>>[]} */
const servers = [];
try {
  for (const [name, consoleConfig] of Object.entries(variants)) servers.push(await start(name, consoleConfig));
  for (const server of servers) await load(server, quick ? 1 : 2);
  /** @type {Record<string, Awaited<ReturnType<typeof load>>[]>} */
  const samples = Object.fromEntries(servers.map((server) => [server.name, []]));
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? servers : [...servers].reverse();
    for (const server of order) {
      const run = await load(server, DURATION_S);
      samples[server.name]?.push(run);
      process.stderr.write(
        `round ${r + 1}/${ROUNDS} ${server.name}: ${Math.round(run.rps)} req/s, server ${Math.round(run.cpuUsPerRequest)} µs CPU/req, RSS ${Math.round(run.rssMiB)} MiB\n`,
      );
    }
  }
  const off = median((samples["console off"] ?? []).map((run) => run.cpuUsPerRequest));
  const results = servers.map(({ name }) => {
    const runs = samples[name] ?? [];
    const cpu = median(runs.map((run) => run.cpuUsPerRequest));
    return {
      server: name,
      "req/s": Math.round(median(runs.map((run) => run.rps))),
      "p99 ms": round(median(runs.map((run) => run.p99Ms)), 2),
      "server CPU µs/req": round(cpu, 1),
      "vs console off": `${cpu >= off ? "+" : ""}${round(cpu - off, 1)} µs (${round(((cpu - off) / off) * 100, 1)}%)`,
      "RSS MiB": Math.round(median(runs.map((run) => run.rssMiB))),
    };
  });
  const keepNs = await keepCost();
  writeResult("console-calls", {
    quick,
    rounds: ROUNDS,
    durationS: DURATION_S,
    connections: CONNECTIONS,
    hook: HOOK,
    bodyBytes: Buffer.byteLength(body),
    results,
    keepNsPerCall: keepNs,
    samples,
  });
  console.log(
    `The console's calls buffer on the hook route: ${HOOK} @${CONNECTIONS} connections, medians of ${ROUNDS} rounds × ${DURATION_S} s — ${JSON.stringify(machine())}`,
  );
  console.log(table(results, ["server", "req/s", "p99 ms", "server CPU µs/req", "vs console off", "RSS MiB"]));
  console.log(`keeping one call (record, size estimate, CallsBuffer.add over a full buffer of 200): ${keepNs} ns`);
} finally {
  await Promise.all(servers.map((server) => stopChild(server.child)));
  rmSync(work, { recursive: true, force: true });
}
