import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { parsePbxTime } from "../../sdk/time.js";
import { parseHookInput, unknownHook } from "../schema/hook-input.js";
import { UsageError } from "../errors.js";
import type { HookAnswer } from "../schema/envelope.js";
import { closest } from "../util/closest.js";
import { defaultsFor, effectOf, hookNames, isHookName, type HookName } from "../schema/hooks.js";
import { diffValues, type Difference } from "../util/diff.js";
import { hookOfFileName, isAnswerFile, recordedInputs } from "../record/recording.js";
import { stepOf, type Step } from "./run-cases.js";
import type { CallOptions, ServedFolder } from "./served-folder.js";

/**
 * `callscript simulate`: a whole call played hook by hook against a scripts folder, as the
 * connector would call the server through the call's life. The call is a file
 * (`{ name, steps: [{ hook, input }] }`) or a folder of its recorded inputs.
 */

const callStep = z.strictObject({
  hook: z.string().min(1).describe("The hook the connector calls at this step"),
  input: z.record(z.string(), z.unknown()).describe("The hook input, as the connector POSTs it"),
  note: z.string().optional().describe("What happens in the call at this step, shown in the timeline"),
});

export const callFileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().min(1).describe("The call, in words"),
    description: z.string().optional(),
    steps: z.array(callStep).min(1).describe("The hooks in the order the connector calls them"),
  })
  .describe("callscript call file: one call, hook by hook");

export interface CallStep {
  hook: string;
  input: unknown;
  note?: string;
  /** Where the step comes from: `call.json#steps[2]`, or a recorded input's file. */
  source: string;
  /** Why the step cannot be played (its file is not JSON). */
  problem?: string;
}

export interface Call {
  name: string;
  description?: string;
  steps: CallStep[];
  /** What is odd about the call as a whole (inputs of several calls in one folder). */
  warnings: string[];
}

function formatIssues(error: z.ZodError): string {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join(".") : "(file)"}: ${issue.message}`).join("; ");
}

/**
 * A call file, or a folder of one call's recorded inputs in the order they came. `callId` keeps the
 * steps of one call (its `call_full.channel.id`, the linkedid): a whole recording folder holds many.
 */
export function readCall(target: string, callId?: string): Call {
  let isDir: boolean;
  try {
    isDir = statSync(target).isDirectory();
  } catch {
    throw new UsageError(`${target} does not exist`);
  }
  const call = isDir ? readCallFolder(target) : readCallFile(target);
  if (callId !== undefined) {
    call.steps = call.steps.filter((step) => callIdOf(step.input) === callId);
    if (call.steps.length === 0) throw new UsageError(`No step of ${target} is of the call ${callId} (call_full.channel.id)`);
    call.name = `${call.name} · call ${callId}`;
  }
  const calls = new Set(call.steps.flatMap((step) => callIdOf(step.input) ?? []));
  if (calls.size > 1) {
    call.warnings.push(`the steps are of ${calls.size} different calls (call_full.channel.id ${[...calls].join(", ")}); --call <id> plays one of them`);
  }
  return call;
}

function readCallFile(file: string): Call {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, "utf8"));
  } catch (error) {
    throw new UsageError(`Call file ${file} is not JSON: ${(error as Error).message}`);
  }
  const parsed = callFileSchema.safeParse(value);
  if (!parsed.success) throw new UsageError(`Call file ${file} is not { name, steps: [{ hook, input }] }: ${formatIssues(parsed.error)}`);
  const { name, description, steps } = parsed.data;
  const call: Call = {
    name,
    steps: steps.map((step, index) => ({ ...step, source: `${file}#steps[${index}]` })),
    warnings: [],
  };
  if (description !== undefined) call.description = description;
  return call;
}

function readCallFolder(dir: string): Call {
  const files = recordedInputs([dir]);
  if (files.length === 0) {
    const answers = readdirSync(dir).some(isAnswerFile);
    throw new UsageError(`No hook inputs in ${dir}${answers ? " (only answer files)" : ""}: a folder of one call's recorded inputs, <hook>.<...>.json`);
  }
  const steps = files.map((file): CallStep => {
    let input: unknown;
    try {
      input = JSON.parse(readFileSync(file, "utf8"));
    } catch (error) {
      return { hook: hookOfFileName(file), input: undefined, source: file, problem: `not JSON: ${(error as Error).message}` };
    }
    return { hook: hookOfFileName(file), input, source: file };
  });
  return { name: path.basename(path.resolve(dir)), steps, warnings: [] };
}

// ---- time in the call --------------------------------------------------------------------------

interface CallTimes {
  /** The earliest start of the call's channels. */
  start?: number;
  /** The latest time the call_full holds: how far the call had got when the hook was called. */
  latest?: number;
  latestText?: string;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function callIdOf(input: unknown): string | undefined {
  if (!isObject(input) || !isObject(input.call_full) || !isObject(input.call_full.channel)) return undefined;
  const id = input.call_full.channel.id;
  return typeof id === "string" && id !== "" ? id : undefined;
}

/** The times of a call_full's channels (the main one and each conversation's). */
function timesOf(input: unknown): CallTimes {
  const times: CallTimes = {};
  if (!isObject(input) || !isObject(input.call_full)) return times;
  const callFull = input.call_full;
  const channels = [callFull.channel];
  if (isObject(callFull.conversations))
    for (const conversation of Object.values(callFull.conversations)) if (isObject(conversation)) channels.push(conversation.channel);
  for (const channel of channels) {
    if (!isObject(channel)) continue;
    for (const key of ["start_time", "answer_time", "end_time"] as const) {
      const text = channel[key];
      const parsed = typeof text === "string" ? parsePbxTime(text) : null;
      if (parsed === null) continue;
      if (key === "start_time" && (times.start === undefined || parsed.epochMs < times.start)) times.start = parsed.epochMs;
      if (times.latest === undefined || parsed.epochMs > times.latest) {
        times.latest = parsed.epochMs;
        times.latestText = text as string;
      }
    }
  }
  return times;
}

// ---- the simulation ----------------------------------------------------------------------------

export interface SimulatedStep {
  index: number;
  hook: string;
  note?: string;
  source: string;
  /** `call_stage` of the input, when it has one. */
  stage?: string;
  /** The latest time in the step's call_full (PBX time), and seconds since the call started. */
  time: string | null;
  offsetSeconds: number | null;
  /** Why the step could not be called: an unknown hook, an input that does not fit it. */
  problem?: string;
  answer?: HookAnswer;
  cancelledBy?: string;
  /** What each script of the pipeline returned and logged, in order. */
  scripts: Array<Step & { ms: number }>;
  /** The answer's data against the hook's defaults: what the scripts changed. */
  changes: Difference[];
  /** What the connector does with the answer, in words. */
  effect?: string;
  /** The fetches the scripts made, `POST https://…` (none answered: a simulation reaches no network). */
  fetches: string[];
}

export interface SimulationReport {
  name: string;
  description?: string;
  warnings: string[];
  steps: SimulatedStep[];
  /** Steps whose answer is an error, or that could not be called. */
  failed: number;
}

/** Play every step of the call against the folder, in order. */
export async function simulateCall(call: Call, folder: ServedFolder, options: CallOptions = {}): Promise<SimulationReport> {
  const starts = call.steps.flatMap((step) => timesOf(step.input).start ?? []);
  const callStart = starts.length > 0 ? Math.min(...starts) : undefined;
  const steps: SimulatedStep[] = [];
  for (const [index, step] of call.steps.entries()) {
    const times = timesOf(step.input);
    const simulated: SimulatedStep = {
      index,
      hook: step.hook,
      source: step.source,
      time: times.latestText ?? null,
      offsetSeconds: times.latest !== undefined && callStart !== undefined ? (times.latest - callStart) / 1000 : null,
      scripts: [],
      changes: [],
      fetches: [],
    };
    if (step.note !== undefined) simulated.note = step.note;
    if (isObject(step.input) && typeof step.input.call_stage === "string") simulated.stage = step.input.call_stage;
    steps.push(simulated);
    if (step.problem !== undefined) {
      simulated.problem = step.problem;
      continue;
    }
    if (!isHookName(step.hook)) {
      const suggestion = closest(step.hook, hookNames);
      simulated.problem = suggestion ? `Unknown hook '${step.hook}'. Did you mean '${suggestion}'?` : unknownHook(step.hook).message;
      continue;
    }
    const hook: HookName = step.hook;
    const parsed = parseHookInput(hook, step.input);
    if (!parsed.ok) {
      simulated.problem = [`not a valid ${hook} input:`, ...parsed.issues.map((issue) => `  ${issue.path}: ${issue.message}`)].join("\n");
      continue;
    }
    const { result, fetches } = await folder.call(hook, parsed.input, parsed.inputJson, `${call.name}#${index + 1}`, options);
    simulated.fetches = fetches.map((fetch) => `${fetch.method} ${fetch.url}`);
    simulated.answer = result.answer;
    if (result.cancelledBy !== undefined) simulated.cancelledBy = result.cancelledBy;
    simulated.scripts = result.invocations.map((invocation) => ({ ...stepOf(invocation), ms: invocation.stats.wallMs }));
    if (result.answer.state === "success" && result.cancelledBy === undefined) {
      simulated.changes = diffValues(defaultsFor(hook, parsed.input), result.answer.data);
    }
    simulated.effect = effectOf(hook, parsed.input, result.answer, result.cancelledBy !== undefined);
  }
  const report: SimulationReport = {
    name: call.name,
    warnings: call.warnings,
    steps,
    failed: steps.filter((step) => step.problem !== undefined || step.answer?.state === "error").length,
  };
  if (call.description !== undefined) report.description = call.description;
  return report;
}

/** JSON Schema of the call file, for editors (`$schema`): draft-07, as the cases file's. */
export function callJsonSchema(): Record<string, unknown> {
  return { ...(z.toJSONSchema(callFileSchema, { target: "draft-7", io: "input" }) as Record<string, unknown>), title: "callscript call file" };
}
