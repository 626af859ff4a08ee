// Cost of one invocation in process: a direct function call, node:vm, and the callscript sandbox
// (limits on), for a 2 KB and a 60 KB payload, measured in the same run.
// Run: npm run build && node --no-node-snapshot bench/invoke.mjs
import { readFileSync } from "node:fs";
import path from "node:path";
import vm from "node:vm";
import * as esbuild from "esbuild";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { configSchema } from "../dist/runtime/config.js";
import { callHook } from "../dist/runtime/dispatch/hook-call.js";
import { loadScriptFile } from "../dist/runtime/registry/load-script.js";
import { hookCatalog } from "../dist/runtime/schema/hooks.js";
import { machine, repoRoot, table, timeCalls, writeResult } from "./lib.mjs";

const examples = path.join(repoRoot, "examples");
const scriptFile = path.join(examples, "blacklist-extensions.ts");
const payloads = {
  "2 KB (one conversation)": "need_registration.incoming-answered.json",
  "60 KB (twenty conversations)": "need_registration.large-20-conversations.json",
};
const iterations = Number(process.env.BENCH_ITERATIONS ?? 20000);
const warmup = Math.min(2000, iterations / 4);

// Direct: the same script, bundled for Node and called in this realm with an already parsed input.
const direct = await esbuild.build({
  entryPoints: [scriptFile],
  bundle: true,
  write: false,
  format: "esm",
  platform: "node",
  alias: { callscript: path.join(repoRoot, "sdk/index.ts") },
});
const directModule = await import(`data:text/javascript;base64,${Buffer.from(direct.outputFiles[0].text).toString("base64")}`);
const directHandler = directModule.default.hooks.need_registration;
const directSettings = Object.freeze({ ...directModule.default.settings });
const noopLog = { debug() {}, info() {}, warn() {}, error() {} };

// node:vm: the callscript bundle (prelude included) in a fresh context of this isolate: the same
// protocol, JSON strings in and out, without a separate isolate or limits.
const compiled = await compileScript(scriptFile, examples);
if (!compiled.ok) throw new Error("example does not compile");
const context = vm.createContext({});
const vmEntry = new vm.Script(compiled.script.code).runInContext(context);

const config = configSchema.parse({ scriptsDir: examples });
const loaded = await loadScriptFile(scriptFile, examples, config);
if (!loaded.ok) throw new Error(loaded.failure.message);
const { sandbox } = loaded.script;

const rows = [];
const results = {};
for (const [label, file] of Object.entries(payloads)) {
  const raw = readFileSync(path.join(examples, "payloads", file), "utf8");
  const input = hookCatalog.need_registration.input.parse(JSON.parse(raw));
  const bytes = Buffer.byteLength(JSON.stringify(input));
  const data = { result: true };
  const n = bytes > 10_000 ? Math.round(iterations / 4) : iterations;
  const options = { iterations: n, warmup: Math.min(warmup, n / 4) };

  const measured = {
    "direct call": await timeCalls(() => directHandler(input, { hook: "need_registration", data, settings: directSettings, log: noopLog, requestId: "b", script: "b" }), options),
    "node:vm (same protocol)": await timeCalls(
      () => vmEntry.invoke("need_registration", JSON.stringify(input), JSON.stringify(data), loaded.script.settingsJson, "b", 8192, 65536),
      options,
    ),
    "callscript sandbox.invoke": await timeCalls(
      () => sandbox.invoke({ hook: "need_registration", inputJson: JSON.stringify(input), dataJson: JSON.stringify(data), settingsJson: loaded.script.settingsJson, requestId: "b" }),
      options,
    ),
    "callscript callHook (validate + merge)": await timeCalls(() => callHook(config, "need_registration", input, [loaded.script], { requestId: "b" }), options),
  };
  results[label] = { bytes, ...measured };
  const base = measured["direct call"].p50Us;
  for (const [how, stats] of Object.entries(measured)) {
    rows.push({ payload: label, how, "p50 µs": stats.p50Us, "p99 µs": stats.p99Us, "calls/s": stats.perSecond, "over direct p50 µs": Math.round((stats.p50Us - base) * 10) / 10 });
  }
}
await sandbox.drainAndDispose();

const file = writeResult("invoke", { iterations, results });
console.log(`Invocation cost in process — ${JSON.stringify(machine())}`);
console.log(table(rows, ["payload", "how", "p50 µs", "p99 µs", "calls/s", "over direct p50 µs"]));
console.log(`results: ${path.relative(process.cwd(), file)}`);
