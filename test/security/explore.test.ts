import { afterAll, it } from "vitest";
import { HEADER, request, sandboxOptions, Sandboxes } from "../helpers/scripts.js";
import { partialDataSchema } from "../../runtime/schema/hooks.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

const probe = (body: string) => `${HEADER}export default defineScript({ limits: { timeoutMs: 500, memoryMb: 16 }, hooks: { async need_registration(input: any, ctx: any) { ${body} } } });\n`;

async function run(label: string, body: string, input: unknown = {}) {
  const sb = await sandboxes.load(probe(body), sandboxOptions());
  const r = await sb.invoke(request("need_registration", { input }));
  console.log(label, JSON.stringify(r.outcome).slice(0, 600), r.stats.wallMs.toFixed(1));
  return r;
}

it("explore", async () => {
  await run("globals", `return { names: Object.getOwnPropertyNames(globalThis).join(",") } as any;`);
  await run("wasm", `return { w: typeof WebAssembly, sab: typeof SharedArrayBuffer, at: typeof Atomics, ev: typeof eval, fn: typeof Function, req: typeof (globalThis as any).require, pr: typeof (globalThis as any).process, ivm: typeof (globalThis as any).ivm, st: typeof setTimeout, qm: typeof queueMicrotask, te: typeof (globalThis as any).TextEncoder } as any;`);
  await run("ab", `const b = new ArrayBuffer(2**30); return { n: b.byteLength } as any;`);
  await run("sab", `const b = new SharedArrayBuffer(2**30); return { n: b.byteLength } as any;`);
  await run("wasmmem", `const m = new WebAssembly.Memory({ initial: 1, maximum: 65536 }); let pages = 0; try { for (let i = 0; i < 1600; i++) { m.grow(1); pages++; } } catch (e) { return { err: String(e), pages } as any; } const u = new Uint8Array(m.buffer); for (let i = 0; i < u.length; i += 4096) u[i] = 1; return { bytes: m.buffer.byteLength } as any;`);
  await run("atomicswait", `const i = new Int32Array(new SharedArrayBuffer(16)); const r = Atomics.wait(i, 0, 0); return { r } as any;`);
  await run("atomicswait-ab", `const i = new Int32Array(new SharedArrayBuffer(16)); const r = Atomics.wait(i, 0, 0, 10); return { r } as any;`);
  await run("func", `const F = (function(){}).constructor; const g = F("return this")(); return { same: g === globalThis, keys: Object.getOwnPropertyNames(g).length } as any;`);
  await run("date", `return { now: Date.now(), r: Math.random() } as any;`);
  await run("proto-in", `return { p: Object.getPrototypeOf(input) === Object.prototype, polluted: ({} as any).polluted ?? null, keys: Object.keys(input) } as any;`, JSON.parse('{"a":{"__proto__":{"polluted":1}}}'));
  await run("toJSON-forge", `(Object.prototype as any).toJSON = function (this: any, key: string) { if (key === "" && this.kind) { delete (Object.prototype as any).toJSON; return JSON.parse('{"kind":"data","data":{"__proto__":{"polluted":"yes"},"result":false},"outputBytes":0,"logs":{"lines":[],"bytes":0,"dropped":0,"droppedBytes":0}}'); } return this; }; return { result: false };`);
  await run("regex", `const r = /^(a+)+$/.test("a".repeat(40) + "b"); return { r } as any;`);
  await run("bigstr", `const s = "x".repeat(2**28); return { n: s.length } as any;`);
  await run("recursion", `const f = (n: number): number => f(n + 1) + 1; return { n: f(0) } as any;`);
});

it("zod proto", () => {
  const d = JSON.parse('{"__proto__":{"polluted":"yes"},"X":1}');
  for (const hook of ["process_task_creation_params", "need_registration", "post_registration", "process_registration_params"] as const) {
    const r = partialDataSchema(hook).safeParse(d);
    console.log(hook, r.success, r.success ? [Object.getPrototypeOf(r.data) === Object.prototype, Object.keys(r.data), (r.data as any).polluted, JSON.stringify(r.data)] : JSON.stringify(r.error.issues));
    if (r.success) { const m = { ...{ a: 1 }, ...(r.data as any) }; console.log(" merged", Object.getPrototypeOf(m) === Object.prototype, Object.keys(m), (m as any).polluted, JSON.stringify(m)); }
  }
  console.log("host polluted", ({} as any).polluted);
});
