import { createCannedScriptsCapabilities, type CannedCall, type CannedScriptsCapabilities } from "../capabilities/canned.js";
import type { Capabilities } from "../capabilities/types.js";
import { sourcesOf, type Config } from "../config.js";
import { scriptGrantsOf } from "../config-capabilities.js";
import type { CaseProblem } from "./cases.js";
import { diffValues, type Difference } from "../util/diff.js";

/**
 * The capabilities a case runs with (docs/capabilities.md, "In test cases"): ctx.fetch answered
 * from the case's `fetch` list, never the network; ctx.kv in memory, starting from the case's
 * `kv`; each script under its grants from the config when the runner has a config file (origins,
 * secret names, maxCalls, sizes, refused as the server refuses them), any origin and secret name
 * without one.
 */

/** Where a canned run takes the grants from: the config's scripts, or none (any origin, any secret name). */
export type GrantsFrom = "config" | "any";

/** The config's grants when it came from a file (`--config`); without a file, any origin and secret name. */
export function grantsFrom(config: Config, given?: GrantsFrom): GrantsFrom {
  return given ?? (sourcesOf(config)?.file !== undefined ? "config" : "any");
}

/** A shadow (NAME.shadow) runs in NAME's name: NAME's grants, NAME's kv, as on the server. */
export function configNameOfScript(script: string): string {
  return script.endsWith(".shadow") ? script.slice(0, -".shadow".length) : script;
}

/** `capabilities` for scripts named as sandboxes are (a shadow's `NAME.shadow`), answered under their config names. */
export function underConfigNames(capabilities: Capabilities): Capabilities {
  return { handle: (op, payloadJson, call) => capabilities.handle(op, payloadJson, { ...call, script: configNameOfScript(call.script) }) };
}

export interface CaseCapabilities {
  capabilities: Capabilities;
  canned: CannedScriptsCapabilities;
}

export function cannedFor(
  config: Config,
  grants: GrantsFrom,
  options: { fetch?: readonly unknown[] | undefined; kv?: Record<string, Record<string, unknown>> } = {},
): CaseCapabilities {
  const canned = createCannedScriptsCapabilities({
    ...(grants === "config" ? { grants: scriptGrantsOf(config) } : {}),
    ...(options.fetch ? { fetch: options.fetch as never } : {}),
    ...(options.kv ? { kv: options.kv } : {}),
    kvConfig: config.kv,
  });
  return { canned, capabilities: underConfigNames(canned) };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * A case's `kv` (or `expect.kv`) by script: in a pipeline cases file keyed by script name (each a
 * script of the hook's pipeline, its value an object), otherwise the one script's.
 */
export function kvByScript(
  kv: Record<string, unknown> | undefined,
  keyedByScript: boolean,
  own: string,
  scripts: readonly string[],
  where: { file: string; path: string },
): { ok: true; kv: Record<string, Record<string, unknown>> | undefined } | { ok: false; problems: CaseProblem[] } {
  if (kv === undefined) return { ok: true, kv: undefined };
  if (!keyedByScript) return { ok: true, kv: { [own]: kv } };
  const problems: CaseProblem[] = [];
  for (const [name, value] of Object.entries(kv)) {
    if (!scripts.includes(name)) {
      problems.push({
        file: where.file,
        path: `${where.path}.${name}`,
        message: `no script ${name} in this pipeline (its scripts: ${scripts.join(", ") || "none"}): a pipeline case's kv is keyed by script name`,
      });
    } else if (!isObject(value)) {
      problems.push({ file: where.file, path: `${where.path}.${name}`, message: "must be an object: that script's keys and their values" });
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, kv: kv as Record<string, Record<string, unknown>> };
}

const shown = (call: CannedCall) => `${call.method} ${call.url}`;

/**
 * What a case's fetch list and its scripts' fetches disagree on: a fetch no entry answered (even
 * when the script caught the error and went on), an entry no fetch used.
 */
export function fetchProblems(canned: CannedScriptsCapabilities, listed: number, where: { file: string; path: string }): CaseProblem[] {
  const problems: CaseProblem[] = [];
  const calls = canned.calls();
  for (const call of calls) {
    if (call.answeredBy !== undefined) continue;
    const method = call.method === "GET" ? "" : `, "method": "${call.method}"`;
    problems.push({
      file: where.file,
      path: where.path,
      message: `${shown(call)} was not foreseen by the case (nothing reaches the network in a case): add { "url": "${call.url}"${method}, "status": 200, "json": … } to its fetch list`,
    });
  }
  const used = new Set(calls.flatMap((call) => (call.answeredBy === undefined ? [] : [call.answeredBy])));
  for (let index = 0; index < listed; index++) {
    if (!used.has(index))
      problems.push({
        file: where.file,
        path: `${where.path}[${index}]`,
        message: "no fetch of the script used this answer: remove it, or see why the script did not make that call",
      });
  }
  return problems;
}

/** The scripts' KV after the case against `expect.kv`, whole, under `kv` (`kv.turn`, `kv["missed-turn"]`). */
export function kvDifferences(canned: CannedScriptsCapabilities, expected: Record<string, Record<string, unknown>>, keyedByScript: boolean): Difference[] {
  if (!keyedByScript) {
    const [script, values] = Object.entries(expected)[0]!;
    return diffValues(values, canned.kv(script), "kv");
  }
  return Object.entries(expected).flatMap(([script, values]) => diffValues(values, canned.kv(script), `kv.${script}`));
}
