import { createCannedCapabilities } from "../../runtime/capabilities/canned.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dispatch } from "../../runtime/dispatch/dispatch.js";
import { isolatedVm } from "../../runtime/sandbox/ivm.js";
import { dataOf, failureOf, HEADER, pipelineScript, request, sandboxOptions, Sandboxes, script } from "../helpers/scripts.js";
import { payload, startServer } from "../server/helpers.js";
import { SCAN_SOURCE, type GraphReport, type Reference } from "./global-graph.js";

/**
 * What script code can reach, and what it keeps. No isolated-vm object (Reference, ExternalCopy,
 * Callback, the module) is ever reachable from a script: with one, a script could use the
 * ExternalCopy transferList flaw (GHSA-864f-rcv7-6rh4, unfixed in the isolated-vm 5.x that Node 20
 * runs) to corrupt the host's memory. A script's globals persist between its own invocations and
 * never reach another script or another request's input. See docs/security.md.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());
const OPTIONS = sandboxOptions({ timeoutMs: 200, memoryMb: 16 });

// isolated-vm's own API, beyond the part the runtime declares (runtime/sandbox/ivm.ts).
interface RawIvm {
  Isolate: new (options: { memoryLimit: number }) => RawIsolate;
  Reference: new (value: unknown) => unknown;
  ExternalCopy: new (value: unknown) => unknown;
  Callback: new (fn: (...args: unknown[]) => unknown) => unknown;
}
interface RawIsolate {
  createContext(): Promise<{ global: RawReference }>;
  compileScript(code: string): Promise<{ run(context: unknown): Promise<unknown> }>;
  dispose(): void;
}
interface RawReference {
  setSync(key: string, value: unknown): void;
  getSync(key: string, options: { reference: true }): RawReference;
}

/** Run the search in a fresh isolate, after `setup` has put something into its global. */
async function scanIsolate(reference: Reference | null, setup: (global: RawReference, ivm: RawIvm) => void = () => undefined): Promise<GraphReport> {
  const ivm = isolatedVm() as unknown as RawIvm;
  const isolate = new ivm.Isolate({ memoryLimit: 32 });
  try {
    const context = await isolate.createContext();
    setup(context.global, ivm);
    const code = await isolate.compileScript(`${SCAN_SOURCE}(${JSON.stringify(reference)}, {})`);
    return JSON.parse((await code.run(context)) as string) as GraphReport;
  } finally {
    isolate.dispose();
  }
}

/** What a fresh bare isolate has: the reference every script isolate is compared with. */
let bare: Reference;
beforeAll(async () => {
  const report = await scanIsolate(null);
  bare = { globals: report.globals, natives: report.natives };
});

describe("no isolated-vm object is reachable from script code", () => {
  it("the search finds isolated-vm objects when they are there (positive controls)", async () => {
    const leaks: [string, (global: RawReference, ivm: RawIvm) => void, RegExp][] = [
      ["a Reference", (global, ivm) => global.setSync("leak", new ivm.Reference({ a: 1 })), /^globalThis\.leak .*Reference/],
      ["an ExternalCopy", (global, ivm) => global.setSync("leak", new ivm.ExternalCopy({ a: 1 })), /^globalThis\.leak .*ExternalCopy/],
      ["the module", (global, ivm) => global.setSync("leak", ivm), /^globalThis\.leak .*isolated_vm/],
    ];
    for (const [what, setup, found] of leaks) {
      const report = await scanIsolate(bare, setup);
      expect(
        report.suspicious.some((line) => found.test(line)),
        what,
      ).toBe(true);
      expect(report.unknownNatives.length, what).toBeGreaterThan(0);
    }
    // A Callback is a bare native function in the isolate: found because no standard global leads to it.
    const callback = await scanIsolate(bare, (global, ivm) => global.setSync("leak", new ivm.Callback(() => 1)));
    expect(callback.unknownNatives).toEqual([expect.stringMatching(/^globalThis\.leak /)]);
    const nested = await scanIsolate(bare, (global, ivm) => global.getSync("JSON", { reference: true }).setSync("hidden", new ivm.Callback(() => 1)));
    expect(nested.unknownNatives).toEqual([expect.stringMatching(/^globalThis\.JSON\.hidden /)]);
    // And a fresh isolate compared with itself finds nothing.
    const clean = await scanIsolate(bare);
    expect(clean.unknownNatives).toEqual([]);
  });

  it("a script's isolate holds nothing of isolated-vm, at load time and in a handler: every native is a standard built-in", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}const scan = ${SCAN_SOURCE};\n` +
        `export default defineScript({ limits: { timeoutMs: 5000, outputBytes: 200000 }, hooks: {\n` +
        `  need_registration(input: any, ctx: any) {\n` +
        `    const report = JSON.parse(scan(input.reference, { input, ctx }));\n` +
        `    return { visited: report.visited, suspicious: report.suspicious, unknownNatives: report.unknownNatives,\n` +
        `      added: report.globals.filter((g: string) => !input.reference.globals.includes(g)),\n` +
        `      removed: input.reference.globals.filter((g: string) => !report.globals.includes(g)) } as any;\n` +
        `  },\n` +
        `} });\n`,
      OPTIONS,
    );
    const report = dataOf(await sandbox.invoke(request("need_registration", { input: { reference: bare } })));
    expect(report).toMatchObject({ suspicious: [], unknownNatives: [] });
    // Hundreds of objects and functions searched: the graph is the whole isolate, not a sample.
    expect(report.visited).toBeGreaterThan(500);
    // The prelude adds its bindScript and the bundle its entry (plain frozen functions of the
    // isolate), and removes WebAssembly and Intl (memory outside the heap limit); console is the
    // prelude's, in place of V8's.
    // (In the order they were defined: the prelude runs first, as a script of its own.)
    expect(report.added).toEqual(["__callscript_runtime", "__callscript_entry"]);
    expect(report.removed).toEqual(["Intl", "WebAssembly"]);
  });

  it("the same after fetch and kv requests have gone to the host and back: the bridge leaves nothing of isolated-vm reachable", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}const scan = ${SCAN_SOURCE};\n` +
        `export default defineScript({ limits: { timeoutMs: 5000, outputBytes: 200000 }, hooks: {\n` +
        `  async need_registration(input: any, ctx: any) {\n` +
        `    await ctx.kv.set("k", 1); const n = await ctx.kv.incr("k"); const res = await ctx.fetch("https://crm.example/x");\n` +
        `    const pending = ctx.kv.get("k");\n` +
        `    const report = JSON.parse(scan(input.reference, { input, ctx, res, pending }));\n` +
        `    await pending;\n` +
        `    return { n, visited: report.visited, suspicious: report.suspicious, unknownNatives: report.unknownNatives } as any;\n` +
        `  },\n` +
        `} });\n`,
      OPTIONS,
    );
    const capabilities = createCannedCapabilities({ script: "script", fetch: [{ url: "https://crm.example/x", json: { ok: 1 } }] });
    const report = dataOf(await sandbox.invoke({ ...request("need_registration", { input: { reference: bare } }), capabilities }));
    expect(report).toMatchObject({ n: 2, suspicious: [], unknownNatives: [] });
    expect(report.visited).toBeGreaterThan(500);
  });

  it("the top-level code of a script sees the same: nothing of isolated-vm while it loads", async () => {
    // The reference is not known to the script at load time: it keeps its own report of what is
    // native and suspicious, and the test compares it after.
    const sandbox = await sandboxes.load(
      `${HEADER}const scan = ${SCAN_SOURCE};\n` +
        `const atLoad = JSON.parse(scan(null, {}));\n` +
        `export default defineScript({ limits: { outputBytes: 200000 }, hooks: { need_registration() { return { natives: atLoad.natives, suspicious: atLoad.suspicious } as any; } } });\n`,
      OPTIONS,
    );
    const atLoad = dataOf(await sandbox.invoke(request())) as { natives: Record<string, string>; suspicious: string[] };
    expect(atLoad.suspicious).toEqual([]);
    const unknown = Object.entries(atLoad.natives).filter(([path, signature]) => bare.natives[path] !== signature);
    expect(unknown).toEqual([]);
    // The original ArrayBuffer and SharedArrayBuffer constructors, which take maxByteLength (memory
    // outside the heap limit), are reachable from nowhere: the prelude's replacements stand in
    // for them everywhere (escapes 62, 63).
    const originals = [bare.natives["globalThis.ArrayBuffer"], bare.natives["globalThis.SharedArrayBuffer"]];
    expect(originals.every((signature) => typeof signature === "string")).toBe(true);
    expect(Object.entries(atLoad.natives).filter(([, signature]) => originals.includes(signature))).toEqual([]);
  });
});

describe("globals between invocations (documented in docs/security.md)", () => {
  const stateful =
    `${HEADER}let count = 0;\n` +
    `export default defineScript({ limits: { timeoutMs: 100 }, hooks: {\n` +
    `  need_registration(input: any) {\n` +
    `    if (input.loop) for (;;) {}\n` +
    `    const g = globalThis as any;\n` +
    `    if (input.write) { g.secret = input.write; (Object.prototype as any).leak = input.write; (JSON as any).marker = input.write; }\n` +
    `    count++;\n` +
    `    return { count, secret: g.secret ?? null, leak: ({} as any).leak ?? null, marker: (JSON as any).marker ?? null } as any;\n` +
    `  },\n` +
    `} });\n`;

  it("persist between invocations of one script: module variables, globalThis, changed built-ins", async () => {
    const sandbox = await sandboxes.load(stateful, OPTIONS);
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { write: "s1" } })))).toEqual({
      count: 1,
      secret: "s1",
      leak: "s1",
      marker: "s1",
    });
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: {} })))).toEqual({ count: 2, secret: "s1", leak: "s1", marker: "s1" });
  });

  it("are reset to the state right after loading when the isolate is rebuilt (timeout, memory, a broken built-in)", async () => {
    const sandbox = await sandboxes.load(stateful, OPTIONS);
    await sandbox.invoke(request("need_registration", { input: { write: "s1" } }));
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { loop: true } }))).reason).toBe("timeout");
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: {} })))).toEqual({ count: 1, secret: null, leak: null, marker: null });
  });

  it("never reach another script, loaded side by side or called right after in one pipeline", async () => {
    const writer = await sandboxes.load(stateful, OPTIONS, "writer.ts");
    const reader = await sandboxes.load(stateful, OPTIONS, "reader.ts");
    expect(dataOf(await writer.invoke(request("need_registration", { input: { write: "from-writer" } })))).toMatchObject({ secret: "from-writer" });
    expect(dataOf(await reader.invoke(request("need_registration", { input: {} })))).toEqual({ count: 1, secret: null, leak: null, marker: null });
    // In one request: the reader runs right after the writer and sees only the data so far (ctx.data).
    const pipeline = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { process_task_creation_params(input: any, ctx: any) {
        const g = globalThis as any;
        if (input.write) { g.secret = "w"; (Object.prototype as any).leak = "w"; return { WRITER: "done" }; }
        return { READER: [typeof g.secret, typeof ({} as any).leak, JSON.stringify(ctx.data)].join("|") };
      } } });\n`,
      OPTIONS,
      "pipeline-a.ts",
    );
    const other = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { process_task_creation_params(input: any, ctx: any) {
        return { READER: [typeof (globalThis as any).secret, typeof ({} as any).leak, JSON.stringify(ctx.data)].join("|") };
      } } });\n`,
      OPTIONS,
      "pipeline-b.ts",
    );
    const result = await dispatch("process_task_creation_params", { write: true }, {}, [pipelineScript(pipeline, 1), pipelineScript(other, 2)], {
      requestId: "r",
      policy: "error",
      deadlineMs: 2000,
    });
    expect(result.answer).toEqual({ state: "success", data: { WRITER: "done", READER: 'undefined|undefined|{"WRITER":"done"}' } });
  });

  it("never reach another version of the same script", async () => {
    const first = await sandboxes.load(stateful, OPTIONS);
    await first.invoke(request("need_registration", { input: { write: "v1" } }));
    const second = await sandboxes.load(stateful, OPTIONS);
    expect(dataOf(await second.invoke(request("need_registration", { input: {} })))).toEqual({ count: 1, secret: null, leak: null, marker: null });
  });
});

describe("one request's data is not visible to another", () => {
  /** A script that keeps nothing, and can search everything it reaches for a string. */
  const searcher = `${HEADER}export default defineScript({ limits: { timeoutMs: 2000 }, hooks: { need_registration(input: any, ctx: any) {
    if (!input.find) { ctx.log.info("logged " + input.marker); return { result: String(input.marker).length > 0 }; }
    const seen = new Set<unknown>();
    const found: string[] = [];
    const queue: [unknown, string][] = [[globalThis, "globalThis"], [input, "input"], [ctx, "ctx"]];
    for (let i = 0; i < queue.length; i++) {
      const [value, path] = queue[i]!;
      if (typeof value === "string") { if (value.includes(input.find)) found.push(path); continue; }
      if (value === null || (typeof value !== "object" && typeof value !== "function") || seen.has(value)) continue;
      seen.add(value);
      queue.push([Object.getPrototypeOf(value), path + ".[[Prototype]]"]);
      for (const key of Reflect.ownKeys(value as object)) {
        if (typeof key === "string" && key.includes(input.find)) found.push(path + "[key]");
        let d: PropertyDescriptor | undefined;
        try { d = Object.getOwnPropertyDescriptor(value, key); } catch { continue; }
        if (d && "value" in d) queue.push([d.value, path + "." + String(key)]);
        else if (d?.get) { try { queue.push([d.get.call(value), path + "." + String(key)]); } catch { /* wrong receiver */ } }
      }
    }
    return { found } as any;
  } } });\n`;

  it("nothing of a previous request stays reachable: the prelude keeps no input, data or log line", async () => {
    const sandbox = await sandboxes.load(searcher, OPTIONS);
    const first = await sandbox.invoke(request("need_registration", { input: { marker: "SECRET-7f3a" }, data: { result: true, carried: "SECRET-7f3a" } }));
    expect(dataOf(first)).toEqual({ result: true });
    expect(first.logs.lines.map((line) => line.message)).toEqual(["logged SECRET-7f3a"]);
    const second = await sandbox.invoke(request("need_registration", { input: { find: "7f3a" } }));
    // Only the second request's own input holds the string it searches for.
    expect(dataOf(second)).toEqual({ found: ["input.find"] });
    expect(second.logs.lines).toEqual([]);
  });

  it("a script that saves one request's input in a global can read it in the next: that state is its own", async () => {
    const keeper = await sandboxes.load(
      `${HEADER}let last: unknown = null;\nexport default defineScript({ hooks: { process_client_phone(input) { const previous = last; last = input.phone; return { phone: String(previous) }; } } });\n`,
      OPTIONS,
    );
    expect(dataOf(await keeper.invoke(request("process_client_phone", { input: { phone: "+7 900" } })))).toEqual({ phone: "null" });
    expect(dataOf(await keeper.invoke(request("process_client_phone", { input: { phone: "+7 901" } })))).toEqual({ phone: "+7 900" });
  });

  it("concurrent requests to one script each get an answer from their own input", async () => {
    const server = await startServer({
      "format.ts": script(
        "process_client_phone",
        `const until = Date.now() + 2; while (Date.now() < until) {} return { phone: "+" + input.phone.replace(/\\D/g, "") };`,
      ),
    });
    try {
      const base = payload("process_client_phone.incoming-8-format");
      const phones = Array.from({ length: 20 }, (_, i) => `8 (900) 000-00-${String(i).padStart(2, "0")}`);
      const answers = await Promise.all(phones.map((phone) => server.post("process_client_phone", { ...base, phone })));
      expect(answers.map((answer) => answer.json())).toEqual(phones.map((phone) => ({ state: "success", data: { phone: "+" + phone.replace(/\D/g, "") } })));
    } finally {
      await server.close();
    }
  });
});
