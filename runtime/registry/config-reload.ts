import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import type { ConfigChange } from "./apply-config.js";
import type { ScriptRegistry } from "./registry.js";

/** Quiet time after the config file's last event: an editor's save comes as a burst. */
const SETTLE_MS = 50;

export interface ConfigReloaderOptions {
  registry: ScriptRegistry;
  log: Pick<Logger, "info" | "warn" | "error">;
  /** Read the configuration again as at start: the file, the environment, the command line. */
  read: () => Config;
  /** The config file; without one there is nothing to watch, and a reload re-reads the rest. */
  file?: string | undefined;
  /** Reload when the file is saved (the server's `watch`). */
  watch: boolean;
  /** Run a job in turn with the script watcher's batches, so a reload never straddles two configs. */
  exclusive?: <T>(job: () => Promise<T>) => Promise<T>;
  /** A configuration was applied (the server sets its log level from it). */
  onApplied?: (config: Config) => void;
}

export interface ConfigReloader {
  /** Resolves once the file is watched (at once without watching). */
  ready: Promise<void>;
  /** Read and apply the configuration now (SIGHUP); refused whole when anything in it is wrong. */
  reload(reason: string): Promise<ConfigChange>;
  close(): Promise<void>;
}

/**
 * The configuration, reloaded without a restart: when its file is saved (atomic saves included)
 * or on SIGHUP. A valid new configuration applies at once (registry.applyConfig); one that does
 * not parse, does not fit the schema, names a script that is not there, gives a script settings it
 * does not declare, or limits a script cannot load with, is refused with every reason, in the log
 * and in /scripts (`config.lastReload`), and the one before stays in force.
 */
export function configReloader(options: ConfigReloaderOptions): ConfigReloader {
  const { registry, log } = options;
  const file = options.file ? path.resolve(options.file) : undefined;
  const exclusive = options.exclusive ?? (<T>(job: () => Promise<T>) => job());
  registry.configReport = { file: file ?? null, loadedAt: new Date().toISOString(), lastReload: null };
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  async function reload(reason: string): Promise<ConfigChange> {
    const at = new Date().toISOString();
    let change: ConfigChange;
    try {
      const next = options.read();
      change = await exclusive(() => registry.applyConfig(next));
      if (change.ok) options.onApplied?.(next);
    } catch (error) {
      change = { ok: false, problems: [(error as Error).message] };
    }
    if (change.ok) {
      registry.configReport = {
        file: file ?? null,
        loadedAt: at,
        lastReload: { at, ok: true, problems: [], changed: change.changed, restartRequired: change.restartRequired },
      };
      log.info(
        { reason, file, changed: change.changed, loaded: change.reloaded },
        change.changed.length > 0 ? "configuration reloaded" : "configuration reloaded: nothing changed",
      );
      if (change.restartRequired.length > 0) {
        log.warn(
          { reason, file, keys: change.restartRequired },
          `configuration: ${change.restartRequired.join(", ")} changed, which takes effect only after a restart; the rest applies now`,
        );
      }
    } else {
      registry.configReport = { ...registry.configReport, lastReload: { at, ok: false, problems: change.problems, changed: [], restartRequired: [] } };
      log.error({ reason, file, problems: change.problems }, `configuration refused; the one in force stays: ${change.problems.join("; ")}`);
    }
    return change;
  }

  let watcher: FSWatcher | undefined;
  let ready = Promise.resolve();
  if (file && options.watch) {
    // The folder, not the file: an atomic save replaces the file, and a watch on the old one ends.
    const dir = path.dirname(file);
    watcher = watch(dir, { ignoreInitial: true, depth: 0, ignored: (candidate) => candidate !== dir && path.resolve(candidate) !== file });
    const changed = () => {
      if (closed) return;
      clearTimeout(timer);
      timer = setTimeout(() => void reload("the config file was saved"), SETTLE_MS);
    };
    watcher.on("add", changed).on("change", changed);
    watcher.on("error", (error) => log.error({ err: error, file }, "watching the config file failed"));
    ready = new Promise((resolve) => watcher!.once("ready", () => resolve()));
  }

  return {
    ready,
    reload,
    async close() {
      closed = true;
      clearTimeout(timer);
      await watcher?.close();
    },
  };
}
