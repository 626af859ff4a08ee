// @ts-check
// Shared by the benchmarks: timing, percentiles, machine facts, results files.
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.dirname(benchDir);

export function machine() {
  return {
    node: process.version,
    cores: os.cpus().length,
    cpu: os.cpus()[0]?.model ?? "unknown",
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
    // The neighbours: on a shared machine, a load average near or past the core count makes
    // timings noisy (memory figures much less so).
    loadAverage: os.loadavg().map((value) => Math.round(value * 100) / 100),
  };
}

/**
 * Percentile of an ascending-sorted array (nearest rank).
 * @param {readonly number[]} sorted
 * @param {number} p
 * @returns {number}
 */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return /** @type {number} */ (sorted[rank]);
}

/** @param {readonly number[]} samplesMs */
export function summarize(samplesMs) {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const total = samplesMs.reduce((sum, value) => sum + value, 0);
  return {
    n: samplesMs.length,
    p50Us: round(percentile(sorted, 50) * 1000),
    p99Us: round(percentile(sorted, 99) * 1000),
    meanUs: round((total / samplesMs.length) * 1000),
    perSecond: Math.round(samplesMs.length / (total / 1000)),
  };
}

/** @type {(value: number, digits?: number) => number} */
export const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Time `iterations` sequential calls of an async or sync function, after `warmup` untimed ones.
 * @param {(i: number) => unknown} fn
 * @param {{ iterations: number; warmup: number }} counts
 */
export async function timeCalls(fn, { iterations, warmup }) {
  for (let i = 0; i < warmup; i++) await fn(i);
  const samples = new Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = performance.now();
    await fn(i);
    samples[i] = performance.now() - start;
  }
  return summarize(samples);
}

/**
 * @param {string} name
 * @param {Record<string, unknown>} result
 */
export function writeResult(name, result) {
  mkdirSync(path.join(benchDir, "results"), { recursive: true });
  const file = path.join(benchDir, "results", `${name}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), at: new Date().toISOString(), ...result }, null, 2) + "\n");
  return file;
}

/**
 * @param {readonly Record<string, unknown>[]} rows
 * @param {readonly string[]} columns
 */
export function table(rows, columns) {
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => String(row[column] ?? "").length)));
  /** @param {readonly unknown[]} cells */
  const line = (cells) => cells.map((cell, i) => String(cell ?? "").padEnd(widths[i] ?? 0)).join("  ");
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...rows.map((row) => line(columns.map((c) => row[c])))].join("\n");
}

/** BENCH_QUICK=1: fewer iterations, for a smoke run that checks the benches work, not for figures. */
export const quick = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";

/**
 * @param {readonly number[]} values
 * @returns {number}
 */
export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  const at = (/** @type {number} */ i) => /** @type {number} */ (sorted[i]);
  return sorted.length % 2 ? at(middle) : (at(middle - 1) + at(middle)) / 2;
}

/** @type {(ms: number) => Promise<void>} */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS = 100; // USER_HZ on Linux
/**
 * CPU seconds (user + system, all threads) and resident memory of a process, from /proc.
 * @param {number | string} pid
 */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (/** @type {string} */ key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return {
    cpuSeconds,
    rssBytes: kb("VmRSS") * 1024,
    rssAnonBytes: kb("RssAnon") * 1024,
    rssFileBytes: kb("RssFile") * 1024,
    threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]),
  };
}

/**
 * Start a child process and wait for a line of its stdout or stderr that matches `ready`.
 * Resolves with the child, the match and the milliseconds from spawn to that line.
 * @param {string} command
 * @param {readonly string[]} args
 * @param {{ ready: RegExp; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number; stdout?: "pipe" | "ignore" | "inherit" }} options
 * @returns {Promise<{ child: import("node:child_process").ChildProcess; match: RegExpExecArray; readyMs: number }>}
 */
export function spawnUntil(command, args, { ready, env, cwd = repoRoot, timeoutMs = 60_000, stdout = "pipe" }) {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", stdout, "pipe"] });
    const stderr = /** @type {import("node:stream").Readable} */ (child.stderr); // stdio[2] is "pipe"
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")}: not ready within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (/** @type {string} */ chunk) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        const readyMs = performance.now() - startedAt;
        // Keep draining what it writes later, so a full pipe never blocks it.
        child.stdout?.removeListener("data", onData);
        stderr.removeListener("data", onData);
        child.stdout?.resume();
        stderr.resume();
        resolve({ child, match, readyMs });
      }
    };
    child.stdout?.setEncoding("utf8").on("data", onData);
    stderr.setEncoding("utf8").on("data", onData);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
}

/**
 * Stop a child process started by spawnUntil and wait for it to exit.
 * @param {import("node:child_process").ChildProcess} child
 * @param {NodeJS.Signals} [signal]
 */
export async function stopChild(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}

/** The log line `callscript serve` prints once it answers, with its address. */
export const SERVING_LINE = /serving \d+ scripts? from .* at (http:\/\/[^\s,]+)/;

/**
 * Node's and callscript's arguments for `callscript serve` on the examples, without watching, as
 * every benchmark of the HTTP path starts it (Node's own flags, such as a profiler's, go first).
 * @param {number | string} port
 */
export const serveExamplesArgs = (port) => [
  "--no-node-snapshot",
  "bin/callscript.js",
  "serve",
  "--scripts",
  "examples",
  "--config",
  "examples/callscript.config.json",
  "--port",
  String(port),
  "--no-watch",
];

/**
 * Calls into an isolate gathered in one loop turn, up to `max`, handed to `entry` in one isolated-vm
 * apply, as the sandbox's batches are while the server is busy (runtime/sandbox/batch.ts): `entry`
 * is the guest's invokeBatch (or a stand-in taking the same arguments), each call's answer its part
 * of the batch's answer. For the benches that measure a batch without the sandbox around it.
 * @param {{ apply(receiver: undefined, args: unknown[], options: { timeout: number; result: { promise: true } }): Promise<unknown> }} entry
 * @param {number} [max]
 * @returns {(args: unknown[]) => Promise<string>}
 */
export function gatheredApplies(entry, max = 8) {
  /** @type {{ args: unknown[]; resolve: (answer: string) => void; reject: (error: unknown) => void }[]} */
  let gathering = [];
  const apply = () => {
    const group = gathering;
    gathering = [];
    if (group.length === 0) return;
    entry
      .apply(
        undefined,
        group.flatMap((call) => call.args),
        { timeout: 250, result: { promise: true } },
      )
      .then(
        (text) => {
          // BATCH_SEPARATOR of runtime/sandbox/protocol.ts
          const answers = String(text).split("\u0000");
          group.forEach((call, i) => call.resolve(answers[i] ?? ""));
        },
        (error) => group.forEach((call) => call.reject(error)),
      );
  };
  return (args) =>
    new Promise((resolve, reject) => {
      gathering.push({ args, resolve, reject });
      if (gathering.length === 1) setImmediate(apply);
      if (gathering.length === max) apply();
    });
}
