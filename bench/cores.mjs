// @ts-check
// Several busy scripts at once: do invocations of different scripts use both cores? isolated-vm
// runs each isolate's work on its own thread pool when it is called asynchronously, so scripts
// that are busy at the same time should run in parallel, while the calls of ONE script run one at
// a time (the sandbox queues them). Each script here has a CPU-bound handler calibrated to about
// 2 ms; 1, 2 and 4 scripts are called at once in closed loops (one call in flight per script),
// and one script with 4 callers for contrast. Reported: invocations per second against one script,
// the process's CPU time per wall second (all threads), and the event loop's delay meanwhile (the
// host must stay responsive while the scripts are busy). "Isolates busy" is the sum of the
// isolates' cpuTime per wall second: on this build it counts time an isolate thread waited for a
// core (the sum exceeds the process's CPU), so it says how long isolates ran; process CPU is CPU.
//
// Run: npm run build && node --no-node-snapshot bench/cores.mjs
// Env: BENCH_QUICK=1, BENCH_ROUNDS (3), BENCH_DURATION_S (3), BENCH_WORK_MS (2)
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { compileScripts } from "../dist/runtime/compile/compile.js";
import { configSchema } from "../dist/runtime/config.js";
import { sandboxOptionsFrom } from "../dist/runtime/registry/load-script.js";
import { ScriptSandbox } from "../dist/runtime/sandbox/sandbox.js";
import { machine, median, quick, round, table, writeResult } from "./lib.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (quick ? 1 : 3));
const DURATION_MS = Number(process.env.BENCH_DURATION_S ?? (quick ? 1 : 3)) * 1000;
const WORK_MS = Number(process.env.BENCH_WORK_MS ?? 2);
const MAX_SCRIPTS = 4;

// A handler that burns CPU for `settings.rounds` iterations and answers a small object.
const source = (/** @type {number} */ i) => `import { defineScript } from "callscript";
export default defineScript({
  settings: { rounds: 1000 },
  hooks: {
    process_client_phone(input, { settings }) {
      let x = ${i + 1};
      for (let k = 0; k < settings.rounds; k++) x = (x * 1103515245 + 12345 + k) % 2147483648;
      return { phone: String(x) };
    },
  },
});
`;

const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-cores-"));
process.on("exit", () => rmSync(dir, { recursive: true, force: true }));
const files = Array.from({ length: MAX_SCRIPTS }, (_, i) => {
  const file = path.join(dir, `busy-${i}.ts`);
  writeFileSync(file, source(i));
  return file;
});
const compiled = await compileScripts(files, dir);
const options = sandboxOptionsFrom(configSchema.parse({ scriptsDir: dir }));
const sandboxes = await Promise.all(
  compiled.map((result) => {
    if (!result.ok) throw new Error(`does not compile: ${JSON.stringify(result.diagnostics)}`);
    return ScriptSandbox.load(result.script, options);
  }),
);

const inputJson = JSON.stringify({ phone: "89001234567" });
let settingsJson = JSON.stringify({ rounds: 1000 });
/** @param {ScriptSandbox} sandbox */
const call = (sandbox) =>
  sandbox.invoke({ hook: "process_client_phone", inputJson, dataJson: "{}", settingsJson, requestId: "cores" }).then((invocation) => {
    if (invocation.outcome.kind !== "data") throw new Error(`unexpected outcome: ${JSON.stringify(invocation.outcome)}`);
    return invocation;
  });

const first = /** @type {ScriptSandbox} */ (sandboxes[0]);
// Calibrate the loop to WORK_MS of the isolate's CPU time per call.
for (let i = 0; i < 200; i++) await call(first);
for (let attempt = 0; attempt < 6; attempt++) {
  const cpu = [];
  for (let i = 0; i < 30; i++) cpu.push((await call(first)).stats.cpuMs);
  const rounds = JSON.parse(settingsJson).rounds;
  const next = Math.max(1000, Math.round((rounds * WORK_MS) / median(cpu)));
  settingsJson = JSON.stringify({ rounds: next });
  if (Math.abs(median(cpu) - WORK_MS) / WORK_MS < 0.05) break;
}
const calibration = [];
for (let i = 0; i < 50; i++) calibration.push((await call(first)).stats);
const workCpuMs = median(calibration.map((stats) => stats.cpuMs));
const workWallMs = median(calibration.map((stats) => stats.wallMs));

/**
 * `callers` closed loops over the first `scripts` sandboxes (round robin), for `ms`.
 * @param {number} scripts
 * @param {number} callers
 * @param {number} ms
 */
async function run(scripts, callers, ms) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  let count = 0;
  let isolateCpuMs = 0;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const end = start + ms;
  delay.enable();
  await Promise.all(
    Array.from({ length: callers }, async (_, i) => {
      const sandbox = /** @type {ScriptSandbox} */ (sandboxes[i % scripts]);
      while (performance.now() < end) {
        const invocation = await call(sandbox);
        isolateCpuMs += invocation.stats.cpuMs;
        count++;
      }
    }),
  );
  delay.disable();
  const wallS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return {
    perSecond: count / wallS,
    processCores: (cpu.user + cpu.system) / 1e6 / wallS,
    isolateCores: isolateCpuMs / 1000 / wallS,
    loopDelayP99Ms: delay.percentile(99) / 1e6,
  };
}

/**
 * Control: plain worker threads spinning for `ms`, no isolated-vm. What this process can get of the
 * machine right now: on a quiet 2-core machine, 2 threads use 2 cores; if they do not, neither can
 * the isolates, and the figures above say more about the neighbours than about callscript.
 * @param {number} threads
 * @param {number} ms
 */
async function control(threads, ms) {
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(
    Array.from(
      { length: threads },
      () =>
        new Promise((resolve, reject) =>
          new Worker(`const end = performance.now() + ${ms}; let x = 0; while (performance.now() < end) x++;`, { eval: true })
            .on("exit", resolve)
            .on("error", reject),
        ),
    ),
  );
  const wallS = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  return { perSecond: NaN, processCores: (cpu.user + cpu.system) / 1e6 / wallS, isolateCores: NaN, loopDelayP99Ms: NaN };
}

/** @type {{ label: string; control?: number; scripts?: number; callers?: number }[]} */
const scenarios = [
  { label: "control: 2 plain threads spinning", control: 2 },
  { label: "1 script", scripts: 1, callers: 1 },
  { label: "2 scripts", scripts: 2, callers: 2 },
  { label: "4 scripts", scripts: 4, callers: 4 },
  { label: "1 script, 4 callers", scripts: 1, callers: 4 },
];
/** @type {(scenario: (typeof scenarios)[number], ms: number) => ReturnType<typeof run>} */
const measure = (scenario, ms) => (scenario.control ? control(scenario.control, ms) : run(scenario.scripts ?? 0, scenario.callers ?? 0, ms));
for (const scenario of scenarios) await measure(scenario, quick ? 200 : 1000); // warm-up
/** @type {Map<string, Awaited<ReturnType<typeof run>>[]>} */
const samples = new Map(scenarios.map((s) => [s.label, []]));
/** @param {string} label */
const samplesOf = (label) => samples.get(label) ?? [];
for (let r = 0; r < ROUNDS; r++) {
  for (const scenario of r % 2 === 0 ? scenarios : [...scenarios].reverse()) {
    samplesOf(scenario.label).push(await measure(scenario, DURATION_MS));
  }
}
await Promise.all(sandboxes.map((sandbox) => sandbox.drainAndDispose()));

const base = median(samplesOf("1 script").map((s) => s.perSecond));
const results = scenarios.map((scenario) => {
  const list = samplesOf(scenario.label);
  const perSecond = median(list.map((s) => s.perSecond));
  return {
    scenario: scenario.label,
    scripts: scenario.scripts ?? 0,
    callers: scenario.callers ?? 0,
    perSecond: Number.isNaN(perSecond) ? null : Math.round(perSecond),
    speedup: Number.isNaN(perSecond) ? null : round(perSecond / base, 2),
    processCores: round(median(list.map((s) => s.processCores)), 2),
    isolateBusy: scenario.control ? null : round(median(list.map((s) => s.isolateCores)), 2),
    loopDelayP99Ms: scenario.control ? null : round(median(list.map((s) => s.loopDelayP99Ms)), 2),
  };
});
const two = results.find((r) => r.scenario === "2 scripts");
if (!two) throw new Error("no result for 2 scripts");
const output = {
  quick,
  rounds: ROUNDS,
  durationMs: DURATION_MS,
  workCpuMs: round(workCpuMs, 3),
  workWallMs: round(workWallMs, 3),
  settings: JSON.parse(settingsJson),
  results,
};
const file = writeResult("cores", output);
console.log(
  `Busy scripts at once (CPU-bound handler ≈ ${round(workCpuMs, 2)} ms in the isolate, ${round(workWallMs, 2)} ms wall per call; medians of ${ROUNDS} × ${DURATION_MS / 1000} s) — ${JSON.stringify(machine())}`,
);
console.log(
  table(
    results.map((r) => ({
      scenario: r.scenario,
      "calls/s": r.perSecond ?? "",
      "vs 1 script": r.speedup === null ? "" : `×${r.speedup}`,
      "process CPU (cores)": r.processCores,
      "isolates busy (wall)": r.isolateBusy ?? "",
      "event loop delay p99 ms": r.loopDelayP99Ms ?? "",
    })),
    ["scenario", "calls/s", "vs 1 script", "process CPU (cores)", "isolates busy (wall)", "event loop delay p99 ms"],
  ),
);
const controlCores = results[0]?.processCores ?? NaN;
console.log(
  `2 scripts: ×${two.speedup} the throughput of 1 on ${machine().cores} cores (${(two.speedup ?? 0) >= 1.6 ? "they run in parallel" : "they do NOT scale"}); ` +
    `control: 2 plain threads got ${controlCores} cores${controlCores < 1.6 ? " — the machine is busy, these figures are not representative" : ""}`,
);
console.log(`results: ${path.relative(process.cwd(), file)}`);
