// @ts-check
// Scaling with the number of scripts: cold start (process start → serving) and resident memory of
// `callscript serve` with 1, 100 and 500 scripts loaded, each in its own child process, and the
// memory each idle script adds. Then, in a child process of its own, where a cold start goes: the
// batch compile (esbuild runs of 100 scripts) against the isolate boots, and what one idle isolate
// holds (V8 heap statistics, bundle size). Memory is read once the server is idle after loading
// (the target: "per idle script"), and again after each script has been called once (with
// config bootIsolates onFirstCall, the default, those first calls boot the scripts' isolates: their
// time is reported; the variant "atLoad" boots every isolate as its script loads, as before).
// Every start bundles its scripts, as the first start of a folder does, except the variant
// "restart": it finds the bundles the start before it kept (runtime/compile/compile-cache.ts).
//
// Run: npm run build && node --no-node-snapshot bench/scale.mjs
// Env: BENCH_QUICK=1, BENCH_SCALE_COUNTS (1,100,500), BENCH_SCALE_RUNS (3), BENCH_SETTLE_MS (1500)
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { machine, median, procStats, quick, repoRoot, round, sleep, spawnUntil, stopChild, table, writeResult } from "./lib.mjs";

const COUNTS = (process.env.BENCH_SCALE_COUNTS ?? "1,100,500").split(",").map(Number);
const RUNS = Number(process.env.BENCH_SCALE_RUNS ?? (quick ? 1 : 3));
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? (quick ? 500 : 1500));
const TARGET_READY_MS = 2000;
const TARGET_MB_PER_SCRIPT = 1.2;
/** Memory in MB of 10^6 bytes: the stricter reading of the target. */
const MB = 1e6;

/** A small, typical script: the SDK, settings, one hook. Each differs, so none is a cache hit. */
const scriptSource = (/** @type {number} */ i) =>
  i % 2 === 0
    ? `import { defineScript, participants } from "callscript";

/** Calls with extension ${i} are not registered in the CRM. */
export default defineScript({
  settings: { extensions: ["${100 + i}"] },
  hooks: {
    need_registration({ call_full }, { settings }) {
      return participants(call_full).some((ext) => settings.extensions.includes(ext)) ? { result: false } : undefined;
    },
  },
});
`
    : `import { defineScript, formatE164 } from "callscript";

/** Client numbers in the CRM as +7XXXXXXXXXX (script ${i}). */
export default defineScript({
  hooks: {
    process_client_phone(input) {
      const phone = formatE164(String(input.phone ?? ""));
      return phone ? { phone } : undefined;
    },
  },
});
`;

/** @param {number} count */
function scriptsFolder(count) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `callscript-scale-${count}-`));
  for (let i = 0; i < count; i++) writeFileSync(path.join(dir, `script-${String(i).padStart(4, "0")}.ts`), scriptSource(i));
  return dir;
}

// ---- in-process breakdown (child mode) -------------------------------------------------------

/** @param {number} count */
async function breakdown(count) {
  const t0 = performance.now();
  const { compileScripts } = await import("../dist/runtime/compile/compile.js");
  const { configSchema } = await import("../dist/runtime/config.js");
  const { sandboxOptionsFrom } = await import("../dist/runtime/registry/load-script.js");
  const { ScriptSandbox } = await import("../dist/runtime/sandbox/sandbox.js");
  const importMs = performance.now() - t0;
  const dir = scriptsFolder(count);
  try {
    const files = Array.from({ length: count }, (_, i) => path.join(dir, `script-${String(i).padStart(4, "0")}.ts`));
    const options = sandboxOptionsFrom(configSchema.parse({ scriptsDir: dir }));
    const rssBefore = procStats(process.pid).rssBytes;
    const c0 = performance.now();
    const compiled = await compileScripts(files, dir);
    const compileMs = performance.now() - c0;
    const scripts = compiled.map((result) => {
      if (!result.ok) throw new Error("a generated script did not compile");
      return result.script;
    });
    const rssCompiled = procStats(process.pid).rssBytes;
    const b0 = performance.now();
    const sandboxes = await Promise.all(scripts.map((script) => ScriptSandbox.load(script, options)));
    const bootMs = performance.now() - b0;
    // The same scripts loaded as the server loads them by default (bootIsolates onFirstCall): in
    // probe isolates, with no isolate of their own yet.
    const { LoadProbes } = await import("../dist/runtime/sandbox/load-probe.js");
    const probes = new LoadProbes();
    const p0 = performance.now();
    const probed = await Promise.all(scripts.map((script) => ScriptSandbox.load(script, { ...options, loadProbes: probes })));
    const probeLoadMs = performance.now() - p0;
    if (probed.some((sandbox) => sandbox.heapUsedBytes() !== undefined)) throw new Error("a script loaded in a probe has an isolate of its own");
    await Promise.all(probed.map((sandbox) => sandbox.drainAndDispose()));
    probes.close();
    // One isolate alone, for the per-step cost (no parallelism).
    const ivm = (await import("../dist/runtime/sandbox/ivm.js")).isolatedVm();
    /** @type {Record<"isolateMs" | "contextMs" | "compileMs" | "runMs", number[]>} */
    const steps = { isolateMs: [], contextMs: [], compileMs: [], runMs: [] };
    for (let i = 0; i < Math.min(20, count); i++) {
      let t = performance.now();
      const isolate = new ivm.Isolate({ memoryLimit: options.defaults.memoryMb });
      steps.isolateMs.push(performance.now() - t);
      t = performance.now();
      const context = await isolate.createContext();
      steps.contextMs.push(performance.now() - t);
      // As runtime/sandbox/script-context.ts does it: the prelude, then the bundle, each compiled and run.
      const { runtime, code, name } = /** @type {(typeof scripts)[number]} */ (scripts[i]);
      t = performance.now();
      const prelude = await isolate.compileScript(runtime.code, { filename: "callscript://%3Cprelude%3E.js" });
      const bundle = await isolate.compileScript(code, { filename: `callscript://${name}.js`, lineOffset: runtime.lines });
      steps.compileMs.push(performance.now() - t);
      t = performance.now();
      await prelude.run(context, { timeout: 2000 });
      await bundle.run(context, { reference: true, timeout: 2000 });
      steps.runMs.push(performance.now() - t);
      isolate.dispose();
    }
    await sleep(SETTLE_MS);
    const rssLoaded = procStats(process.pid).rssBytes;
    // V8's statistics have more than the runtime's declaration of them (ivm.ts) names.
    /** @type {(import("../dist/runtime/sandbox/ivm.js").HeapStatistics & { external_memory?: number; malloced_memory?: number })[]} */
    const heaps = sandboxes.flatMap((sandbox) => sandbox["booted"]?.isolate.getHeapStatisticsSync() ?? []);
    // The script's own bundle, kept per script on the host; the prelude's (one for all) apart.
    const codeBytes = scripts.map((script) => Buffer.byteLength(script.code));
    const runtimeBytes = Buffer.byteLength(scripts[0]?.runtime.code ?? "");
    const mapBytes = scripts.map((script) => Buffer.byteLength(script.sourceMap));
    const result = {
      count,
      importMs: round(importMs, 1),
      compileMs: round(compileMs, 1),
      bootMs: round(bootMs, 1),
      probeLoadMs: round(probeLoadMs, 1),
      perIsolateStepMs: Object.fromEntries(Object.entries(steps).map(([key, values]) => [key, round(median(values), 3)])),
      rssMB: { before: round(rssBefore / MB, 1), afterCompile: round(rssCompiled / MB, 1), loaded: round(rssLoaded / MB, 1) },
      rssPerScriptMB: round((rssLoaded - rssCompiled) / count / MB, 3),
      heapPerIsolateKiB: {
        used: round(median(heaps.map((h) => h.used_heap_size)) / 1024, 0),
        total: round(median(heaps.map((h) => h.total_heap_size)) / 1024, 0),
        external: round(median(heaps.map((h) => h.external_memory ?? 0)) / 1024, 0),
        malloced: round(median(heaps.map((h) => h.malloced_memory ?? 0)) / 1024, 0),
      },
      bundleKiB: { code: round(median(codeBytes) / 1024, 1), sourceMap: round(median(mapBytes) / 1024, 1), sharedPrelude: round(runtimeBytes / 1024, 1) },
    };
    await Promise.all(sandboxes.map((sandbox) => sandbox.drainAndDispose()));
    return result;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === "--breakdown") {
  const result = await breakdown(Number(process.argv[3]));
  process.stdout.write(`BREAKDOWN ${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ---- cold start of the server ----------------------------------------------------------------

/**
 * The server as `callscript serve` starts by default, and as deploy/callscript.service runs it
 * (two malloc arenas instead of one per isolate thread).
 */
const VARIANTS = [
  { key: "default", name: "default", env: {} },
  { key: "arenas2", name: "MALLOC_ARENA_MAX=2 (systemd unit)", env: { MALLOC_ARENA_MAX: "2" } },
  // Isolates booted only at their hook's first call: what an idle script holds then.
  { key: "onFirstCall", name: "bootIsolates onFirstCall, MALLOC_ARENA_MAX=2", env: { MALLOC_ARENA_MAX: "2", CALLSCRIPT_BOOT_ISOLATES: "onFirstCall" } },
  // Every isolate booted as its script loads, as before config bootIsolates (issue 16): side by side.
  { key: "atLoad", name: "bootIsolates atLoad, MALLOC_ARENA_MAX=2", env: { MALLOC_ARENA_MAX: "2", CALLSCRIPT_BOOT_ISOLATES: "atLoad" } },
  // A restart of the same scripts: the bundles the previous start kept (runtime/compile/compile-cache.ts)
  // are used again. Every other variant starts without them, as a first start of a folder does.
  { key: "restart", name: "restart, bundles kept, MALLOC_ARENA_MAX=2", env: { MALLOC_ARENA_MAX: "2" }, keepBundles: true },
];

/**
 * The type check's results and the bundles kept between starts, in a folder of this run's own. The
 * type check's are kept for every start (as before bundles were: the warm-up below); the bundles
 * only for the restart variant, so that every other start bundles its scripts.
 */
const cacheDir = mkdtempSync(path.join(os.tmpdir(), "callscript-scale-cache-"));
process.on("exit", () => rmSync(cacheDir, { recursive: true, force: true }));
function dropKeptBundles() {
  for (const name of readdirSync(cacheDir)) if (name.startsWith("bundles-")) rmSync(path.join(cacheDir, name), { force: true });
}

/**
 * @param {string} dir
 * @param {number} count
 * @param {NodeJS.ProcessEnv} [env]
 */
async function coldStart(dir, count, env = {}) {
  const server = await spawnUntil(process.execPath, ["--no-node-snapshot", "bin/callscript.js", "serve", "--scripts", dir, "--port", "0", "--no-watch"], {
    ready: /serving (\d+) scripts? from .* at (http:\/\/[^\s,]+)/,
    env: { CALLSCRIPT_LOG_LEVEL: "warn", CALLSCRIPT_CACHE_DIR: cacheDir, ...env },
    stdout: "ignore",
    timeoutMs: 120_000,
  });
  try {
    const served = Number(server.match[1]);
    if (served !== count) throw new Error(`${served} of ${count} scripts loaded`);
    const pid = /** @type {number} */ (server.child.pid);
    const atReady = procStats(pid);
    // The first answer, to be sure "serving" means answering.
    const response = await fetch(`${server.match[2]}/healthz`);
    if (!response.ok) throw new Error(`/healthz: ${response.status}`);
    // With bootIsolates afterLoad (the default), the isolates boot in the background once the
    // server is ready: memory is read once they are all up (the time it took is reported).
    const upMs = await allIsolatesUp(/** @type {string} */ (server.match[2]), env.CALLSCRIPT_BOOT_ISOLATES === "onFirstCall");
    await sleep(SETTLE_MS);
    const idle = procStats(pid);
    // Then every script called once (two requests: each hook's pipeline runs all its scripts), as
    // a server that has been serving for a while holds them. With bootIsolates onFirstCall, these
    // first calls boot the isolates of their hook's scripts: how long each took is reported.
    /** @type {Record<string, number>} */
    const firstCallMs = {};
    /** Hooks whose first call missed the request deadline (2 s): booting their isolates took longer. */
    const deadlineMissed = [];
    for (const [hook, file] of Object.entries(CALLS)) {
      const call = async () => {
        const response = await fetch(`${server.match[2]}/hooks/${hook}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: readFileSync(path.join(repoRoot, "examples", "payloads", file)),
        });
        return /** @type {{ state?: string; error?: { reason?: string } }} */ (await response.json());
      };
      const calledAt = performance.now();
      let answer = await call();
      firstCallMs[hook] = performance.now() - calledAt;
      if (answer.state !== "success" && answer.error?.reason === "deadline") {
        // The connector got its fallback; the boots go on, and the next call finds them done.
        deadlineMissed.push(hook);
        answer = await call();
      }
      if (answer.state !== "success") throw new Error(`${hook} with ${count} scripts: ${JSON.stringify(answer).slice(0, 300)}`);
    }
    await sleep(SETTLE_MS);
    const called = procStats(pid);
    return {
      readyMs: server.readyMs,
      rssAtReady: atReady.rssBytes,
      rssIdle: idle.rssBytes,
      rssAnonIdle: idle.rssAnonBytes,
      rssCalled: called.rssBytes,
      firstCallMs,
      deadlineMissed,
      upMs,
      threads: idle.threads,
      cpuSeconds: atReady.cpuSeconds,
    };
  } finally {
    await stopChild(server.child);
  }
}

/**
 * Ms from ready until every script's isolate is up (`/scripts` isolateUp), or 0 when `none` (no
 * isolate boots before a call).
 * @param {string} url
 * @param {boolean} none
 */
async function allIsolatesUp(url, none) {
  const started = performance.now();
  if (none) return 0;
  for (;;) {
    const body = /** @type {{ scripts: { isolateUp: boolean }[] }} */ (await (await fetch(`${url}/scripts`)).json());
    if (body.scripts.every((script) => script.isolateUp)) return performance.now() - started;
    if (performance.now() - started > 60_000) throw new Error("the isolates were not all up 60 s after ready");
    await sleep(20);
  }
}

/** One request per hook of the generated scripts. */
const CALLS = { need_registration: "need_registration.incoming-answered.json", process_client_phone: "process_client_phone.incoming-8-format.json" };

const folders = new Map(COUNTS.map((count) => [count, scriptsFolder(count)]));
/** @param {number} count */
const folderOf = (count) => /** @type {string} */ (folders.get(count));
process.on("exit", () => {
  for (const dir of folders.values()) rmSync(dir, { recursive: true, force: true });
});

// Warm-up: one start untimed per count (file system caches, esbuild's binary, and the type
// check's results kept on disk: the first start of a folder type-checks every script, 500 of them
// took that start from 2.6 to 10.4 s, and a restart finds them).
for (const count of COUNTS) await coldStart(folderOf(count), count);
/** @type {Map<string, Awaited<ReturnType<typeof coldStart>>[]>} */
const runs = new Map(VARIANTS.flatMap((variant) => COUNTS.map((count) => [`${variant.key}|${count}`, []])));
/** @param {string} key */
const runsOf = (key) => runs.get(key) ?? [];
for (let r = 0; r < RUNS; r++) {
  for (const count of r % 2 === 0 ? COUNTS : [...COUNTS].reverse()) {
    for (const variant of r % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
      if (!("keepBundles" in variant)) dropKeptBundles();
      const run = await coldStart(folderOf(count), count, variant.env);
      runsOf(`${variant.key}|${count}`).push(run);
      process.stderr.write(
        `run ${r + 1}/${RUNS}: ${count} scripts (${variant.name}) ready in ${Math.round(run.readyMs)} ms, RSS ${round(run.rssIdle / MB, 1)} MB\n`,
      );
    }
  }
}

/** @param {(typeof VARIANTS)[number]} variant */
const startsOf = (variant) =>
  COUNTS.map((count) => {
    const list = runsOf(`${variant.key}|${count}`);
    return {
      variant: variant.name,
      scripts: count,
      readyMs: Math.round(median(list.map((run) => run.readyMs))),
      rssBytes: median(list.map((run) => run.rssIdle)),
      rssMB: round(median(list.map((run) => run.rssIdle)) / MB, 1),
      rssAnonMB: round(median(list.map((run) => run.rssAnonIdle)) / MB, 1),
      rssCalledBytes: median(list.map((run) => run.rssCalled)),
      rssCalledMB: round(median(list.map((run) => run.rssCalled)) / MB, 1),
      threads: median(list.map((run) => run.threads)),
      /** The slowest hook's first call (ms), median of the runs. */
      firstCallMs: Math.round(median(list.map((run) => Math.max(...Object.values(run.firstCallMs))))),
      /** Starts (of the runs) whose first call of a hook missed the request deadline. */
      deadlineMissed: list.filter((run) => run.deadlineMissed.length > 0).length,
      /** Ready → every isolate up (bootIsolates afterLoad), median. */
      upMs: Math.round(median(list.map((run) => run.upMs))),
      cpuSecondsToReady: round(median(list.map((run) => run.cpuSeconds)), 2),
      /** @type {number | null} */
      perScriptMB: null,
      /** @type {number | null} */
      perScriptCalledMB: null,
    };
  });
const byVariant = VARIANTS.map((variant) => {
  const list = startsOf(variant);
  const smallest = list[0];
  if (!smallest) throw new Error("no script counts");
  for (const start of list) {
    start.perScriptMB = start.scripts === smallest.scripts ? null : round((start.rssBytes - smallest.rssBytes) / (start.scripts - smallest.scripts) / MB, 3);
    start.perScriptCalledMB =
      start.scripts === smallest.scripts ? null : round((start.rssCalledBytes - smallest.rssCalledBytes) / (start.scripts - smallest.scripts) / MB, 3);
  }
  return list;
});
const [starts, startsArenas2, startsOnFirstCall, startsAtLoad, startsRestart] = byVariant;
const largest = starts?.at(-1);
const largestTuned = startsArenas2?.at(-1);
if (!largest || !largestTuned) throw new Error("no cold starts measured");

// Where the cold start of the largest count goes, in a fresh process.
const { child, match } = await spawnUntil(process.execPath, ["--no-node-snapshot", fileURLToPath(import.meta.url), "--breakdown", String(largest.scripts)], {
  ready: /BREAKDOWN (.*)\n/,
  timeoutMs: 120_000,
});
await new Promise((resolve) => (child.exitCode !== null ? resolve(undefined) : child.once("exit", resolve)));
const split = JSON.parse(match[1] ?? "null");

const output = {
  quick,
  runs: RUNS,
  settleMs: SETTLE_MS,
  targets: { readyMs: TARGET_READY_MS, mbPerScript: TARGET_MB_PER_SCRIPT },
  starts,
  startsArenas2,
  startsOnFirstCall,
  startsAtLoad,
  startsRestart,
  breakdown: split,
  samples: Object.fromEntries([...runs].map(([key, list]) => [key, list])),
};
const file = writeResult("scale", output);
console.log(`Cold start and memory with N scripts (callscript serve, medians of ${RUNS}) — ${JSON.stringify(machine())}`);
console.log(
  table(
    byVariant.flat().map((s) => ({
      server: s.variant,
      scripts: s.scripts,
      "ready ms": s.readyMs,
      "RSS MB": s.rssMB,
      "RSS anon MB": s.rssAnonMB,
      "MB per idle script (vs 1)": s.perScriptMB ?? "",
      "RSS MB, each called once": s.rssCalledMB,
      "MB per script, called (vs 1)": s.perScriptCalledMB ?? "",
      "all isolates up, ms after ready": s.upMs,
      "first call ms": s.deadlineMissed > 0 ? `${s.firstCallMs} (deadline missed in ${s.deadlineMissed} of ${RUNS})` : s.firstCallMs,
      threads: s.threads,
    })),
    [
      "server",
      "scripts",
      "ready ms",
      "RSS MB",
      "RSS anon MB",
      "MB per idle script (vs 1)",
      "RSS MB, each called once",
      "MB per script, called (vs 1)",
      "all isolates up, ms after ready",
      "first call ms",
      "threads",
    ],
  ),
);
console.log(
  `split for ${split.count} scripts (in process): imports ${split.importMs} ms, batch compile ${split.compileMs} ms, isolate boots (parallel) ${split.bootMs} ms, or loads in probe isolates (bootIsolates onFirstCall) ${split.probeLoadMs} ms; ` +
    `one isolate alone: new ${split.perIsolateStepMs.isolateMs} ms, context ${split.perIsolateStepMs.contextMs} ms, compile ${split.perIsolateStepMs.compileMs} ms, run ${split.perIsolateStepMs.runMs} ms`,
);
console.log(
  `per idle isolate: V8 heap used ${split.heapPerIsolateKiB.used} KiB of ${split.heapPerIsolateKiB.total} KiB, malloced ${split.heapPerIsolateKiB.malloced} KiB; ` +
    `bundle ${split.bundleKiB.code} KiB of code (+ ${split.bundleKiB.sourceMap} KiB source map; the prelude, ${split.bundleKiB.sharedPrelude} KiB, once for all); RSS per script in process ${split.rssPerScriptMB} MB`,
);
const perScript = largest.perScriptMB;
console.log(
  `targets: ${largest.scripts} scripts ready in ${largest.readyMs} ms (< ${TARGET_READY_MS}: ${largest.readyMs < TARGET_READY_MS ? "PASS" : "MISS"}); ` +
    `${perScript} MB per idle script (< ${TARGET_MB_PER_SCRIPT}: ${(perScript ?? 0) < TARGET_MB_PER_SCRIPT ? "PASS" : "MISS"}); ` +
    `as the systemd unit runs it: ${largestTuned.readyMs} ms, ${largestTuned.perScriptMB} MB per idle script` +
    `; bootIsolates onFirstCall: ${startsOnFirstCall?.at(-1)?.readyMs} ms, ${startsOnFirstCall?.at(-1)?.perScriptMB} MB per idle script` +
    `; bootIsolates atLoad (before): ${startsAtLoad?.at(-1)?.readyMs} ms, ${startsAtLoad?.at(-1)?.perScriptMB} MB per idle script` +
    `; a restart with the bundles kept: ${startsRestart?.at(-1)?.readyMs} ms (< ${TARGET_READY_MS}: ${(startsRestart?.at(-1)?.readyMs ?? Infinity) < TARGET_READY_MS ? "PASS" : "MISS"})`,
);
console.log(`results: ${path.relative(process.cwd(), file)}`);
