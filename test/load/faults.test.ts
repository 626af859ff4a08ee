/**
 * Load with faults — nothing lost. A real `callscript serve` on loopback gets sustained concurrent
 * requests on five hooks while one script loops forever, one exhausts its heap and one is rewritten
 * every 100 ms; then it is killed with SIGKILL under load and started again on the same config.
 *
 * Figures are printed as one `[faults]` JSON line per test (and written to $LOAD_REPORT when set);
 * docs/robustness.md reports them. Bounds are deliberately loose so that a loaded 2-core CI machine
 * (another suite running beside this one) never fails them; the printed figures are the measure.
 */
import { appendFileSync, renameSync, writeFileSync } from "node:fs";
import http from "node:http";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { script, scriptsFolder, writeConfigFile } from "../helpers/scripts.js";
import { payload, sample as metric } from "../server/helpers.js";
import { listening, serve, type Served } from "../server/serve-process.js";
import { contractBreach, drive, outcomeOf, percentile, post, type Sample, type Target } from "./driver.js";
import { waitFor } from "../helpers/wait.js";

/** How long the load lasts (LOAD_DURATION_MS to change it); connections per hook are in `targets`. */
const DURATION_MS = Number(process.env.LOAD_DURATION_MS ?? 8_000);
/**
 * Healthy hooks' p99 under load must stay below this. Measured alone on the 2-core machine it is
 * a few tens of ms (docs/robustness.md); 1500 ms leaves room for a second test suite hogging both
 * cores, yet is still under the connector's own deadline (2 s for these hooks): a p99 above it
 * would mean that the faulty scripts stall the healthy ones, which is what this test guards.
 */
const HEALTHY_P99_BOUND_MS = 1_500;
/**
 * Memory after the load, compared with the baseline taken after a warm-up with the same mix, both
 * right after a full GC (gc-on-signal.mjs). The JS heap must come back within 8 MB: it is flat
 * within 2 MB run after run, and a leak of 1 KB per request (the kind this test caught during
 * development: a Promise.race against a promise that never settles) leaves 6+ MB.
 * RSS: freed isolate memory stays partly in glibc's per-thread arenas, and the type checker's
 * worker grows over the first hundred saves, then stays flat (600 saves in one process: RSS 208 MB
 * after 100, 221 after 600). On Node 20 (isolated-vm 5.0.4) +39 to +104 MB after the run (twelve
 * runs, 2026-12-05, the same at a commit of a month before; +32 and +34 with typecheck off); on
 * Node 24 (isolated-vm 7.0.1, a newer V8) +123 MB, while creating and disposing 900 isolates
 * outside the server leaves RSS flat across rounds (48 → 64 MB each time): the allocator
 * keeps the load's peak. So RSS is the coarse check; the leak check is the count of isolates the
 * process holds (metric callscript_isolates): back to its baseline, give or take the two faulty
 * scripts' isolates, which may be mid-rebuild at either reading. One isolate leaked per rebuild or
 * reload would leave some 300 more, and 300 MB more RSS: the RSS margins below still catch that.
 */
const HEAP_MARGIN_BYTES = 8 * 2 ** 20;
const RSS_MARGIN_BYTES = (Number(process.versions.node.split(".")[0]) >= 22 ? 256 : 192) * 2 ** 20;
/** The scripts whose isolate is disposed and rebuilt as they fail (timeout, memory). */
const FAULTY_SCRIPTS = 2;
const GC_PRELOAD = path.join(path.dirname(fileURLToPath(import.meta.url)), "gc-on-signal.mjs");
/**
 * The target for kill -9 → ready is 2 s; measured 0.45-0.7 s on the idle 2-core machine.
 * The assertion allows 10 s: restarting is CPU-bound (Node, the modules, esbuild, the isolates), and
 * on a machine saturated by other suites it was seen at 2.2-4.9 s. The printed figure is the measure.
 */
const READY_TARGET_MS = 2_000;
const READY_BOUND_MS = 10_000;

const reloadingSource = (n: number) => script("process_record_file_path", `return { path: "/v${n}" + input.path };`);

const scripts = {
  // Healthy; their answers depend on settings from the config file.
  "registration.ts": script("need_registration", `return { result: ctx.settings.register === true };`, `settings: { register: true },`),
  "phone.ts": script("process_client_phone", `return { phone: ctx.settings.prefix + input.phone };`, `settings: { prefix: "" },`),
  // Faulty.
  "loop.ts": script("process_final_params", `while (true) {}`, `limits: { timeoutMs: 50 },`),
  "bomb.ts": script(
    "customize_autodistribution",
    `const hoard: string[][] = []; while (true) hoard.push(new Array(10_000).fill("x".repeat(8) + hoard.length));`,
    `limits: { memoryMb: 8, timeoutMs: 2_000 },`,
  ),
  // Rewritten every 100 ms during the load.
  "reloading.ts": reloadingSource(0),
};

const inputs = {
  need_registration: payload("need_registration.incoming-answered"),
  process_client_phone: payload("process_client_phone.incoming-8-format"),
  process_final_params: payload("process_final_params.answered"),
  customize_autodistribution: payload("customize_autodistribution.incoming"),
  process_record_file_path: payload("process_record_file_path"),
};
/** Connections per hook: 12 in all, more on the healthy hooks, whose latency is the measure. */
const CONNECTIONS: Record<keyof typeof inputs, number> = {
  need_registration: 3,
  process_client_phone: 3,
  process_final_params: 2,
  customize_autodistribution: 2,
  process_record_file_path: 2,
};
const targets: Target[] = Object.entries(inputs).map(([hook, input]) => ({
  hook,
  body: Buffer.from(JSON.stringify(input)),
  connections: CONNECTIONS[hook as keyof typeof inputs],
}));
const HEALTHY = ["need_registration", "process_client_phone"];
const PHONE = String(inputs.process_client_phone.phone);

/** A scripts folder, and beside it (not in it: the watcher would see it) the config file. */
function setup(): { dir: string; configFile: string } {
  const dir = scriptsFolder(scripts);
  return {
    dir,
    configFile: writeConfigFile({
      scriptsDir: dir,
      port: 0,
      logLevel: "info",
      maxQueue: 32,
      deadlineMs: 2_000,
      // Running out of an 8 MB heap takes V8 100-500 ms of last-resort GCs; with two requests queued
      // on a loaded machine that can near 2 s, and the answer would be `deadline`, not `memory`.
      hooks: { customize_autodistribution: { deadlineMs: 5_000 } },
      scripts: { registration: { settings: { register: false } }, phone: { settings: { prefix: "cfg:" } } },
    }),
  };
}

/** Save `source` as editors do: write a temporary file, rename it over the script. */
function atomicSave(dir: string, name: string, source: string): void {
  const temporary = path.join(dir, `.${name}.tmp`);
  writeFileSync(temporary, source);
  renameSync(temporary, path.join(dir, name));
}

async function get(address: string, route: string): Promise<{ status: number; text: string }> {
  const response = await fetch(`${address}${route}`, { signal: AbortSignal.timeout(5_000) });
  return { status: response.status, text: await response.text() };
}

async function isolatesOf(address: string): Promise<number> {
  const value = metric((await get(address, "/metrics")).text, "callscript_isolates");
  if (value === undefined) throw new Error("no callscript_isolates in /metrics");
  return value;
}

async function rssOf(address: string): Promise<number> {
  const value = metric((await get(address, "/metrics")).text, "process_resident_memory_bytes");
  if (value === undefined) throw new Error("no process_resident_memory_bytes in /metrics");
  return value;
}

/** The server's memory right after a full GC (it runs with gc-on-signal.mjs preloaded). */
async function collected(served: Served): Promise<{ rss: number; heapUsed: number }> {
  const signalledAt = Date.now();
  process.kill(served.pid, "SIGUSR2");
  let timer: NodeJS.Timeout | undefined;
  const line = await Promise.race([
    served.line((line) => line.msg === "test: collected" && (line.at as number) >= signalledAt, "its memory after a GC"),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no memory line within 5 s of SIGUSR2")), 5_000))),
  ]).finally(() => clearTimeout(timer));
  return { rss: line.rss as number, heapUsed: line.heapUsed as number };
}

/** One answer per hook, sequentially. */
async function answersOf(address: string): Promise<Record<string, unknown>> {
  const agent = new http.Agent({ keepAlive: false });
  const answers: Record<string, unknown> = {};
  for (const target of targets) {
    const { status, text } = await post(agent, new URL(`/hooks/${target.hook}`, address), target.body, 10_000);
    answers[target.hook] = { status, ...(JSON.parse(text) as object) };
  }
  return answers;
}

/** What must survive a restart: each script's identity, code version, limits, order and state. */
async function scriptsOf(address: string) {
  const { scripts } = JSON.parse((await get(address, "/scripts")).text) as {
    scripts: { name: string; version: string; state: string; hooks: string[]; limits: unknown; order: number }[];
  };
  return scripts.map(({ name, version, state, hooks, limits, order }) => ({ name, version, state, hooks, limits, order }));
}

const round = (value: number) => Math.round(value * 10) / 10;
const mb = (bytes: number) => round(bytes / 2 ** 20);

function report(name: string, figures: object): void {
  const line = JSON.stringify({ test: name, ...figures });
  console.log(`[faults] ${line}`);
  if (process.env.LOAD_REPORT) appendFileSync(process.env.LOAD_REPORT, `${line}\n`);
}

/** Tally of outcomes per hook, and the healthy hooks' latencies. */
function summarize(samples: readonly Sample[]) {
  const byHook: Record<string, { n: number; outcomes: Record<string, number>; p50Ms: number; p99Ms: number; maxMs: number }> = {};
  for (const hook of Object.keys(inputs)) {
    const mine = samples.filter((sample) => sample.hook === hook);
    const outcomes: Record<string, number> = {};
    for (const sample of mine) outcomes[outcomeOf(sample)] = (outcomes[outcomeOf(sample)] ?? 0) + 1;
    const ms = mine.map((sample) => sample.ms);
    byHook[hook] = { n: mine.length, outcomes, p50Ms: round(percentile(ms, 50)), p99Ms: round(percentile(ms, 99)), maxMs: round(Math.max(...ms)) };
  }
  return byHook;
}

/** Wait until the server answers GET /readyz with 200; resolves with the ms since `since`. */
async function readyAfter(address: string, since: number): Promise<number> {
  await waitFor(async () => {
    try {
      return (await fetch(`${address}/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200;
    } catch {
      return false;
    }
  }, "GET /readyz to answer 200");
  return performance.now() - since;
}

describe("load with faults: nothing lost", () => {
  it("answers every request under sustained load while scripts loop, exhaust their heap and reload; healthy p99 bounded; RSS back to baseline", async () => {
    const { dir, configFile } = setup();
    const served = serve(["--config", configFile], { NODE_OPTIONS: `--expose-gc --import=${GC_PRELOAD}` });
    const address = await listening(served);
    await readyAfter(address, performance.now());

    // Warm-up with the same mix (JIT, pools, the first rebuilds of the faulty isolates), then the baseline.
    const warm = await drive({ address, targets, durationMs: 3_000 });
    expect(warm.answered).toBe(warm.sent);
    const baseline = await collected(served);
    const baselineIsolates = await isolatesOf(address);

    let saves = 0;
    const writer = setInterval(() => atomicSave(dir, "reloading.ts", reloadingSource(++saves)), 100);
    let load;
    try {
      load = await drive({ address, targets, durationMs: DURATION_MS });
    } finally {
      clearInterval(writer);
    }
    const rssAfterLoad = await rssOf(address);

    // Memory back to its baseline once the load is over: retired versions are disposed as their
    // last request lets go of them, rebuilt isolates as they fail. Sampled for up to 8 s.
    const settleStarted = performance.now();
    let settled = await collected(served);
    let settledIsolates = await isolatesOf(address);
    const back = () =>
      settled.heapUsed <= baseline.heapUsed + HEAP_MARGIN_BYTES &&
      settled.rss <= baseline.rss + RSS_MARGIN_BYTES &&
      settledIsolates <= baselineIsolates + FAULTY_SCRIPTS;
    while (!back() && performance.now() - settleStarted < 8_000) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      settled = await collected(served);
      settledIsolates = await isolatesOf(address);
    }
    const settleMs = performance.now() - settleStarted;

    const byHook = summarize(load.samples);
    const breaches = load.samples.map(contractBreach).filter((breach): breach is string => breach !== undefined);
    const metricsText = (await get(address, "/metrics")).text;
    const reloads = metric(metricsText, "callscript_script_reloads_total", { script: "reloading" }) ?? 0;
    report("load", {
      connections: CONNECTIONS,
      durationMs: DURATION_MS,
      sent: load.sent,
      answered: load.answered,
      perSecond: Math.round((load.answered / load.elapsedMs) * 1000),
      saves,
      reloads,
      byHook,
      rssMb: { baseline: mb(baseline.rss), afterLoad: mb(rssAfterLoad), settled: mb(settled.rss), margin: mb(RSS_MARGIN_BYTES) },
      heapUsedMb: { baseline: mb(baseline.heapUsed), settled: mb(settled.heapUsed), margin: mb(HEAP_MARGIN_BYTES) },
      isolates: { baseline: baselineIsolates, settled: settledIsolates },
      settleMs: Math.round(settleMs),
      breaches: breaches.slice(0, 5),
    });

    // Every request sent got an answer, and every answer keeps the contract.
    expect(load.answered).toBe(load.sent);
    expect(breaches).toEqual([]);
    // Healthy hooks: success with the config's settings applied, every time, within the bound.
    for (const sample of load.samples.filter((s) => s.hook === "need_registration")) expect(sample.body).toEqual({ state: "success", data: { result: false } });
    for (const sample of load.samples.filter((s) => s.hook === "process_client_phone"))
      expect(sample.body).toEqual({ state: "success", data: { phone: `cfg:${PHONE}` } });
    for (const hook of HEALTHY) {
      expect(byHook[hook]!.n).toBeGreaterThan(50);
      expect(byHook[hook]!.p99Ms).toBeLessThan(HEALTHY_P99_BOUND_MS);
    }
    // The reloaded script: no request fails because of a reload.
    for (const sample of load.samples.filter((s) => s.hook === "process_record_file_path")) {
      expect(outcomeOf(sample)).toBe("success");
      expect((sample.body as { data: { path: string } }).data.path).toMatch(/^\/v\d+\//);
    }
    expect(saves).toBeGreaterThan(20);
    expect(reloads).toBeGreaterThan(5);
    // Faulty hooks: their own failure, as an error answer the connector falls back on.
    expect(Object.keys(byHook.process_final_params!.outcomes)).toEqual(["timeout"]);
    expect(Object.keys(byHook.customize_autodistribution!.outcomes)).toEqual(["memory"]);
    // The process lived through it and gave its memory back.
    expect(served.child.exitCode).toBeNull();
    expect(served.lines.filter((line) => line.level >= 60)).toEqual([]);
    expect(settled.heapUsed).toBeLessThanOrEqual(baseline.heapUsed + HEAP_MARGIN_BYTES);
    expect(settledIsolates).toBeLessThanOrEqual(baselineIsolates + FAULTY_SCRIPTS);
    expect(settled.rss).toBeLessThanOrEqual(baseline.rss + RSS_MARGIN_BYTES);
  }, 60_000);

  it("kill -9 under load, started again on the same config: ready within seconds, nothing of the configuration lost", async () => {
    const { configFile } = setup();
    const first: Served = serve(["--config", configFile]);
    const address = await listening(first);
    await readyAfter(address, performance.now());
    const port = new URL(address).port;
    const scriptsBefore = await scriptsOf(address);
    const answersBefore = await answersOf(address);

    // Load, and SIGKILL in the middle of it: requests in flight then are lost with the process.
    const stop = new AbortController();
    const loading = drive({ address, targets, durationMs: 5_000, requestTimeoutMs: 3_000, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const killedAt = performance.now();
    process.kill(first.pid, "SIGKILL");
    stop.abort();
    expect(await first.exit).toEqual({ code: null, signal: "SIGKILL" });
    const load = await loading;
    const beforeKill = load.samples.filter((sample) => sample.at < killedAt);

    // As a service manager does: the same command line (the port the first one got) at once.
    const spawnedAt = performance.now();
    const second = serve(["--config", configFile, "--port", port]);
    const readyMs = await readyAfter(address, spawnedAt);
    const servingLine = await listening(second);
    const scriptsAfter = await scriptsOf(address);
    const answersAfter = await answersOf(address);
    report("kill-9", {
      sentBeforeKill: beforeKill.length,
      answeredBeforeKill: beforeKill.filter((sample) => sample.error === undefined).length,
      inFlightLostWithTheProcess: beforeKill.filter((sample) => sample.error !== undefined).length,
      restartToReadyMs: Math.round(readyMs),
      killToReadyMs: Math.round(performance.now() - killedAt),
      readyTargetMs: READY_TARGET_MS,
    });

    expect(servingLine).toBe(address);
    expect(readyMs).toBeLessThan(READY_BOUND_MS);
    expect(scriptsAfter).toEqual(scriptsBefore);
    expect(scriptsAfter.map((s) => s.state)).toEqual(["active", "active", "active", "active", "active"]);
    expect(answersAfter).toEqual(answersBefore);
    expect(answersAfter.need_registration).toEqual({ status: 200, state: "success", data: { result: false } });
    expect(answersAfter.process_client_phone).toEqual({ status: 200, state: "success", data: { phone: `cfg:${PHONE}` } });
    second.child.kill("SIGTERM");
    expect(await second.exit).toEqual({ code: 0, signal: null });
  }, 60_000);
});
