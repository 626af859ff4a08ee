import type { ScriptCapabilities } from "./capabilities.js";
import type { HookDatas, HookInputs, HookName } from "./hook-types.generated.js";

/** A hook's input as a handler sees it: `call_full` with its declared fields only. */
export type HookInput<H extends HookName> = HookInputs[H];
/** A hook's data: its defaults, and the fields a script may change. */
export type HookData<H extends HookName> = HookDatas[H];

/** Markers shared with the sandbox prelude through the isolate's symbol registry. */
export const SCRIPT_MARK = Symbol.for("callscript.script");
const CANCEL_MARK = Symbol.for("callscript.cancel");

/** Limits a script may ask for; the server's maxima bound them. */
export interface ScriptLimits {
  /** CPU time of one invocation, in milliseconds (one that waits for a promise that never settles is ended once this has passed and its isolate has run nothing for max(200 ms, this)). */
  timeoutMs?: number;
  /** Heap of the script's isolate, in MB (at least 8). */
  memoryMb?: number;
  /** Size of the returned data as JSON, in bytes. */
  outputBytes?: number;
  /** Log volume of one invocation, in bytes; past it lines are dropped behind a visible marker. */
  logBytes?: number;
}

export interface ScriptLogger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface HookContext<H extends HookName, S> extends ScriptCapabilities {
  /** The hook being run. */
  hook: H;
  /** The data so far: the hook's defaults with the changes of the scripts that ran before. */
  data: HookData<H>;
  /** This script's settings: its declared defaults overridden by the config file. Read-only. */
  settings: Readonly<S>;
  /** Lines reach the server log tagged with the script and the request. */
  log: ScriptLogger;
  /** The id of the HTTP request (or runner case) this invocation belongs to. */
  requestId: string;
  /** This script's name (its file name without `.ts`). */
  script: string;
}

declare const cancelBrand: unique symbol;
/** What `cancel()` returns: the CRM request this hook precedes is not sent. */
export interface Cancel {
  readonly [cancelBrand]: true;
}

/** Changes to merge over the data so far; `undefined` or `{}` changes nothing. */
export type HookResult<H extends HookName> = Partial<HookData<H>> | Cancel | undefined | void;

export type HookHandler<H extends HookName, S> = (input: HookInput<H>, ctx: HookContext<H, S>) => HookResult<H> | Promise<HookResult<H>>;

export type HookHandlers<S> = { [H in HookName]?: HookHandler<H, S> };

export interface ScriptDefinition<S extends object = Record<string, never>> {
  hooks: HookHandlers<S>;
  /** Scripts of one hook run by ascending order (default 0), then by name. */
  order?: number;
  limits?: ScriptLimits;
  /** Default settings; the config file's `scripts.<name>.settings` overrides them key by key. */
  settings?: S;
}

export function defineScript<S extends object = Record<string, never>>(definition: ScriptDefinition<S>): ScriptDefinition<S> {
  Object.defineProperty(definition, SCRIPT_MARK, { value: true });
  return definition;
}

/** Cancel the CRM request this hook precedes: the answer's data is `{}`. */
export function cancel(): Cancel {
  return Object.freeze({ [CANCEL_MARK]: true }) as unknown as Cancel;
}
