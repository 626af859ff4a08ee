import { createRequire } from "node:module";
import { IsolatedVmMissingError } from "../errors.js";

/**
 * The part of isolated-vm the host uses. Declared here because which release line is installed
 * depends on the Node version (see below), so no single package's typings are always present.
 */
export interface HeapStatistics {
  used_heap_size: number;
  heap_size_limit: number;
  total_heap_size: number;
}

export interface Reference<T = unknown> {
  get(property: string, options: { reference: true }): Promise<Reference>;
  getSync(property: string, options: { reference: true }): Reference;
  apply(receiver: undefined, args: unknown[], options?: { timeout?: number; result?: { promise?: boolean; copy?: boolean } }): Promise<unknown>;
  /** On the calling thread (the event loop's): no hop to the isolate's thread, and nothing else runs meanwhile. */
  applySync(receiver: undefined, args: unknown[], options?: { timeout?: number; result?: { copy?: boolean } }): unknown;
  release(): void;
  readonly typeof: string;
  /** Only to carry the guest type in our own signatures. */
  readonly __guest?: T;
}

export interface Script {
  run(context: Context, options: { reference: true; timeout?: number }): Promise<Reference>;
  run(context: Context, options?: { timeout?: number }): Promise<unknown>;
  runSync(context: Context, options: { reference: true; timeout?: number }): Reference;
  runSync(context: Context, options?: { timeout?: number }): unknown;
  release(): void;
}

export interface Context {
  release(): void;
}

export interface Isolate {
  readonly cpuTime: bigint;
  readonly wallTime: bigint;
  readonly isDisposed: boolean;
  createContext(): Promise<Context>;
  createContextSync(): Context;
  /** `lineOffset`: lines ahead of `code` in what stack traces count (0-based, as V8's ScriptOrigin). */
  compileScript(code: string, origin?: { filename?: string; lineOffset?: number }): Promise<Script>;
  compileScriptSync(code: string, origin?: { filename?: string; lineOffset?: number }): Script;
  getHeapStatisticsSync(): HeapStatistics;
  getHeapStatistics(): Promise<HeapStatistics>;
  dispose(): void;
}

export interface IsolateOptions {
  memoryLimit?: number;
  onCatastrophicError?: (message: string) => void;
}

/** A host function the guest calls as a plain function (arguments copied); "ignored": it returns at once, nothing comes back. */
export interface Callback {
  readonly __callback?: never;
}

/** A value held outside any isolate; `copyInto` hands it to one as an argument (a SharedArrayBuffer's memory is shared, not copied). */
export interface ExternalCopy {
  copyInto(options?: { release?: boolean }): unknown;
}

export interface Ivm {
  Isolate: new (options?: IsolateOptions) => Isolate;
  Callback: new (fn: (...args: unknown[]) => void, options: { ignored: true }) => Callback;
  ExternalCopy: new (value: unknown) => ExternalCopy;
}

export interface LoadedIvm {
  ivm: Ivm;
  /** The installed package alias, e.g. isolated-vm-7. */
  line: string;
  version: string;
  /** Whether this line has the fix for GHSA-864f-rcv7-6rh4 (ExternalCopy transferList). */
  patched: boolean;
}

/**
 * The release lines, newest first, with the Node majors each supports. isolated-vm 6.2.0 and
 * 7.0.1 fix a critical escape (GHSA-864f-rcv7-6rh4); 5.0.4 does not, and is used only on Node 20,
 * where the fixed lines do not build. package.json installs each as an optional dependency; npm
 * skips those whose `engines` exclude the running Node.
 */
const LINES = [
  { line: "isolated-vm-7", patched: true, nodes: (major: number) => major >= 24 },
  { line: "isolated-vm-6", patched: true, nodes: (major: number) => major >= 22 && major < 26 },
  { line: "isolated-vm-5", patched: false, nodes: (major: number) => major < 22 },
];

const require = createRequire(import.meta.url);
let loaded: LoadedIvm | undefined;

export function nodeMajor(version = process.versions.node): number {
  return Number(version.split(".")[0]);
}

/** Which lines may serve a Node major, in order of preference. */
export function linesFor(major: number): { line: string; patched: boolean }[] {
  return LINES.filter((candidate) => candidate.nodes(major)).map(({ line, patched }) => ({ line, patched }));
}

/**
 * isolated-vm, loaded once. Only the host sandbox holds the module: script code never reaches
 * an isolated-vm object, since an escape through it corrupts host memory.
 */
export function loadIsolatedVm(): LoadedIvm {
  if (loaded) return loaded;
  const major = nodeMajor();
  const failures: string[] = [];
  for (const { line, patched } of linesFor(major)) {
    try {
      const ivm = require(line) as Ivm;
      const { version } = require(`${line}/package.json`) as { version: string };
      loaded = { ivm, line, version, patched };
      return loaded;
    } catch (error) {
      failures.push(`${line}: ${(error as Error).message.split("\n")[0]}`);
    }
  }
  const tried = failures.length ? failures.join("; ") : "no isolated-vm line supports this Node version";
  throw new IsolatedVmMissingError(
    process.versions.node,
    `${tried}. Supported: Node 20 (isolated-vm 5.0.4, unpatched), 22 (6.2.0), 24 and 26 (7.0.1); reinstall with npm install on the Node that runs callscript`,
  );
}

export function isolatedVm(): Ivm {
  return loadIsolatedVm().ivm;
}

/** A warning for the operator when the sandbox runs on an unpatched isolated-vm, else undefined. */
export function isolatedVmWarning(): string | undefined {
  const { patched, version } = loadIsolatedVm();
  if (patched) return undefined;
  return (
    `Node ${process.versions.node} runs isolated-vm ${version}, which lacks the fix for GHSA-864f-rcv7-6rh4. ` +
    `callscript never hands an isolated-vm object to script code, which that escape needs, but run Node 22 or newer ` +
    `to get the patched isolated-vm (6.2.0 / 7.0.1).`
  );
}
