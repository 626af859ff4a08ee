// @ts-check
// Reload latency: a file saved → the first answer from the new version, through the real chokidar
// watcher, compiler, type checker, sandbox and registry, in one process. Three kinds of save, each
// many times after a warm-up: a script saved in place, a script saved atomically (temp file renamed
// over it), and a helper saved (two scripts import it). Ten other scripts are loaded beside them and
// must not be recompiled. Each is measured twice: with `typecheck: off`, and with the type check
// that gates a deploy (`block`, the default: the server's worker thread keeping the folder's
// program warm). Prints JSON (also written to bench/results/reload.json) and a summary line.
//
// Run: npm run build && node --no-node-snapshot bench/reload.mjs
// Env: BENCH_QUICK=1 (10 saves, 3 warm-up), BENCH_SAVES (60), BENCH_WARMUP (10), BENCH_GAP_MS (200:
// pause between saves, as a person saving would leave; longer than chokidar's 50 ms throttle and
// the watcher's 75 ms re-check), BENCH_TYPECHECK (off,block: the modes to measure),
// BENCH_BOOT_ISOLATES (the config's bootIsolates; default afterLoad).
import { mkdtempSync, renameSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { WorkerTypeChecking } from "../dist/runtime/compile/typecheck-service.js";
import { configSchema } from "../dist/runtime/config.js";
import { callHook } from "../dist/runtime/dispatch/hook-call.js";
import { ScriptRegistry } from "../dist/runtime/registry/registry.js";
import { watchScripts } from "../dist/runtime/registry/watcher.js";
import { machine, percentile, quick, round, writeResult } from "./lib.mjs";

const SAVES = Number(process.env.BENCH_SAVES ?? (quick ? 10 : 60));
const WARMUP = Number(process.env.BENCH_WARMUP ?? (quick ? 3 : 10));
const GAP_MS = Number(process.env.BENCH_GAP_MS ?? 200);
/** The goal for each mode: save → new version answering, p95. */
/** @type {Record<string, number>} */
const TARGET_P95_MS = { off: 100, block: 500, warn: 500 };
const MODES = /** @type {("off" | "block" | "warn")[]} */ ((process.env.BENCH_TYPECHECK ?? "off,block").split(","));
const HOOK = "process_registration_params";

const sleep = (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms));
const silent = { info() {}, warn() {}, error() {}, debug() {} };

const script = (/** @type {number} */ n) => `import { defineScript, digits } from "callscript";

/** The registration goes to the line of the number that was called. */
export default defineScript({
  settings: { lines: { "74951234567": 1, "74957654321": 2 } as Record<string, number> },
  hooks: {
    ${HOOK}(input, { settings }) {
      const line = settings.lines[digits(String(input.PHONE_NUMBER ?? ""))] ?? 0;
      return { USER_ID: ${n}, LINE_NUMBER: ${n}, SHOW: line > 0 ? 1 : 0 };
    },
  },
});
`;
const importer = (/** @type {string} */ key) => `import { defineScript } from "callscript";
import { BASE } from "./lib/numbers";
export default defineScript({ hooks: { ${HOOK}() { return { ${key}: BASE }; } } });
`;
const helper = (/** @type {number} */ n) => `/** Shared numbers. */\nexport const BASE = ${n};\n`;
const other = (/** @type {number} */ i) => `import { defineScript } from "callscript";
export default defineScript({ hooks: { process_final_params(input) { return { USER_ID: ${i} }; } } });
`;

const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-reload-bench-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
mkdirSync(path.join(dir, "lib"));
writeFileSync(path.join(dir, "lib/numbers.ts"), helper(0));
writeFileSync(path.join(dir, "s.ts"), script(0));
writeFileSync(path.join(dir, "x.ts"), importer("X"));
writeFileSync(path.join(dir, "y.ts"), importer("Y"));
for (let i = 0; i < 10; i++) writeFileSync(path.join(dir, `other-${i}.ts`), other(i));

{
  const probe = await compileScript(path.join(dir, "s.ts"), dir);
  if (!probe.ok) throw new Error(`bench script does not compile: ${JSON.stringify(probe.diagnostics)}`);
}

const summary = (/** @type {number[]} */ values) => {
  const sorted = [...values].filter(Number.isFinite).sort((a, b) => a - b);
  return { p50: round(percentile(sorted, 50), 2), p95: round(percentile(sorted, 95), 2), max: round(sorted.at(-1) ?? NaN, 2) };
};

/**
 * The registry, watcher and answers of one mode; every save of every scenario measured in it.
 * @param {"off" | "block" | "warn"} mode
 */
async function measure(mode) {
  // The config's bootIsolates from BENCH_BOOT_ISOLATES, to compare the ways side by side.
  const config = configSchema.parse({
    scriptsDir: dir,
    typecheck: mode,
    ...(process.env.BENCH_BOOT_ISOLATES ? { bootIsolates: process.env.BENCH_BOOT_ISOLATES } : {}),
  });
  const typeChecking = mode === "off" ? undefined : new WorkerTypeChecking();
  const registry = new ScriptRegistry(config, silent, { typeChecking });
  /** @type {import("../dist/runtime/registry/watcher.js").BatchReport[]} */
  const batches = [];
  const watcher = watchScripts(registry, silent, { onBatch: (batch) => batches.push(batch) });
  await watcher.ready;
  const initialStart = performance.now();
  const initial = await registry.loadAll();
  const initialMs = performance.now() - initialStart;
  if (!initial.every((result) => result.ok)) throw new Error(`initial load failed: ${JSON.stringify(initial.filter((r) => !r.ok))}`);
  /** @type {Map<string, number>} */
  const reloadCounts = new Map();
  registry.on("loaded", (name) => reloadCounts.set(name, (reloadCounts.get(name) ?? 0) + 1));

  async function answer() {
    const lease = registry.lease(HOOK);
    let result;
    try {
      result = await callHook(config, HOOK, { PHONE_NUMBER: "74951234567" }, lease.scripts);
    } finally {
      lease.release();
    }
    if (result.answer.state !== "success") throw new Error(`error answer: ${JSON.stringify(result.answer)}`);
    return result.answer.data;
  }

  /**
   * One save, timed until the first answer that carries its marker. The answer is asked for as soon
   * as the registry swaps a version in (its `loaded` event), as a request arriving then would be.
   */
  /**
   * @param {() => void} save
   * @param {(data: Record<string, unknown>) => boolean} isNew
   * @param {string} watchedScript
   */
  async function timedSave(save, isNew, watchedScript) {
    batches.length = 0;
    let swappedAt = 0;
    /** @type {Record<string, unknown> | undefined} */
    let firstAnswer;
    /** @type {Promise<number>} */
    const answered = new Promise((resolve, reject) => {
      // Any script's swap may complete the save (a helper reloads several); the answer tells.
      const onLoaded = () => {
        const at = performance.now();
        answer()
          .then((data) => {
            if (!isNew(data) || firstAnswer) return;
            registry.off("loaded", onLoaded);
            swappedAt = at;
            firstAnswer = data;
            resolve(performance.now());
          })
          .catch(reject);
      };
      registry.on("loaded", onLoaded);
      setTimeout(() => reject(new Error("no new version within 10 s")), 10_000).unref();
    });
    const savedAt = performance.now();
    save();
    const answeredAt = await answered;
    // The batch report comes just after the last swap of the batch.
    for (let i = 0; i < 100 && !batches.some((b) => b.reloaded.some((r) => r.name === watchedScript && r.ok)); i++) await sleep(1);
    const batch = batches.find((b) => b.reloaded.some((r) => r.name === watchedScript && r.ok));
    const reload = batch && Math.max(...batch.reloaded.filter((r) => r.ok).map((r) => r.ms));
    return {
      totalMs: answeredAt - savedAt,
      detectMs: batch ? batch.firstEventAt - savedAt : NaN,
      settleMs: batch ? batch.startedAt - batch.firstEventAt : NaN,
      reloadMs: reload ?? NaN,
      answerMs: answeredAt - swappedAt,
      batchFiles: batch?.files ?? [],
      reloadedInBatch: batch?.reloaded.map((r) => r.name) ?? [],
      data: firstAnswer,
    };
  }

  const file = (/** @type {string} */ name) => path.join(dir, name);
  let marker = 0;
  let tmp = 0;
  /** @type {Record<string, { watched: string; save: (n: number) => () => void; isNew: (n: number) => (data: Record<string, unknown>) => boolean }>} */
  const scenarios = {
    "script saved in place": {
      watched: "s",
      save: (n) => () => writeFileSync(file("s.ts"), script(n)),
      isNew: (n) => (data) => data.USER_ID === n && data.LINE_NUMBER === n,
    },
    "script saved atomically (rename)": {
      watched: "s",
      save: (n) => () => {
        const temp = file(`s.ts.tmp-${tmp++}`);
        writeFileSync(temp, script(n));
        renameSync(temp, file("s.ts"));
      },
      isNew: (n) => (data) => data.USER_ID === n && data.LINE_NUMBER === n,
    },
    "helper saved (2 importers)": {
      watched: "y",
      save: (n) => () => writeFileSync(file("lib/numbers.ts"), helper(n)),
      isNew: (n) => (data) => data.X === n && data.Y === n,
    },
  };

  /** @type {Record<string, { saves: number; saveToAnswerMs: ReturnType<typeof summary>; breakdownMs: Record<string, ReturnType<typeof summary>>; reloadedPerSave: string[] }>} */
  const results = {};
  for (const [label, scenario] of Object.entries(scenarios)) {
    /** @type {Awaited<ReturnType<typeof timedSave>>[]} */
    const samples = [];
    for (let i = 0; i < WARMUP + SAVES; i++) {
      const n = ++marker;
      const sample = await timedSave(scenario.save(n), scenario.isNew(n), scenario.watched);
      if (i >= WARMUP) samples.push(sample);
      await sleep(GAP_MS);
    }
    const reloadedSets = new Set(samples.map((s) => [...s.reloadedInBatch].sort().join(",")));
    results[label] = {
      saves: samples.length,
      saveToAnswerMs: summary(samples.map((s) => s.totalMs)),
      breakdownMs: {
        "detect (save → chokidar event)": summary(samples.map((s) => s.detectMs)),
        "settle (first event → batch start)": summary(samples.map((s) => s.settleMs)),
        "reload (compile + type check + isolate + swap)": summary(samples.map((s) => s.reloadMs)),
        "answer (swap → first answer)": summary(samples.map((s) => s.answerMs)),
      },
      reloadedPerSave: [...reloadedSets],
    };
  }

  const untouched = [...reloadCounts.keys()].filter((name) => name.startsWith("other-"));
  await watcher.close();
  await registry.close();
  return { results, initialLoadMs: round(initialMs, 1), untouched };
}

/** @type {Record<string, Awaited<ReturnType<typeof measure>>>} */
const byMode = {};
for (const mode of MODES) byMode[mode] = await measure(mode);

// The compile alone, for the breakdown: the same script compiled again, warm.
const compileSamples = [];
for (let i = 0; i < 30; i++) {
  const start = performance.now();
  const result = await compileScript(path.join(dir, "s.ts"), dir);
  compileSamples.push(performance.now() - start);
  if (!result.ok) throw new Error("compile failed");
}

const untouched = Object.values(byMode).flatMap((measured) => measured.untouched);
const output = {
  quick,
  machine: { ...machine(), availableParallelism: os.availableParallelism?.() ?? os.cpus().length },
  saves: SAVES,
  warmup: WARMUP,
  gapMs: GAP_MS,
  targetP95Ms: TARGET_P95_MS,
  // The "off" figures stay at the top level, where bench/run.mjs and earlier results read them.
  results: byMode.off?.results ?? Object.values(byMode)[0]?.results,
  typecheck: Object.fromEntries(Object.entries(byMode).map(([mode, measured]) => [mode, { initialLoadMs: measured.initialLoadMs, results: measured.results }])),
  compileAloneMs: summary(compileSamples),
  otherScriptsReloaded: untouched,
};
const written = writeResult("reload", output);
console.log(JSON.stringify(output, null, 2));
for (const [mode, measured] of Object.entries(byMode)) {
  const primary = measured.results["script saved in place"]?.saveToAnswerMs;
  const line = Object.entries(measured.results)
    .map(([label, r]) => `${label}: p50 ${r.saveToAnswerMs.p50} ms, p95 ${r.saveToAnswerMs.p95} ms`)
    .join("; ");
  console.log(
    `reload latency, typecheck ${mode} (save → first answer from the new version, ${SAVES} saves each, ${machine().cores} cores, Node ${process.version}): ${line}; ` +
      `target p95 < ${TARGET_P95_MS[mode]} ms: ${(primary?.p95 ?? Infinity) < (TARGET_P95_MS[mode] ?? NaN) ? "met" : "MISSED"}`,
  );
}
console.log(`results in ${path.relative(process.cwd(), written)}`);
if (untouched.length > 0) {
  console.error(`unexpected: scripts that did not change were reloaded: ${untouched.join(", ")}`);
  process.exitCode = 1;
}
