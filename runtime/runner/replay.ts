import { readFileSync } from "node:fs";
import { parseHookInput } from "../schema/hook-input.js";
import type { HookAnswer } from "../schema/envelope.js";
import { isHookName } from "../schema/hooks.js";
import { diffValues, type Difference } from "../util/diff.js";
import { hookOfFileName, readAnswerFile } from "../record/recording.js";
import { stepOf, type Step } from "./run-cases.js";
import type { CallOptions, ServedFolder } from "./served-folder.js";

/**
 * `callscript replay`: every recorded input run again against the scripts as they are now, and the
 * new answer compared with the one that was sent. The question it answers: "what would this
 * change do to the calls we had?".
 */

/** A script whose version differs between the recording and now (null: not in the pipeline then, or not now). */
export interface VersionChange {
  script: string;
  recorded: string | null;
  now: string | null;
}

export interface ReplayResult {
  file: string;
  hook: string;
  /** `same` answer, a `different` one, or `failed`: the input could not be replayed (see message). */
  status: "same" | "different" | "failed";
  message?: string;
  recorded?: HookAnswer;
  answer?: HookAnswer;
  /** Field by field, `expected` the recorded answer, `actual` the new one. */
  differences?: Difference[];
  /** The hook's scripts whose versions differ from the recording's. */
  versions?: VersionChange[];
  /** What each script returned and logged now. */
  steps?: Step[];
  /** The fetches the scripts made now, `POST https://…`: none answered, a replay reaches no network. */
  fetches?: string[];
}

export interface ReplayReport {
  results: ReplayResult[];
  summary: { same: number; different: number; failed: number };
}

/**
 * What of an answer is compared: the data, or the failure's reason and script. A failure's message,
 * stack and location (its line moves with any edit) are shown, not compared.
 */
function comparable(answer: HookAnswer): unknown {
  if (answer.state === "success") return { state: answer.state, data: answer.data };
  return { state: answer.state, error: { reason: answer.error.reason, script: answer.error.script } };
}

function versionChanges(recorded: Record<string, string>, now: Record<string, string>): VersionChange[] {
  const names = [...new Set([...Object.keys(recorded), ...Object.keys(now)])].sort();
  return names.flatMap((script) => {
    const before = recorded[script] ?? null;
    const after = now[script] ?? null;
    return before === after ? [] : [{ script, recorded: before, now: after }];
  });
}

async function replayOne(file: string, folder: ServedFolder, index: number, options: CallOptions): Promise<ReplayResult> {
  const recordedAnswer = readAnswerFile(file);
  const hookName = recordedAnswer.ok ? recordedAnswer.value.hook : hookOfFileName(file);
  const failed = (message: string): ReplayResult => ({ file, hook: hookName, status: "failed", message });
  if (!recordedAnswer.ok) return failed(recordedAnswer.message);
  const recording = recordedAnswer.value;
  if (!isHookName(hookName)) return failed(`'${hookName}' is not a hook`);
  let body: unknown;
  try {
    body = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    return failed(`the input is not JSON: ${(error as Error).message}`);
  }
  const parsed = parseHookInput(hookName, body);
  if (!parsed.ok) return failed(`the input is not a valid ${hookName} input: ${parsed.issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")}`);

  const { result, versions: now, fetches } = await folder.call(hookName, parsed.input, parsed.inputJson, `replay-${index + 1}-${recording.requestId}`, options);
  const differences = diffValues(comparable(recording.answer), comparable(result.answer));
  const replayed: ReplayResult = {
    file,
    hook: hookName,
    status: differences.length === 0 ? "same" : "different",
    recorded: recording.answer,
    answer: result.answer,
    versions: versionChanges(recording.scripts, now),
    steps: result.invocations.map(stepOf),
  };
  if (differences.length > 0) replayed.differences = differences;
  if (fetches.length > 0) replayed.fetches = fetches.map((fetch) => `${fetch.method} ${fetch.url}`);
  return replayed;
}

/** Replay the recorded inputs, in the order given, one after another (as they came). */
export async function replayRecordings(
  files: readonly string[],
  folder: ServedFolder,
  options: CallOptions & { onResult?: (result: ReplayResult) => void } = {},
): Promise<ReplayReport> {
  const results: ReplayResult[] = [];
  const summary = { same: 0, different: 0, failed: 0 };
  for (const [index, file] of files.entries()) {
    const result = await replayOne(file, folder, index, { shadows: options.shadows ?? false });
    results.push(result);
    summary[result.status]++;
    options.onResult?.(result);
  }
  return { results, summary };
}
