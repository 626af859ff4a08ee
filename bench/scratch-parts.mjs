import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os"; import path from "node:path";
import { compileScript } from "../dist/runtime/compile/compile.js";
import { ScriptSandbox } from "../dist/runtime/sandbox/sandbox.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS } from "../dist/runtime/sandbox/limits.js";
import ivm from "isolated-vm";
const n = 200;
const dir = mkdtempSync(path.join(os.tmpdir(), "scale-"));
for (let i = 0; i < n; i++) writeFileSync(path.join(dir, `s${i}.ts`), `import { defineScript, participants } from "callscript";\nexport default defineScript({ settings: { ext: ["${i}"] }, hooks: { need_registration({ call_full }, { settings }) { return participants(call_full).some((e) => settings.ext.includes(e)) ? { result: false } : undefined; } } });\n`);
let t = performance.now();
const compiled = await Promise.all(Array.from({ length: n }, (_, i) => compileScript(path.join(dir, `s${i}.ts`), dir)));
console.log("compile parallel", Math.round(performance.now() - t), "ms; code bytes", compiled[0].script.code.length);
t = performance.now();
const opts = { defaults: BUILTIN_DEFAULT_LIMITS, max: BUILTIN_MAX_LIMITS, maxQueue: 8 };
const boxes = await Promise.all(compiled.map((c) => ScriptSandbox.load(c.script, opts)));
console.log("load parallel", Math.round(performance.now() - t), "ms");
t = performance.now();
for (let i = 0; i < 50; i++) { const iso = new ivm.Isolate({ memoryLimit: 32 }); iso.dispose(); }
console.log("isolate new+dispose x50", Math.round(performance.now() - t), "ms");
t = performance.now();
for (let i = 0; i < 50; i++) { const iso = new ivm.Isolate({ memoryLimit: 32 }); await iso.createContext(); iso.dispose(); }
console.log("isolate+context x50", Math.round(performance.now() - t), "ms");
t = performance.now();
for (let i = 0; i < 50; i++) { const iso = new ivm.Isolate({ memoryLimit: 32 }); const c = await iso.createContext(); const s = await iso.compileScript(compiled[i].script.code); await s.run(c); iso.dispose(); }
console.log("isolate+context+compile+run x50", Math.round(performance.now() - t), "ms");
await Promise.all(boxes.map((b) => b.drainAndDispose()));
