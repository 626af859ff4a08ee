import { readFileSync } from "node:fs";
import type { HookFailure } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";
import type { ScriptProblem } from "./states.js";

/**
 * A script with no version to serve (it failed to compile, type-check or load, at start or after
 * its file came back) is not left out of its hooks: they answer its failure, so that a broken
 * deploy is an error the connector and the operator see, not a pipeline that quietly runs without
 * it. Its hooks cannot be read from a definition that never ran; they are the hook names its
 * source mentions (`need_registration(input, ctx) {` in `hooks`). A source that names none fails
 * no hook, and shows only in /scripts, /readyz and the log.
 */

const HOOK_NAME = new RegExp(`\\b(${hookNames.join("|")})\\b`, "g");

export function hooksNamedIn(file: string): HookName[] {
  let source: string;
  try {
    source = readFileSync(file, "utf8");
  } catch {
    return [];
  }
  const found = new Set<HookName>();
  for (const match of source.matchAll(HOOK_NAME)) found.add(match[1] as HookName);
  return hookNames.filter((hook) => found.has(hook));
}

/** `failed to <verb>`: compile, type-check, load, take its settings. */
export const stageVerb = (stage: ScriptProblem["stage"]) => (stage === "config" ? "take its settings" : stage === "typecheck" ? "type-check" : stage);

/** The answer's error for a hook of a failed script: reason `compile`, the script, where. */
export function failedScriptFailure(name: string, problem: ScriptProblem): HookFailure {
  const failure: HookFailure = {
    reason: "compile",
    script: name,
    message: `${name} has no version to serve: it failed to ${stageVerb(problem.stage)}: ${problem.message}`,
  };
  if (problem.location) failure.location = problem.location;
  return failure;
}
