import { randomUUID } from "node:crypto";
import { deadlineFor, type Config } from "../config.js";
import type { HookFailure } from "../schema/envelope.js";
import { defaultsFor, type HookName } from "../schema/hooks.js";
import { dispatch, type DispatchOptions, type DispatchResult, type PipelineScript } from "./dispatch.js";

export interface HookCallOptions {
  requestId?: string;
  /** The input as JSON, when the caller has it (parseHookInput's inputJson). */
  inputJson?: string;
  measureHeap?: boolean;
  onInvocation?: DispatchOptions["onInvocation"];
  /**
   * Scripts of the hook that have no version to serve (registry.failures): with the `error`
   * policy the answer is the first one's failure and no script runs; with `skip` the others run
   * and the answer names them in `skipped`.
   */
  failed?: readonly HookFailure[];
  /** What the scripts may reach (ctx.fetch, ctx.kv): the server's CapabilityHost, a case's canned ones; none when absent. */
  capabilities?: DispatchOptions["capabilities"];
}

/**
 * One hook call as the connector makes it, shared by the server and the runner so that what an
 * admin sees locally is what production answers: config (enabled, policy, deadline), defaults,
 * the pipeline.
 */
export async function callHook(
  config: Config,
  hook: HookName,
  input: Record<string, unknown>,
  scripts: readonly PipelineScript[],
  options: HookCallOptions = {},
): Promise<DispatchResult> {
  const defaults = defaultsFor(hook, input);
  const hookConfig = config.hooks[hook];
  if (hookConfig?.enabled === false) {
    return neverEmpty(hook, { answer: { state: "success", data: defaults }, invocations: [], skipped: [] });
  }
  const policy = hookConfig?.failurePolicy ?? "error";
  const failed = options.failed ?? [];
  if (failed.length > 0 && policy === "error") {
    return { answer: { state: "error", error: failed[0]! }, invocations: [], skipped: [] };
  }
  const dispatchOptions: DispatchOptions = {
    requestId: options.requestId ?? randomUUID(),
    policy,
    deadlineMs: deadlineFor(config, hook),
    measureHeap: options.measureHeap ?? false,
  };
  if (options.onInvocation) dispatchOptions.onInvocation = options.onInvocation;
  if (options.inputJson !== undefined) dispatchOptions.inputJson = options.inputJson;
  if (options.capabilities) dispatchOptions.capabilities = options.capabilities;
  const result = neverEmpty(hook, await dispatch(hook, input, defaults, scripts, dispatchOptions));
  if (failed.length > 0) result.skipped.unshift(...failed);
  return namingSkipped(result);
}

/** A success that stepped over failed scripts says so in the answer, not only in the server's log. */
function namingSkipped(result: DispatchResult): DispatchResult {
  if (result.answer.state === "success" && result.skipped.length > 0) {
    result.answer.skipped = result.skipped.map(({ stack: _, ...failure }) => failure);
  }
  return result;
}

/**
 * Empty data tells the connector to drop the CRM request, so it may come only from cancel(). A
 * parameter hook called with no parameters, where no script adds any, would otherwise answer `{}`
 * and lose the request; an error answer makes the connector go on with its own behaviour.
 */
function neverEmpty(hook: HookName, result: DispatchResult): DispatchResult {
  const { answer } = result;
  if (answer.state !== "success" || result.cancelledBy !== undefined || Object.keys(answer.data).length > 0) return result;
  result.answer = {
    state: "error",
    error: {
      reason: "no_data",
      script: null,
      message: `The data of ${hook} would be empty, which the connector reads as a cancel; no script cancelled, so the connector keeps its own behaviour. Return cancel() to cancel on purpose.`,
    },
  };
  return result;
}
