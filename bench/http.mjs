// @ts-check
// HTTP throughput and latency: `callscript serve` with the examples loaded against a bare fastify
// route that parses the same body and answers a JSON of the same size (bench/http-bare.mjs), each
// in its own child process, driven by autocannon in this process at 1, 16 and 64 connections.
// Targets are alternated within each round (the order flips every round) and the figures are
// medians over the rounds; the ratio is the median of each round's callscript/bare ratio, so a
// neighbour's load that comes and goes hits both sides of a pair alike.
//
// Hooks: need_registration (the pipeline of three scripts: blacklist-extensions, trunk-whitelist,
// skip-short-and-ivr), process_client_phone (one script) and process_call_params (no script:
// input validation, defaults and the envelope only, the fixed cost of a hook request; until the
// vip-client example took process_registration_params, that hook was the one without a script).
// callscript runs at log level warn (CALLSCRIPT_LOG_LEVEL=warn, so that logging does not dominate)
// and, at 16 connections, also at info, its default; its log goes to /dev/null.
//
// At 64 connections on one hook, 64 requests wait on one script, past the example config's
// maxQueue of 32: callscript sheds the excess with 503 + Retry-After, as designed. Those answers
// are counted apart ("shed"); req/s and latencies are of the 200 answers only.
//
// Server CPU is the server process's CPU time (all threads) per request: unlike req/s it does not
// depend on how much of the machine the neighbours leave, so it is the figure to compare changes.
//
// Run: npm run build && node --no-node-snapshot bench/http.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (5), BENCH_DURATION_S (3), BENCH_CONNECTIONS (1,16,64)
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { machine, median, procStats, quick, repoRoot, round, spawnUntil, stopChild, table, writeResult, SERVING_LINE, serveExamplesArgs } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 5));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 3));
const WARMUP_S = quick ? 1 : 2;
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? "1,16,64").split(",").map(Number);
const TARGET_RATIO = 0.85;

const payload = (/** @type {string} */ file) => readFileSync(path.join(repoRoot, "examples", "payloads", file), "utf8");
// One line, as the connector sends it.
const hooks = {
  need_registration: { scripts: 3, body: JSON.stringify(JSON.parse(payload("need_registration.incoming-answered.json"))) },
  process_client_phone: { scripts: 1, body: JSON.stringify(JSON.parse(payload("process_client_phone.incoming-8-format.json"))) },
  process_call_params: { scripts: 0, body: JSON.stringify(JSON.parse(payload("process_call_params.kommo-incoming.json"))) },
};
/** @typedef {keyof typeof hooks} HookName */
/** The info-level server is measured where the target is, to keep the run short. */
const INFO_AT = 16;

/** @param {string} logLevel */
async function startCallscript(logLevel) {
  const { child, match, readyMs } = await spawnUntil(process.execPath, serveExamplesArgs(0), {
    ready: SERVING_LINE,
    env: { CALLSCRIPT_LOG_LEVEL: logLevel },
    stdout: "ignore",
  });
  return { name: `callscript (log ${logLevel})`, child, url: /** @type {string} */ (match[1]), readyMs };
}

/** @param {Record<string, unknown>} answers */
async function startBare(answers) {
  const { child, match } = await spawnUntil(process.execPath, [path.join(repoRoot, "bench", "http-bare.mjs")], {
    ready: /listening (http:\/\/\S+)/,
    env: { BARE_ANSWERS: JSON.stringify(answers) },
  });
  return { name: "bare fastify", child, url: /** @type {string} */ (match[1]) };
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
 * One autocannon run; latency from every 200 response (autocannon's histogram rounds to 1 ms).
 * @param {{ name: string; child: import("node:child_process").ChildProcess; url: string }} server
 * @param {HookName} hook
 * @param {number} connections
 * @param {number} durationS
 */
async function load(server, hook, connections, durationS) {
  /** @type {number[]} */
  const latencies = [];
  let shed = 0;
  const before = procStats(/** @type {number} */ (server.child.pid)); // started, so it has a pid
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
  const after = procStats(/** @type {number} */ (server.child.pid));
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
  return {
    rps: answered / seconds,
    shedShare: shed / Math.max(1, answered + shed),
    cpuUsPerRequest: ((after.cpuSeconds - before.cpuSeconds) * 1e6) / Math.max(1, answered + shed),
    p50Ms: at(50),
    p99Ms: at(99),
    serverCpu: (after.cpuSeconds - before.cpuSeconds) / seconds,
    serverRssMiB: after.rssBytes / 2 ** 20,
    requests: result.requests.total,
  };
}

const warn = await startCallscript("warn");
const info = await startCallscript("info");
// The bare route answers what callscript answers, byte for byte in size.
/** @type {Record<string, unknown>} */
const answers = {};
for (const [hook, { body }] of Object.entries(hooks)) {
  const { status, text } = await post(`${warn.url}/hooks/${hook}`, body);
  const answer = JSON.parse(text);
  if (status !== 200 || answer.state !== "success") throw new Error(`callscript ${hook}: ${status} ${text}`);
  answers[hook] = answer;
}
const bare = await startBare(answers);
for (const [hook, { body }] of Object.entries(hooks)) {
  const fromBare = await post(`${bare.url}/hooks/${hook}`, body);
  if (fromBare.status !== 200 || fromBare.text.length !== JSON.stringify(answers[hook]).length)
    throw new Error(`bare ${hook}: ${fromBare.status} ${fromBare.text}`);
}
const servers = { bare, warn, info };

try {
  // Warm-up: every server, every hook, untimed (JIT, isolates' ICs, connection pools).
  for (const server of Object.values(servers)) for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) await load(server, hook, 16, WARMUP_S);

  /** @type {Record<string, Awaited<ReturnType<typeof load>>[]>} */
  const samples = {}; // `${hook}|${connections}|${server}` → run[]
  for (let r = 0; r < ROUNDS; r++) {
    for (const connections of CONNECTIONS) {
      for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) {
        /** @type {(keyof typeof servers)[]} */
        const keys = connections === INFO_AT ? ["bare", "warn", "info"] : ["bare", "warn"];
        const order = r % 2 === 0 ? keys : [...keys].reverse();
        for (const key of order) {
          const run = await load(servers[key], hook, connections, DURATION_S);
          (samples[`${hook}|${connections}|${key}`] ??= []).push(run);
          process.stderr.write(
            `round ${r + 1}/${ROUNDS} ${hook} @${connections} ${key}: ${Math.round(run.rps)} req/s, p99 ${round(run.p99Ms, 2)} ms, ` +
              `server ${Math.round(run.cpuUsPerRequest)} µs CPU/req${run.shedShare > 0 ? `, ${Math.round(run.shedShare * 100)}% shed` : ""}\n`,
          );
        }
      }
    }
  }

  /**
   * @typedef {{ rps: number; p50Ms: number; p99Ms: number; serverCpu: number; cpuUsPerRequest: number; shedShare: number }} Stats
   * @typedef {{ ratio: number; p99AddedMs: number }} Versus
   * @typedef {{ hook: HookName; scripts: number; connections: number; bare: Stats; warn: Stats & Versus; info?: Stats & Versus }} Entry
   */
  /** @type {Entry[]} */
  const results = [];
  const rows = [];
  for (const hook of /** @type {HookName[]} */ (Object.keys(hooks))) {
    for (const connections of CONNECTIONS) {
      // Undefined for a server not measured at these connections (info): checked before it is read.
      const runs = (/** @type {string} */ key) => /** @type {Awaited<ReturnType<typeof load>>[]} */ (samples[`${hook}|${connections}|${key}`]);
      /** @type {(key: string) => Stats} */
      const stats = (key) => ({
        rps: Math.round(median(runs(key).map((run) => run.rps))),
        p50Ms: round(median(runs(key).map((run) => run.p50Ms)), 3),
        p99Ms: round(median(runs(key).map((run) => run.p99Ms)), 3),
        serverCpu: round(median(runs(key).map((run) => run.serverCpu)), 2),
        cpuUsPerRequest: Math.round(median(runs(key).map((run) => run.cpuUsPerRequest))),
        shedShare: round(median(runs(key).map((run) => run.shedShare)), 3),
      });
      /** @type {(key: string) => Versus} */
      const versus = (key) => ({
        ratio: round(median(runs(key).map((run, i) => run.rps / /** @type {typeof run} */ (runs("bare")[i]).rps)), 3),
        p99AddedMs: round(median(runs(key).map((run, i) => run.p99Ms - /** @type {typeof run} */ (runs("bare")[i]).p99Ms)), 3),
      });
      /** @type {Entry} */
      const entry = { hook, scripts: hooks[hook].scripts, connections, bare: stats("bare"), warn: { ...stats("warn"), ...versus("warn") } };
      if (runs("info")) entry.info = { ...stats("info"), ...versus("info") };
      results.push(entry);
      for (const key of /** @type {const} */ (["bare", "warn", "info"]).filter((k) => entry[k])) {
        const s = /** @type {Stats & Versus} */ (entry[key]); // bare's has no ratio: not read for it
        rows.push({
          hook: `${hook} (${hooks[hook].scripts} script${hooks[hook].scripts === 1 ? "" : "s"})`,
          conns: connections,
          server: servers[key].name,
          "req/s": s.rps,
          "vs bare": key === "bare" ? "1" : `${Math.round(s.ratio * 100)}%`,
          "p50 ms": s.p50Ms,
          "p99 ms": s.p99Ms,
          "p99 added ms": key === "bare" ? "" : s.p99AddedMs,
          "server CPU µs/req": s.cpuUsPerRequest,
          "server cores": s.serverCpu,
          shed: s.shedShare > 0 ? `${Math.round(s.shedShare * 100)}%` : "",
        });
      }
    }
  }
  const output = {
    quick,
    rounds: ROUNDS,
    durationS: DURATION_S,
    connections: CONNECTIONS,
    bodyBytes: Object.fromEntries(Object.entries(hooks).map(([hook, { body }]) => [hook, Buffer.byteLength(body)])),
    answerBytes: Object.fromEntries(Object.entries(answers).map(([hook, answer]) => [hook, JSON.stringify(answer).length])),
    callscriptReadyMs: round(warn.readyMs, 0),
    target: {
      ratioAt16: TARGET_RATIO,
      byHook: Object.fromEntries(
        results
          .filter((r) => r.connections === 16)
          .map((r) => [
            r.hook,
            {
              scripts: r.scripts,
              warn: r.warn.ratio,
              info: r.info?.ratio ?? null,
              cpuUsPerRequest: { bare: r.bare.cpuUsPerRequest, warn: r.warn.cpuUsPerRequest, info: r.info?.cpuUsPerRequest ?? null },
            },
          ]),
      ),
    },
    results,
    samples,
  };
  const file = writeResult("http", output);
  console.log(`HTTP: callscript serve (examples) vs bare fastify, medians of ${ROUNDS} rounds × ${DURATION_S} s — ${JSON.stringify(machine())}`);
  console.log(table(rows, ["hook", "conns", "server", "req/s", "vs bare", "p50 ms", "p99 ms", "p99 added ms", "server CPU µs/req", "server cores", "shed"]));
  for (const entry of results.filter((r) => r.connections === 16)) {
    console.log(
      `target: ≥ ${TARGET_RATIO * 100}% of bare req/s at 16 connections, ${entry.hook} (${entry.scripts} scripts): log warn ${Math.round(entry.warn.ratio * 100)}%` +
        `${entry.info ? `, log info ${Math.round(entry.info.ratio * 100)}%` : ""} — ${entry.warn.ratio >= TARGET_RATIO ? "PASS" : "MISS"}`,
    );
  }
  console.log(`results: ${path.relative(process.cwd(), file)}`);
} finally {
  await Promise.all(Object.values(servers).map((server) => stopChild(server.child)));
}
