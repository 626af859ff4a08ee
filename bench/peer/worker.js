// @ts-check
// The peer of bench/peer.mjs: the same customization as callscript's examples, served as a
// Cloudflare Worker by workerd (npm `workerd`). Not a port: `./rules.js` is the examples' own code
// (examples/*.ts with the callscript SDK, bundled by esbuild when the bench starts), so the phone
// formatting and the three need_registration rules are byte for byte what callscript runs.
//
// What the Worker does per request, as a Worker written for this would: read the JSON body, start
// from the hook's defaults (runtime/schema/hooks.ts), run the hook's scripts in a row in
// callscript's order (by `order`, then by name), each with its settings (the script's defaults,
// overridden key by key by the config file), merge each one's changes over the data so far, and
// answer `{ state: "success", data }`. What it leaves out, and callscript does: schema validation
// of the input and of each script's changes, limits (CPU, memory, output, log), an isolate per
// script, leases, queues, metrics, the request log line.
import { config, scripts } from "./rules.js";

// Types for the check only (bench/tsconfig.json, with ./rules.d.ts), local to the Worker: it runs on
// workerd, not Node, and reads callscript's scripts and config without their hook types.
/**
 * A script as the SDK's defineScript returns it (sdk/define.ts), any hook's handler alike.
 * @typedef {{ hooks: Record<string, Handler | undefined>; order?: number; settings?: Record<string, unknown> }} Script
 * @typedef {(input: Record<string, unknown>, ctx: { hook: string; data: Record<string, unknown>; settings: Readonly<Record<string, unknown>>; log: ReturnType<typeof logger>; requestId: string; script: string }) => Changes | Promise<Changes>} Handler
 * @typedef {{ [key: string | symbol]: unknown } | undefined | void} Changes
 */
/**
 * What `./rules.js` keeps of callscript.config.json: each script's settings, each hook's failure policy.
 * @typedef {{ scripts?: Record<string, { settings?: Record<string, unknown> } | undefined>; hooks?: Record<string, { failurePolicy?: string } | undefined> }} RulesConfig
 */
/** @typedef {{ level: string; message: string }} LogLine */

/** Data before any script runs, as runtime/schema/hooks.ts defines it for these hooks. */
const DEFAULTS = {
  process_client_phone: (/** @type {Record<string, unknown>} */ input) => ({ phone: input.phone }),
  need_registration: () => ({ result: true }),
};
/** The failure policy of callscript's config for each hook ("error" unless the config says). */
const POLICY = Object.fromEntries(Object.keys(DEFAULTS).map((hook) => [hook, config.hooks?.[hook]?.failurePolicy ?? "error"]));
const CANCEL = Symbol.for("callscript.cancel");

/** Each hook's scripts, in the order callscript runs them, with their settings in force. Made once. */
const PIPELINES = Object.fromEntries(
  Object.keys(DEFAULTS).map((hook) => [
    hook,
    Object.entries(scripts)
      .filter(([, definition]) => typeof definition.hooks?.[hook] === "function")
      .map(([name, definition]) => ({
        name,
        order: definition.order ?? 0,
        handler: /** @type {Handler} */ (definition.hooks[hook]), // the filter kept those that have it
        settings: Object.freeze({ ...(definition.settings ?? {}), ...(config.scripts?.[name]?.settings ?? {}) }),
      }))
      .sort((a, b) => a.order - b.order || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  ]),
);

/**
 * Script log lines are kept per request, as callscript's guest keeps them (and drops them at warn).
 * @param {LogLine[]} lines
 */
function logger(lines) {
  const at =
    (/** @type {string} */ level) =>
    (/** @type {unknown[]} */ ...args) =>
      lines.push({ level, message: args.map(String).join(" ") });
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const json = (/** @type {number} */ status, /** @type {unknown} */ value) =>
  new Response(JSON.stringify(value), { status, headers: { "content-type": "application/json; charset=utf-8" } });

export default {
  /** @param {Request} request */
  async fetch(request) {
    const hook = new URL(request.url).pathname.replace(/^\/hooks\//, "");
    const pipeline = PIPELINES[hook];
    if (request.method !== "POST" || pipeline === undefined) return json(404, { error: "unknown hook" });
    /** @type {Record<string, unknown>} */
    let input;
    try {
      input = /** @type {Record<string, unknown>} */ (await request.json()); // checked right below
    } catch (error) {
      return json(400, { error: `body is not JSON: ${/** @type {Error} */ (error).message}` });
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) return json(400, { error: "body is not a JSON object" });
    const requestId = request.headers.get("x-request-id") ?? crypto.randomUUID();
    /** @type {Record<string, unknown>} */
    let data = DEFAULTS[/** @type {keyof typeof DEFAULTS} */ (hook)](input); // a hook of PIPELINES' (checked above)
    /** @type {LogLine[]} */
    const lines = [];
    const log = logger(lines);
    for (const script of pipeline) {
      let changes;
      try {
        changes = await script.handler(input, { hook, data, settings: script.settings, log, requestId, script: script.name });
      } catch (error) {
        const failure = {
          reason: "exception",
          script: script.name,
          message: String(/** @type {{ message?: unknown } | null | undefined} */ (error)?.message ?? error),
        };
        if (POLICY[hook] === "skip") continue;
        return json(200, { state: "error", error: failure });
      }
      if (changes && changes[CANCEL] === true) return json(200, { state: "success", data: {} });
      if (changes) data = { ...data, ...changes };
    }
    return json(200, { state: "success", data });
  },
};
