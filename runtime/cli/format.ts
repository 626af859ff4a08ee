import { readFileSync } from "node:fs";
import path from "node:path";
import { styleText } from "node:util";
import type { HookFailure, SourceLocation } from "../schema/envelope.js";
import type { Limits } from "../sandbox/limits.js";
import type { GuestLogs } from "../sandbox/protocol.js";

/** Terminal colours only when a person is reading. */
const useColour = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (format: "red" | "green" | "yellow" | "dim" | "bold") => (text: string) => (useColour ? styleText(format, text) : text);
export const red = paint("red");
export const green = paint("green");
export const yellow = paint("yellow");
export const dim = paint("dim");
export const bold = paint("bold");

/** A path as the user can click it: relative to the current folder when inside it, else absolute. */
export function displayPath(file: string, cwd = process.cwd()): string {
  const relative = path.relative(cwd, file);
  return relative === "" || relative.startsWith("..") || path.isAbsolute(relative) ? file : relative;
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1).replace(/\.0$/, "")} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1).replace(/\.0$/, "")} MB`;
}

export function formatMs(ms: number): string {
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}

/** What an invocation used (or the worst over several), measured against its script's limits. */
export interface LimitUse {
  wallMs: number;
  cpuMs: number;
  heapUsedBytes?: number | undefined;
  outputBytes: number;
  logBytes: number;
}

export interface LimitRow {
  label: "time" | "heap" | "output" | "log";
  used: string;
  limit: string;
  /** used / limit; past half a limit the row is highlighted. */
  ratio: number;
  note?: string;
}

export function limitRows(use: LimitUse, limits: Limits): LimitRow[] {
  const heapLimit = limits.memoryMb * 1024 * 1024;
  return [
    // The time limit counts CPU time (runtime/sandbox/time-limit.ts); the wall time is shown beside it.
    {
      label: "time",
      used: formatMs(use.cpuMs),
      limit: `${limits.timeoutMs} ms`,
      ratio: use.cpuMs / limits.timeoutMs,
      note: `CPU time; wall ${formatMs(use.wallMs)}`,
    },
    {
      label: "heap",
      used: use.heapUsedBytes === undefined ? "?" : formatBytes(use.heapUsedBytes),
      limit: `${limits.memoryMb} MB`,
      ratio: (use.heapUsedBytes ?? 0) / heapLimit,
    },
    { label: "output", used: formatBytes(use.outputBytes), limit: formatBytes(limits.outputBytes), ratio: use.outputBytes / limits.outputBytes },
    { label: "log", used: formatBytes(use.logBytes), limit: formatBytes(limits.logBytes), ratio: limits.logBytes === 0 ? 0 : use.logBytes / limits.logBytes },
  ];
}

/** Colour for a share of a limit: yellow past half, red past 90 %. */
export function byRatio(ratio: number): (text: string) => string {
  return ratio >= 0.9 ? red : ratio >= 0.5 ? yellow : (text: string) => text;
}

/** `time    0.57 ms    of 250 ms (CPU time; wall 0.77 ms)`, one line per limit. */
export function formatLimitUse(use: LimitUse, limits: Limits, indent = "  "): string[] {
  return limitRows(use, limits).map((row) => {
    const note = row.note ? ` ${dim(`(${row.note})`)}` : "";
    return `${indent}${row.label.padEnd(7)} ${byRatio(row.ratio)(row.used.padEnd(10))} of ${row.limit}${note}`;
  });
}

export function formatLogs(logs: GuestLogs, indent = "  "): string[] {
  const lines = logs.lines.map((line) => `${indent}${dim(`+${formatMs(line.atMs)}`)} ${levelTag(line.level)} ${line.message}`);
  if (logs.dropped > 0) {
    lines.push(`${indent}${yellow(`… ${logs.dropped} more line(s), ${formatBytes(logs.droppedBytes)}, dropped: over the log limit`)}`);
  }
  return lines;
}

function levelTag(level: string): string {
  const tag = level.padEnd(5);
  return level === "error" ? red(tag) : level === "warn" ? yellow(tag) : dim(tag);
}

/** The source line a location points at, with a caret, read from the scripts folder. */
export function codeFrame(scriptsDir: string, location: SourceLocation): string[] {
  let lines: string[];
  try {
    lines = readFileSync(path.resolve(scriptsDir, location.file), "utf8").split("\n");
  } catch {
    return [];
  }
  const frame: string[] = [];
  for (let number = Math.max(1, location.line - 1); number <= Math.min(lines.length, location.line + 1); number++) {
    const marker = number === location.line ? ">" : " ";
    frame.push(`  ${marker} ${String(number).padStart(4)} | ${lines[number - 1]}`);
    if (number === location.line) frame.push(`         | ${" ".repeat(Math.max(0, location.column - 1))}^`);
  }
  return frame;
}

export function formatFailure(failure: HookFailure, scriptsDir: string): string[] {
  const where = failure.location ? ` at ${failure.location.file}:${failure.location.line}:${failure.location.column}` : "";
  const lines = [`${red(failure.reason)}${failure.script ? ` in ${failure.script}` : ""}${where}`, `  ${failure.message}`];
  if (failure.location) lines.push("", ...codeFrame(scriptsDir, failure.location));
  if (failure.stack) {
    const frames = failure.stack.split("\n").filter((line) => line.trimStart().startsWith("at "));
    if (frames.length > 0) lines.push("", ...frames.map((frame) => dim(`  ${frame.trim()}`)));
  }
  return lines;
}
