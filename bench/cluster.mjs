// @ts-check
// Throughput of 1, 2 and 3 `callscript serve` instances behind nginx (deploy/nginx.conf as it
// ships, `worker_processes auto`, started by test/deploy/nginx.mjs as the cluster tests start it),
// and of one instance without nginx, on this machine: everything (the instances, nginx, and the
// load generator, autocannon in this process) shares its cores, so the figures say what nginx and
// more instances cost or bring on one box, not what more boxes bring.
//
// Hook: need_registration, answered by the pipeline of three example scripts (blacklist-
// extensions, trunk-whitelist, skip-short-and-ivr). Every answer is checked: 200 only.
// CPU per request is read from /proc/<pid>/stat of each instance and of nginx's master and workers
// before and after each run; "CPU µs/req" sums the instances, nginx's own is beside it, and the load
// generator's (this process) too, so that the machine's whole budget is visible.
//
// Rounds alternate the order of the setups (1, 2, 3 instances, direct), and figures are medians.
//
// Run: npm run build && flock /tmp/heavy.lock nice node --no-node-snapshot bench/cluster.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (3), BENCH_DURATION_S (5), BENCH_CONNECTIONS (32)
import { readFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { cpuMsOf, freePort, nginxAvailable, startNginx } from "../test/deploy/nginx.mjs";
import { machine, median, quick, repoRoot, round, spawnUntil, stopChild, table, writeResult, SERVING_LINE, serveExamplesArgs } from "./lib.mjs";

if (!nginxAvailable) {
  console.error("bench/cluster.mjs needs Debian's nginx (/usr/sbin/nginx): apt-get install nginx-light");
  process.exit(2);
}

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 5));
const WARMUP_S = quick ? 1 : 2;
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const HOOK = "need_registration";
const body = JSON.stringify(JSON.parse(readFileSync(path.join(repoRoot, "examples", "payloads", "need_registration.incoming-answered.json"), "utf8")));

/**
 * One instance on a port of its own, as a host runs it. No watcher and no type check: the figures
 * are of serving (the type check's worker spends its first seconds loading the compiler, which
 * would land in the first runs).
 */
async function startInstance() {
  const port = await freePort();
  const { child, match } = await spawnUntil(process.execPath, serveExamplesArgs(port), {
    ready: SERVING_LINE,
    env: { CALLSCRIPT_LOG_LEVEL: "warn", CALLSCRIPT_TYPECHECK: "off" },
    stdout: "ignore",
  });
  return { child, port, url: /** @type {string} */ (match[1]), pid: /** @type {number} */ (child.pid) };
}

/** @param {string} base */
async function post(base) {
  const response = await fetch(`${base}/hooks/${HOOK}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  return { status: response.status, text: await response.text() };
}

/**
 * One autocannon run against `url`; CPU of `pids` (instances) and `nginxPids` over it.
 * @param {string} url
 * @param {readonly number[]} pids
 * @param {readonly number[]} nginxPids
 * @param {number} durationS
 */
async function load(url, pids, nginxPids, durationS) {
  const cpu = (/** @type {readonly number[]} */ list) => list.reduce((sum, pid) => sum + cpuMsOf(pid), 0);
  const before = { instances: cpu(pids), nginx: cpu(nginxPids), generator: process.cpuUsage() };
  const result = await autocannon({
    url: `${url}/hooks/${HOOK}`,
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
    connections: CONNECTIONS,
    duration: durationS,
  });
  const generator = process.cpuUsage(before.generator);
  const instancesMs = cpu(pids) - before.instances;
  const nginxMs = cpu(nginxPids) - before.nginx;
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts`);
  const requests = result.requests.total;
  const seconds = (result.finish.getTime() - result.start.getTime()) / 1000 || durationS;
  return {
    rps: requests / seconds,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    instancesCpuUsPerRequest: (instancesMs * 1000) / requests,
    nginxCpuUsPerRequest: (nginxMs * 1000) / requests,
    generatorCpuUsPerRequest: (generator.user + generator.system) / requests,
    // Cores kept busy: instances, nginx, the load generator.
    cores: { instances: instancesMs / 1000 / seconds, nginx: nginxMs / 1000 / seconds, generator: (generator.user + generator.system) / 1e6 / seconds },
  };
}

/** @type {Awaited<ReturnType<typeof startInstance>>[]} */
const instances = [];
/** @type {Record<number, Awaited<ReturnType<typeof startNginx>>>} */
const proxies = {};
try {
  for (let i = 0; i < 3; i++) instances.push(await startInstance());
  const [first] = instances;
  if (!first) throw new Error("no instance started");
  /** @param {number} n */
  const proxy = (n) => /** @type {Awaited<ReturnType<typeof startNginx>>} */ (proxies[n]);
  // Every instance gives the answer one gives.
  const expected = await post(first.url);
  if (expected.status !== 200 || JSON.parse(expected.text).state !== "success") throw new Error(`need_registration: ${expected.status} ${expected.text}`);
  for (const instance of instances) {
    const answer = await post(instance.url);
    if (answer.text !== expected.text) throw new Error(`${instance.url} answers ${answer.text}, not ${expected.text}`);
  }
  // One nginx per setup, each with the first N instances as its upstream.
  for (const n of [1, 2, 3])
    proxies[n] = await startNginx(
      instances.slice(0, n).map((instance) => instance.port),
      { workers: "auto" },
    );
  for (const n of [1, 2, 3]) {
    const answer = await post(proxy(n).address);
    if (answer.text !== expected.text) throw new Error(`nginx (${n}) answers ${answer.status} ${answer.text}`);
  }

  /** @type {Record<string, { label: string; url: string; pids: number[]; nginx: () => number[] }>} */
  const setups = {
    direct: { label: "1 instance, no nginx", url: first.url, pids: [first.pid], nginx: () => [] },
    1: { label: "nginx → 1 instance", url: proxy(1).address, pids: instances.slice(0, 1).map((i) => i.pid), nginx: () => proxy(1).pids() },
    2: { label: "nginx → 2 instances", url: proxy(2).address, pids: instances.slice(0, 2).map((i) => i.pid), nginx: () => proxy(2).pids() },
    3: { label: "nginx → 3 instances", url: proxy(3).address, pids: instances.map((i) => i.pid), nginx: () => proxy(3).pids() },
  };
  const keys = ["direct", "1", "2", "3"];
  /** @param {string} key */
  const setup = (key) => /** @type {(typeof setups)[string]} */ (setups[key]);
  for (const key of keys) await load(setup(key).url, setup(key).pids, setup(key).nginx(), WARMUP_S);

  /** @type {Record<string, Awaited<ReturnType<typeof load>>[]>} */
  const samples = Object.fromEntries(keys.map((key) => [key, []]));
  for (let r = 0; r < ROUNDS; r++) {
    for (const key of r % 2 === 0 ? keys : [...keys].reverse()) {
      const run = await load(setup(key).url, setup(key).pids, setup(key).nginx(), DURATION_S);
      samples[key]?.push(run);
      process.stderr.write(
        `round ${r + 1}/${ROUNDS} ${setup(key).label}: ${Math.round(run.rps)} req/s, p99 ${run.p99Ms} ms, instances ${Math.round(run.instancesCpuUsPerRequest)} µs CPU/req, nginx ${Math.round(run.nginxCpuUsPerRequest)}\n`,
      );
    }
  }

  const results = keys.map((key) => {
    const runs = samples[key] ?? [];
    /** @type {(pick: (run: (typeof runs)[number]) => number, digits?: number) => number} */
    const m = (pick, digits = 0) => round(median(runs.map(pick)), digits);
    return {
      setup: setup(key).label,
      instances: key === "direct" ? 1 : Number(key),
      nginx: key !== "direct",
      rps: m((run) => run.rps),
      p50Ms: m((run) => run.p50Ms, 1),
      p99Ms: m((run) => run.p99Ms, 1),
      instancesCpuUsPerRequest: m((run) => run.instancesCpuUsPerRequest),
      nginxCpuUsPerRequest: m((run) => run.nginxCpuUsPerRequest),
      generatorCpuUsPerRequest: m((run) => run.generatorCpuUsPerRequest),
      cores: { instances: m((run) => run.cores.instances, 2), nginx: m((run) => run.cores.nginx, 2), generator: m((run) => run.cores.generator, 2) },
    };
  });
  writeResult("cluster", { quick, rounds: ROUNDS, durationS: DURATION_S, connections: CONNECTIONS, hook: HOOK, scripts: 3, results, samples });
  console.log(`cluster: ${HOOK} (3 scripts), ${CONNECTIONS} connections, medians of ${ROUNDS} rounds × ${DURATION_S} s — ${JSON.stringify(machine())}`);
  console.log(
    table(
      results.map((r) => ({
        setup: r.setup,
        "req/s": r.rps,
        "p50 ms": r.p50Ms,
        "p99 ms": r.p99Ms,
        "instances CPU µs/req": r.instancesCpuUsPerRequest,
        "nginx CPU µs/req": r.nginxCpuUsPerRequest,
        "autocannon CPU µs/req": r.generatorCpuUsPerRequest,
        "cores (inst/nginx/gen)": `${r.cores.instances} / ${r.cores.nginx} / ${r.cores.generator}`,
      })),
      ["setup", "req/s", "p50 ms", "p99 ms", "instances CPU µs/req", "nginx CPU µs/req", "autocannon CPU µs/req", "cores (inst/nginx/gen)"],
    ),
  );
} finally {
  for (const proxy of Object.values(proxies)) await proxy.stop();
  for (const instance of instances) await stopChild(instance.child);
}
