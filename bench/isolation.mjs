// @ts-check
// The crash-isolation decision (docs/robustness.md): isolates inside the server process, or in a
// supervised worker process that the server restarts. Measures, in one run on one machine:
//   1. the cost of one invocation in process (sandbox.invoke) and through a worker's IPC channel
//      (JSON and "advanced" serialization), 2 KB payload, p50/p99;
//   2. the memory of an extra Node process (a worker with the runtime and isolated-vm loaded, no
//      script), and of a worker with the eight examples, beside a bare Node process;
//   3. a worker's restart: kill -9 → fork → scripts loaded → first answer;
//   4. the whole server's restart: kill -9 → `callscript serve` spawned again → GET /readyz 200.
// Run: npm run build && node --no-node-snapshot bench/isolation.mjs   (BENCH_QUICK=1: a smoke run)
import { fork, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { configSchema } from "../dist/runtime/config.js";
import { loadScriptFile } from "../dist/runtime/registry/load-script.js";
import { hookCatalog } from "../dist/runtime/schema/hooks.js";
import { benchDir, machine, percentile, repoRoot, round, table, timeCalls, writeResult } from "./lib.mjs";

const quick = process.env.BENCH_QUICK === "1";
const iterations = quick ? 500 : Number(process.env.BENCH_ITERATIONS ?? 5000);
const warmup = Math.round(iterations / 5);
const restarts = quick ? 2 : 5;
const examples = path.join(repoRoot, "examples");
const worker = path.join(benchDir, "isolation-worker.mjs");
const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
const mib = (/** @type {number} */ bytes) => round(bytes / 2 ** 20);

/** @param {number | undefined} pid */
function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]) * 1024;
}

/**
 * What the worker (isolation-worker.mjs) sends back: that it is ready, or one invocation's answer.
 * @typedef {{ ready: true; scripts: number; loadMs: number } | { id: number; invocation?: unknown; error?: string }} WorkerMessage
 */

// ---- 1. One invocation: in process, and over IPC ---------------------------------------------
const raw = readFileSync(path.join(examples, "payloads", "need_registration.incoming-answered.json"), "utf8");
const input = hookCatalog.need_registration.input.parse(JSON.parse(raw));
const inputJson = JSON.stringify(input);
const dataJson = JSON.stringify({ result: true });
const config = configSchema.parse({ scriptsDir: examples });
const loaded = await loadScriptFile(path.join(examples, "blacklist-extensions.ts"), examples, config);
if (!loaded.ok) throw new Error(loaded.failure.message);
const { sandbox, settingsJson } = loaded.script;
/** @type {import("../dist/runtime/sandbox/sandbox.js").InvocationRequest} */
const request = { hook: "need_registration", inputJson, dataJson, settingsJson, requestId: "b" };
const inProcess = await timeCalls(() => sandbox.invoke(request), { iterations, warmup });
await sandbox.drainAndDispose();

/**
 * A worker process, with a call() that resolves with its answer.
 * @param {string} scriptsDir
 * @param {import("node:child_process").SerializationType} [serialization]
 */
function startWorker(scriptsDir, serialization = "json") {
  const startedAt = performance.now();
  const child = fork(worker, [scriptsDir], { execArgv: ["--no-node-snapshot"], serialization, stdio: ["ignore", "ignore", "inherit", "ipc"] });
  /** @type {Map<number, (message: { id: number; invocation?: unknown; error?: string }) => void>} */
  const pending = new Map();
  let nextId = 0;
  /** @type {(ready: { scripts: number; loadMs: number; readyMs: number }) => void} */
  let readyResolve = () => undefined;
  /** @type {Promise<{ scripts: number; loadMs: number; readyMs: number }>} */
  const ready = new Promise((resolve, reject) => {
    readyResolve = resolve;
    child.once("exit", (code, signal) => reject(new Error(`worker exited (${code ?? signal}) before it was ready`)));
  });
  child.on("message", (/** @type {WorkerMessage} */ message) => {
    if ("ready" in message) return readyResolve({ ...message, readyMs: performance.now() - startedAt });
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  return {
    child,
    ready,
    /**
     * @param {{ hook: string; script: string; inputJson: string; dataJson: string }} message
     * @returns {Promise<{ id: number; invocation?: unknown; error?: string }>}
     */
    call(message) {
      const id = nextId++;
      return new Promise((resolve) => {
        pending.set(id, resolve);
        child.send({ id, ...message });
      });
    },
    stop() {
      child.kill("SIGKILL");
      return new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(undefined) : child.once("exit", resolve)));
    },
  };
}

/** @type {Record<string, Awaited<ReturnType<typeof timeCalls>>>} */
const ipc = {};
for (const serialization of /** @type {const} */ (["json", "advanced"])) {
  const w = startWorker(examples, serialization);
  await w.ready;
  const message = { hook: "need_registration", script: "blacklist-extensions", inputJson, dataJson };
  const first = await w.call(message);
  if (!first.invocation) throw new Error(`worker: ${first.error}`);
  ipc[serialization] = await timeCalls(() => w.call(message), { iterations, warmup });
  await w.stop();
}

// ---- 2. Memory of an extra process ---------------------------------------------------------
/** @param {import("node:child_process").ChildProcess} child */
async function settledRss(child) {
  await sleep(1_000);
  return rssOf(child.pid);
}
const bare = spawn(process.execPath, ["--no-node-snapshot", "-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
await sleep(300);
const bareRss = await settledRss(bare);
bare.kill("SIGKILL");
const empty = startWorker("none");
await empty.ready;
const emptyRss = await settledRss(empty.child);
await empty.stop();
const full = startWorker(examples);
const fullReady = await full.ready;
for (let i = 0; i < 200; i++) await full.call({ hook: "need_registration", script: "blacklist-extensions", inputJson, dataJson });
const fullRss = await settledRss(full.child);
await full.stop();

// ---- 3. A worker's restart ---------------------------------------------------------------
/** @type {number[]} */
const workerRestarts = [];
let current = startWorker(examples);
await current.ready;
for (let i = 0; i < restarts; i++) {
  await current.call({ hook: "need_registration", script: "blacklist-extensions", inputJson, dataJson });
  const killedAt = performance.now();
  await current.stop();
  current = startWorker(examples);
  await current.ready;
  await current.call({ hook: "need_registration", script: "blacklist-extensions", inputJson, dataJson });
  workerRestarts.push(performance.now() - killedAt);
}
await current.stop();

// ---- 4. The whole server's restart (in-process design) -------------------------------------
async function freePort() {
  const server = net.createServer().listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const { port } = /** @type {import("node:net").AddressInfo} */ (server.address());
  await new Promise((resolve) => server.close(resolve));
  return port;
}
const port = await freePort();
function startServer() {
  return spawn(
    process.execPath,
    [
      "--no-node-snapshot",
      path.join(repoRoot, "bin", "callscript.js"),
      "serve",
      "--config",
      path.join(examples, "callscript.config.json"),
      "--port",
      String(port),
    ],
    { cwd: repoRoot, stdio: "ignore", env: { ...process.env, CALLSCRIPT_TOKEN: "", CALLSCRIPT_HOST: "", CALLSCRIPT_PORT: "" } },
  );
}
/** @param {number} startedAt */
async function readyMs(startedAt) {
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return performance.now() - startedAt;
    } catch {
      // Not listening yet.
    }
    if (performance.now() - startedAt > 30_000) throw new Error("serve not ready within 30 s");
    await sleep(5);
  }
}
/** @type {number[]} */
const serverRestarts = [];
let server = startServer();
await readyMs(performance.now());
const serverRss = rssOf(server.pid);
for (let i = 0; i < restarts; i++) {
  const killedAt = performance.now();
  server.kill("SIGKILL");
  await new Promise((resolve) => server.once("exit", resolve));
  server = startServer();
  serverRestarts.push(await readyMs(killedAt));
}
server.kill("SIGTERM");
await new Promise((resolve) => server.once("exit", resolve));

const summary = (/** @type {number[]} */ values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return { runs: values.length, medianMs: Math.round(percentile(sorted, 50)), maxMs: Math.round(sorted.at(-1) ?? NaN) };
};
const results = {
  payloadBytes: Buffer.byteLength(inputJson),
  invocation: { inProcess, ipcJson: ipc.json, ipcAdvanced: ipc.advanced },
  memory: {
    bareNodeMiB: mib(bareRss),
    workerNoScriptsMiB: mib(emptyRss),
    workerEightExamplesMiB: mib(fullRss),
    serverEightExamplesMiB: mib(serverRss),
    workerLoadMs: Math.round(fullReady.readyMs),
  },
  restart: { worker: summary(workerRestarts), server: summary(serverRestarts) },
};
const file = writeResult("isolation", { iterations, ...results });
console.log(`machine: ${JSON.stringify(machine())}\n`);
console.log(
  table(
    [
      { how: "in process: sandbox.invoke", ...inProcess },
      { how: "worker over IPC (json)", ...ipc.json },
      { how: "worker over IPC (advanced)", ...ipc.advanced },
    ].map((row) => ({ how: row.how, "p50 µs": row.p50Us, "p99 µs": row.p99Us, "calls/s": row.perSecond })),
    ["how", "p50 µs", "p99 µs", "calls/s"],
  ),
);
console.log(`\nmemory (RSS, MiB): ${JSON.stringify(results.memory)}`);
console.log(`restart, kill -9 → answering: ${JSON.stringify(results.restart)}`);
console.log(`\n${path.relative(repoRoot, file)}`);
