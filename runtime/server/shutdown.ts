import type { FastifyInstance } from "fastify";
import type { ReloadResult, ScriptRegistry } from "../registry/registry.js";

type Log = { info(fields: object, message: string): void; warn(fields: object, message: string): void; error(fields: object, message: string): void };

export interface SignalsOptions {
  app: FastifyInstance;
  registry: ScriptRegistry;
  /** The file watcher, when there is one: closed on shutdown, and SIGHUP reloads through it. */
  watcher?: { reloadAll(): Promise<ReloadResult[]>; close(): Promise<void> } | undefined;
  log: Log;
  /** Past this, a shutdown that has not finished exits 1 anyway. */
  graceMs: number;
  /** process.exit by default; tests pass their own. */
  exit?: (code: number) => void;
}

/** One line per reloaded script set: how many loaded, which failed and why. */
export function summarizeReload(results: readonly ReloadResult[]) {
  const loaded = results.filter((result) => result.ok).map((result) => result.name);
  const failed = results.flatMap((result) => (!result.ok && "problem" in result ? [{ script: result.name, error: result.problem.message }] : []));
  return { loaded, failed };
}

/**
 * A clean stop lets the event loop run dry rather than calling process.exit at once: isolated-vm
 * tears disposed isolates down on its own threads, and exiting under them was seen to end the
 * process with SIGSEGV instead of 0. The timer is only a backstop for a handle left open.
 */
function exitProcess(code: number): void {
  if (code !== 0) process.exit(code);
  process.exitCode = 0;
  setTimeout(() => process.exit(0), 2_000).unref();
}

/**
 * SIGTERM / SIGINT: stop accepting connections, let the requests in flight get their answers, then
 * stop the watcher and dispose the isolates (registry.close drains each first), and exit 0. A
 * second signal, or a drain longer than `graceMs`, exits 1 at once.
 *
 * SIGHUP: reload every script, as if each file had been saved (through the watcher when there is
 * one, so that it cannot race a save).
 */
export function handleSignals(options: SignalsOptions): { shutdown(signal: string): Promise<void>; dispose(): void } {
  const { app, registry, watcher, log } = options;
  const exit = options.exit ?? exitProcess;
  let stopping: Promise<void> | undefined;

  function shutdown(signal: string): Promise<void> {
    if (stopping) {
      log.warn({ signal }, "second signal during shutdown: exiting now");
      exit(1);
      return stopping;
    }
    log.info({ signal, graceMs: options.graceMs }, "shutting down: finishing the requests in flight");
    const timer = setTimeout(() => {
      log.error({ graceMs: options.graceMs }, "shutdown took too long: exiting with requests unfinished");
      exit(1);
    }, options.graceMs);
    timer.unref();
    stopping = (async () => {
      try {
        await Promise.all([app.close(), watcher?.close()]);
        await registry.close();
        clearTimeout(timer);
        log.info({ signal }, "stopped");
        exit(0);
      } catch (error) {
        clearTimeout(timer);
        log.error({ err: error }, "shutdown failed");
        exit(1);
      }
    })();
    return stopping;
  }

  let reloading = false;
  function reload(): void {
    if (stopping) return;
    if (reloading) {
      log.info({}, "SIGHUP: a reload is already running");
      return;
    }
    reloading = true;
    log.info({ signal: "SIGHUP" }, "reloading every script");
    (watcher ? watcher.reloadAll() : registry.loadAll())
      .then((results) => {
        const summary = summarizeReload(results);
        (summary.failed.length > 0 ? log.warn : log.info).call(log, summary, `reloaded: ${summary.loaded.length} loaded, ${summary.failed.length} failed`);
      })
      .catch((error: unknown) => log.error({ err: error }, "reload failed"))
      .finally(() => {
        reloading = false;
      });
  }

  const onTerm = () => void shutdown("SIGTERM");
  const onInt = () => void shutdown("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", reload);
  return {
    shutdown,
    dispose() {
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      process.off("SIGHUP", reload);
    },
  };
}
