// Run by test/core/sandbox-shapes.test.ts under `node --trace-deopt --trace-gc`: the example
// blacklist-extensions at the examples' limits (32 MB), called CALLS times with the 3.4 KB
// need_registration body, 16 in flight, as a busy server calls it (calls in batches). Prints one
// JSON line: how many calls answered data, and the first failure if any. What the test reads is
// V8's trace on stdout.
// Run: node --no-node-snapshot --trace-deopt --trace-gc test/helpers/guest-shapes.mjs [calls]
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { configSchema } from "../../dist/runtime/config.js";
import { loadScriptFile, sandboxOptionsFrom } from "../../dist/runtime/registry/load-script.js";
import { collectDeadHandles } from "../../dist/runtime/sandbox/collect-handles.js";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const examples = path.join(root, "examples");
const calls = Number(process.argv[2] ?? 6000);
const config = configSchema.parse({ ...JSON.parse(readFileSync(path.join(examples, "callscript.config.json"), "utf8")), scriptsDir: examples });
const inputJson = JSON.stringify(JSON.parse(readFileSync(path.join(examples, "payloads", "need_registration.incoming-answered.json"), "utf8")));
const loaded = await loadScriptFile(path.join(examples, "blacklist-extensions.ts"), examples, config, {
  sandbox: { ...sandboxOptionsFrom(config), loopBusy: () => true },
});
if (!loaded.ok) throw new Error(loaded.failure.message);
const { sandbox, settingsJson } = loaded.script;
let started = 0;
let data = 0;
let failure;
await Promise.all(
  Array.from({ length: 16 }, async () => {
    while (started++ < calls) {
      const invocation = await sandbox.invoke({ hook: "need_registration", inputJson, dataJson: '{"result":true}', settingsJson, requestId: "shapes" });
      if (invocation.outcome.kind === "data") data++;
      else failure ??= invocation.outcome;
    }
  }),
);
console.log(JSON.stringify({ calls, data, failure }));
await sandbox.drainAndDispose();
// Before node's exit (and a coverage or profile writer) runs: see runtime/sandbox/collect-handles.ts.
await collectDeadHandles();
