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

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank];
}

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

export const round = (value, digits = 1) => Math.round(value * 10 ** digits) / 10 ** digits;

/** Time `iterations` sequential calls of an async or sync function, after `warmup` untimed ones. */
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

export function writeResult(name, result) {
  mkdirSync(path.join(benchDir, "results"), { recursive: true });
  const file = path.join(benchDir, "results", `${name}.json`);
  writeFileSync(file, JSON.stringify({ machine: machine(), at: new Date().toISOString(), ...result }, null, 2) + "\n");
  return file;
}

export function table(rows, columns) {
  const widths = columns.map((column) => Math.max(column.length, ...rows.map((row) => String(row[column] ?? "").length)));
  const line = (cells) => cells.map((cell, i) => String(cell ?? "").padEnd(widths[i])).join("  ");
  return [line(columns), line(widths.map((w) => "-".repeat(w))), ...rows.map((row) => line(columns.map((c) => row[c])))].join("\n");
}

/** BENCH_QUICK=1: fewer iterations, for a smoke run that checks the benches work, not for figures. */
export const quick = process.env.BENCH_QUICK === "1" || process.env.BENCH_QUICK === "true";

export function median(values) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const CLOCK_TICKS = 100; // USER_HZ on Linux
/** CPU seconds (user + system, all threads) and resident memory of a process, from /proc. */
export function procStats(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { cpuSeconds, rssBytes: kb("VmRSS") * 1024, rssAnonBytes: kb("RssAnon") * 1024, rssFileBytes: kb("RssFile") * 1024, threads: Number(/^Threads:\s+(\d+)/m.exec(status)?.[1]) };
}

/**
 * Start a child process and wait for a line of its stdout or stderr that matches `ready`.
 * Resolves with the child, the match and the milliseconds from spawn to that line.
 */
export function spawnUntil(command, args, { ready, env, cwd = repoRoot, timeoutMs = 60_000, stdout = "pipe" }) {
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", stdout, "pipe"] });
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${args.join(" ")}: not ready within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk) => {
      output += chunk;
      const match = ready.exec(output);
      if (match) {
        clearTimeout(timer);
        const readyMs = performance.now() - startedAt;
        // Keep draining what it writes later, so a full pipe never blocks it.
        child.stdout?.removeListener("data", onData);
        child.stderr.removeListener("data", onData);
        child.stdout?.resume();
        child.stderr.resume();
        resolve({ child, match, readyMs });
      }
    };
    child.stdout?.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", onData);
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(" ")} exited (${code ?? signal}) before it was ready:\n${output}`));
    });
  });
}

/** Stop a child process started by spawnUntil and wait for it to exit. */
export async function stopChild(child, signal = "SIGTERM") {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.removeAllListeners("exit");
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await exited;
  clearTimeout(timer);
}
