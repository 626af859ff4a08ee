// @ts-check
// Known ways to crash or wedge isolated-vm 5.x, each tried in a child process of its own so that a
// crash is observed rather than suffered (docs/robustness.md). Each case reports how the call ended
// and how the process ended: exit code, signal, or hung (killed after HANG_MS).
// Run: npm run build && node --no-node-snapshot bench/crashers.mjs          (all cases)
//      node --no-node-snapshot bench/crashers.mjs --case NAME              (one, in this process)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { isolatedVm } from "../dist/runtime/sandbox/ivm.js";
import { repoRoot, table, writeResult } from "./lib.mjs";

/**
 * A context as isolated-vm has it: the runtime declares only what it uses (runtime/sandbox/ivm.ts);
 * these cases also evaluate code and read the global.
 * @typedef {import("../dist/runtime/sandbox/ivm.js").Context & {
 *   eval(code: string, options?: { timeout?: number }): Promise<unknown>;
 *   global: import("../dist/runtime/sandbox/ivm.js").Reference;
 * }} RawContext
 */
/** @param {import("../dist/runtime/sandbox/ivm.js").Isolate} isolate */
const rawContext = async (isolate) => /** @type {RawContext} */ (await isolate.createContext());
/** @param {unknown} error */
const messageOf = (error) => /** @type {Error} */ (error).message;

const HANG_MS = 15_000;
const payload = readFileSync(path.join(repoRoot, "examples", "payloads", "need_registration.incoming-answered.json"), "utf8");

/**
 * Evaluate `code` in a fresh isolate of `memoryMb` with a 3 s timeout.
 * @param {string} code
 */
async function evaluate(code, memoryMb = 8) {
  const ivm = isolatedVm();
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb, onCatastrophicError: (message) => console.log(`catastrophic: ${message}`) });
  const context = await rawContext(isolate);
  try {
    return `value ${await context.eval(code, { timeout: 3_000 })}`;
  } catch (error) {
    return `${messageOf(error)}${isolate.isDisposed ? " (isolate disposed)" : ""}`;
  }
}

/**
 * 10,000 calls queued at once on one isolate, as once seen to segfault the host.
 * @param {number} memoryMb
 */
async function queued(memoryMb, body = "(s) => JSON.stringify(JSON.parse(s))") {
  const ivm = isolatedVm();
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  const context = await rawContext(isolate);
  await context.eval(`globalThis.f = ${body}`);
  const f = await context.global.get("f", { reference: true });
  const results = await Promise.all(
    Array.from({ length: 10_000 }, () => f.apply(undefined, [payload], { timeout: 250, result: { promise: true } }).then(() => "ok", messageOf)),
  );
  /** @type {Record<string, number>} */
  const tally = {};
  for (const result of results) tally[result] = (tally[result] ?? 0) + 1;
  return JSON.stringify(tally);
}

/** 10,000 requests at once on one script through callscript's sandbox (queue bound 32). */
async function queuedSandbox() {
  const { configSchema } = await import("../dist/runtime/config.js");
  const { loadScriptFile } = await import("../dist/runtime/registry/load-script.js");
  const examples = path.join(repoRoot, "examples");
  const config = configSchema.parse({ scriptsDir: examples });
  const loaded = await loadScriptFile(path.join(examples, "blacklist-extensions.ts"), examples, config);
  if (!loaded.ok) throw new Error(`blacklist-extensions.ts did not load: ${loaded.failure.message}`);
  const { sandbox, settingsJson } = loaded.script;
  /** @type {import("../dist/runtime/sandbox/sandbox.js").InvocationRequest} */
  const request = { hook: "need_registration", inputJson: payload, dataJson: "{}", settingsJson, requestId: "q" };
  const results = await Promise.all(Array.from({ length: 10_000 }, () => sandbox.invoke(request)));
  /** @type {Record<string, number>} */
  const tally = {};
  for (const { outcome } of results) {
    const key = outcome.kind === "failure" ? outcome.failure.reason : outcome.kind;
    tally[key] = (tally[key] ?? 0) + 1;
  }
  const after = await sandbox.invoke(request);
  await sandbox.drainAndDispose();
  return `${JSON.stringify(tally)}; next call: ${after.outcome.kind}`;
}

/**
 * One native call V8 cannot interrupt, far past the time limit: isolated-vm gives up terminating it
 * after 5 s, parks the isolate's thread and calls onCatastrophicError; then `end` runs.
 * @param {"process.exit(70)" | "process.abort()"} end
 */
async function uninterruptible(end) {
  const ivm = isolatedVm();
  const isolate = new ivm.Isolate({
    memoryLimit: 32,
    onCatastrophicError: (message) => {
      console.log(`catastrophic: ${message}; calling ${end}`);
      if (end === "process.exit(70)") process.exit(70);
      else process.abort();
    },
  });
  const context = await rawContext(isolate);
  try {
    await context.eval(`"a".repeat(2 ** 27).replace(/a/g, "bb").length`, { timeout: 50 });
  } catch (error) {
    console.log(`the call: ${messageOf(error)}`);
  }
  await new Promise(() => {}); // the process ends by the handler, or hangs
}

/**
 * A script's cache: a Map in its global scope that each call grows by 20 000 entries, as admins'
 * scripts do to remember what they looked up. Seen to end the process with V8's fatal out-of-memory
 * (abort, "CALL_AND_RETRY_LAST") once the Map's next rehash does not fit, instead of isolated-vm
 * disposing the isolate at its limit.
 */
async function growingCache(memoryMb = 32) {
  const ivm = isolatedVm();
  const isolate = new ivm.Isolate({ memoryLimit: memoryMb });
  const context = await rawContext(isolate);
  await context.eval(
    `globalThis.f = () => { globalThis.cache ??= new Map(); for (let i = 0; i < 2e4; i++) cache.set("k" + cache.size, { at: cache.size }); return cache.size; }`,
  );
  const f = await context.global.get("f", { reference: true });
  for (let call = 1; call <= 200; call++) {
    try {
      await f.apply(undefined, [], { timeout: 2_000, result: { promise: true } });
    } catch (error) {
      return `call ${call}: ${messageOf(error)}${isolate.isDisposed ? " (isolate disposed)" : ""}`;
    }
  }
  return "200 calls answered";
}

/** @type {Record<string, () => Promise<unknown>>} */
const cases = {
  "10k queued calls, raw isolated-vm, 8 MB": () => queued(8),
  "10k queued calls, raw isolated-vm, 128 MB": () => queued(128),
  "10k queued calls of a heap bomb, raw isolated-vm": () => queued(8, "() => { const h = []; while (true) h.push(new Array(1e4).fill('x' + h.length)); }"),
  "10k requests at one callscript sandbox (queue bound 32)": () => queuedSandbox(),
  "one 160 MB array in an 8 MB isolate": () => evaluate("new Array(20e6).fill(1.5).length"),
  "process.exit() at once after an isolate was disposed for memory": async () => {
    console.log(await evaluate("new Array(20e6).fill(1.5).length"));
    process.exit(0);
  },
  "a 24 MB join in an 8 MB isolate": () => evaluate("new Array(3e6).fill('abcdefgh').join('').length"),
  "a Map of 10M entries": () => evaluate("const m = new Map(); for (let i = 0; i < 1e7; i++) m.set(i, i); m.size"),
  "a 2 GB ArrayBuffer": () => evaluate("new ArrayBuffer(2 ** 31).byteLength"),
  "a string past V8's maximum length": () => evaluate("let s = 'x'; for (let i = 0; i < 29; i++) s += s; s.length"),
  "unbounded recursion": () => evaluate("function f(n) { return f(n + 1) + 1 } f(0)"),
  "a Map cache grown by each call, 32 MB": () => growingCache(32),
  "a Set grown to the heap limit in one call": () => evaluate("const s = new Set(); for (let i = 0;; i++) s.add(i);", 32),
  "an object grown key by key to the heap limit": () => evaluate("const o = {}; for (let i = 0;; i++) o['k' + i] = i;", 32),
  "Atomics.waitAsync in a loop (removed from callscript's guest)": () =>
    evaluate("const i = new Int32Array(new SharedArrayBuffer(4)); for (;;) Atomics.waitAsync(i, 0, 0);", 32),
  "for (;;) JSON.parse(s), raw (callscript's guest wraps JSON.parse)": () =>
    evaluate("const s = JSON.stringify(new Array(2e4).fill(1)); for (;;) JSON.parse(s);", 32),
  "catastrophic (uninterruptible native call), handler calls process.exit(70)": () => uninterruptible("process.exit(70)"),
  "catastrophic (uninterruptible native call), handler calls process.abort()": () => uninterruptible("process.abort()"),
};

const only = process.argv.indexOf("--case");
if (only !== -1) {
  const name = process.argv[only + 1] ?? "";
  const started = performance.now();
  const run = cases[name];
  if (!run) throw new Error(`no case ${name}`);
  const outcome = await run();
  console.log(`outcome: ${outcome} (${Math.round(performance.now() - started)} ms)`);
  // Not at once: exiting right after an isolate was disposed for memory segfaults (its own case).
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  process.exit(0);
}

/** @type {{ case: string; "the call": string; process: string; ms: number }[]} */
const rows = [];
for (const name of Object.keys(cases)) {
  const started = performance.now();
  // ulimit -c 0: the abort case must not leave a core file.
  const child = spawn(
    "/bin/sh",
    ["-c", 'ulimit -c 0; exec "$@"', "sh", process.execPath, "--no-node-snapshot", import.meta.filename ?? process.argv[1], "--case", name],
    {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", () => undefined);
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    child.kill("SIGKILL");
  }, HANG_MS);
  /** @type {{ code: number | null; signal: NodeJS.Signals | null }} */
  const { code, signal } = await new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  const lines = output.trim().split("\n").filter(Boolean);
  rows.push({
    case: name,
    "the call": lines
      .filter((line) => !line.startsWith("outcome: "))
      .concat(lines.filter((line) => line.startsWith("outcome: ")).map((line) => line.slice(9)))
      .join(" / ")
      .slice(0, 160),
    process: hung ? `hung (killed after ${HANG_MS / 1000} s)` : signal ? `killed by ${signal}` : `exit ${code}`,
    ms: Math.round(performance.now() - started),
  });
  console.log(`${name}: ${rows.at(-1)?.process}`);
}
const file = writeResult("crashers", { cases: rows });
console.log(`\n${table(rows, ["case", "process", "ms", "the call"])}\n\n${path.relative(repoRoot, file)}`);
