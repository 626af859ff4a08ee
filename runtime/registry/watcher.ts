import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "pino";
import { type ReloadResult, type ScriptRegistry } from "./registry.js";
import { isScriptFile, isShadowFile, variantOf } from "./variants.js";

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
/**
 * How often the watcher checks that scriptsDir still leads to the folder it watches. A deploy that
 * flips a link to a new checkout (callscript-scripts-pull.sh, git-sync) changes no file of the
 * folder being watched: inotify watches the old checkout, by inode, and reports nothing.
 */
const FOLLOW_MS = 250;
/** A batch is held while git updates the folder (its index.lock exists), but never longer than this. */
const GIT_HOLD_MAX_MS = 10_000;
/**
 * Files written this long before a git batch's first event still count as written by that git
 * command: its first writes come before the first event the watcher hears (more so on a busy host).
 */
const GIT_WRITES_BEFORE_MS = 2_000;

/** Files whose changes matter: sources a script may import (scripts, helpers, JSON data). */
const SOURCE = /\.(m?ts|m?js|json)$/;
const GONE = "gone";

export interface WatchOptions {
  /** Quiet time after the last event before a batch is applied, ms (default 15). */
  settleMs?: number;
  /** Longest a stream of events holds a batch back, ms (default 150); longer while git holds its index lock. */
  maxWaitMs?: number;
  /** How often scriptsDir is checked for a flipped link or a replaced folder, ms (default 250). */
  followMs?: number;
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
  /** Set when scriptsDir led to another folder (a flipped link): the folder now loaded whole. */
  folder?: string;
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
  /** Date.now() at the first event: what files' modification times are compared with. */
  firstEventWallMs: number;
  lastEventAt: number;
  /** `busy` once git's index lock was seen while gathering; then when it was first seen gone. */
  git?: "busy" | number;
}

/** Where scriptsDir leads: its real path, and the folder's inode (a folder replaced by a rename has the same path). */
interface FolderIdentity {
  path: string;
  id: string;
}

function identityOf(dir: string): FolderIdentity | undefined {
  try {
    const real = realpathSync.native(dir);
    const stats = statSync(real);
    return { path: real, id: `${real}\0${stats.dev}:${stats.ino}` };
  } catch {
    return undefined;
  }
}

/**
 * The index lock of the git work tree the folder is in, if it is in one: git holds it while a
 * checkout, pull or reset writes the files, and removes it when all are written.
 */
function gitIndexLockOf(folder: string): string | undefined {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    const dotGit = path.join(dir, ".git");
    try {
      const stats = statSync(dotGit);
      if (stats.isDirectory()) return path.join(dotGit, "index.lock");
      // A linked work tree (git worktree add): `.git` is a file naming its git folder.
      const target = /^gitdir:\s*(.+)$/m.exec(readFileSync(dotGit, "utf8"))?.[1]?.trim();
      return target ? path.join(path.resolve(dir, target), "index.lock") : undefined;
    } catch {
      // No .git here: look further up.
    }
    if (path.dirname(dir) === dir) return undefined;
  }
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

/** Whether git wrote its index (beside its lock) at or after `sinceMs`: a checkout or pull that ended before the watcher saw its lock. */
function gitIndexWrittenSince(lock: string, sinceMs: number): boolean {
  try {
    return statSync(path.join(path.dirname(lock), "index")).mtimeMs >= sinceMs;
  } catch {
    return false;
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
 * - A batch is applied as one swap (registry.applyBatch): no request sees part of it. Scripts whose
 *   file is gone are unloaded with it even before chokidar reports the deletion (it holds a
 *   deletion back 100 ms, to tell an editor's delete-and-write save from a deletion), so a pull
 *   that deletes one script and changes another is one batch. While git writes the folder (its
 *   index.lock exists), the batch waits for git to finish.
 * - The folder is watched at its real path. When scriptsDir leads elsewhere (a link flipped to a
 *   new checkout, as callscript-scripts-pull.sh and git-sync do, or the folder replaced by a
 *   rename), the new folder is watched and loaded whole, as one swap (checked every `followMs`).
 *
 * Start watching before the first `registry.loadAll()`, so that no save falls between the two.
 */
export function watchScripts(registry: ScriptRegistry, log: Pick<Logger, "info" | "warn" | "error" | "debug">, options: WatchOptions = {}): ScriptWatcher {
  let identity = identityOf(registry.scriptsDir);
  /** The folder watched: scriptsDir at its real path. */
  let root = identity?.path ?? path.resolve(registry.scriptsDir);
  let gitLock = gitIndexLockOf(root);
  const settleMs = options.settleMs ?? SETTLE_MS;
  const maxWaitMs = options.maxWaitMs ?? MAX_WAIT_MS;
  const followMs = options.followMs ?? FOLLOW_MS;
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

  function startWatching(folder: string): { watcher: FSWatcher; ready: Promise<void> } {
    const started = watch(folder, {
      ignoreInitial: true,
      ignored: (file, stats) => ignoredPath(file) || (stats?.isFile() === true && !relevant(file)),
    });
    started.on("add", schedule).on("change", schedule).on("unlink", schedule);
    started.on("error", (error) => log.error({ err: error }, "watching the scripts folder failed"));
    return { watcher: started, ready: new Promise<void>((resolve) => started.once("ready", () => resolve())) };
  }

  /** Run jobs one after another; a failed job is logged and does not stop the next. */
  function enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = queue.then(job);
    queue = run.catch((error: unknown) => log.error({ err: error }, "script reload failed"));
    return run;
  }

  function flush(): void {
    settleTimer = undefined;
    const batch = gathering;
    if (batch && !closed && gitLock && holdForGit(batch, gitLock)) {
      settleTimer = setTimeout(flush, settleMs);
      return;
    }
    gathering = undefined;
    if (!batch || closed) return;
    // git wrote the folder: every file it wrote belongs to this batch, also those whose events
    // chokidar has not delivered yet (on a busy host, some came after the settle time that follows
    // the lock, and a pull was applied as two swaps). A file written just before, by someone else,
    // joins too: reloading an unchanged file keeps its version.
    const since = batch.firstEventWallMs - GIT_WRITES_BEFORE_MS;
    if (gitLock && (batch.git !== undefined || gitIndexWrittenSince(gitLock, since))) for (const file of writtenSince(root, since)) batch.files.add(file);
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

  /**
   * Whether git is still writing the folder: the files of its checkout not written yet belong to
   * this batch. Once its lock is gone the batch waits one more settle time, for the events of its
   * last writes. A lock older than GIT_HOLD_MAX_MS (git killed) holds nothing.
   */
  function holdForGit(batch: Batch, lock: string): boolean {
    const now = performance.now();
    if (now - batch.firstEventAt >= GIT_HOLD_MAX_MS) {
      if (batch.git === "busy") log.warn({ lock }, "git's index lock stayed; the scripts folder's changes are applied without waiting for it");
      return false;
    }
    if (existsSync(lock)) {
      if (batch.git !== "busy") log.debug({ lock }, "git is writing the scripts folder; waiting for it to finish");
      batch.git = "busy";
      return true;
    }
    if (batch.git === "busy") batch.git = now;
    return typeof batch.git === "number" && now - batch.git < settleMs;
  }

  /** The folder's relevant files modified at or after `sinceMs` (wall clock). */
  function writtenSince(folder: string, sinceMs: number): string[] {
    const found: string[] = [];
    const walk = (dir: string) => {
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const entry of entries) {
        const file = path.join(dir, entry.name);
        if (ignoredPath(file)) continue;
        if (entry.isDirectory()) walk(file);
        else if (relevant(file)) {
          try {
            if (statSync(file).mtimeMs >= sinceMs) found.push(file);
          } catch {
            // Gone since the listing: apply() finds deleted scripts itself.
          }
        }
      }
    };
    walk(folder);
    return found;
  }

  function schedule(file: string): void {
    if (closed || !relevant(file)) return;
    const now = performance.now();
    gathering ??= { files: new Set(), firstEventAt: now, firstEventWallMs: Date.now(), lastEventAt: now };
    gathering.files.add(path.resolve(file));
    gathering.lastEventAt = now;
    clearTimeout(settleTimer);
    const waited = now - gathering.firstEventAt;
    settleTimer = setTimeout(flush, Math.max(0, Math.min(settleMs, maxWaitMs - waited)));
  }

  async function apply(batch: Batch): Promise<void> {
    const startedAt = performance.now();
    // Events of a folder no longer watched (scriptsDir was flipped meanwhile) are not applied.
    const files = [...batch.files].filter((file) => !ignoredPath(file));
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
    // Deleted scripts chokidar has not reported yet (it holds deletions back 100 ms) go with this batch.
    for (const file of registry.loadedFiles()) {
      if (!gone.has(file) && isScriptFile(file, root) && !existsSync(file)) gone.add(file);
    }
    for (const file of gone) scripts.delete(file);
    for (const file of goneShadows) shadows.delete(file);
    const [{ reloaded, unloaded }] = await Promise.all([
      registry.applyBatch({ reload: [...scripts], unload: [...gone] }),
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
      unloaded,
    };
    log.debug(
      {
        files: report.files,
        reloaded: reloaded.map((result) => result.name),
        unloaded: report.unloaded,
        ms: Math.round(report.finishedAt - batch.firstEventAt),
      },
      "scripts folder changed",
    );
    options.onBatch?.(report);
    verifyLater(files, batch.lastEventAt);
  }

  /** Read the batch's files again once chokidar would have reported any later save of them. */
  function verifyLater(files: string[], lastEventAt: number): void {
    if (closed) return;
    const timer = setTimeout(
      () => {
        verifyTimers.delete(timer);
        if (closed) return;
        for (const file of files) {
          if (applied.get(file) !== fingerprint(file)) {
            log.debug({ file: path.relative(root, file) }, "a save the watcher did not report; reloading");
            schedule(file);
          }
        }
      },
      Math.max(0, lastEventAt + VERIFY_AFTER_MS - performance.now()),
    );
    verifyTimers.add(timer);
  }

  let { watcher, ready } = startWatching(root);
  const firstReady = ready;
  firstReady.then(() => log.info({ scriptsDir: registry.scriptsDir, folder: root }, "watching scripts for changes")).catch(() => undefined);

  /**
   * scriptsDir leads to another folder: watch that one and load it whole, as one swap. What was
   * gathered from the old folder is dropped: that folder no longer serves.
   */
  function follow(next: FolderIdentity): void {
    const previous = root;
    identity = next;
    root = next.path;
    gitLock = gitIndexLockOf(root);
    clearTimeout(settleTimer);
    settleTimer = undefined;
    gathering = undefined;
    queued = undefined;
    for (const timer of verifyTimers) clearTimeout(timer);
    verifyTimers.clear();
    applied.clear();
    const old = watcher;
    ({ watcher, ready } = startWatching(root));
    const watching = ready;
    void old.close();
    void enqueue(async () => {
      if (closed) return;
      const startedAt = performance.now();
      // Watch first, then read: a save made meanwhile is in the files read or in a later batch.
      await watching;
      const results = await registry.loadAll(next.path);
      if (closed) return;
      const loaded = results.filter((result) => result.ok && !result.unchanged).map((result) => result.name);
      const failed = results.filter((result) => !result.ok && !("superseded" in result)).map((result) => result.name);
      log.info(
        { scriptsDir: registry.scriptsDir, folder: root, previous, reloaded: loaded, failed, ms: Math.round(performance.now() - startedAt) },
        "scripts folder flipped; loaded whole",
      );
      options.onBatch?.({
        files: [],
        firstEventAt: startedAt,
        lastEventAt: startedAt,
        startedAt,
        finishedAt: performance.now(),
        reloaded: results,
        unloaded: [],
        folder: root,
      });
    });
  }

  let unreachable = false;
  const following = setInterval(() => {
    if (closed) return;
    const now = identityOf(registry.scriptsDir);
    if (!now) {
      // A dangling link or a missing folder: keep serving what is loaded until it is back.
      if (!unreachable) log.warn({ scriptsDir: registry.scriptsDir }, "the scripts folder cannot be reached; the loaded scripts keep serving");
      unreachable = true;
      return;
    }
    unreachable = false;
    if (now.id !== identity?.id) follow(now);
  }, followMs);
  following.unref();

  return {
    ready: firstReady,
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
      clearInterval(following);
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
