// @ts-check
// A peer of bench/peer.mjs, run in its own process: the floor of callscript's design, an isolate per
// script, with nothing of callscript around it. A fastify route hands each of the hook's scripts the
// body's JSON text in its own isolated-vm isolate (async `apply` with a time limit, JSON text in and
// out, as the issue that asked for this comparison describes it) and merges their changes as the
// Worker of bench/peer/worker.js does. The scripts are the examples' own code (`HOP_RULES`, the
// rules bundle bench/peer.mjs builds for the Worker, as a script that sets the global `rules`).
//
// What it leaves out, and callscript does: validation of the input and of each script's changes,
// limits other than time (memory, output, log), a promise that never settles, queues and leases,
// metrics, logs, the console, fetch and kv. So callscript's cost over this one is its own path
// around the hop; this one's cost over the bare route is the hop itself.
//
// HOP_MODE: "async" (default: the hop on the isolate's own thread, isolated-vm's `timeout` on each
// call), "async-notimeout", "sync" (applySync on the event loop's thread, with the timeout),
// "sync-notimeout": for measurements only (docs/benchmarks.md), not as a server anyone would run.
// Prints `listening <url>` on stdout once it listens.
import { readFileSync } from "node:fs";
import Fastify from "fastify";
import { isolatedVm } from "../dist/runtime/sandbox/ivm.js";

const MODE = process.env.HOP_MODE ?? "async";
if (!["async", "async-notimeout", "sync", "sync-notimeout"].includes(MODE)) throw new Error(`HOP_MODE ${MODE}: async, async-notimeout, sync or sync-notimeout`);
const TIMEOUT_MS = 250; // the examples' limits.defaults.timeoutMs
const rules = readFileSync(/** @type {string} */ (process.env.HOP_RULES), "utf8");
const config = JSON.parse(readFileSync(/** @type {string} */ (process.env.HOP_CONFIG), "utf8"));

// In each isolate, after the rules: one call runs one script's handler on JSON text, and answers
// JSON text (`{"cancel":true}` for cancel(), `{"error":"…"}` when it throws). Handlers of the
// examples return at once; an async one is awaited in the async modes.
// The completion value (the assignment) is the entry function.
const GUEST = `
const CANCEL = Symbol.for("callscript.cancel");
function answer(changes) {
  return changes && changes[CANCEL] === true ? '{"cancel":true}' : JSON.stringify({ changes: changes ?? null });
}
globalThis.run = (hook, name, inputText, dataText, settingsText) => {
  const lines = [];
  const at = (level) => (...args) => lines.push({ level, message: args.map(String).join(" ") });
  const log = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  try {
    const ctx = { hook, data: JSON.parse(dataText), settings: Object.freeze(JSON.parse(settingsText)), log, requestId: "", script: name };
    const changes = rules.scripts[name].hooks[hook](JSON.parse(inputText), ctx);
    if (changes && typeof changes.then === "function") return changes.then(answer, (error) => JSON.stringify({ error: String(error?.message ?? error) }));
    return answer(changes);
  } catch (error) {
    return JSON.stringify({ error: String(error?.message ?? error) });
  }
};`;

/** Data before any script runs, as runtime/schema/hooks.ts defines it for these hooks (as the Worker). */
const DEFAULTS = {
  process_client_phone: (/** @type {Record<string, unknown>} */ input) => ({ phone: input.phone }),
  need_registration: () => ({ result: true }),
};

// isolated-vm's release line for this Node, as callscript loads it (runtime/sandbox/ivm.ts).
const ivm = isolatedVm();

/**
 * A new isolate that has run `source`; the source's completion value, a function, by reference.
 * @param {string} source
 */
async function isolateWith(source) {
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  const context = await isolate.createContext();
  return { isolate, entry: await (await isolate.compileScript(source)).run(context, { reference: true }) };
}

/** @typedef {{ order: number; hooks: string[]; settings: Record<string, unknown> }} ScriptInfo */
// Which script handles which hook, in what order, with which settings: read once from the rules.
const probe = await isolateWith(
  `${rules}\n() => JSON.stringify(Object.fromEntries(Object.entries(rules.scripts).map(([name, d]) => [name, { order: d.order ?? 0, hooks: Object.keys(d.hooks), settings: d.settings ?? {} }])))`,
);
/** @type {Record<string, ScriptInfo>} */
const info = JSON.parse(/** @type {string} */ (await probe.entry.apply(undefined, [], { result: { copy: true } })));
probe.isolate.dispose();

/** @typedef {{ name: string; run: import("../dist/runtime/sandbox/ivm.js").Reference; settings: string }} HopScript */
/** Each hook's scripts in callscript's order (by `order`, then name), each in an isolate of its own. */
const pipelines = /** @type {Record<string, HopScript[]>} */ ({});
for (const hook of Object.keys(DEFAULTS)) {
  const scripts = Object.entries(info)
    .filter(([, script]) => script.hooks.includes(hook))
    .sort(([a, x], [b, y]) => x.order - y.order || (a < b ? -1 : a > b ? 1 : 0));
  pipelines[hook] = [];
  for (const [name, script] of scripts) {
    const { entry } = await isolateWith(`${rules}\n${GUEST}`);
    pipelines[hook].push({ name, run: entry, settings: JSON.stringify({ ...script.settings, ...(config.scripts?.[name]?.settings ?? {}) }) });
  }
}
/** Each hook's failure policy in the examples' config ("error" unless it says). */
const skipOnFailure = (/** @type {string} */ hook) => config.hooks?.[hook]?.failurePolicy === "skip";

const withTimeout = !MODE.endsWith("notimeout");
const asyncOptions = { ...(withTimeout ? { timeout: TIMEOUT_MS } : {}), arguments: { copy: true }, result: { copy: true, promise: true } };
const syncOptions = { ...(withTimeout ? { timeout: TIMEOUT_MS } : {}), arguments: { copy: true }, result: { copy: true } };

/** @type {(script: HopScript, args: unknown[]) => Promise<string> | string} */
const call = MODE.startsWith("async")
  ? (script, args) => /** @type {Promise<string>} */ (script.run.apply(undefined, args, asyncOptions))
  : (script, args) => /** @type {string} */ (script.run.applySync(undefined, args, syncOptions));

const app = Fastify({ logger: false });
// The body's text and its value, as callscript's route has both.
app.removeAllContentTypeParsers();
app.addContentTypeParser("application/json", { parseAs: "string" }, (_request, body, done) => {
  try {
    done(null, { text: body, value: JSON.parse(/** @type {string} */ (body)) });
  } catch (error) {
    done(/** @type {Error} */ (error), undefined);
  }
});

app.post("/hooks/:hook", async (request, reply) => {
  const hook = /** @type {{ hook: string }} */ (request.params).hook;
  const pipeline = pipelines[hook];
  const body = /** @type {{ text: string; value: unknown } | undefined} */ (request.body);
  if (pipeline === undefined || body === undefined || body.value === null || typeof body.value !== "object") {
    reply.code(404);
    return { error: "unknown hook" };
  }
  /** @type {Record<string, unknown>} */
  let data = DEFAULTS[/** @type {keyof typeof DEFAULTS} */ (hook)](/** @type {Record<string, unknown>} */ (body.value));
  for (const script of pipeline) {
    /** @type {{ changes?: Record<string, unknown> | null; cancel?: true; error?: string }} */
    const answer = JSON.parse(await call(script, [hook, script.name, body.text, JSON.stringify(data), script.settings]));
    if (answer.error !== undefined) {
      if (skipOnFailure(hook)) continue;
      return { state: "error", error: { reason: "exception", script: script.name, message: answer.error } };
    }
    if (answer.cancel) return { state: "success", data: {} };
    if (answer.changes) data = { ...data, ...answer.changes };
  }
  return { state: "success", data };
});

const address = await app.listen({ host: "127.0.0.1", port: 0 });
console.log(`listening ${address}`);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => app.close().then(() => process.exit(0)));
