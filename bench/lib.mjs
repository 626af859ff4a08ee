// Shared by the benchmarks: timing, percentiles, machine facts, results files.
import { writeFileSync, mkdirSync } from "node:fs";
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
