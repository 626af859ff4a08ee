// @ts-check
// What a shadow costs the live answers: `callscript serve` with client-phone-format alone, against
// the same with client-phone-format.shadow.ts beside it (a next version that writes 8XXXXXXXXXX, so
// every run is a difference and goes through the sampled log), each in its own child process,
// driven by autocannon in this process on process_client_phone at 1 and 16 connections. The two
// servers take turns within each round (the order flips every round); figures are medians.
//
// Per run: req/s and latency of the live answers, the server's CPU per request (all threads), and
// from GET /scripts how many of the live calls had their shadow run, and how many were shed.
//
// Run: npm run build && node --no-node-snapshot bench/shadow.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (3), BENCH_DURATION_S (3), BENCH_CONNECTIONS (1,16)
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import autocannon from "autocannon";
import { machine, median, procStats, quick, repoRoot, round, spawnUntil, stopChild, table, writeResult, SERVING_LINE } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 3));
const WARMUP_S = quick ? 1 : 2;
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,16").split(",").map(Number);
const HOOK = "process_client_phone";
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", "process_client_phone.incoming-8-format.json"), "utf8")));

/** @param {boolean} withShadow */
function folder(withShadow) {
  const dir = mkdtempSync(path.join(tmpdir(), "callscript-bench-shadow-"));
  const live = path.join(repoRoot, "examples", "client-phone-format.ts");
  cpSync(live, path.join(dir, "client-phone-format.ts"));
  if (withShadow) {
    const next = readFileSync(live, "utf8").replace(
      "return formatted === phone ? undefined : { phone: formatted };",
      'return { phone: "8" + formatted.slice(2) };',
    );
    writeFileSync(path.join(dir, "client-phone-format.shadow.ts"), next);
  }
  return dir;
}

/**
 * @param {string} name
 * @param {string} dir
 */
async function start(name, dir) {
  const { child, match } = await spawnUntil(
    process.execPath,
    ["--no-node-snapshot", "bin/callscript.js", "serve", "--scripts", dir, "--port", "0", "--no-watch"],
    {
      ready: SERVING_LINE,
      env: { CALLSCRIPT_LOG_LEVEL: "warn" },
      stdout: "ignore",
    },
  );
  return { name, child, url: match[1], dir, pid: /** @type {number} */ (child.pid) };
}

/** @param {Awaited<ReturnType<typeof start>>} server */
async function shadowCounts(server) {
  const { scripts } = /** @type {{ scripts: import("../dist/runtime/registry/states.js").ScriptState[] }} */ (
    await (await fetch(`${server.url}/scripts`)).json()
  );
  const shadow = scripts[0]?.shadow;
  return shadow
    ? { calls: shadow.calls, shed: shadow.shed, different: shadow.different, failed: shadow.failed }
    : { calls: 0, shed: 0, different: 0, failed: 0 };
}

/**
 * @param {Awaited<ReturnType<typeof start>>} server
 * @param {number} connections
 * @param {number} durationS
 */
async function load(server, connections, durationS) {
  /** @type {number[]} */
  const latencies = [];
  const before = procStats(server.pid);
  const countsBefore = await shadowCounts(server);
  const instance = autocannon({
    url: `${server.url}/hooks/${HOOK}`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections,
    duration: durationS,
  });
  instance.on("response", (_client, status, _bytes, ms) => {
    if (status === 200) latencies.push(ms);
  });
  const result = await instance;
  const after = procStats(server.pid);
  // Shadow runs still going finish within their own time limit; give them a moment to be counted.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const countsAfter = await shadowCounts(server);
  if (result.non2xx + result.errors + result.timeouts > 0)
    throw new Error(`${server.name} @${connections}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000 || durationS;
  latencies.sort((a, b) => a - b);
  const at = (/** @type {number} */ p) =>
    /** @type {number} */ (latencies[Math.min(latencies.length - 1, Math.max(0, Math.ceil((p / 100) * latencies.length) - 1))]);
  const answered = latencies.length;
  const shadowed = countsAfter.calls - countsBefore.calls;
  const shed = countsAfter.shed - countsBefore.shed;
  if (countsAfter.failed > 0) throw new Error(`${server.name}: the shadow failed ${countsAfter.failed} times`);
  return {
    rps: answered / seconds,
    p50Ms: at(50),
    p99Ms: at(99),
    cpuUsPerRequest: ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.max(1, answered),
    shadowedShare: shadowed / Math.max(1, answered),
    shedShare: shed / Math.max(1, answered),
  };
}

/** @type {[string, string]} */
const dirs = [folder(false), folder(true)];
const servers = { alone: await start("client-phone-format alone", dirs[0]), shadowed: await start("with client-phone-format.shadow.ts", dirs[1]) };
try {
  for (const server of Object.values(servers)) await load(server, 16, WARMUP_S);
  /** @type {Record<string, Awaited<ReturnType<typeof load>>[]>} */
  const samples = {};
  for (let r = 0; r < ROUNDS; r++) {
    for (const connections of CONNECTIONS) {
      /** @type {(keyof typeof servers)[]} */
      const order = r % 2 === 0 ? ["alone", "shadowed"] : ["shadowed", "alone"];
      for (const key of order) {
        const run = await load(servers[key], connections, DURATION_S);
        (samples[`${connections}|${key}`] ??= []).push(run);
        process.stderr.write(
          `round ${r + 1}/${ROUNDS} @${connections} ${key}: ${Math.round(run.rps)} req/s, p50 ${round(run.p50Ms, 2)} ms, p99 ${round(run.p99Ms, 2)} ms, ` +
            `${Math.round(run.cpuUsPerRequest)} µs CPU/req` +
            (key === "shadowed" ? `, shadow ran on ${Math.round(run.shadowedShare * 100)}%, shed ${Math.round(run.shedShare * 100)}%` : "") +
            "\n",
        );
      }
    }
  }
  /** @type {Record<string, unknown>[]} */
  const rows = [];
  /** @type {Record<string, unknown>[]} */
  const results = [];
  for (const connections of CONNECTIONS) {
    const stats = (/** @type {keyof typeof servers} */ key) => {
      const runs = samples[`${connections}|${key}`] ?? [];
      return {
        rps: Math.round(median(runs.map((run) => run.rps))),
        p50Ms: round(median(runs.map((run) => run.p50Ms)), 3),
        p99Ms: round(median(runs.map((run) => run.p99Ms)), 3),
        cpuUsPerRequest: Math.round(median(runs.map((run) => run.cpuUsPerRequest))),
        shadowedShare: round(median(runs.map((run) => run.shadowedShare)), 3),
        shedShare: round(median(runs.map((run) => run.shedShare)), 3),
      };
    };
    const alone = stats("alone");
    const shadowed = stats("shadowed");
    const alones = samples[`${connections}|alone`] ?? [];
    const ratio = round(median((samples[`${connections}|shadowed`] ?? []).map((run, i) => run.rps / (alones[i]?.rps ?? NaN))), 3);
    results.push({ connections, alone, shadowed, rpsRatio: ratio });
    for (const [key, s] of /** @type {const} */ ([
      ["alone", alone],
      ["shadowed", shadowed],
    ])) {
      rows.push({
        conns: connections,
        server: servers[key].name,
        "req/s": s.rps,
        "vs alone": key === "alone" ? "1" : `${Math.round(ratio * 100)}%`,
        "p50 ms": s.p50Ms,
        "p99 ms": s.p99Ms,
        "server CPU µs/req": s.cpuUsPerRequest,
        "shadow ran": key === "alone" ? "" : `${Math.round(s.shadowedShare * 100)}%`,
        "shadow shed": key === "alone" ? "" : `${Math.round(s.shedShare * 100)}%`,
      });
    }
  }
  writeResult("shadow", { quick, rounds: ROUNDS, durationS: DURATION_S, connections: CONNECTIONS, results, samples });
  console.log(`Shadow: ${HOOK}, client-phone-format alone vs with its shadow, medians of ${ROUNDS} rounds × ${DURATION_S} s — ${JSON.stringify(machine())}`);
  console.log(table(rows, ["conns", "server", "req/s", "vs alone", "p50 ms", "p99 ms", "server CPU µs/req", "shadow ran", "shadow shed"]));
} finally {
  for (const server of Object.values(servers)) await stopChild(server.child);
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
