import { randomUUID } from "node:crypto";
import type { z } from "zod";
import { deadlineFor, type Config } from "../config.js";
import { InvalidInputError, UnknownHookError } from "../errors.js";
import { closest } from "../sandbox/suggest.js";
import { defaultsFor, hookCatalog, hookNames, isHookName, type HookName } from "../schema/hooks.js";
import { dispatch, type DispatchOptions, type DispatchResult, type PipelineScript } from "./dispatch.js";

export interface InputIssue {
  path: string;
  message: string;
}

export function issuesOf(error: z.ZodError): InputIssue[] {
  return error.issues.map((issue) => ({
    path: issue.path.length ? issue.path.map(String).join(".") : "(body)",
    message: issue.message,
  }));
}

export function unknownHook(name: string): InstanceType<typeof UnknownHookError> {
  const suggestion = closest(name, hookNames);
  const known = hookNames.join(", ");
  return new UnknownHookError(name, suggestion ? `${known}. Did you mean '${suggestion}'?` : known);
}

/** A hook name from the outside world, checked against the catalog. */
export function resolveHook(name: string): HookName {
  if (!isHookName(name)) throw unknownHook(name);
  return name;
}

export type ParsedInput =
  | { ok: true; input: Record<string, unknown> }
  | { ok: false; error: InstanceType<typeof InvalidInputError>; issues: InputIssue[] };

/** The hook input checked against its schema; every bad field is named by its path. */
export function parseHookInput(hook: HookName, body: unknown): ParsedInput {
  const parsed = hookCatalog[hook].input.safeParse(body);
  if (parsed.success) return { ok: true, input: parsed.data as Record<string, unknown> };
  const issues = issuesOf(parsed.error);
  const summary = issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ");
  return { ok: false, error: new InvalidInputError(hook, summary), issues };
}

export interface HookCallOptions {
  requestId?: string;
  measureHeap?: boolean;
  onInvocation?: DispatchOptions["onInvocation"];
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
    return { answer: { state: "success", data: defaults }, invocations: [], skipped: [] };
  }
  const dispatchOptions: DispatchOptions = {
    requestId: options.requestId ?? randomUUID(),
    policy: hookConfig?.failurePolicy ?? "error",
    deadlineMs: deadlineFor(config, hook),
    measureHeap: options.measureHeap ?? false,
  };
  if (options.onInvocation) dispatchOptions.onInvocation = options.onInvocation;
  return dispatch(hook, input, defaults, scripts, dispatchOptions);
}
