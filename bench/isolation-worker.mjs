// @ts-check
// PROTOTYPE for the crash-isolation decision (bench/isolation.mjs), not part of the runtime: a
// worker process that holds the isolates of a scripts folder and answers invocations over Node's
// IPC channel, as a supervised sandbox process would. Started by bench/isolation.mjs with fork().
import { performance } from "node:perf_hooks";
import { configSchema } from "../dist/runtime/config.js";
import { ScriptRegistry } from "../dist/runtime/registry/registry.js";
import { loadIsolatedVm } from "../dist/runtime/sandbox/ivm.js";

/** Started by fork(): the IPC channel is there. */
const send = (/** @type {unknown} */ message) => /** @type {NonNullable<typeof process.send>} */ (process.send)(message);
const startedAt = performance.now();
const scriptsDir = process.argv[2];
loadIsolatedVm(); // as a worker with scripts would have it, also when it has none ("none")
const silent = { info() {}, warn() {}, error() {}, debug() {} };
const registry = new ScriptRegistry(configSchema.parse({ scriptsDir, watch: false, logLevel: "silent" }), silent);
const loaded = scriptsDir === "none" ? [] : await registry.loadAll();

/**
 * @typedef {{ id: number; hook: import("../dist/runtime/schema/hooks.js").HookName; script: string; inputJson: string; dataJson: string; settingsJson?: string }} Call
 */
process.on("message", async (/** @type {Call} */ message) => {
  const { id, hook, script, inputJson, dataJson, settingsJson } = message;
  const lease = registry.lease(hook);
  try {
    const entry = lease.scripts.find((candidate) => candidate.sandbox.name === script);
    if (!entry) {
      send({ id, error: `no script ${script} for ${hook}` });
      return;
    }
    const invocation = await entry.sandbox.invoke({ hook, inputJson, dataJson, settingsJson: settingsJson ?? entry.settingsJson, requestId: String(id) });
    send({ id, invocation });
  } finally {
    lease.release();
  }
});
send({ ready: true, scripts: loaded.filter((result) => result.ok).length, loadMs: performance.now() - startedAt });
