import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { scriptNameOf } from "../compile/compile.js";
import type { Config } from "../config.js";
import { pipelineFor, pipelineOrderBy, type DispatchResult, type PipelineScript } from "../dispatch/dispatch.js";
import { callHook } from "../dispatch/hook-call.js";
import { UsageError } from "../errors.js";
import { settingsProblems } from "../config-scripts.js";
import { hooksNamedIn } from "../registry/failed-script.js";
import { loadScriptFile, settingsJsonFor, type LoadedScript } from "../registry/load-script.js";
import { isScriptFile } from "../registry/variants.js";
import { liveNameOf, shadowFileOf, variantOf } from "../registry/variants.js";
import type { Limits } from "../sandbox/limits.js";
import type { GuestLogs } from "../sandbox/protocol.js";
import type { Invocation } from "../sandbox/sandbox.js";
import type { HookFailure } from "../schema/envelope.js";
import { defaultsFor, type HookName } from "../schema/hooks.js";
import {
  caseInput,
  casesFilesOf,
  isCasesFile,
  isPipelineCasesFile,
  readCasesFile,
  scriptFileOf,
  type CaseEntry,
  type CaseExpect,
  type CaseProblem,
  type TestCase,
} from "./cases.js";
import { diffValues, type Difference } from "../util/diff.js";
import { cannedFor, configNameOfScript, fetchProblems, grantsFrom, kvByScript, kvDifferences, type GrantsFrom } from "./case-capabilities.js";

/**
 * The example runner's engine: cases files in, results out. Every case goes through the server's
 * own compiler, sandbox, pipeline builder and dispatcher (loadScriptFile, pipelineFor, callHook);
 * nothing here re-implements what production does.
 */

export interface RunOptions {
  config: Config;
  /** Run script cases through the full pipeline of their folder (pipeline cases always are). */
  pipeline?: boolean;
  /** Only cases whose name contains this text (case-insensitive). */
  filter?: string;
  onFile?: (file: FileReport) => void;
  onCase?: (file: FileReport, result: CaseResult) => void;
  /** The scripts' fetch grants: the config's (default when it came from a file), or any origin and secret name. */
  grants?: GrantsFrom;
}

/** The answer reduced to what `expect` states: `{ data }`, `{ cancel: true }` or `{ error: reason }`. */
export type Outcome = { data: Record<string, unknown> } | { cancel: true } | { error: HookFailure["reason"] };

/** One script's invocation in a case: what it returned and what it logged. */
export interface Step {
  script: string;
  /** `data`: changes, merged over the data so far; `none`: nothing changed; `cancel`; `failure`. */
  outcome: Invocation["outcome"]["kind"];
  /** The changes it returned (outcome `data`). */
  returned?: Record<string, unknown>;
  /** Why it failed (outcome `failure`). */
  reason?: HookFailure["reason"];
  logs: GuestLogs;
}

export function stepOf(invocation: Invocation): Step {
  const step: Step = { script: invocation.script, outcome: invocation.outcome.kind, logs: invocation.logs };
  if (invocation.outcome.kind === "data") step.returned = invocation.outcome.data;
  if (invocation.outcome.kind === "failure") step.reason = invocation.outcome.failure.reason;
  return step;
}

export interface CaseResult {
  name: string;
  hook: string | null;
  status: "passed" | "failed" | "skipped";
  ms: number;
  /** Why it was skipped. */
  reason?: string;
  /** The case itself, its input or its script could not be used. */
  problems?: CaseProblem[];
  expected?: CaseExpect;
  actual?: Outcome;
  differences?: Difference[];
  /** The failure in the answer, when the answer is an error. */
  failure?: HookFailure;
  /** The scripts that ran, in order: what each returned and logged. */
  steps?: Step[];
}

export interface FileReport {
  file: string;
  /** `script`: cases of one script; `pipeline`: cases of a hook's pipeline (pipeline.cases.json). */
  kind: "script" | "pipeline";
  /** The script the cases are for (kind `script`). */
  script: string | null;
  /** How the cases ran: the script alone, or the hook's pipeline. */
  mode: "script" | "pipeline";
  /** Problems of the file as a whole: it could not be read or parsed, its script is missing. */
  problems: CaseProblem[];
  cases: CaseResult[];
}

/** The worst use of each limit over every invocation of a script. */
export interface ScriptUsage {
  script: string;
  file: string;
  limits: Limits;
  invocations: number;
  worst: { wallMs: number; cpuMs: number; heapUsedBytes?: number; outputBytes: number; logBytes: number };
}

export interface RunReport {
  files: FileReport[];
  usage: ScriptUsage[];
  summary: { passed: number; failed: number; skipped: number };
}

export interface Discovered {
  casesFiles: string[];
  untested: string[];
}

function listDir(dir: string): string[] {
  return readdirSync(dir)
    .map((name) => path.join(dir, name))
    .sort();
}

/** The cases files named by the command line: folders (their top level), cases files, or scripts. */
export function discover(targets: readonly string[]): Discovered {
  const casesFiles = new Set<string>();
  const untested = new Set<string>();
  for (const target of targets) {
    const absolute = path.resolve(target);
    let isDir: boolean;
    try {
      isDir = statSync(absolute).isDirectory();
    } catch {
      throw new UsageError(`${target} does not exist`);
    }
    if (isDir) {
      const files = listDir(absolute);
      // The cases of a version a promote replaced (NAME.previous.cases.json) are not run.
      for (const file of files) if (isCasesFile(file) && variantOf(file) !== "previous") casesFiles.add(file);
      for (const file of files) {
        if (isScriptFile(file, absolute) && casesFilesOf(file).length === 0) untested.add(file);
      }
    } else if (isCasesFile(absolute)) {
      casesFiles.add(absolute);
    } else if (/\.m?ts$/.test(absolute)) {
      const found = casesFilesOf(absolute);
      if (found.length === 0) {
        throw new UsageError(`${target} has no cases file; write ${scriptNameOf(absolute)}.cases.json beside it`);
      }
      for (const file of found) casesFiles.add(file);
    } else {
      throw new UsageError(`${target} is neither a folder, a script (.ts) nor a cases file (NAME.cases.json)`);
    }
  }
  return { casesFiles: [...casesFiles], untested: [...untested] };
}

/** Scripts loaded once per run and shared by every case that uses them; disposed at the end. */
class ScriptPool {
  private readonly loaded = new Map<string, Promise<LoadedScript>>();
  private readonly folders = new Map<string, Promise<Array<{ file: string; loaded: LoadedScript }>>>();
  private readonly usage = new Map<string, ScriptUsage>();

  constructor(private readonly config: Config) {}

  load(file: string): Promise<LoadedScript> {
    let loading = this.loaded.get(file);
    if (!loading) {
      loading = loadScriptFile(file, path.dirname(file), this.config);
      this.loaded.set(file, loading);
    }
    return loading;
  }

  /** Every script of the folder that the server would load (enabled in the config). */
  private folder(dir: string): Promise<Array<{ file: string; loaded: LoadedScript }>> {
    let loading = this.folders.get(dir);
    if (!loading) {
      const files = listDir(dir).filter((file) => isScriptFile(file, dir));
      const enabled = files.filter((file) => this.config.scripts[scriptNameOf(file)]?.enabled !== false);
      loading = Promise.all(enabled.map(async (file) => ({ file, loaded: await this.load(file) })));
      this.folders.set(dir, loading);
    }
    return loading;
  }

  /** The hook's pipeline in a folder, ordered as the server orders it. */
  async pipeline(dir: string, hook: HookName): Promise<PipelineScript[]> {
    const loaded: PipelineScript[] = [];
    for (const entry of await this.folder(dir)) if (entry.loaded.ok) loaded.push(entry.loaded.script);
    return pipelineFor(hook, loaded);
  }

  /** The folder's scripts that do not load: the server leaves them out of every pipeline. */
  async failures(dir: string): Promise<Array<{ file: string; failure: HookFailure }>> {
    return (await this.folder(dir)).flatMap(({ file, loaded }) => (loaded.ok ? [] : [{ file, failure: loaded.failure }]));
  }

  count(invocation: Invocation, scripts: readonly PipelineScript[]): void {
    const script = scripts.find((candidate) => candidate.sandbox.name === invocation.script);
    if (!script) return;
    const file = script.sandbox.compiled.file;
    let usage = this.usage.get(file);
    if (!usage) {
      usage = {
        script: invocation.script,
        file,
        limits: script.sandbox.limits,
        invocations: 0,
        worst: { wallMs: 0, cpuMs: 0, outputBytes: 0, logBytes: 0 },
      };
      this.usage.set(file, usage);
    }
    const { stats } = invocation;
    const worst = usage.worst;
    usage.invocations++;
    worst.wallMs = Math.max(worst.wallMs, stats.wallMs);
    worst.cpuMs = Math.max(worst.cpuMs, stats.cpuMs);
    worst.outputBytes = Math.max(worst.outputBytes, stats.outputBytes);
    worst.logBytes = Math.max(worst.logBytes, stats.logBytes);
    if (stats.heapUsedBytes !== undefined) worst.heapUsedBytes = Math.max(worst.heapUsedBytes ?? 0, stats.heapUsedBytes);
  }

  usages(): ScriptUsage[] {
    return [...this.usage.values()].sort((a, b) => (a.file < b.file ? -1 : 1));
  }

  async close(): Promise<void> {
    const all = await Promise.all(this.loaded.values());
    await Promise.all(all.map((loaded) => (loaded.ok ? loaded.script.sandbox.drainAndDispose() : undefined)));
  }
}

function caseOutcomeOf(result: DispatchResult): Outcome {
  if (result.answer.state === "error") return { error: result.answer.error.reason };
  if (result.cancelledBy !== undefined) return { cancel: true };
  return { data: result.answer.data };
}

/**
 * `{ changes }` is the hook's defaults for the case's input with those fields changed: a case names
 * what its script is for (USER_ID), not the fields it copies through (CALL_ID, DURATION, a whole
 * RECORD_URL), and a field the scripts change without the case naming it still fails it.
 */
function expectedOutcome(expect: CaseExpect, hook: HookName, input: Record<string, unknown>): Outcome {
  if (expect.cancel) return { cancel: true };
  if (expect.error !== undefined) return { error: expect.error };
  if (expect.changes !== undefined) return { data: { ...defaultsFor(hook, input), ...expect.changes } };
  return { data: expect.data ?? {} };
}

function withSettings(script: PipelineScript, config: Config, settings: unknown): PipelineScript {
  if (settings === undefined) return script;
  return { ...script, settingsJson: settingsJsonFor(config, script.sandbox, settings as Record<string, unknown>) };
}

/** A case's settings checked as the config's are: keys the script does not declare, values of another kind. */
function caseSettingsProblems(script: PipelineScript, config: Config, settings: Record<string, unknown>, file: string, at: string): CaseProblem[] {
  return settingsProblems(config, script.sandbox.name, script.sandbox.meta.settings, { settings, from: "this case" }).map((message) => {
    const [, key, rest] = /^settings\.([^:]+): (.*)$/s.exec(message) ?? [];
    return key === undefined ? { file, path: at, message } : { file, path: `${at}.${key}`, message: rest! };
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * Each cases file with the script it runs against; a script's cases run against its shadow too
 * (`NAME.shadow.ts`, about to replace it) unless the shadow has cases of its own
 * (`NAME.shadow.cases.json`).
 */
function withShadows(casesFiles: readonly string[]): Array<{ casesFilePath: string; scriptFile?: string }> {
  return casesFiles.flatMap((casesFilePath) => {
    const runs: Array<{ casesFilePath: string; scriptFile?: string }> = [{ casesFilePath }];
    if (isPipelineCasesFile(casesFilePath) || variantOf(casesFilePath) !== undefined) return runs;
    const shadow = shadowFileOf(scriptFileOf(casesFilePath));
    if (existsSync(shadow) && casesFilesOf(shadow).length === 0) runs.push({ casesFilePath, scriptFile: shadow });
    return runs;
  });
}

/** Run every case of the given cases files. */
export async function runCases(casesFiles: readonly string[], options: RunOptions): Promise<RunReport> {
  const filter = options.filter?.toLowerCase();
  const pool = new ScriptPool(options.config);
  const files: FileReport[] = [];

  try {
    for (const { casesFilePath, scriptFile: shadowFile } of withShadows(casesFiles)) {
      const kind = isPipelineCasesFile(casesFilePath) ? "pipeline" : "script";
      const scriptFile = shadowFile ?? (kind === "script" ? scriptFileOf(casesFilePath) : null);
      const report: FileReport = {
        file: casesFilePath,
        kind,
        script: scriptFile ? scriptNameOf(scriptFile) : null,
        mode: kind === "pipeline" || options.pipeline ? "pipeline" : "script",
        problems: [],
        cases: [],
      };

      const read = readCasesFile(casesFilePath);
      if (!read.ok) report.problems.push(...read.problems);
      const scriptMissing = scriptFile !== null && !existsSync(scriptFile);
      if (scriptMissing) {
        report.problems.push({
          file: casesFilePath,
          message: `there is no script ${path.basename(scriptFile)} beside it (cases of a whole pipeline go in pipeline.cases.json)`,
        });
      }
      if (report.mode === "pipeline") {
        const dir = path.dirname(casesFilePath);
        for (const { file, failure } of await pool.failures(dir)) {
          const hooks = hooksNamedIn(file);
          const answers = hooks.length > 0 ? `the server answers ${hooks.join(", ")} with this error` : "the server is not ready while it fails";
          report.problems.push({ file, message: `does not load, so ${answers}: ${failure.message}` });
        }
      }
      const entries = read.ok && !scriptMissing ? read.entries.filter((entry) => filter === undefined || entry.name.toLowerCase().includes(filter)) : [];
      // A file none of whose cases --filter picks is left out, unless it has problems of its own.
      if (filter !== undefined && entries.length === 0 && report.problems.length === 0) continue;
      files.push(report);
      options.onFile?.(report);
      for (const entry of entries) {
        const result = await runEntry(entry, casesFilePath, scriptFile, report, pool, options.config, grantsFrom(options.config, options.grants));
        report.cases.push(result);
        options.onCase?.(report, result);
      }
    }
  } finally {
    await pool.close();
  }

  const summary = { passed: 0, failed: 0, skipped: 0 };
  for (const file of files) {
    // A file's own problems (unreadable, malformed, no script, a script of its folder that does
    // not load) count as one failure, beside those of its cases.
    if (file.problems.length > 0) summary.failed++;
    for (const result of file.cases) summary[result.status]++;
  }
  return { files, usage: pool.usages(), summary };
}

async function runEntry(
  entry: CaseEntry,
  casesFilePath: string,
  scriptFile: string | null,
  report: FileReport,
  pool: ScriptPool,
  config: Config,
  grants: GrantsFrom,
): Promise<CaseResult> {
  const failed = (hook: string | null, problems: CaseProblem[]): CaseResult => ({
    name: entry.name,
    hook,
    status: "failed",
    ms: 0,
    problems,
  });
  if (!entry.ok) return failed(null, entry.problems);
  const testCase: TestCase = entry.testCase;
  const { hook } = testCase;
  if (testCase.skip !== undefined && testCase.skip !== false) {
    const skipped: CaseResult = { name: entry.name, hook, status: "skipped", ms: 0 };
    if (typeof testCase.skip === "string") skipped.reason = testCase.skip;
    return skipped;
  }
  const dir = path.dirname(casesFilePath);
  const at = `cases[${entry.index}]`;
  let scripts: PipelineScript[];
  let loadFailure: HookFailure | undefined;

  if (scriptFile) {
    const own = await pool.load(scriptFile);
    if (!own.ok) {
      loadFailure = own.failure;
      scripts = [];
    } else if (!own.script.sandbox.implements(hook)) {
      const handles = own.script.sandbox.meta.hooks.join(", ");
      return failed(hook, [
        { file: casesFilePath, path: `${at}.hook`, message: `${own.script.sandbox.name} has no handler for ${hook}; it handles: ${handles}` },
      ]);
    } else if (testCase.settings && caseSettingsProblems(own.script, config, testCase.settings, casesFilePath, `${at}.settings`).length > 0) {
      return failed(hook, caseSettingsProblems(own.script, config, testCase.settings, casesFilePath, `${at}.settings`));
    } else if (report.mode === "script") {
      scripts = [withSettings(own.script, config, testCase.settings)];
    } else {
      // A shadow takes the place of the script it would replace.
      const shadow = variantOf(scriptFile) === "shadow";
      const ownName = shadow ? liveNameOf(scriptFile) : own.script.sandbox.name;
      const others = (await pool.pipeline(dir, hook)).filter((script) => !shadow || script.sandbox.name !== ownName);
      const nameOf = (script: PipelineScript) => (script === own.script ? ownName : script.sandbox.name);
      const placed = shadow ? [...others, own.script].sort(pipelineOrderBy((script) => script.order, nameOf)) : others;
      scripts = placed.map((script) => (script.sandbox.name === ownName || script === own.script ? withSettings(script, config, testCase.settings) : script));
    }
  } else {
    const pipeline = await pool.pipeline(dir, hook);
    const settings = testCase.settings ?? {};
    const names = new Set(pipeline.map((script) => script.sandbox.name));
    const problems: CaseProblem[] = [];
    for (const [name, value] of Object.entries(settings)) {
      if (!names.has(name)) {
        const known = [...names].join(", ") || "none";
        problems.push({ file: casesFilePath, path: `${at}.settings.${name}`, message: `no script ${name} in the ${hook} pipeline (its scripts: ${known})` });
      } else if (!isObject(value)) {
        problems.push({ file: casesFilePath, path: `${at}.settings.${name}`, message: "must be an object: the settings of that script" });
      } else {
        const script = pipeline.find((candidate) => candidate.sandbox.name === name)!;
        problems.push(...caseSettingsProblems(script, config, value, casesFilePath, `${at}.settings.${name}`));
      }
    }
    if (problems.length > 0) return failed(hook, problems);
    scripts = pipeline.map((script) => withSettings(script, config, settings[script.sandbox.name]));
  }

  const input = caseInput(testCase, entry.index, casesFilePath);
  if (!input.ok) return failed(hook, input.problems);

  // The case's fetch answers and KV: in a pipeline cases file its kv is keyed by script name.
  const keyedByScript = report.kind === "pipeline";
  const own = scriptFile ? configNameOfScript(scriptNameOf(scriptFile)) : "";
  const names = [...new Set(scripts.map((script) => configNameOfScript(script.sandbox.name)))];
  const startKv = kvByScript(testCase.kv, keyedByScript, own, names, { file: casesFilePath, path: `${at}.kv` });
  const endKv = kvByScript(testCase.expect.kv, keyedByScript, own, names, { file: casesFilePath, path: `${at}.expect.kv` });
  const kvProblems = [...(startKv.ok ? [] : startKv.problems), ...(endKv.ok ? [] : endKv.problems)];
  if (kvProblems.length > 0) return failed(hook, kvProblems);
  const { canned, capabilities } = cannedFor(config, grants, { fetch: testCase.fetch, ...(startKv.ok && startKv.kv ? { kv: startKv.kv } : {}) });

  const result: CaseResult = { name: entry.name, hook, status: "passed", ms: 0, expected: testCase.expect };
  if (loadFailure) {
    result.actual = { error: loadFailure.reason };
    result.failure = loadFailure;
  } else {
    const started = performance.now();
    // As in the server: the hook's scripts of the folder that do not load answer their failure
    // (or are named in `skipped`), rather than the pipeline running without them.
    const failed =
      report.mode === "pipeline"
        ? (await pool.failures(dir)).filter(({ file }) => file !== scriptFile && hooksNamedIn(file).includes(hook)).map(({ failure }) => failure)
        : [];
    const called = await callHook(config, hook, input.input, scripts, {
      requestId: entry.name,
      measureHeap: true,
      inputJson: input.inputJson,
      failed,
      capabilities,
    });
    result.ms = performance.now() - started;
    for (const invocation of called.invocations) pool.count(invocation, scripts);
    result.actual = caseOutcomeOf(called);
    if (called.answer.state === "error") result.failure = called.answer.error;
    result.steps = called.invocations.map(stepOf);
  }
  // Data against data is compared field by field; an answer of another kind (an error, a cancel) is one difference.
  const expected = expectedOutcome(testCase.expect, hook, input.input);
  const sameKind = Object.keys(expected)[0] === Object.keys(result.actual)[0];
  const differences: Difference[] = sameKind
    ? diffValues(expected, result.actual)
    : [{ path: "answer", expected, actual: result.actual, kind: "changed" as const }];
  if (!loadFailure && endKv.ok && endKv.kv) differences.push(...kvDifferences(canned, endKv.kv, keyedByScript));
  if (differences.length > 0) {
    result.status = "failed";
    result.differences = differences;
  }
  // A fetch the case did not foresee fails it even when the script caught the error and went on.
  const unforeseen = loadFailure ? [] : fetchProblems(canned, testCase.fetch?.length ?? 0, { file: casesFilePath, path: `${at}.fetch` });
  if (unforeseen.length > 0) {
    result.status = "failed";
    result.problems = unforeseen;
  }
  return result;
}
