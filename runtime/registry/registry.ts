import { EventEmitter } from "node:events";
import { readdirSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import { compileScript, compileScripts, onDisk, scriptNameOf, type CompileResult } from "../compile/compile.js";
import type { TypeChecking, TypeProblem } from "../compile/typecheck.js";
import type { Config } from "../config.js";
import { settingsInForce } from "../config-scripts.js";
import { grantWarningsOf } from "../config-capabilities.js";
import type { PipelineScript } from "../dispatch/dispatch.js";
import { pipelineFor } from "../dispatch/dispatch.js";
import type { HookFailure, SourceLocation } from "../schema/envelope.js";
import type { HookName } from "../schema/hooks.js";
import type { Invocation, SandboxOptions, ScriptSandbox } from "../sandbox/sandbox.js";
import { ShadowScripts } from "./shadows.js";
import { isScriptFile } from "./variants.js";
import { applyConfig, type ConfigChange } from "./apply-config.js";
import { failedScriptFailure, hooksNamedIn, stageVerb } from "./failed-script.js";
import { loadScriptFile, pipelineEntry, sandboxOptionsFrom, type LoadedScript } from "./load-script.js";
import { LoadProbes } from "../sandbox/load-probe.js";
import type { ConfigReport, ProblemAt, ScriptProblem, ScriptState, ShadowState } from "./states.js";

interface Entry {
  name: string;
  file: string;
  active?: PipelineScript;
  previousVersion: string | null;
  loadedAt: string | null;
  lastError: ScriptProblem | null;
  /** With `typecheck: warn`: the type errors of the serving version. */
  typeWarnings: string[];
  /** The hooks a script without a serving version names in its source: they answer its failure. */
  failingHooks: HookName[];
  /** Newer reloads of the same file win over older ones still in flight. */
  generation: number;
  invocations: number;
  outcomes: Record<string, number>;
}

export type ReloadResult =
  | { ok: true; name: string; version: string; ms: number; unchanged: boolean }
  | { ok: false; name: string; problem: ScriptProblem; ms: number }
  | { ok: false; name: string; superseded: true; ms: number };

export interface RegistryEvents {
  loaded: [name: string, version: string, ms: number];
  failed: [name: string, problem: ScriptProblem];
  unloaded: [name: string];
  /** The newest version's type errors were counted (0 when it has none): for the metric. */
  typeErrors: [name: string, count: number];
}

export interface RegistryOptions {
  /** Called when isolated-vm reports that V8 lost control of an isolate. */
  onCatastrophicError?: (script: string, message: string) => void;
  /**
   * The type check against the SDK, used as `config.typecheck` says; close() stops it. Without it
   * no version is type-checked (a registry made by a test, the runner: `check` type-checks on its own).
   */
  typeChecking?: TypeChecking;
  /** Whether the event loop is busy now (serve's watchLoopLoad): short scripts' calls then stay off it (inline-policy.ts). */
  loopLoad?: { readonly busy: boolean };
}

/** The scripts folder at its real path: a git checkout flipped by a link is read from one commit. */
export const realFolder = (dir: string): string => onDisk(dir, []).root;

const isInside = (file: string, dir: string): boolean => {
  const relative = path.relative(dir, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
};

/**
 * The loaded version of every script. A new version is compiled and loaded to the side and only
 * then swapped in; invocations already running finish on the version they started with, which
 * is disposed once they have. A change of many scripts (loadAll, applyBatch) is swapped in at
 * once: a request sees the scripts as they were before it or as they are after it, never a mix.
 */
export class ScriptRegistry extends EventEmitter<RegistryEvents> {
  private readonly entries = new Map<string, Entry>();
  private readonly pipelines = new Map<HookName, PipelineScript[]>();
  /** Versions swapped out or unloaded, still held by requests that leased them before. */
  private readonly retiring = new Set<ScriptSandbox>();
  /** Requests holding each version through lease(). */
  private readonly leases = new Map<ScriptSandbox, number>();
  /** Versions close() is draining. */
  private readonly closing = new Set<ScriptSandbox>();
  /** After close(), nothing is loaded any more (a batch of the watcher may still be finishing). */
  private closed = false;
  private sandboxOptions: SandboxOptions;
  /** The configuration in force: replaced whole by applyConfig. */
  private config: Config;
  private readonly typeChecking: TypeChecking | undefined;
  private readonly onCatastrophicError: ((script: string, message: string) => void) | undefined;
  private readonly loopBusy: (() => boolean) | undefined;
  /** Where scripts load when their isolates boot after they load (config bootIsolates). */
  private loadProbes: LoadProbes | undefined;
  /** The scripts folder as configured (it may be reached through a link that a deploy flips). */
  readonly scriptsDir: string;
  /**
   * The folder the scripts were read from: `scriptsDir` at its real path, taken when the whole
   * folder was last loaded (loadAll). Files, bundle inputs and the watcher's events are all in it.
   */
  private folderInUse: string;
  /** The folder's `NAME.shadow.ts` files: loaded with the scripts, never live (see shadows.ts). */
  readonly shadows: ShadowScripts;
  /** The configuration's file and its last reload, as /scripts shows them (kept by the config reloader). */
  configReport: ConfigReport = { file: null, loadedAt: new Date().toISOString(), lastReload: null };

  constructor(
    config: Config,
    private readonly log: Pick<Logger, "info" | "warn" | "error" | "debug">,
    options: RegistryOptions | ((script: string, message: string) => void) = {},
  ) {
    super();
    const { onCatastrophicError, typeChecking, loopLoad } =
      typeof options === "function" ? { onCatastrophicError: options, typeChecking: undefined, loopLoad: undefined } : options;
    this.config = config;
    this.scriptsDir = config.scriptsDir;
    this.folderInUse = realFolder(config.scriptsDir);
    this.typeChecking = typeChecking;
    this.onCatastrophicError = onCatastrophicError;
    if (loopLoad) this.loopBusy = () => loopLoad.busy;
    this.sandboxOptions = this.sandboxOptionsFor(config);
    this.shadows = new ShadowScripts(
      () => this.config,
      log,
      () => this.sandboxOptions,
      () => this.folderInUse,
    );
  }

  /** The configuration in force (hook policies, deadlines, settings): read it per request. */
  get activeConfig(): Config {
    return this.config;
  }

  private sandboxOptionsFor(config: Config): SandboxOptions {
    const options = sandboxOptionsFrom(config);
    if (this.onCatastrophicError) options.onCatastrophicError = this.onCatastrophicError;
    options.onBootFailure = (script, message, rebuild) =>
      this.log.warn(
        { script, error: message },
        rebuild ? "script's isolate could not be rebuilt: its calls fail until it can" : "script's isolate could not be booted: its calls fail until it can",
      );
    if (this.loopBusy) options.loopBusy = this.loopBusy;
    if (config.bootIsolates !== "atLoad") {
      this.loadProbes ??= new LoadProbes(
        (message) => this.onCatastrophicError?.("(load probe)", message),
        (problem) => this.log.warn({ scriptsDir: this.scriptsDir }, problem),
      );
      options.loadProbes = this.loadProbes;
    }
    return options;
  }

  /** The folder the scripts are read from now: scriptsDir at its real path (see loadAll). */
  get folder(): string {
    return this.folderInUse;
  }

  scriptFiles(folder: string = this.folderInUse): string[] {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch (error) {
      throw new Error(`The scripts folder ${this.scriptsDir} cannot be read: ${(error as NodeJS.ErrnoException).code ?? error}`, { cause: error });
    }
    return names
      .map((name) => path.join(folder, name))
      .filter((file) => isScriptFile(file, folder))
      .sort();
  }

  /**
   * Bring the registry in line with the folder: load every script, unload those whose file is gone.
   * The folder is read at its real path (`folder`, by default where scriptsDir leads now), so a
   * link flipped to another checkout meanwhile does not mix two commits; everything is loaded to
   * the side and swapped in at once.
   */
  async loadAll(folder: string = realFolder(this.scriptsDir)): Promise<ReloadResult[]> {
    if (this.closed) return [];
    const files = this.scriptFiles(folder);
    const present = new Set(files.map((file) => scriptNameOf(file)));
    const gone = [...this.entries.values()].filter((entry) => !present.has(entry.name));
    // Claim each script's generation before its file is read: a save picked up by the watcher
    // while the batch compiles reads a newer file, and must win over this older read.
    const claims = files.map((file) => {
      const entry = this.entryFor(scriptNameOf(file), file);
      return { entry, generation: ++entry.generation };
    });
    const shadows = this.shadows.loadAll(folder);
    // Each script loads as soon as its bundle is ready, while esbuild bundles the next run of
    // scripts: at a first start the two use both cores (docs/benchmarks.md, cold start).
    const staging: Promise<() => ReloadResult>[] = new Array(files.length);
    const stageOne = (i: number, compiled: CompileResult | undefined) => {
      if (staging[i]) return staging[i];
      const staged = this.stage(claims[i]!.entry, claims[i]!.generation, files[i]!, { compiled, folder, few: files.length < FEW_SCRIPTS });
      // Awaited below, once every script has its bundle: not an unhandled rejection meanwhile.
      staged.catch(() => undefined);
      return (staging[i] = staged);
    };
    let compiled: (CompileResult | undefined)[];
    try {
      compiled = await compileScripts(files, folder, { onCacheProblem: (problem) => this.log.warn({ scriptsDir: folder }, problem), onCompiled: stageOne });
    } catch {
      compiled = [];
    }
    const reused = compiled.filter((result) => result?.ok === true && result.reused === true).length;
    if (reused > 0) this.log.info({ reused, bundled: files.length - reused }, "bundles of unchanged scripts reused (compile cache)");
    // Those the batch did not give (esbuild failed as a whole): each compiled on its own in stage().
    const staged = await Promise.all(files.map((_, i) => stageOne(i, compiled[i])));
    // One swap: new versions, failures and unloads together, in this one synchronous step.
    if (!this.closed) this.folderInUse = folder;
    for (const entry of gone) if (this.entries.get(entry.name) === entry) this.unloadEntry(entry);
    const results = staged.map((commit) => commit());
    await shadows;
    return results;
  }

  /**
   * Apply a change of several files as one swap (the watcher's batch: a git pull, a helper and the
   * scripts that import it): every script of `reload` is compiled and loaded to the side, then
   * their new versions, their failures and the unloads of `unload` take effect together. A script
   * that fails keeps its previous version (state `stale`), as a single save would.
   */
  async applyBatch(change: { reload: readonly string[]; unload: readonly string[] }): Promise<{ reloaded: ReloadResult[]; unloaded: string[] }> {
    if (this.closed) return { reloaded: [], unloaded: [] };
    const claims = change.reload.map((given) => {
      const file = this.inFolder(given);
      const entry = this.entryFor(scriptNameOf(file), file);
      return { entry, generation: ++entry.generation, file };
    });
    const few = claims.length < FEW_SCRIPTS;
    const staged = await Promise.all(claims.map(({ entry, generation, file }) => this.stage(entry, generation, file, { few })));
    const unloaded = change.unload.filter((file) => this.unloadNow(file)).map((file) => scriptNameOf(file));
    const reloaded = staged.map((commit) => commit());
    return { reloaded, unloaded };
  }

  /** Compile and load `file`, and swap it in if it loads; otherwise the previous version keeps serving. */
  async reload(given: string, compiled?: CompileResult): Promise<ReloadResult> {
    const file = this.inFolder(given);
    if (this.closed) return { ok: false, name: scriptNameOf(file), superseded: true, ms: 0 };
    const entry = this.entryFor(scriptNameOf(file), file);
    return (await this.stage(entry, ++entry.generation, file, { compiled, few: true }))();
  }

  /** A file named under scriptsDir (through its link), as the same file of the folder in use. */
  private inFolder(file: string): string {
    const absolute = path.resolve(file);
    const given = path.resolve(this.scriptsDir);
    return given !== this.folderInUse && isInside(absolute, given) ? path.join(this.folderInUse, path.relative(given, absolute)) : absolute;
  }

  /**
   * Compile, type-check and load a version of a script to the side. Nothing a request sees changes
   * until the returned function runs: it puts the outcome in force (the swap, or the failure the
   * script's hooks answer) synchronously, so that the outcomes of a batch take effect together.
   * The newest claimed generation of a script wins; an older load still in flight is dropped.
   */
  private async stage(
    entry: Entry,
    generation: number,
    file: string,
    /** `compiled`: its bundle when a batch made it; `few`: one of fewer than FEW_SCRIPTS loading (a save, a small folder), see loadFile. */
    { compiled, folder = this.folderInUse, few = false }: { compiled?: CompileResult | undefined; folder?: string; few?: boolean } = {},
  ): Promise<() => ReloadResult> {
    const started = performance.now();
    const name = entry.name;
    const elapsed = () => performance.now() - started;
    const superseded = (): ReloadResult => ({ ok: false, name, superseded: true, ms: elapsed() });
    if (this.closed) return () => ({ ok: false, name, superseded: true, ms: 0 });

    if (this.config.scripts[name]?.enabled === false) {
      return () => {
        if (generation !== entry.generation) return superseded();
        this.retire(entry);
        entry.lastError = null;
        this.log.info({ script: name }, "script disabled in the configuration; not loaded");
        return { ok: false, name, problem: { at: new Date().toISOString(), stage: "load", message: "disabled in the configuration" }, ms: elapsed() };
      };
    }
    let loaded: LoadedScript;
    /** The type check's result; undefined when none ran (off, or esbuild refused the script). */
    let typeResult: TypeProblem[] | Error | undefined;
    const mode = this.typeChecking ? this.config.typecheck : "off";
    try {
      if (mode !== "off") {
        // Type-checked beside the isolate's load, once esbuild has said which files the bundle holds.
        compiled ??= await compileScript(file, folder);
        const checking = compiled.ok ? this.typeChecking!.check(folder, compiled.script.inputs).catch((error: unknown) => toError(error)) : undefined;
        [loaded, typeResult] = await Promise.all([this.loadFile(file, folder, compiled, few), checking]);
      } else {
        loaded = await this.loadFile(file, folder, compiled, few);
      }
    } catch (error) {
      // Not the script's fault (the compiler's service stopped, an isolate could not be made), but
      // the previous version keeps serving all the same and the reason shows with the script.
      return () => {
        if (generation !== entry.generation) return superseded();
        entry.file = path.resolve(file);
        const problem = this.problem(entry, "load", `could not be compiled or loaded: ${(error as Error)?.message ?? String(error)}`);
        return { ok: false, name, problem, ms: elapsed() };
      };
    }
    return () => this.commit(entry, generation, file, loaded, typeResult, mode, elapsed);
  }

  /** Put a staged version in force: see stage(). Synchronous. */
  private commit(
    entry: Entry,
    generation: number,
    file: string,
    staged: LoadedScript,
    typeResult: TypeProblem[] | Error | undefined,
    mode: Config["typecheck"],
    elapsed: () => number,
  ): ReloadResult {
    const name = entry.name;
    let loaded = staged;
    if (generation !== entry.generation || this.closed) {
      if (loaded.ok) void loaded.script.sandbox.drainAndDispose();
      return { ok: false, name, superseded: true, ms: elapsed() };
    }
    // The same script, read from the folder in use (another checkout after a link flip).
    entry.file = path.resolve(file);
    if (typeResult !== undefined) {
      // Type errors say more than what they cause at load time (a ReferenceError for `fetch`): they come first.
      const refused = this.typeVerdict(entry, mode, typeResult);
      if (refused) {
        if (loaded.ok) void loaded.script.sandbox.drainAndDispose();
        return { ok: false, name, problem: refused, ms: elapsed() };
      }
    }
    if (!loaded.ok) {
      const problem = this.problem(entry, loaded.stage, loaded.failure.message, loaded.failure.location);
      return { ok: false, name, problem, ms: elapsed() };
    }
    // Not type-checked (typecheck off): no type warnings of an earlier check stay with it.
    if (typeResult === undefined) entry.typeWarnings = [];
    // The config in force now (it may have changed while this version compiled) gives its order and settings.
    loaded = { ok: true, script: pipelineEntry(this.config, loaded.script.sandbox) };
    const sandbox = loaded.script.sandbox;
    if (entry.active?.sandbox.version === sandbox.version) {
      // Saved without a change that reaches the bundle: keep the running version and its state.
      void sandbox.drainAndDispose();
      entry.lastError = null;
      return { ok: true, name, version: sandbox.version, ms: elapsed(), unchanged: true };
    }
    const previous = entry.active;
    entry.active = loaded.script;
    entry.previousVersion = previous?.sandbox.version ?? entry.previousVersion;
    entry.loadedAt = new Date().toISOString();
    entry.lastError = null;
    this.pipelines.clear();
    if (previous) this.retireLater(previous.sandbox);
    const ms = elapsed();
    for (const line of sandbox.meta.logs.lines) this.log.info({ script: name, version: sandbox.version, level: line.level }, line.message);
    for (const warning of sandbox.warnings) this.log.warn({ script: name }, warning);
    this.log.info({ script: name, version: sandbox.version, hooks: sandbox.meta.hooks, ms: round(ms) }, previous ? "script reloaded" : "script loaded");
    for (const warning of entry.typeWarnings)
      this.log.warn({ script: name, version: sandbox.version }, `type error (typecheck: warn, so this version serves): ${warning}`);
    this.emit("loaded", name, sandbox.version, ms);
    // Loaded in a probe: its isolate boots now, behind the calls' own boots (config bootIsolates).
    if (this.config.bootIsolates === "afterLoad") sandbox.bootLater();
    return { ok: true, name, version: sandbox.version, ms, unchanged: false };
  }

  /**
   * Stop running a script whose file is gone: new requests no longer see it at once; requests that
   * had already leased a pipeline with it finish on it (see retireLater).
   */
  async unload(file: string): Promise<boolean> {
    return this.unloadNow(file);
  }

  private unloadNow(given: string): boolean {
    const file = this.inFolder(given);
    const entry = this.entries.get(scriptNameOf(file));
    if (!entry || entry.file !== file) return false;
    this.unloadEntry(entry);
    return true;
  }

  private unloadEntry(entry: Entry): void {
    entry.generation++;
    this.entries.delete(entry.name);
    this.retire(entry);
    this.log.info({ script: entry.name }, "script unloaded");
    this.emit("unloaded", entry.name);
  }

  /** Files of the scripts the registry holds (serving or failed). */
  loadedFiles(): string[] {
    return [...this.entries.values()].map((entry) => entry.file);
  }

  /** Names of the loaded scripts whose bundle includes `file` (a helper module, or the script itself). */
  dependentsOf(file: string): string[] {
    const absolute = path.resolve(file);
    const names: string[] = [];
    for (const entry of this.entries.values()) {
      if (entry.file === absolute || entry.active?.sandbox.compiled.inputs.includes(absolute)) names.push(entry.name);
    }
    return names;
  }

  fileOf(name: string): string | undefined {
    return this.entries.get(name)?.file;
  }

  /**
   * The scripts that run for a hook, held for one request until `release()`. A version swapped out
   * or unloaded meanwhile still answers the request; it is disposed as soon as no request holds it
   * (its running invocations finish first), rather than after the hook's deadline: saves in quick
   * succession then keep one or two isolates alive, not one per save.
   */
  lease(hook: HookName): { scripts: readonly PipelineScript[]; failed: readonly HookFailure[]; release(): void } {
    const scripts = this.currentPipeline(hook);
    const failed = this.failures(hook);
    for (const { sandbox } of scripts) this.leases.set(sandbox, (this.leases.get(sandbox) ?? 0) + 1);
    let released = false;
    return {
      scripts,
      failed,
      release: () => {
        if (released) return;
        released = true;
        for (const { sandbox } of scripts) {
          const held = (this.leases.get(sandbox) ?? 1) - 1;
          if (held > 0) {
            this.leases.set(sandbox, held);
            continue;
          }
          this.leases.delete(sandbox);
          if (this.retiring.has(sandbox)) this.disposeRetired(sandbox);
        }
      },
    };
  }

  private currentPipeline(hook: HookName): PipelineScript[] {
    let scripts = this.pipelines.get(hook);
    if (!scripts) {
      scripts = pipelineFor(
        hook,
        [...this.entries.values()].map((entry) => entry.active).filter((active): active is PipelineScript => active !== undefined),
      );
      this.pipelines.set(hook, scripts);
    }
    return scripts;
  }

  count(invocation: Invocation): void {
    const entry = this.entries.get(invocation.script);
    if (!entry) return;
    entry.invocations++;
    const outcome = invocation.outcome.kind === "failure" ? invocation.outcome.failure.reason : invocation.outcome.kind;
    entry.outcomes[outcome] = (entry.outcomes[outcome] ?? 0) + 1;
  }

  /**
   * The failures of the hook's scripts that have no version to serve (they failed at start, or
   * their file came back broken after an unload): the hook answers them (reason `compile`) rather
   * than running without them, or, with `failurePolicy: skip`, says in its answer that they were
   * skipped. A failed script is taken to implement the hooks its source names.
   */
  failures(hook: HookName): HookFailure[] {
    const failures: HookFailure[] = [];
    for (const entry of this.entries.values()) {
      if (entry.active || !entry.lastError || this.config.scripts[entry.name]?.enabled === false) continue;
      if (entry.failingHooks.includes(hook)) failures.push(failedScriptFailure(entry.name, entry.lastError));
    }
    return failures.sort((a, b) => (a.script! < b.script! ? -1 : 1));
  }

  /** Enabled scripts without a version to serve: each keeps the instance from being ready. */
  failedScripts(): { name: string; file: string; problem: ScriptProblem }[] {
    return [...this.entries.values()]
      .filter((entry) => !entry.active && entry.lastError && this.config.scripts[entry.name]?.enabled !== false)
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((entry) => ({ name: entry.name, file: path.relative(this.folderInUse, entry.file), problem: entry.lastError! }));
  }

  /** At least one script serves, and no enabled script has failed without a version to fall back on. */
  get ready(): boolean {
    return [...this.entries.values()].some((entry) => entry.active !== undefined) && this.failedScripts().length === 0;
  }

  states(): ScriptState[] {
    return [...this.entries.values()]
      .sort((a, b) => (a.name < b.name ? -1 : 1))
      .map((entry) => {
        const sandbox = entry.active?.sandbox;
        const disabled = this.config.scripts[entry.name]?.enabled === false;
        return {
          name: entry.name,
          file: path.relative(this.folderInUse, entry.file),
          state: disabled ? "disabled" : !sandbox ? "failed" : entry.lastError ? "stale" : "active",
          version: sandbox?.version ?? null,
          previousVersion: entry.previousVersion,
          loadedAt: entry.loadedAt,
          hooks: sandbox?.meta.hooks ?? (disabled ? [] : entry.failingHooks),
          order: entry.active?.order ?? null,
          limits: sandbox?.limits ?? null,
          settings: sandbox ? settingsInForce(this.config, entry.name, entry.file, sandbox.meta.settings) : null,
          capabilities: { fetch: this.config.scripts[entry.name]?.fetch ?? null, secrets: this.config.scripts[entry.name]?.secrets ?? [] },
          warnings: [
            ...(sandbox?.warnings ?? []),
            ...(sandbox ? entry.typeWarnings.map((warning) => `type error: ${warning}`) : []),
            ...grantWarningsOf(this.config, entry.name),
          ],
          lastError: entry.lastError,
          queueDepth: sandbox?.queueDepth ?? 0,
          isolateUp: sandbox?.isolateUp ?? false,
          bootError: sandbox?.lastBootError ?? null,
          invocations: entry.invocations,
          outcomes: { ...entry.outcomes },
          ...shadowOf(this.shadows, entry.name),
        } satisfies ScriptState;
      });
  }

  /**
   * Apply a new configuration at once (settings, order, enabled, limits, hook policies), or refuse
   * it whole with the reasons, the old one still in force: see apply-config.ts. Run it in turn with
   * the watcher's batches (ScriptWatcher.exclusive) so that no reload straddles two configurations.
   */
  async applyConfig(next: Config): Promise<ConfigChange> {
    if (this.closed) return { ok: false, problems: ["the registry is closed"] };
    return applyConfig(next, {
      current: this.config,
      scriptFiles: () => this.scriptFiles(),
      entries: [...this.entries.values()].map((entry) => ({ name: entry.name, file: entry.file, sandbox: entry.active?.sandbox, lastError: entry.lastError })),
      sandboxOptionsFor: (config) => this.sandboxOptionsFor(config),
      commit: (config, options, replaced) => {
        this.config = config;
        this.sandboxOptions = options;
        for (const entry of this.entries.values()) {
          if (config.scripts[entry.name]?.enabled === false) {
            entry.generation++;
            this.retire(entry);
            entry.lastError = null;
            continue;
          }
          if (!entry.active) continue;
          const sandbox = replaced.get(entry.name) ?? entry.active.sandbox;
          if (sandbox !== entry.active.sandbox) {
            // Same code, new limits: a new version of the isolate, not of the script.
            entry.generation++;
            this.retireLater(entry.active.sandbox);
          }
          entry.active = pipelineEntry(config, sandbox);
        }
        this.pipelines.clear();
      },
      reload: (files) => Promise.all(files.map((file) => this.reload(file))),
    });
  }

  /** Loaded sandboxes, for metrics such as queue depth and heap. */
  sandboxes(): ScriptSandbox[] {
    return [...this.entries.values()].flatMap((entry) => (entry.active ? [entry.active.sandbox] : []));
  }

  /** Dispose every version, active or retiring, once its running invocations have finished. */
  async close(): Promise<void> {
    this.closed = true;
    void this.typeChecking?.close();
    const probesEnded = this.loadProbes?.close();
    const sandboxes = [...this.entries.values()].flatMap((entry) => (entry.active ? [entry.active.sandbox] : []));
    for (const entry of this.entries.values()) entry.generation++;
    this.entries.clear();
    this.pipelines.clear();
    sandboxes.push(...this.retiring);
    this.retiring.clear();
    for (const sandbox of sandboxes) this.closing.add(sandbox);
    await Promise.all([
      ...sandboxes.map((sandbox) => sandbox.drainAndDispose().finally(() => this.closing.delete(sandbox))),
      this.shadows.close(),
      probesEnded,
    ]);
  }

  /** The versions close() still waits for, with the invocations each is still running. */
  stillClosing(): { script: string; version: string; invocations: number }[] {
    return [...this.closing].map((sandbox) => ({ script: sandbox.name, version: sandbox.version, invocations: sandbox.queueDepth }));
  }

  private entryFor(name: string, file: string): Entry {
    let entry = this.entries.get(name);
    if (!entry) {
      entry = {
        name,
        file: path.resolve(file),
        previousVersion: null,
        loadedAt: null,
        lastError: null,
        typeWarnings: [],
        failingHooks: [],
        generation: 0,
        invocations: 0,
        outcomes: {},
      };
      this.entries.set(name, entry);
    }
    return entry;
  }

  private retire(entry: Entry): void {
    const active = entry.active;
    entry.active = undefined;
    this.pipelines.clear();
    if (active) this.retireLater(active.sandbox);
  }

  /**
   * A version that no longer serves new requests is disposed once no request can still call it.
   * A request leases its pipeline when it starts and calls the scripts one after another, so a
   * script late in a pipeline may be called a while after the swap; a sandbox disposed at once
   * would answer it "unloaded" and fail a request because of a reload. So a version some request
   * still holds is disposed when the last one lets it go (see lease()), and its running
   * invocations finish first (drainAndDispose).
   */
  private retireLater(sandbox: ScriptSandbox): void {
    if (this.retiring.has(sandbox)) return;
    this.retiring.add(sandbox);
    if (!this.leases.has(sandbox)) this.disposeRetired(sandbox);
  }

  private disposeRetired(sandbox: ScriptSandbox): void {
    if (!this.retiring.delete(sandbox)) return;
    void sandbox.drainAndDispose();
  }

  private problem(entry: Entry, stage: ScriptProblem["stage"], message: string, location?: SourceLocation, errors?: ProblemAt[]): ScriptProblem {
    const problem: ScriptProblem = { at: new Date().toISOString(), stage, message };
    if (location) problem.location = location;
    if (errors) problem.errors = errors;
    entry.lastError = problem;
    // Without a version to fall back on, the hooks the script names answer its failure (see failures()).
    entry.failingHooks = entry.active ? [] : hooksNamedIn(entry.file);
    const serving = entry.active ? `; version ${entry.active.sandbox.version} keeps serving` : "";
    const hooks = entry.active
      ? ""
      : entry.failingHooks.length > 0
        ? `; ${entry.failingHooks.join(", ")} answer${entry.failingHooks.length === 1 ? "s" : ""} this error`
        : "";
    this.log.error({ script: entry.name, stage, location, err: undefined }, `script failed to ${stageVerb(stage)}${serving}${hooks}: ${message}`);
    this.emit("failed", entry.name, problem);
    return problem;
  }

  /** `blacklist.ts:12:27 TS2551 Property 'chanel' does not exist on type 'CallFull'. Did you mean 'channel'?` */
  private typeErrorText(problem: TypeProblem): string {
    const file = path.relative(this.folderInUse, problem.file);
    return `${file}${problem.line !== undefined ? `:${problem.line}:${problem.column}` : ""} ${problem.code} ${problem.message}`;
  }

  private typeProblem(entry: Entry, problems: readonly TypeProblem[]): ScriptProblem {
    const errors = problems.map((problem) => ({
      file: path.relative(this.folderInUse, problem.file),
      line: problem.line ?? 1,
      column: problem.column ?? 1,
      code: problem.code,
      message: problem.message,
    }));
    const first = errors[0]!;
    const count = errors.length === 1 ? "a type error" : `${errors.length} type errors`;
    const message = `${count} against the SDK (typecheck: block): ${problems.map((problem) => this.typeErrorText(problem)).join("; ")}`;
    return this.problem(entry, "typecheck", message, { file: first.file, line: first.line, column: first.column }, errors);
  }

  /**
   * What a version's type check means under `typecheck`: with `block`, any error (or a check that
   * could not run) is the problem that keeps it out; with `warn`, they are its warnings. Either way
   * the count goes to the metric.
   */
  private typeVerdict(entry: Entry, mode: Config["typecheck"], result: TypeProblem[] | Error): ScriptProblem | undefined {
    if (result instanceof Error) {
      const message = `the type check could not run: ${result.message}`;
      if (mode === "block") return this.problem(entry, "typecheck", message);
      entry.typeWarnings = [message];
      return undefined;
    }
    this.emit("typeErrors", entry.name, result.length);
    if (result.length > 0 && mode === "block") return this.typeProblem(entry, result);
    entry.typeWarnings = result.map((problem) => this.typeErrorText(problem));
    return undefined;
  }

  /**
   * With bootIsolates afterLoad, a script that loads alone or with a few others (a save, a small
   * folder) boots its own isolate as it loads: a probe would cost a probe worker of its own (they
   * are gone 2 s after the last load; one takes ≈ 75 ms to start and keeps ≈ 20 MB of the
   * process's memory after), then the boot all the same, right after.
   */
  private loadFile(file: string, folder: string, compiled: CompileResult | undefined, few = false): Promise<LoadedScript> {
    const { loadProbes: _, ...atLoad } = this.sandboxOptions;
    const sandbox = few && this.config.bootIsolates === "afterLoad" ? atLoad : this.sandboxOptions;
    return loadScriptFile(file, folder, this.config, compiled ? { sandbox, compiled } : { sandbox });
  }
}

/** Fewer scripts than this loading together boot their isolates as they load, with bootIsolates afterLoad (see loadFile). */
const FEW_SCRIPTS = 8;

const toError = (error: unknown) => (error instanceof Error ? error : new Error(String(error)));
const round = (ms: number) => Math.round(ms * 100) / 100;

/** `{ shadow }` for a script that has one, else nothing: the key is absent from /scripts without a shadow. */
function shadowOf(shadows: ShadowScripts, name: string): { shadow?: ShadowState } {
  const shadow = shadows.stateOf(name);
  return shadow ? { shadow } : {};
}
