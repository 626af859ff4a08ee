import { mkdir } from "node:fs/promises";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { hookAnswer, type HookAnswer } from "../schema/envelope.js";
import { hookNames, isHookName, type HookName } from "../schema/hooks.js";
import { writeFileAtomic } from "../util/write-atomic.js";
import { anonymizeRecording, recordFileName, type AnonymizeOptions } from "./anonymize.js";

/**
 * A recording is a pair of files: the hook input as the connector sent it,
 * `<hook>.<timestamp>-<id>.json` (an `inputFile` for a case, as it always was), and beside it
 * `<hook>.<timestamp>-<id>.answer.json`: the answer that was sent and the version of each script
 * of the hook's pipeline. `callscript replay` runs the inputs again and compares the answers.
 */

export const answerFile = z.strictObject({
  hook: z.enum(hookNames as [HookName, ...HookName[]]),
  requestId: z.string(),
  at: z.string().describe("When the answer was sent (ISO 8601)"),
  status: z.number().int().describe("The HTTP status of the answer"),
  answer: hookAnswer,
  scripts: z.record(z.string(), z.string()).describe("The hook's pipeline when it answered: script name → version"),
});
export type AnswerFile = z.output<typeof answerFile>;

const ANSWER_SUFFIX = ".answer.json";

/** `x.json` → `x.answer.json`. */
export function answerFileOf(inputFile: string): string {
  return inputFile.replace(/\.json$/, ANSWER_SUFFIX);
}

/** `x.answer.json` → `x.json`; an input file is its own. */
export function inputFileOf(file: string): string {
  return file.endsWith(ANSWER_SUFFIX) ? file.slice(0, -ANSWER_SUFFIX.length) + ".json" : file;
}

export function isAnswerFile(file: string): boolean {
  return file.endsWith(ANSWER_SUFFIX);
}

export interface RecordPairOptions extends AnonymizeOptions {
  anonymize: boolean;
  /** Goes into the file names (the request id); default: random. */
  id?: string;
  requestId: string;
  status: number;
  scripts: Record<string, string>;
}

const writeAtomically = (file: string, value: unknown): Promise<void> => writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);

/**
 * Save one hook call as a recording: its input, then its answer (each written to a temporary name
 * and renamed, so a reader never sees half a file; a reader that finds the input without its answer
 * is reading while the pair is written). Anonymized, both halves get the same fakes.
 * @returns the input file's path.
 */
export async function recordPair(dir: string, hook: string, input: unknown, answer: HookAnswer, options: RecordPairOptions): Promise<string> {
  if (!isHookName(hook)) throw new Error(`recordPair: '${hook}' is not a hook`);
  let value = input;
  let sent = answer;
  if (options.anonymize) {
    const anonymized = anonymizeRecording(input, answer, options);
    value = anonymized.input;
    sent = anonymized.answer ?? answer;
  }
  const file = path.join(dir, recordFileName(hook, options.id));
  await mkdir(dir, { recursive: true });
  const pair: AnswerFile = { hook, requestId: options.requestId, at: new Date().toISOString(), status: options.status, answer: sent, scripts: options.scripts };
  await writeAtomically(file, value);
  await writeAtomically(answerFileOf(file), pair);
  return file;
}

/** `<hook>.<timestamp>-<id>.json` as the server names a recording: its hook and when it came. */
const RECORDED_NAME = /^([a-z_]+)\.(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z)-[\w-]+\.json$/;

/** The hook a recorded input is for, from its name: `<hook>.<anything>.json`, or `NN-<hook>.json`. */
export function hookOfFileName(file: string): string {
  return path
    .basename(file)
    .split(".")[0]!
    .replace(/^\d+[-_]/, "");
}

/** When the server received a recorded input, from its name; undefined for a name it did not give. */
export function recordedAt(file: string): string | undefined {
  return RECORDED_NAME.exec(path.basename(file))?.[2];
}

/**
 * The hook inputs of a folder (or the files given), in the order they came: by the time in their
 * recorded names, then by name. Answer files are not inputs.
 */
export function recordedInputs(targets: readonly string[]): string[] {
  const files = new Set<string>();
  for (const target of targets) {
    let isDir: boolean;
    try {
      isDir = statSync(target).isDirectory();
    } catch {
      throw new Error(`${target} does not exist`);
    }
    if (isDir) {
      for (const name of readdirSync(target)) {
        if (name.endsWith(".json") && !isAnswerFile(name) && !name.startsWith(".")) files.add(path.join(target, name));
      }
    } else {
      files.add(inputFileOf(target));
    }
  }
  const key = (file: string) => recordedAt(file) ?? "";
  return [...files].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : a < b ? -1 : a > b ? 1 : 0));
}

export type ReadAnswer = { ok: true; value: AnswerFile } | { ok: false; message: string };

/** The recorded answer of an input, checked against its format. */
export function readAnswerFile(inputFile: string): ReadAnswer {
  const file = answerFileOf(inputFile);
  if (!existsSync(file)) {
    return { ok: false, message: `no recorded answer beside it (${path.basename(file)}): recorded before answers were kept, or by hand` };
  }
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    return { ok: false, message: `${path.basename(file)} is not JSON: ${(error as Error).message}` };
  }
  const parsed = answerFile.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((issue) => `${issue.path.join(".") || "(file)"}: ${issue.message}`).join("; ");
    return { ok: false, message: `${path.basename(file)} is not a recorded answer: ${issues}` };
  }
  return { ok: true, value: parsed.data };
}
