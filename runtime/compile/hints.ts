/**
 * What the sandbox offers instead of the globals admins reach for (Node's, the browser's). One
 * table, used where an admin meets the mistake: the type check ("Cannot find name 'fetch'"), a
 * script's load, and an invocation that throws `ReferenceError: fetch is not defined`.
 */

const NETWORK = "the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config";
const TIMERS =
  "there are no timers: a handler runs once per call, within its time limit; for times use the call's own (call_full.channel.start_time, ...) or Date.now()";
const MODULES =
  "there is no module loader: import 'callscript' or files of the scripts folder by relative path (import { x } from \"./lib/x\"), which are bundled into the script";
const PROCESS = "there is no process or environment: a script's configuration comes from ctx.settings (scripts.<name>.settings in the server's config)";
const BROWSER = "scripts run in a bare JavaScript sandbox, not a browser or Node: the language, console, the SDK and ctx are all there is";

const HINTS: Record<string, string> = {
  fetch: NETWORK,
  XMLHttpRequest: NETWORK,
  WebSocket: NETWORK,
  EventSource: NETWORK,
  setTimeout: TIMERS,
  setInterval: TIMERS,
  setImmediate: TIMERS,
  clearTimeout: TIMERS,
  clearInterval: TIMERS,
  queueMicrotask: "there is no queueMicrotask: await a resolved promise (await null) to yield",
  require: MODULES,
  module: MODULES,
  exports: MODULES,
  __dirname: "there is no file system: data a script needs goes in its settings or in a helper module of the scripts folder",
  __filename: "there is no file system: ctx.script is the script's name",
  process: PROCESS,
  Buffer: "there is no Buffer: use strings (and the SDK's digits(), phone helpers) or Uint8Array",
  global: "there is no `global`: use globalThis, the script's own",
  window: BROWSER,
  document: BROWSER,
  navigator: BROWSER,
  localStorage: "there is no storage: a handler gets the call's data and ctx; keep lists and maps in settings",
  sessionStorage: "there is no storage: a handler gets the call's data and ctx; keep lists and maps in settings",
  URL: "there is no URL class: use string functions or a regular expression",
  URLSearchParams: "there is no URLSearchParams: use string functions or a regular expression",
  TextEncoder: "there is no TextEncoder: use strings",
  TextDecoder: "there is no TextDecoder: use strings",
  crypto: "there is no crypto: for ids use ctx.requestId or the call's own ids; Math.random() is there",
  performance: "there is no performance: Date.now() is there, and `callscript run` shows a handler's time",
  Intl: "Intl is removed from the sandbox (its memory is outside the heap limit); Date's and Number's toLocaleString still work",
  WebAssembly: "WebAssembly is removed from the sandbox (its memory is outside the heap limit)",
};

/** What to use instead of a global the sandbox does not have, or undefined when there is no advice. */
export function sandboxHint(name: string): string | undefined {
  return Object.hasOwn(HINTS, name) ? HINTS[name] : undefined;
}

/**
 * `ReferenceError: fetch is not defined` (or `TypeError: globalThis.fetch is not a function`) →
 * the same with what to do instead; any other message as it was. Applied to what a script's load
 * or invocation threw.
 */
export function withSandboxHint(message: string): string {
  const match = /^ReferenceError: (\w+) is not defined\b/.exec(message) ?? /^TypeError: (?:globalThis|self|window)\.(\w+) is not a function\b/.exec(message);
  if (!match) return message;
  const hint = sandboxHint(match[1]!);
  return hint && !message.includes(hint) ? `${message} (${match[1]}: ${hint})` : message;
}
