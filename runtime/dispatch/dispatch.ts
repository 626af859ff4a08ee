import type { z } from "zod";
import type { HookAnswer, HookFailure } from "../schema/envelope.js";
import { partialDataSchema, type HookName } from "../schema/hooks.js";
import { withSandboxHint } from "../compile/hints.js";
import { clip, type Invocation, type ScriptSandbox } from "../sandbox/sandbox.js";
import type { Capabilities } from "../capabilities/types.js";
import type { FailurePolicy } from "../config.js";

/** One script in a hook's pipeline, with what the config gives it. */
export interface PipelineScript {
  sandbox: ScriptSandbox;
  order: number;
  settingsJson: string;
}

export interface DispatchOptions {
  requestId: string;
  /** "error" (default): the first failure is the answer. "skip": the failed script changes nothing. */
  policy: FailurePolicy;
  /** Over all the hook's scripts; past it the answer is a `deadline` error, sent in time. */
  deadlineMs: number;
  measureHeap?: boolean;
  /** The input as JSON, when the caller already has it; otherwise it is serialized here. */
  inputJson?: string;
  /** Each finished invocation, as it finishes (for logs and metrics). */
  onInvocation?: (invocation: Invocation) => void;
  /** What the scripts may reach (ctx.fetch, ctx.kv); none when absent. */
  capabilities?: Capabilities;
}

export interface DispatchResult {
  answer: HookAnswer;
  invocations: Invocation[];
  /** Failures that the `skip` policy stepped over. */
  skipped: HookFailure[];
  /** A script cancelled the CRM request. */
  cancelledBy?: string;
  /** The data so far each invoked script saw (JSON), by script name: what its shadow runs on. */
  dataSeen?: Map<string, string>;
}

/**
 * Scripts of one hook run by ascending order, then by name: documented and deterministic. The one
 * comparison every pipeline is sorted with; the runner's shadows sort under their live script's name.
 */
export function pipelineOrderBy<T>(orderOf: (item: T) => number, nameOf: (item: T) => string): (a: T, b: T) => number {
  return (a, b) => {
    const byOrder = orderOf(a) - orderOf(b);
    if (byOrder !== 0) return byOrder;
    const nameA = nameOf(a);
    const nameB = nameOf(b);
    return nameA < nameB ? -1 : nameA > nameB ? 1 : 0;
  };
}

export const pipelineOrder = pipelineOrderBy<PipelineScript>(
  (script) => script.order,
  (script) => script.sandbox.name,
);

/**
 * A hook's pipeline from the loaded scripts: those that implement the hook, in pipeline order. The
 * one place a pipeline is made, for the server's registry and the runner alike.
 */
export function pipelineFor(hook: HookName, scripts: Iterable<PipelineScript>): PipelineScript[] {
  const pipeline: PipelineScript[] = [];
  for (const script of scripts) if (script.sandbox.implements(hook)) pipeline.push(script);
  return pipeline.sort(pipelineOrder);
}

const DEADLINE = Symbol("deadline");

/**
 * Run a hook's pipeline: each script sees the input and the data so far and returns changes that
 * are checked against the hook's data schema and merged over it. A failure is never a cancel: it
 * is an error answer, so the connector falls back to its own default behaviour.
 */
export async function dispatch(
  hook: HookName,
  input: Record<string, unknown>,
  defaults: Record<string, unknown>,
  scripts: readonly PipelineScript[],
  options: DispatchOptions,
): Promise<DispatchResult> {
  const result: DispatchResult = {
    answer: { state: "success", data: defaults },
    invocations: [],
    skipped: [],
    dataSeen: new Map(),
  };
  if (scripts.length === 0) return result;

  // In pipeline order already (pipelineFor): sorted once per version, not per request.
  const ordered = scripts;
  // A request is turned away whole, before any script runs, when one of its scripts has a full
  // queue; once in, it runs to its end. Shed halfway, it would lose its first scripts' work, and
  // under a flood the later scripts' queues, fed in bursts, would shed most of it.
  for (const script of ordered) {
    const refused = script.sandbox.refusal();
    if (refused?.outcome.kind !== "failure") continue;
    record(refused, options, result);
    result.answer = { state: "error", error: refused.outcome.failure };
    return result;
  }
  // Versions loaded in a probe whose isolates are not up yet: all of the pipeline's boot ahead of
  // its call, not each when its turn comes (250 scripts on one hook: past the 2 s deadline in
  // turn, 1.75–2.05 s this way).
  for (const script of ordered) script.sandbox.warm();
  const run: PipelineRun = { over: false, stop: undefined, deadlineAt: performance.now() + options.deadlineMs };
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), options.deadlineMs);
  });
  try {
    const answer = await Promise.race([runPipeline(hook, input, defaults, ordered, options, result, run), deadline]);
    if (answer !== DEADLINE) {
      result.answer = answer;
    } else {
      // The script still running finishes in its own time limit; its late result is not used,
      // and the scripts after it are not started.
      run.over = true;
      // Fetches and kv operations of the script still running stop: their answers would not be used.
      run.stop?.abort();
      const running = ordered[result.invocations.length]?.sandbox.name ?? null;
      result.answer = {
        state: "error",
        error: {
          reason: "deadline",
          script: running,
          message: `The scripts of ${hook} did not finish within the request deadline of ${options.deadlineMs} ms`,
        },
      };
    }
  } finally {
    clearTimeout(timer);
  }
  return result;
}

/** Set once the request deadline has passed: the answer is sent, the pipeline stops. */
interface PipelineRun {
  over: boolean;
  /**
   * Aborted at the deadline: the running script's host requests stop. Made with the first request
   * that asks for its signal: most calls send none (a controller per request was measurable, §7).
   */
  stop: AbortController | undefined;
  /** When the deadline passes (performance.now()). */
  deadlineAt: number;
}

/** `data.extra: …` for a key a strict hook does not have, rather than `data: Unrecognized key`. */
function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  return issues
    .flatMap((issue) =>
      issue.code === "unrecognized_keys"
        ? issue.keys.map((key) => `${["data", ...issue.path, key].join(".")}: not a field of this hook's data`)
        : [`${["data", ...issue.path].join(".")}: ${issue.message}`],
    )
    .join("; ");
}

async function runPipeline(
  hook: HookName,
  input: Record<string, unknown>,
  defaults: Record<string, unknown>,
  scripts: readonly PipelineScript[],
  options: DispatchOptions,
  result: DispatchResult,
  run: PipelineRun,
): Promise<HookAnswer> {
  const inputJson = options.inputJson ?? JSON.stringify(input);
  const schema = partialDataSchema(hook);
  let data = defaults;
  for (const script of scripts) {
    if (run.over) break;
    const dataJson = JSON.stringify(data);
    result.dataSeen?.set(script.sandbox.name, dataJson);
    const invocation = await script.sandbox.invoke(
      {
        hook,
        inputJson,
        dataJson,
        settingsJson: script.settingsJson,
        requestId: options.requestId,
        capabilities: options.capabilities,
        get signal() {
          if (!run.stop) {
            run.stop = new AbortController();
            if (run.over) run.stop.abort();
          }
          return run.stop.signal;
        },
        deadlineAt: run.deadlineAt,
      },
      { heap: options.measureHeap ?? false, admitted: true },
    );
    if (run.over) {
      // Past the deadline: the answer is gone; the invocation is still reported (logs, metrics).
      options.onInvocation?.(invocation);
      break;
    }
    let failure: HookFailure | undefined;
    const { outcome } = invocation;
    if (outcome.kind === "failure") {
      // `fetch is not defined` says what the sandbox offers instead.
      failure = outcome.failure.reason === "exception" ? { ...outcome.failure, message: withSandboxHint(outcome.failure.message) } : outcome.failure;
      invocation.outcome = { kind: "failure", failure };
    } else if (outcome.kind === "cancel") {
      record(invocation, options, result);
      result.cancelledBy = invocation.script;
      return { state: "success", data: {} };
    } else if (outcome.kind === "data") {
      const checked = schema.safeParse(outcome.data);
      if (checked.success) {
        data = { ...data, ...(checked.data as Record<string, unknown>) };
      } else {
        failure = {
          reason: "invalid_output",
          script: invocation.script,
          // Clipped: the issues name the script's keys, as long as its output limit allows.
          message: clip(`The returned data does not fit ${hook}: ${describeIssues(checked.error.issues)}`),
        };
        // The return that produced it, or the handler, when the script's source shows it.
        const key = checked.error.issues[0]?.path[0];
        const location = script.sandbox.returnLocation(hook, typeof key === "string" ? { key } : {});
        if (location) failure.location = location;
        invocation.outcome = { kind: "failure", failure };
      }
    }
    record(invocation, options, result);
    if (failure) {
      if (options.policy === "skip") {
        result.skipped.push(failure);
        continue;
      }
      return { state: "error", error: failure };
    }
  }
  return { state: "success", data };
}

function record(invocation: Invocation, options: DispatchOptions, result: DispatchResult): void {
  result.invocations.push(invocation);
  options.onInvocation?.(invocation);
}
