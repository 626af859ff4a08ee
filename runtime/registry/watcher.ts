import { existsSync } from "node:fs";
import path from "node:path";
import { watch } from "chokidar";
import type { Logger } from "pino";
import { isScriptFile, type ScriptRegistry } from "./registry.js";

/** Quiet time after the last event before a burst of saves is acted on. */
const SETTLE_MS = 15;
/** A stream of events never holds a reload back longer than this. */
const MAX_WAIT_MS = 150;

const SOURCE = /\.(m?ts|m?js|json)$/;

export interface ScriptWatcher {
  /** Resolves when the initial scan is done and changes are being picked up. */
  ready: Promise<void>;
  close(): Promise<void>;
}

/**
 * Keeps the registry in step with the scripts folder. Events are gathered into batches (editors
 * save in bursts, and an atomic save arrives as unlink + add); a batch is acted on as the files
 * stand once it settles, so a rename-save is a reload, never an unload. Batches run one after
 * another, so two saves of one file cannot race.
 */
export function watchScripts(registry: ScriptRegistry, log: Pick<Logger, "info" | "warn" | "error" | "debug">): ScriptWatcher {
  const root = registry.scriptsDir;
  const pending = new Set<string>();
  let settleTimer: NodeJS.Timeout | undefined;
  let firstEventAt = 0;
  let running: Promise<void> = Promise.resolve();
  let closed = false;

  const watcher = watch(root, {
    ignoreInitial: true,
    ignored: (file, stats) =>
      /(^|[\\/])(node_modules|\.git)([\\/]|$)/.test(file) ||
      path.basename(file).startsWith(".") ||
      (stats?.isFile() === true && (!SOURCE.test(file) || /\.cases\.json$/.test(file))),
  });

  const flush = () => {
    settleTimer = undefined;
    const batch = [...pending];
    pending.clear();
    running = running.then(() => apply(batch)).catch((error) => log.error({ err: error }, "script reload failed"));
  };

  const schedule = (file: string) => {
    if (closed) return;
    if (pending.size === 0) firstEventAt = Date.now();
    pending.add(path.resolve(file));
    clearTimeout(settleTimer);
    const waited = Date.now() - firstEventAt;
    settleTimer = setTimeout(flush, waited >= MAX_WAIT_MS ? 0 : Math.min(SETTLE_MS, MAX_WAIT_MS - waited));
  };

  async function apply(files: string[]): Promise<void> {
    const scripts = new Set<string>();
    const gone = new Set<string>();
    let helperChanged = false;
    for (const file of files) {
      if (isScriptFile(file, root)) {
        (existsSync(file) ? scripts : gone).add(file);
      } else {
        helperChanged = true;
        // A changed helper reloads every script whose bundle includes it.
        for (const name of registry.dependentsOf(file)) {
          const scriptFile = registry.fileOf(name);
          if (scriptFile) scripts.add(scriptFile);
        }
      }
    }
    if (helperChanged) {
      // A helper that appears may be the import a failing script was missing.
      for (const state of registry.states()) {
        if (state.lastError) scripts.add(path.join(root, state.file));
      }
    }
    await Promise.all([
      ...[...gone].map((file) => registry.unload(file)),
      ...[...scripts].map((file) => registry.reload(file)),
    ]);
  }

  watcher.on("add", schedule).on("change", schedule).on("unlink", schedule);
  watcher.on("error", (error) => log.error({ err: error }, "watching the scripts folder failed"));

  const ready = new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
  ready.then(() => log.info({ scriptsDir: root }, "watching scripts for changes")).catch(() => undefined);

  return {
    ready,
    async close() {
      closed = true;
      clearTimeout(settleTimer);
      pending.clear();
      await watcher.close();
      await running;
    },
  };
}
