import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Config } from "../config.js";
import { parseHookInput } from "../schema/hook-input.js";
import { UsageError } from "../errors.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { runOnce, type RunTarget } from "../runner/run-once.js";
import type { z } from "zod";
import type { TryResult, tryRequest } from "./console-schemas.js";
import { invocationView } from "./console-views.js";
import { withIssues } from "./error-handler.js";

type TryInput = z.output<typeof tryRequest>;

/**
 * The Try page's run: the hook's live scripts, or a draft (alone, or in the live pipeline in place
 * of the script of its name), each loaded into a sandbox of its own for this run and disposed
 * after, through `callscript run`'s own path (runOnce). A live script is loaded from the bundle it
 * serves, not from its file, so the run is of the version in production; its isolate is never used.
 */
export async function tryRun(config: Config, registry: ScriptRegistry, request: TryInput, requestId: string): Promise<TryResult> {
  const parsed = parseHookInput(request.hook, request.input);
  if (!parsed.ok) throw withIssues(parsed.error, parsed.issues);
  const scriptsDir = registry.scriptsDir;

  const live: RunTarget[] = [];
  if (request.mode === "live" || request.pipeline) {
    const lease = registry.lease(request.hook);
    try {
      for (const { sandbox } of lease.scripts) {
        if (request.mode === "draft" && sandbox.name === request.script) continue;
        live.push({ file: sandbox.compiled.file, compiled: sandbox.compiled });
      }
    } finally {
      lease.release();
    }
  }
  const targets = [...live];
  if (request.mode === "draft") {
    if (request.script === undefined || request.source === undefined) throw new UsageError("A draft needs the script's name and its source");
    targets.push({ file: path.join(scriptsDir, `${request.script}.ts`), source: request.source, mustHandle: true });
  }

  const started = performance.now();
  const ran = await runOnce(config, scriptsDir, request.hook, parsed, targets, requestId);
  const ms = Math.round((performance.now() - started) * 100) / 100;
  switch (ran.kind) {
    case "failed":
      return {
        answer: { state: "error", error: ran.failure },
        invocations: [],
        scripts: [],
        stage: ran.stage,
        diagnostics:
          ran.diagnostics.length > 0
            ? ran.diagnostics
            : [{ message: ran.failure.message, ...(ran.failure.location ? { location: ran.failure.location } : {}) }],
        ms,
      };
    case "unhandled":
      return {
        answer: null,
        invocations: [],
        scripts: [ran.script],
        unhandled: `${ran.script.name} has no handler for ${request.hook}; it handles: ${ran.script.hooks.join(", ") || "no hook"}`,
        ms,
      };
    case "ran":
      return { answer: ran.result.answer, invocations: ran.result.invocations.map(invocationView), scripts: ran.scripts, ms };
  }
}
