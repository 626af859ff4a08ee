import { afterAll, it } from "vitest";
import { HEADER, request, sandboxOptions, Sandboxes } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());
const probe = (body: string, top = "") => `${HEADER}${top}\nexport default defineScript({ limits: { timeoutMs: 300, memoryMb: 16 }, hooks: { async need_registration(input: any, ctx: any) { ${body} } } });\n`;
async function run(label: string, body: string, input: unknown = {}, top = "") {
  let sb;
  try { sb = await sandboxes.load(probe(body, top), sandboxOptions()); } catch (e) { console.log(label, "LOAD", String(e)); return; }
  const r = await sb.invoke(request("need_registration", { input }));
  const r2 = await sb.invoke(request("need_registration", { input: { ok: 1 } }));
  console.log(label, JSON.stringify(r.outcome).slice(0, 300), "next:", JSON.stringify(r2.outcome).slice(0, 100));
}
it("explore", async () => {
  await run("dyn-import", `if (input.ok) return; const name = "fs" + ""; const m = await import(name); return { k: Object.keys(m).length } as any;`);
  await run("dyn-import-sync", `if (input.ok) return; const name = "fs" + ""; let err = ""; const p = import(name).catch((e: any) => { err = String(e); }); await p; return { err } as any;`);
  await run("caller", `if (input.ok) return; const f = new Function("return (function g() { const out = []; let c = g.caller; let n = 0; while (c && n < 10) { out.push(String(c).slice(0, 30)); c = c.caller; n++; } return out; })()"); return { chain: f() } as any;`);
  await run("caller2", `if (input.ok) return; const f = new Function("const out = []; let c = arguments.callee.caller; out.push(typeof c); return out;"); return { chain: f() } as any;`);
  await run("ctor-chain", `return { a: typeof (({} as any).constructor.constructor("return typeof process")()), b: (0, eval)("typeof require"), c: String((async function(){}).constructor("return this")) } as any;`);
  await run("reentrant", `if (input.ok) return; const e = (globalThis as any).__callscript_entry.entry; const inner = await e.invoke("need_registration", "{\\"ok\\":1}", "{}", "{}", "x", 100, 100); console.log("after"); return { inner } as any;`);
  await run("console-proxy", `if (input.ok) return; const p = new Proxy({}, { getPrototypeOf() { throw new Error("trap"); }, ownKeys() { throw new Error("trap"); } }); console.log(p); const r = Proxy.revocable({}, {}); r.revoke(); console.log(r.proxy); return { result: false };`);
  await run("return-proxy", `if (input.ok) return; return new Proxy({ result: false }, { ownKeys() { throw new Error("no keys"); } });`);
  await run("throw-proxy", `if (input.ok) return; throw new Proxy({}, { get() { throw new Error("x"); }, getPrototypeOf() { throw new Error("y"); } });`);
  await run("error-getter", `if (input.ok) return; const e = new Error("x"); Object.defineProperty(e, "message", { get() { throw new Error("nope"); } }); throw e;`);
});
