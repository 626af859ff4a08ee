import { readFileSync } from "node:fs";
import path from "node:path";
import { anonymizeInput } from "../record/anonymize.js";
import type { Invocation } from "../sandbox/sandbox.js";
import type { CallRecord } from "./calls-buffer.js";
import type { CallDetail, CallSummary, FrameLine, InvocationView } from "./console-schemas.js";

/** What the console shows of one script's invocation. */
export function invocationView(invocation: Invocation): InvocationView {
  const { outcome, logs, stats } = invocation;
  const view: InvocationView = {
    script: invocation.script,
    version: invocation.version,
    outcome: outcome.kind === "failure" ? outcome.failure.reason : outcome.kind,
    logs: { lines: logs.lines, dropped: logs.dropped, bytes: logs.bytes },
    stats: { ...stats },
  };
  if (outcome.kind === "data") view.data = outcome.data;
  if (outcome.kind === "failure") view.failure = outcome.failure;
  return view;
}

export function callSummary(call: CallRecord): CallSummary {
  return { seq: call.seq, id: call.id, hook: call.hook, at: call.at, ms: call.ms, status: call.status, outcome: call.outcome, scripts: call.scripts };
}

const ANSWER = "callscript:answer";
const INVOCATIONS = "callscript:invocations";

/**
 * Input, answer and each script's data and log lines as one value, with the client's phone
 * numbers, names and e-mail addresses replaced when `redact` is on: found in the input exactly as
 * `record.anonymize` finds them, and replaced wherever they are written, in the answer and the
 * log lines too, by the same fake (one per number for the life of the process).
 */
export function redactCall<T extends { input: unknown; answer: unknown; invocations: InvocationView[] }>(parts: T, redact: boolean): T {
  if (!redact || parts.input === null || typeof parts.input !== "object" || Array.isArray(parts.input)) return parts;
  const bundle = { ...(parts.input as Record<string, unknown>), [ANSWER]: parts.answer, [INVOCATIONS]: parts.invocations };
  const { [ANSWER]: answer, [INVOCATIONS]: invocations, ...input } = anonymizeInput(bundle).value as Record<string, unknown>;
  return { ...parts, input, answer, invocations: invocations as InvocationView[] };
}

export function callDetail(call: CallRecord, redact: boolean): CallDetail {
  const parts = redactCall({ input: call.input, answer: call.answer, invocations: call.invocations.map(invocationView) }, redact);
  return { ...callSummary(call), ...parts, redacted: redact };
}

/** Every string of a value that holds digits, reduced to its digits: what a phone filter searches. */
export function digitsOf(value: unknown): string {
  const found: string[] = [];
  const walk = (item: unknown, depth: number): void => {
    if (depth > 64) return;
    if (typeof item === "string" || typeof item === "number") {
      const digits = String(item).replace(/\D/g, "");
      if (digits.length >= 3) found.push(digits);
    } else if (Array.isArray(item)) {
      for (const entry of item) walk(entry, depth + 1);
    } else if (item !== null && typeof item === "object") {
      for (const entry of Object.values(item)) walk(entry, depth + 1);
    }
  };
  walk(value, 0);
  return found.join("|");
}

/** The source lines around `line` (1-based) of a file of the scripts folder, for a code frame. */
export function codeFrame(scriptsDir: string, file: string, line: number, around = 2): FrameLine[] | undefined {
  const absolute = path.resolve(scriptsDir, file);
  if (path.relative(scriptsDir, absolute).startsWith("..")) return undefined;
  let text: string;
  try {
    text = readFileSync(absolute, "utf8");
  } catch {
    return undefined;
  }
  const lines = text.split(/\r?\n/);
  const first = Math.max(1, line - around);
  const last = Math.min(lines.length, line + around);
  const frame: FrameLine[] = [];
  for (let number = first; number <= last; number++) frame.push({ line: number, text: (lines[number - 1] ?? "").slice(0, 400) });
  return frame;
}
