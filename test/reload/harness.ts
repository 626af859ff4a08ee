import { mkdirSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { configSchema, type Config, type ConfigInput } from "../../runtime/config.js";
import { callLeased } from "../helpers/lease.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { watchLoopLoad } from "../../runtime/sandbox/loop-load.js";
import type { ScriptState } from "../../runtime/registry/states.js";
import { watchScripts, type ScriptWatcher, type WatchOptions } from "../../runtime/registry/watcher.js";
import type { HookAnswer } from "../../runtime/schema/envelope.js";
import type { HookName } from "../../runtime/schema/hooks.js";
import { script, scriptsFolder } from "../helpers/scripts.js";

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface LogEntry {
  level: "info" | "warn" | "error" | "debug";
  fields: Record<string, unknown>;
  message: string;
}

/** A logger stub that keeps what it is given. */
export function capturingLog() {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry["level"]) =>
    (fields: unknown, message?: string): void => {
      if (typeof fields === "string") entries.push({ level, fields: {}, message: fields });
      else entries.push({ level, fields: (fields ?? {}) as Record<string, unknown>, message: message ?? "" });
    };
  return { entries, log: { info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug") } as never };
}

/** A script on process_registration_params whose answer carries its version marker in two fields. */
export function marked(n: number | string, options: { extra?: string; top?: string } = {}): string {
  return script("process_registration_params", `return { USER_ID: ${JSON.stringify(n)}, LINE_NUMBER: ${JSON.stringify(n)} };`, options.extra, options.top);
}

export type RegistryEvent =
  { kind: "loaded"; name: string; version: string } | { kind: "failed"; name: string; message: string } | { kind: "unloaded"; name: string };

export interface Setup {
  dir: string;
  config: Config;
  registry: ScriptRegistry;
  watcher: ScriptWatcher;
  events: RegistryEvent[];
  logs: LogEntry[];
  /** Reload attempts by file name (registry.reload, and each script of registry.applyBatch), whatever their outcome. */
  reloads: Map<string, number>;
  file(name: string): string;
  /** An in-place save (open with truncate, write). */
  write(name: string, source: string): void;
  /** An editor's atomic save: a temporary file in the same folder renamed over the script. */
  renameSave(name: string, source: string): void;
  remove(name: string): void;
  state(name: string): ScriptState | undefined;
  call(hook?: HookName, input?: Record<string, unknown>): Promise<HookAnswer>;
  /** The answer's data of process_registration_params, or throws on an error answer. */
  data(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

const open: Setup[] = [];

/** A real scripts folder, a real registry loaded from it and a real chokidar watcher on it. */
export async function setup(
  files: Record<string, string>,
  config: Partial<ConfigInput> = {},
  options: WatchOptions & { folder?: string; scriptsDir?: string } = {},
): Promise<Setup> {
  // By default a fresh temporary folder; with `folder`, a folder of that name inside one; with
  // `scriptsDir`, that folder as it is (a checkout), left in place afterwards.
  const dir = options.scriptsDir ?? (options.folder ? path.join(scriptsFolder({}), options.folder) : scriptsFolder(files));
  if (options.folder) {
    for (const [name, source] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
      writeFileSync(path.join(dir, name), source);
    }
  }
  const parsed = configSchema.parse({ scriptsDir: dir, ...config });
  const { entries: logs, log } = capturingLog();
  // As serve runs it: short scripts' calls leave the event loop while it is busy, so that requests
  // in closed loops cannot keep the watcher's events from being handled.
  const loopLoad = watchLoopLoad();
  const registry = new ScriptRegistry(parsed, log, { loopLoad });
  const events: RegistryEvent[] = [];
  registry.on("loaded", (name, version) => events.push({ kind: "loaded", name, version }));
  registry.on("failed", (name, problem) => events.push({ kind: "failed", name, message: problem.message }));
  registry.on("unloaded", (name) => events.push({ kind: "unloaded", name }));
  const reloads = new Map<string, number>();
  const count = (file: string) => {
    const name = path.basename(file);
    reloads.set(name, (reloads.get(name) ?? 0) + 1);
  };
  const reload = registry.reload.bind(registry);
  registry.reload = (file, compiled) => {
    count(file);
    return reload(file, compiled);
  };
  // The watcher reloads a batch's scripts together.
  const applyBatch = registry.applyBatch.bind(registry);
  registry.applyBatch = (change) => {
    for (const file of change.reload) count(file);
    return applyBatch(change);
  };
  const watcher = watchScripts(registry, log, options);
  await watcher.ready;
  await registry.loadAll();
  reloads.clear();
  events.length = 0;
  let temp = 0;
  const self: Setup = {
    dir,
    config: parsed,
    registry,
    watcher,
    events,
    logs,
    reloads,
    file: (name) => path.join(dir, name),
    write: (name, source) => writeFileSync(path.join(dir, name), source),
    renameSave(name, source) {
      const target = path.join(dir, name);
      const tmp = `${target}.tmp-${process.pid}-${temp++}`;
      writeFileSync(tmp, source);
      renameSync(tmp, target);
    },
    remove: (name) => unlinkSync(path.join(dir, name)),
    state: (name) => registry.states().find((state) => state.name === name),
    // A parameter set the scripts' data is merged over (an empty one would answer no_data).
    async call(hook = "process_registration_params", input: Record<string, unknown> = { CALL_ID: "c-1" }) {
      const result = await callLeased(registry, parsed, hook, input);
      return result.answer;
    },
    async data() {
      const answer = await self.call();
      if (answer.state !== "success") throw new Error(`error answer: ${JSON.stringify(answer.error)}`);
      // What the scripts set, over the base parameter set that call() sends.
      const { CALL_ID: _base, ...changes } = answer.data;
      return changes;
    },
    async close() {
      await watcher.close();
      await registry.close();
      loopLoad.close();
      if (!options.scriptsDir) rmSync(options.folder ? path.dirname(dir) : dir, { recursive: true, force: true });
    },
  };
  open.push(self);
  return self;
}

/** Close every setup of the test (afterEach). */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((s) => s.close()));
}
