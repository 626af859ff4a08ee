import { afterAll, it } from "vitest";
import { isolatedVm } from "../../runtime/sandbox/ivm.js";
import { SCAN_SOURCE } from "./global-graph.js";
import { HEADER, request, sandboxOptions, Sandboxes } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

it("scan", async () => {
  const ivm = isolatedVm() as any;
  const bare = new ivm.Isolate({ memoryLimit: 32 });
  const ctx = await bare.createContext();
  const r = JSON.parse(await (await bare.compileScript(`${SCAN_SOURCE}({}, null)`)).run(ctx));
  console.log("bare visited", r.visited, "natives", r.natives.length, "suspicious", r.suspicious);
  for (const [label, setup] of [
    ["reference", (g: any) => g.setSync("leak", new ivm.Reference({ a: 1 }))],
    ["copy", (g: any) => g.setSync("leak", new ivm.ExternalCopy({ a: 1 }))],
    ["copyref", (g: any) => g.setSync("leak", new ivm.Reference(new ivm.ExternalCopy({ a: 1 })))],
    ["callback", (g: any) => g.setSync("leak", new ivm.Callback(() => 1))],
    ["module", (g: any) => g.setSync("leak", ivm)],
    ["global-ref", (g: any) => g.setSync("leak", g.derefInto())],
  ] as const) {
    const iso = new ivm.Isolate({ memoryLimit: 32 });
    const c = await iso.createContext();
    try { setup(c.global); } catch (e) { console.log(label, "setup failed", String(e)); continue; }
    const out = JSON.parse(await (await iso.compileScript(`${SCAN_SOURCE}({}, ${JSON.stringify(r.natives)})`)).run(c));
    console.log(label, out.suspicious.slice(0, 5), out.unknownNatives.slice(0, 8));
    iso.dispose();
  }
  const sb = await sandboxes.load(`${HEADER}const scan = ${SCAN_SOURCE};\nexport default defineScript({ limits: { outputBytes: 1000000, timeoutMs: 5000 }, hooks: { need_registration(input: any, ctx: any) { return JSON.parse(scan({ input, ctx }, input.allowed)); } } });\n`);
  const res = await sb.invoke(request("need_registration", { input: { allowed: r.natives } }));
  console.log(JSON.stringify(res.outcome).slice(0, 2000));
});
