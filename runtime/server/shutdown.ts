import { performance } from "node:perf_hooks";
import type { FastifyInstance } from "fastify";
import type { ReloadResult, ScriptRegistry } from "../registry/registry.js";
import { collectDeadHandles } from "../sandbox/collect-handles.js";
import { disposeEveryIsolate } from "../sandbox/isolates.js";
import type { HookFailure } from "../schema/envelope.js";
import type { Catastrophe } from "./catastrophe.js";

type LogFn = (fields: object, message: string) => void;
type Log = { info: LogFn; warn: LogFn; error: LogFn; fatal?: LogFn; flush?: (done?: (error?: Error) => void) => void };

/** After a catastrophic error, the requests in flight are answered within this, or the process ends anyway. */
export const CATASTROPHE_GRACE_MS = 2_000;
/** Time given to the last log lines to reach stdout before an abort. */
const LOG_FLUSH_MS = 200;
/**
 * The same signal again within this is the first one passed on, not a second request: a launcher
 * that forwards signals to its child (bin/callscript.js when it restarts Node with its flag, npm,
 * npx) is in the child's process group, so a signal to the group reaches the child twice, within
 * a millisecond or two. Taken for a second signal, it ended every graceful stop at once.
 */
const REPEATED_SIGNAL_MS = 1_000;

/**
 * Abort once the logger's last lines are out. pino writes to stdout asynchronously and flushes at
 * exit, which an abort skips: the lines that say why the process ended would be lost. Its flush()
 * does not wait for a write in progress, so the loop gets LOG_FLUSH_MS to finish them (a few lines
 * to a pipe take well under a millisecond; a reader that stalls longer loses them).
 */
export function flushThenAbort(log: Pick<Log, "flush">, abort: () => void = () => process.abort()): void {
  try {
    log.flush?.();
  } catch {
    // The abort matters more than the log.
  }
  setTimeout(abort, LOG_FLUSH_MS);
}

export interface SignalsOptions {
  app: FastifyInstance;
  registry: ScriptRegistry;
  /** The file watcher, when there is one: closed on shutdown, and SIGHUP reloads through it. */
  watcher?: { reloadAll(): Promise<ReloadResult[]>; close(): Promise<void> } | undefined;
  /** SIGHUP re-reads the configuration first (a refused one is logged and the scripts still reload). */
  reloadConfig?: () => Promise<unknown>;
  /** The scripts' capabilities (fetch connections, the kv store): closed last, once no invocation can use them. */
  capabilities?: { close(): Promise<void> } | undefined;
  log: Log;
  /** Past this, a shutdown that has not finished exits 1 anyway. */
  graceMs: number;
  /** process.exit by default; tests pass their own. */
  exit?: (code: number) => void;
  /**
   * Before a stop that cannot wait (a second signal, the grace period over): dispose every isolate,
   * so that the exit is not held up by a script still running. disposeEveryIsolate by default.
   */
  stopIsolates?: () => number;
  /**
   * isolated-vm's onCatastrophicError, as `serve` wires it: when tripped, the server stops
   * accepting, the hook route answers every request in flight with an error, and the process ends
   * through `abort`.
   */
  catastrophe?: Catastrophe;
  /**
   * How the process ends after a catastrophic error: process.abort() by default, as isolated-vm
   * advises. A normal exit runs isolated-vm's teardown, which would wait on the isolate whose thread
   * it has parked for good (and exiting under that teardown was seen to segfault): the process could
   * hang instead of ending, and a service manager restarts a dead process, not a hung one.
   */
  abort?: () => void;
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
 * stop the watcher and dispose the isolates (registry.close drains each first), close the
 * capabilities (fetch connections, the kv store), and exit 0. A
 * second signal (not the first one passed on by a launcher, see REPEATED_SIGNAL_MS), or a drain
 * longer than `graceMs`, logs what the stop was still waiting for, disposes every isolate and
 * exits 1 at once.
 *
 * SIGHUP: re-read the configuration (when given reloadConfig), then reload every script, as if each
 * file had been saved (through the watcher when there is one, so that it cannot race a save).
 *
 * Not close-with-grace: it exits with process.exit at once (see exitProcess), takes any second
 * signal for an abort (a launcher passes the first one on), and knows nothing of SIGHUP or of what
 * a stop cut short was waiting for.
 */
export function handleSignals(options: SignalsOptions): { shutdown(signal: string): Promise<void>; dispose(): void } {
  const { app, registry, watcher, log } = options;
  const exit = options.exit ?? exitProcess;
  const abort = options.abort ?? (() => process.abort());
  const stopIsolates = options.stopIsolates ?? disposeEveryIsolate;
  let stopping: Promise<void> | undefined;
  let first: { signal: string; at: number } | undefined;
  /** What the stop waits for now, for the log line of a stop cut short. */
  let waitingFor: () => object = () => ({});
  let appClosed: Promise<void> | undefined;
  const closeApp = () => (appClosed ??= app.close());
  let fatal = false;

  /** End now: say what the stop was still waiting for, stop every isolate, exit 1. */
  function cutShort(fields: object, message: string): void {
    let still: object;
    try {
      still = waitingFor();
    } catch {
      still = {};
    }
    log.error({ ...fields, ...still }, message);
    try {
      log.info({ isolates: stopIsolates() }, "isolates disposed; exiting");
    } catch (error) {
      log.error({ err: error }, "disposing the isolates failed; exiting");
    }
    exit(1);
  }

  function shutdown(signal: string): Promise<void> {
    if (stopping) {
      if (signal === first?.signal && performance.now() - first.at < REPEATED_SIGNAL_MS) {
        log.info({ signal }, "the same signal again at once (passed on by a launcher): still stopping");
        return stopping;
      }
      cutShort({ signal }, "second signal during shutdown: exiting now");
      return stopping;
    }
    first = { signal, at: performance.now() };
    log.info({ signal, graceMs: options.graceMs }, "shutting down: finishing the requests in flight");
    const timer = setTimeout(() => cutShort({ graceMs: options.graceMs }, "shutdown took too long: exiting with work unfinished"), options.graceMs);
    timer.unref();
    stopping = (async () => {
      try {
        waitingFor = () => ({ waitingFor: "the requests in flight and open connections (the HTTP server's close)" });
        await Promise.all([closeApp(), watcher?.close()]);
        if (fatal) return;
        waitingFor = () => ({ waitingFor: "script versions still running invocations", versions: registry.stillClosing() });
        await registry.close();
        waitingFor = () => ({ waitingFor: "the capabilities' connections (fetch, the kv store)" });
        await options.capabilities?.close();
        // The disposed isolates' handles, collected while isolated-vm can still hear of it.
        await collectDeadHandles();
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
    log.info({ signal: "SIGHUP" }, options.reloadConfig ? "reloading the configuration and every script" : "reloading every script");
    (options.reloadConfig?.() ?? Promise.resolve())
      .catch((error: unknown) => log.error({ err: error }, "configuration reload failed"))
      .then(() => (watcher ? watcher.reloadAll() : registry.loadAll()))
      .then((results) => {
        const summary = summarizeReload(results);
        (summary.failed.length > 0 ? log.warn : log.info).call(log, summary, `reloaded: ${summary.loaded.length} loaded, ${summary.failed.length} failed`);
      })
      .catch((error: unknown) => log.error({ err: error }, "reload failed"))
      .finally(() => {
        reloading = false;
      });
  }

  /**
   * A catastrophic error: log it, stop accepting (the hook route has already answered the requests
   * in flight with an error envelope, and answers so any that still come on open connections), let
   * those answers go out, then end the process — at the latest after CATASTROPHE_GRACE_MS. The
   * isolates are not disposed: one of them is beyond V8's control.
   */
  let disposed = false;
  function catastrophic(failure: HookFailure): void {
    if (fatal || disposed) return;
    fatal = true;
    (log.fatal ?? log.error).call(
      log,
      { script: failure.script, error: failure.message, graceMs: CATASTROPHE_GRACE_MS },
      "catastrophic error in a sandbox: answering the requests in flight with an error, then ending the process for the service manager to restart it",
    );
    let ending = false;
    const end = (fields: object, message: string) => {
      if (ending) return;
      ending = true;
      log.error(fields, message);
      flushThenAbort(log, abort);
    };
    const backstop = setTimeout(
      () => end({ graceMs: CATASTROPHE_GRACE_MS }, "requests still in flight after a catastrophic error: ending the process now"),
      CATASTROPHE_GRACE_MS,
    );
    closeApp().then(
      () => {
        clearTimeout(backstop);
        end({ script: failure.script }, "stopped after a catastrophic error; ending the process");
      },
      () => undefined,
    );
  }
  void options.catastrophe?.tripped.then(catastrophic);

  const onTerm = () => void shutdown("SIGTERM");
  const onInt = () => void shutdown("SIGINT");
  process.on("SIGTERM", onTerm);
  process.on("SIGINT", onInt);
  process.on("SIGHUP", reload);
  return {
    shutdown,
    dispose() {
      disposed = true;
      process.off("SIGTERM", onTerm);
      process.off("SIGINT", onInt);
      process.off("SIGHUP", reload);
    },
  };
}
