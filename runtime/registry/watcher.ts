import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { watch } from "chokidar";
import type { Logger } from "pino";
import { scriptNameOf } from "../compile/compile.js";
import { isScriptFile, type ReloadResult, type ScriptRegistry } from "./registry.js";
import { isShadowFile, variantOf } from "./variants.js";

/** Quiet time after the last event before a burst of saves is acted on. */
const SETTLE_MS = 15;
/** A stream of events never holds a reload back longer than this. */
const MAX_WAIT_MS = 150;
/**
 * chokidar drops a file's `change` events for 50 ms after one it emitted (and raw events 5 ms
 * apart), without a trailing event: the last save of a quick pair may never be reported. Files of
 * a batch are read again this long after their last event and rescheduled if they differ from
 * what the batch applied.
 */
const VERIFY_AFTER_MS = 75;

/** Files whose changes matter: sources a script may import (scripts, helpers, JSON data). */
const SOURCE = /\.(m?ts|m?js|json)$/;
const GONE = "gone";

export interface WatchOptions {
  /** Quiet time after the last event before a batch is applied, ms (default 15). */
  settleMs?: number;
  /** Longest a stream of events holds a batch back, ms (default 150). */
  maxWaitMs?: number;
  /** Each applied batch, with its timings: for debug logs and the reload benchmark. */
  onBatch?: (batch: BatchReport) => void;
}

export interface BatchReport {
  /** Changed files, relative to the scripts folder. */
  files: string[];
  /** `performance.now()` of the batch's first and last file event, when it started and finished. */
  firstEventAt: number;
  lastEventAt: number;
  startedAt: number;
  finishedAt: number;
  /** Scripts reloaded (the changed ones, and those that import a changed helper) and unloaded. */
  reloaded: ReloadResult[];
  unloaded: string[];
}

export interface ScriptWatcher {
  /** Resolves when the initial scan is done and changes are being picked up. */
  ready: Promise<void>;
  /** Reload every script (SIGHUP), in turn with the batches of saves so that the two cannot race. */
  reloadAll(): Promise<ReloadResult[]>;
  /** Run a job (a config reload) in turn with the batches of saves. */
  exclusive<T>(job: () => Promise<T>): Promise<T>;
  /** Resolves once no event is waiting to settle and no batch or re-check is pending or running. */
  idle(): Promise<void>;
  /** Stop watching; a batch already running finishes, nothing is reloaded after this resolves. */
  close(): Promise<void>;
}

interface Batch {
  files: Set<string>;
  firstEventAt: number;
  lastEventAt: number;
}

/** A file's content as a short hash, or `gone`. */
function fingerprint(file: string): string {
  try {
    return createHash("sha1").update(readFileSync(file)).digest("base64");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR" ? GONE : `unreadable:${code ?? "?"}`;
  }
}

/**
 * Keeps the registry in step with the scripts folder.
 *
 * - Events are gathered into batches: editors save in bursts, an atomic save arrives as unlink +
 *   add (or a rename), a checkout changes a helper and its scripts together. A batch is applied
 *   once no event has come for `settleMs` (at most `maxWaitMs` after its first event), and it is
 *   applied as the files stand then: a file that exists is reloaded, a gone one unloaded, so a
 *   rename-save is a reload, never an unload.
 * - A changed helper (any source file that is not a top-level script) reloads every script whose
 *   bundle includes it, and retries the scripts that are failing (it may be the import they lacked).
 * - Batches, and `reloadAll()`, run one after another; events that come while one runs form the
 *   next. Two saves of one file never race, and the newest content is applied last.
 * - A save that chokidar did not report (see VERIFY_AFTER_MS) is caught by reading the batch's
 *   files again once chokidar would have reported it.
 *
 * Start watching before the first `registry.loadAll()`, so that no save falls between the two.
 */
export function watchScripts(
  registry: ScriptRegistry,
  log: Pick<Logger, "info" | "warn" | "error" | "debug">,
  options: WatchOptions = {},
): ScriptWatcher {
  const root = path.resolve(registry.scriptsDir);
  const settleMs = options.settleMs ?? SETTLE_MS;
  const maxWaitMs = options.maxWaitMs ?? MAX_WAIT_MS;
  /** Events waiting for the settle timer. */
  let gathering: Batch | undefined;
  let settleTimer: NodeJS.Timeout | undefined;
  /** A batch handed to the queue and not started yet: later flushes join it. */
  let queued: Batch | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  const verifyTimers = new Set<NodeJS.Timeout>();
  /** What each file held when a batch last applied it. */
  const applied = new Map<string, string>();
  let closed = false;

  /** Paths inside the folder that are never scripts or helpers: dot files and folders, packages. */
  const ignoredPath = (file: string): boolean => {
    const relative = path.relative(root, path.resolve(file));
    if (relative === "") return false;
    if (relative.startsWith("..") || path.isAbsolute(relative)) return true;
    return relative.split(path.sep).some((part) => part.startsWith(".") || part === "node_modules");
  };
  // A version a promote replaced (NAME.previous.ts) is kept to roll back to, never loaded.
  const relevant = (file: string): boolean =>
    !ignoredPath(file) && SOURCE.test(file) && !/\.cases\.json$/.test(file) && !/\.d\.m?ts$/.test(file) && variantOf(file) !== "previous";

  const watcher = watch(root, {
    ignoreInitial: true,
    ignored: (file, stats) => ignoredPath(file) || (stats?.isFile() === true && !relevant(file)),
  });

  /** Run jobs one after another; a failed job is logged and does not stop the next. */
  function enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = queue.then(job);
    queue = run.catch((error: unknown) => log.error({ err: error }, "script reload failed"));
    return run;
  }

  function flush(): void {
    settleTimer = undefined;
    const batch = gathering;
    gathering = undefined;
    if (!batch || closed) return;
    if (queued) {
      for (const file of batch.files) queued.files.add(file);
      queued.lastEventAt = batch.lastEventAt;
      return;
    }
    queued = batch;
    void enqueue(async () => {
      const next = queued;
      queued = undefined;
      if (next && !closed) await apply(next);
    });
  }

  function schedule(file: string): void {
    if (closed || !relevant(file)) return;
    const now = performance.now();
    gathering ??= { files: new Set(), firstEventAt: now, lastEventAt: now };
    gathering.files.add(path.resolve(file));
    gathering.lastEventAt = now;
    clearTimeout(settleTimer);
    const waited = now - gathering.firstEventAt;
    settleTimer = setTimeout(flush, Math.max(0, Math.min(settleMs, maxWaitMs - waited)));
  }

  async function apply(batch: Batch): Promise<void> {
    const startedAt = performance.now();
    const files = [...batch.files];
    const scripts = new Set<string>();
    const gone = new Set<string>();
    // Shadows (NAME.shadow.ts) are loaded beside the scripts, never as scripts.
    const shadows = new Set<string>();
    const goneShadows = new Set<string>();
    let helperChanged = false;
    for (const file of files) {
      const content = fingerprint(file);
      applied.set(file, content);
      if (isScriptFile(file, root)) {
        (content === GONE ? gone : scripts).add(file);
      } else if (isShadowFile(file, root)) {
        (content === GONE ? goneShadows : shadows).add(file);
      } else {
        helperChanged = true;
        // A changed helper reloads every script (and shadow) whose bundle includes it.
        for (const name of registry.dependentsOf(file)) {
          const scriptFile = registry.fileOf(name);
          if (scriptFile) scripts.add(scriptFile);
        }
        for (const shadow of registry.shadows.dependentsOf(file)) shadows.add(shadow);
      }
    }
    if (helperChanged) {
      // A helper that appears or is fixed may be what a failing script was missing.
      for (const state of registry.states()) {
        if (state.lastError) scripts.add(path.join(root, state.file));
      }
      for (const shadow of registry.shadows.failing()) shadows.add(shadow);
    }
    for (const file of gone) scripts.delete(file);
    for (const file of goneShadows) shadows.delete(file);
    const [unloaded, reloaded] = await Promise.all([
      Promise.all([...gone].map(async (file) => ((await registry.unload(file)) ? [scriptNameOf(file)] : []))),
      Promise.all([...scripts].map((file) => registry.reload(file))),
      Promise.all([...goneShadows].map((file) => registry.shadows.unload(file))),
      Promise.all([...shadows].map((file) => registry.shadows.reload(file))),
    ]);
    const report: BatchReport = {
      files: files.map((file) => path.relative(root, file)),
      firstEventAt: batch.firstEventAt,
      lastEventAt: batch.lastEventAt,
      startedAt,
      finishedAt: performance.now(),
      reloaded,
      unloaded: unloaded.flat(),
    };
    log.debug(
      { files: report.files, reloaded: reloaded.map((result) => result.name), unloaded: report.unloaded, ms: Math.round(report.finishedAt - batch.firstEventAt) },
      "scripts folder changed",
    );
    options.onBatch?.(report);
    verifyLater(files, batch.lastEventAt);
  }

  /** Read the batch's files again once chokidar would have reported any later save of them. */
  function verifyLater(files: string[], lastEventAt: number): void {
    if (closed) return;
    const timer = setTimeout(() => {
      verifyTimers.delete(timer);
      if (closed) return;
      for (const file of files) {
        if (applied.get(file) !== fingerprint(file)) {
          log.debug({ file: path.relative(root, file) }, "a save the watcher did not report; reloading");
          schedule(file);
        }
      }
    }, Math.max(0, lastEventAt + VERIFY_AFTER_MS - performance.now()));
    verifyTimers.add(timer);
  }

  watcher.on("add", schedule).on("change", schedule).on("unlink", schedule);
  watcher.on("error", (error) => log.error({ err: error }, "watching the scripts folder failed"));

  const ready = new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  ready.then(() => log.info({ scriptsDir: root }, "watching scripts for changes")).catch(() => undefined);

  return {
    ready,
    reloadAll: () => enqueue(() => registry.loadAll()),
    exclusive: (job) => enqueue(job),
    async idle() {
      for (;;) {
        if (closed) return;
        if (!gathering && !queued && verifyTimers.size === 0) {
          const settled = queue;
          await settled;
          if (settled === queue && !gathering && !queued && verifyTimers.size === 0) return;
          continue;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    },
    async close() {
      closed = true;
      clearTimeout(settleTimer);
      settleTimer = undefined;
      gathering = undefined;
      queued = undefined;
      for (const timer of verifyTimers) clearTimeout(timer);
      verifyTimers.clear();
      await watcher.close();
      await queue;
    },
  };
}
