import path from "node:path";
import { Worker } from "node:worker_threads";
import { workerFile } from "../paths.js";
import type { TypeChecking, TypeProblem } from "./typecheck.js";
import { folderKey, folderStamp, TypeCheckCache } from "./typecheck-cache.js";

/** A check that has not answered in this long is taken as lost: the worker is restarted. */
const CHECK_TIMEOUT_MS = 120_000;

interface Pending {
  resolve: (problems: TypeProblem[]) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * The type check of the server: a worker thread, started on the first check, that keeps one warm
 * program per scripts folder (compile/typecheck.ts), so that the event loop keeps answering hook
 * requests while a save is checked. A worker that fails is replaced at the next check.
 */
export class WorkerTypeChecking implements TypeChecking {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private readonly cache: TypeCheckCache | undefined;
  private readonly quiet: (() => boolean) | undefined;

  /**
   * `cache: false`: never read or keep results on disk (see typecheck-cache.ts). `quiet`: whether
   * the server has room now for the compiler's warm-up after a start, which waits until it has
   * (warmLater; serve's is its event loop's, loop-load.ts). Without it, the warm-up never waits.
   */
  constructor(options: { cache?: boolean; quiet?: () => boolean } = {}) {
    this.cache = options.cache === false ? undefined : new TypeCheckCache();
    this.quiet = options.quiet;
  }

  async check(dir: string, files: readonly string[]): Promise<TypeProblem[]> {
    // Before the compiler is loaded (a start), results found for this very folder are used as
    // they are: a restart of the same scripts does not pay for the compiler. Once it runs, it is
    // asked: a save changes the folder, and with it the key.
    if (this.cache && !this.worker) {
      const known = this.cache.lookup(dir, files);
      if (known) {
        this.warmLater(dir, files);
        return known;
      }
    }
    const before = this.cache ? folderStamp(dir) : undefined;
    const problems = await this.ask(dir, files);
    if (this.cache && before !== undefined) {
      const cache = this.cache;
      // Kept, off the answer's path, only when no file of the folder changed while the worker read it.
      setImmediate(() => {
        if (folderStamp(dir) === before) cache.store(dir, folderKey(dir, { exact: true }), files, problems);
      });
    }
    return problems;
  }

  /**
   * After a start served from the cache, the compiler is loaded in the background a moment after
   * the last result the cache served (it runs in the worker's thread), so that the first save is
   * checked by a warm program. Counted from the last, not the first: scripts load in runs while
   * esbuild bundles the next, and a worker started during the start would be asked for every
   * script after it (500 scripts booted at load took 9.4 s instead of 5.0). Only while the server
   * is quiet: loading the compiler takes over a second of a core, and a restarted server taking
   * traffic at once spent four times its usual CPU per request in its first two seconds
   * (docs/benchmarks.md, "A server's first seconds"). A save checked before then loads it at once.
   */
  private warmTimer: NodeJS.Timeout | undefined;
  private warmLater(dir: string, files: readonly string[]): void {
    clearTimeout(this.warmTimer);
    this.warmTimer = setTimeout(() => {
      if (this.worker || this.closed) return;
      if (this.quiet?.() === false) this.warmLater(dir, files);
      else this.ask(dir, files).catch(() => undefined);
    }, 1_000);
    this.warmTimer.unref();
  }

  private ask(dir: string, files: readonly string[]): Promise<TypeProblem[]> {
    const worker = this.started();
    const id = ++this.nextId;
    return new Promise<TypeProblem[]>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(worker, new Error(`the type check did not answer within ${CHECK_TIMEOUT_MS / 1000} s`)), CHECK_TIMEOUT_MS);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      // Kept alive only while a check is waited for: an idle worker never holds the process open.
      worker.ref();
      worker.postMessage({ id, dir: path.resolve(dir), files: [...files] });
    });
  }

  private closed = false;

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.warmTimer);
    const worker = this.worker;
    this.worker = undefined;
    if (worker) {
      this.failAll(new Error("the type checker was stopped"));
      await worker.terminate();
    }
  }

  private started(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(workerFile("runtime/compile/typecheck-worker"));
    worker.unref();
    worker.on("message", (message: { id: number; problems?: TypeProblem[]; error?: string }) => {
      const pending = this.pending.get(message.id);
      if (!pending) return;
      this.pending.delete(message.id);
      clearTimeout(pending.timer);
      if (this.pending.size === 0) worker.unref();
      if (message.error !== undefined) pending.reject(new Error(message.error.split("\n")[0]));
      else pending.resolve(message.problems ?? []);
    });
    worker.on("error", (error) => this.fail(worker, error));
    worker.on("exit", (code) => this.fail(worker, new Error(`the type checker's worker exited (${code})`)));
    this.worker = worker;
    return worker;
  }

  private fail(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    this.failAll(error);
    void worker.terminate();
  }

  private failAll(error: Error): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
  }
}
