import { existsSync, readdirSync } from "node:fs";
import path from "node:path";
import type { Logger } from "pino";
import { scriptNameOf } from "../compile/compile.js";
import type { Config } from "../config.js";
import type { PipelineScript } from "../dispatch/dispatch.js";
import type { SandboxOptions } from "../sandbox/sandbox.js";
import { loadScriptFile } from "./load-script.js";
import type { ScriptProblem, ShadowDifference, ShadowState } from "./states.js";
import { isShadowFile, liveNameOf } from "./variants.js";

/**
 * The shadows of a scripts folder: `NAME.shadow.ts` beside `NAME.ts`. Each is loaded like a script
 * (the same compiler and sandbox, its own isolate and its own limits, NAME's settings and order from
 * the config) but never serves: runtime/dispatch/shadow.ts runs it after NAME's live answer is sent
 * and records here how its answers compare with NAME's.
 */

export interface ShadowEntry {
  live: string;
  file: string;
  script?: PipelineScript;
  generation: number;
  lastError: ScriptProblem | null;
  counts: { same: number; different: number; failed: number; shed: number };
  lastDifference: ShadowDifference | null;
  lastFailure: ShadowState["lastFailure"];
  /** Log sampling: when the last difference or failure was logged, and how many were not since. */
  loggedAt: number;
  notLogged: number;
}

type Log = Pick<Logger, "info" | "warn" | "error" | "debug">;

export class ShadowScripts {
  private readonly entries = new Map<string, ShadowEntry>();
  private closed = false;
  /** Shadow runs started and not finished, across all shadows. */
  inFlight = 0;

  /**
   * The config and sandbox options are read when a shadow loads: a config reload replaces both. The
   * folder is the registry's (scriptsDir at its real path, see ScriptRegistry.folder).
   */
  constructor(
    private readonly configInForce: () => Config,
    private readonly log: Log,
    private readonly sandboxOptionsInForce: () => SandboxOptions,
    private readonly folderInForce: () => string = () => configInForce().scriptsDir,
  ) {}

  private get config(): Config {
    return this.configInForce();
  }

  files(folder: string = this.folderInForce()): string[] {
    let names: string[];
    try {
      names = readdirSync(folder);
    } catch {
      return [];
    }
    return names
      .map((name) => path.join(folder, name))
      .filter((file) => isShadowFile(file, folder))
      .sort();
  }

  /** Load every shadow of the folder; forget those whose file is gone. */
  async loadAll(folder?: string): Promise<void> {
    if (this.closed) return;
    const files = this.files(folder);
    const present = new Set(files.map((file) => liveNameOf(file)));
    await Promise.all([...this.entries.values()].filter((entry) => !present.has(entry.live)).map((entry) => this.unload(entry.file)));
    await Promise.all(files.map((file) => this.reload(file)));
  }

  /** Compile and load a shadow; a version that does not load leaves the previous one running. */
  async reload(file: string): Promise<void> {
    if (this.closed) return;
    const live = liveNameOf(file);
    let entry = this.entries.get(live);
    if (!entry) {
      entry = {
        live,
        file: path.resolve(file),
        generation: 0,
        lastError: null,
        counts: { same: 0, different: 0, failed: 0, shed: 0 },
        lastDifference: null,
        lastFailure: null,
        loggedAt: -Infinity,
        notLogged: 0,
      };
      this.entries.set(live, entry);
    }
    const generation = ++entry.generation;
    // At most one run per shadow at a time, never a queue (see dispatch/shadow.ts).
    const sandbox = { ...this.sandboxOptionsInForce(), maxQueue: 0 };
    let loaded;
    try {
      // A shadow lies at the top of its scripts folder (isShadowFile).
      loaded = await loadScriptFile(file, path.dirname(path.resolve(file)), this.config, { sandbox });
    } catch (error) {
      loaded = {
        ok: false as const,
        stage: "load" as const,
        failure: { reason: "compile" as const, script: scriptNameOf(file), message: (error as Error).message },
      };
    }
    if (generation !== entry.generation || this.closed) {
      if (loaded.ok) void loaded.script.sandbox.drainAndDispose();
      return;
    }
    // The same shadow, read from the folder in use (another checkout after a link flip).
    entry.file = path.resolve(file);
    if (!loaded.ok) {
      const problem: ScriptProblem = { at: new Date().toISOString(), stage: loaded.stage, message: loaded.failure.message };
      if (loaded.failure.location) problem.location = loaded.failure.location;
      entry.lastError = problem;
      this.log.error({ script: live, shadow: path.basename(file), stage: loaded.stage }, `shadow failed to ${loaded.stage}: ${loaded.failure.message}`);
      return;
    }
    const previous = entry.script;
    if (previous?.sandbox.version === loaded.script.sandbox.version) {
      void loaded.script.sandbox.drainAndDispose();
      entry.lastError = null;
      return;
    }
    entry.script = loaded.script;
    entry.lastError = null;
    // A new version starts its comparison afresh.
    entry.counts = { same: 0, different: 0, failed: 0, shed: 0 };
    entry.lastDifference = null;
    entry.lastFailure = null;
    if (previous) void previous.sandbox.drainAndDispose();
    const { sandbox: loadedSandbox } = loaded.script;
    this.log.info({ script: live, shadow: path.basename(file), version: loadedSandbox.version, hooks: loadedSandbox.meta.hooks }, "shadow loaded");
    const liveFile = entry.file.replace(/\.shadow(\.m?ts)$/, "$1");
    if (!existsSync(liveFile)) {
      this.log.warn(
        { script: live, shadow: path.basename(file) },
        `there is no ${path.basename(liveFile)} beside ${path.basename(file)}: the shadow runs only on the live calls of ${live}`,
      );
    }
  }

  async unload(file: string): Promise<boolean> {
    const live = liveNameOf(file);
    const entry = this.entries.get(live);
    if (!entry || entry.file !== path.resolve(file)) return false;
    entry.generation++;
    this.entries.delete(live);
    if (entry.script) void entry.script.sandbox.drainAndDispose();
    this.log.info({ script: live, shadow: path.basename(file) }, "shadow unloaded");
    return true;
  }

  /** Every shadow, by the name of the script it stands beside. */
  all(): ShadowEntry[] {
    return [...this.entries.values()];
  }

  /** The shadow of a live script, when there is one. */
  of(live: string): ShadowEntry | undefined {
    return this.entries.get(live);
  }

  get size(): number {
    return this.entries.size;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Shadow files whose bundle includes `file` (a helper). */
  dependentsOf(file: string): string[] {
    const absolute = path.resolve(file);
    return [...this.entries.values()]
      .filter((entry) => entry.file === absolute || entry.script?.sandbox.compiled.inputs.includes(absolute))
      .map((entry) => entry.file);
  }

  /** Shadow files whose newest version failed to load: a changed helper may be what they lacked. */
  failing(): string[] {
    return [...this.entries.values()].filter((entry) => entry.lastError !== null).map((entry) => entry.file);
  }

  stateOf(live: string): ShadowState | undefined {
    const entry = this.entries.get(live);
    if (!entry) return undefined;
    const { same, different, failed, shed } = entry.counts;
    return {
      file: path.basename(entry.file),
      version: entry.script?.sandbox.version ?? null,
      state: !entry.script ? "failed" : entry.lastError ? "stale" : "active",
      lastError: entry.lastError,
      calls: same + different + failed,
      same,
      different,
      failed,
      shed,
      lastDifference: entry.lastDifference,
      lastFailure: entry.lastFailure,
    };
  }

  /** Dispose every shadow once its running invocation has finished. */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.entries.values()];
    this.entries.clear();
    for (const entry of all) entry.generation++;
    await Promise.all(all.map((entry) => entry.script?.sandbox.drainAndDispose()));
  }
}
