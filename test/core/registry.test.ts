import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { configSchema, type ConfigInput } from "../../runtime/config.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { isScriptFile } from "../../runtime/registry/variants.js";
import { callLeased, pipelineNow } from "../helpers/lease.js";
import { HEADER, request, scriptsFolder } from "../helpers/scripts.js";

/** A logger that keeps what it is given, to check what the operator would read. */
function recordingLog() {
  const lines: { level: string; message: string }[] = [];
  const at = (level: string) => (_fields: unknown, message?: string) => void lines.push({ level, message: message ?? "" });
  return { lines, log: { info: at("info"), warn: at("warn"), error: at("error"), debug: at("debug") } };
}

const registries: ScriptRegistry[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((registry) => registry.close()));
});

function registryFor(dir: string, config: Omit<ConfigInput, "scriptsDir"> = {}) {
  const { lines, log } = recordingLog();
  const registry = new ScriptRegistry(configSchema.parse({ ...config, scriptsDir: dir }), log);
  registries.push(registry);
  return { registry, lines };
}

const answering = (result: boolean, extra = "") =>
  `${HEADER}${extra}export default defineScript({ hooks: { need_registration() { return { result: ${result} }; } } });\n`;

/** A process_final_params script that appends its name to `trace`. */
const tracing = (name: string, order?: number) =>
  `${HEADER}export default defineScript({ ${order === undefined ? "" : `order: ${order}, `}hooks: { process_final_params(input, ctx) {\n` +
  `  return { trace: [...(((ctx.data as any).trace ?? []) as string[]), ${JSON.stringify(name)}] };\n} } });\n`;

describe("scripts of a folder", () => {
  it("are the .ts files at its top level; helpers in subfolders, declarations and hidden files are not", async () => {
    const dir = scriptsFolder({
      "a.ts": answering(true),
      "b.mts": answering(true),
      "lib/helper.ts": `export const x = 1;\n`,
      "types.d.ts": `declare const x: number;\n`,
      ".draft.ts": answering(false),
      "notes.md": "# notes\n",
      "data.json": "{}",
    });
    const { registry } = registryFor(dir);
    expect(registry.scriptFiles()).toEqual([path.join(dir, "a.ts"), path.join(dir, "b.mts")]);
    expect(isScriptFile(path.join(dir, "lib", "helper.ts"), dir)).toBe(false);
    expect(isScriptFile(path.join(dir, "..", "a.ts"), dir)).toBe(false);
    const results = await registry.loadAll();
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ["a", true],
      ["b", true],
    ]);
    expect(registry.states().map((s) => [s.name, s.file, s.state])).toEqual([
      ["a", "a.ts", "active"],
      ["b", "b.mts", "active"],
    ]);
  });

  it("a folder that cannot be read is named in the error", () => {
    const dir = path.join(scriptsFolder({}), "missing");
    const { registry } = registryFor(dir);
    expect(() => registry.scriptFiles()).toThrow(`The scripts folder ${dir} cannot be read: ENOENT`);
  });
});

describe("pipelines", () => {
  it("run a hook's scripts by order, then name; the config's order overrides the script's", async () => {
    const dir = scriptsFolder({ "a.ts": tracing("a"), "b.ts": tracing("b", -1), "c.ts": tracing("c"), "other.ts": answering(false) });
    const { registry } = registryFor(dir);
    await registry.loadAll();
    expect(pipelineNow(registry, "process_final_params").map((s) => [s.sandbox.name, s.order])).toEqual([
      ["b", -1],
      ["a", 0],
      ["c", 0],
    ]);
    expect(pipelineNow(registry, "need_registration").map((s) => s.sandbox.name)).toEqual(["other"]);
    expect(pipelineNow(registry, "customize_entity")).toEqual([]);

    const overridden = registryFor(dir, { scripts: { c: { order: -10 } } }).registry;
    await overridden.loadAll();
    const config = configSchema.parse({ scriptsDir: dir });
    const result = await callLeased(overridden, config, "process_final_params", {});
    expect(result.answer).toEqual({ state: "success", data: { trace: ["c", "b", "a"] } });
    expect(overridden.states().find((s) => s.name === "c")!.order).toBe(-10);
  });

  it("a script disabled in the config is not loaded and shows as disabled", async () => {
    const dir = scriptsFolder({ "a.ts": answering(false), "b.ts": answering(true) });
    const { registry } = registryFor(dir, { scripts: { a: { enabled: false } } });
    const results = await registry.loadAll();
    expect(results[0]).toMatchObject({ ok: false, name: "a", problem: { stage: "load", message: "disabled in the configuration" } });
    expect(pipelineNow(registry, "need_registration").map((s) => s.sandbox.name)).toEqual(["b"]);
    expect(registry.states().map((s) => [s.name, s.state, s.version])).toEqual([
      ["a", "disabled", null],
      ["b", "active", expect.any(String)],
    ]);
  });

  it("settings from the config reach the script over its declared ones", async () => {
    const dir = scriptsFolder({
      "s.ts": `${HEADER}export default defineScript({ settings: { list: ["101"], mode: "a" }, hooks: { process_final_params(input, ctx) { return { settings: ctx.settings as any }; } } });\n`,
    });
    const { registry } = registryFor(dir, { scripts: { s: { settings: { mode: "b" } } } });
    await registry.loadAll();
    const [script] = pipelineNow(registry, "process_final_params");
    expect(JSON.parse(script!.settingsJson)).toEqual({ list: ["101"], mode: "b" });
  });
});

describe("versions", () => {
  it("reloading a file unchanged after the cold start keeps the running version and its state", async () => {
    const dir = scriptsFolder({
      "a.ts": `${HEADER}let calls = 0;\nexport default defineScript({ hooks: { process_final_params() { calls++; return { calls }; } } });\n`,
      "b.ts": answering(true),
    });
    const { registry } = registryFor(dir);
    const [first] = await registry.loadAll();
    const sandbox = pipelineNow(registry, "process_final_params")[0]!.sandbox;
    await sandbox.invoke(request("process_final_params", { data: {} }));
    const again = await registry.reload(path.join(dir, "a.ts"));
    expect(again).toMatchObject({ ok: true, name: "a", unchanged: true });
    expect(again.ok && again.version).toBe(first!.ok && first!.version);
    expect(pipelineNow(registry, "process_final_params")[0]!.sandbox).toBe(sandbox);
    expect((await sandbox.invoke(request("process_final_params", { data: {} }))).outcome).toEqual({ kind: "data", data: { calls: 2 } });
  });

  it("a comment that moves the lines is a new version, so errors point at the right line", async () => {
    const thrower = `export default defineScript({ hooks: { need_registration() { throw new Error("no"); } } });\n`;
    const dir = scriptsFolder({ "a.ts": `${HEADER}${thrower}` });
    const { registry } = registryFor(dir);
    const [first] = await registry.loadAll();
    writeFileSync(path.join(dir, "a.ts"), `${HEADER}// blocks every call\n${thrower}`);
    const second = await registry.reload(path.join(dir, "a.ts"));
    expect(second).toMatchObject({ ok: true, unchanged: false });
    expect(registry.states()[0]!.previousVersion).toBe(first!.ok ? first!.version : "?");
    const invocation = await pipelineNow(registry, "need_registration")[0]!.sandbox.invoke(request());
    expect(invocation.outcome.kind === "failure" && invocation.outcome.failure.location).toEqual({ file: "a.ts", line: 3, column: 68 });
  });

  it("a version that fails keeps the previous one serving, as stale, with the reason", async () => {
    const dir = scriptsFolder({ "a.ts": answering(false) });
    const { registry, lines } = registryFor(dir);
    const [first] = await registry.loadAll();
    const failures: string[] = [];
    registry.on("failed", (name, problem) => failures.push(`${name}: ${problem.stage}: ${problem.message}`));
    writeFileSync(
      path.join(dir, "a.ts"),
      `${HEADER}import { x } from "fs";\nexport default defineScript({ hooks: { need_registration() { return { result: !!x }; } } });\n`,
    );
    const broken = await registry.reload(path.join(dir, "a.ts"));
    expect(broken).toMatchObject({ ok: false, name: "a", problem: { stage: "compile", location: { file: "a.ts", line: 2 } } });
    expect(failures).toEqual([expect.stringMatching(/^a: compile: a\.ts:2:19: Node built-in module 'fs' is not available/)]);
    const state = registry.states()[0]!;
    expect(state.state).toBe("stale");
    expect(state.version).toBe(first!.ok ? first!.version : "?");
    expect(lines.at(-1)).toEqual({ level: "error", message: expect.stringContaining(`; version ${state.version} keeps serving`) });
    const answer = await callLeased(registry, configSchema.parse({}), "need_registration", {});
    expect(answer.answer).toEqual({ state: "success", data: { result: false } });
  });

  it("a script that never loaded is failed, and the registry is not ready with nothing serving", async () => {
    const dir = scriptsFolder({ "a.ts": `${HEADER}export default defineScript({ hooks: { need_registraton() {} } as any });\n` });
    const { registry } = registryFor(dir);
    const [result] = await registry.loadAll();
    expect(result).toMatchObject({ ok: false, problem: { stage: "load", message: expect.stringContaining("did you mean 'need_registration'") } });
    expect(registry.states()[0]).toMatchObject({ name: "a", state: "failed", version: null, hooks: [] });
    expect(registry.ready).toBe(false);
  });
});

describe("state", () => {
  it("shows limits with the clamping warnings, hooks and outcome counts", async () => {
    const dir = scriptsFolder({
      "a.ts": `${HEADER}export default defineScript({ limits: { timeoutMs: 99999 }, hooks: { need_registration(input: any) { if (input.fail) throw new Error("x"); } } });\n`,
    });
    const { registry, lines } = registryFor(dir, { limits: { max: { timeoutMs: 1000 } } });
    await registry.loadAll();
    const sandbox = pipelineNow(registry, "need_registration")[0]!.sandbox;
    for (const input of [{}, {}, { fail: true }]) registry.count(await sandbox.invoke(request("need_registration", { input })));
    const state = registry.states()[0]!;
    expect(state).toMatchObject({
      name: "a",
      state: "active",
      hooks: ["need_registration"],
      limits: { timeoutMs: 1000 },
      warnings: ["limits.timeoutMs 99999 is over the server's maximum 1000; using 1000"],
      invocations: 3,
      outcomes: { none: 2, exception: 1 },
      lastError: null,
      queueDepth: 0,
    });
    expect(lines).toContainEqual({ level: "warn", message: "limits.timeoutMs 99999 is over the server's maximum 1000; using 1000" });
    expect(registry.ready).toBe(true);
  });

  it("knows which scripts import a helper", async () => {
    const dir = scriptsFolder({
      "a.ts": `${HEADER}import { f } from "./lib/f";\nexport default defineScript({ hooks: { need_registration() { return { result: f() }; } } });\n`,
      "b.ts": answering(true),
      "lib/f.ts": `export const f = () => false;\n`,
    });
    const { registry } = registryFor(dir);
    await registry.loadAll();
    expect(registry.dependentsOf(path.join(dir, "lib", "f.ts"))).toEqual(["a"]);
    expect(registry.dependentsOf(path.join(dir, "b.ts"))).toEqual(["b"]);
    expect(registry.fileOf("a")).toBe(path.join(dir, "a.ts"));
  });

  it("loadAll unloads scripts whose file is gone, with an event", async () => {
    const dir = scriptsFolder({ "a.ts": answering(false), "b.ts": answering(true) });
    const { registry } = registryFor(dir);
    await registry.loadAll();
    const unloaded: string[] = [];
    registry.on("unloaded", (name) => unloaded.push(name));
    rmSync(path.join(dir, "a.ts"));
    await registry.loadAll();
    expect(unloaded).toEqual(["a"]);
    expect(registry.states().map((s) => s.name)).toEqual(["b"]);
    expect(pipelineNow(registry, "need_registration").map((s) => s.sandbox.name)).toEqual(["b"]);
  });

  it("a folder bundled in more than one esbuild run (scripts load while the next run bundles) loads whole, each script its own", async () => {
    // 101 scripts: two runs of compile.ts's BATCH_SIZE (100); each keeps its place in the order.
    const count = 101;
    const files: Record<string, string> = {};
    for (let i = 0; i < count; i++) files[`s${String(i).padStart(3, "0")}.ts`] = tracing(`s${i}`, i);
    const dir = scriptsFolder(files);
    const { registry } = registryFor(dir);
    const results = await registry.loadAll();
    expect(results.filter((result) => result.ok)).toHaveLength(count);
    const answer = await callLeased(registry, configSchema.parse({ scriptsDir: dir }), "process_final_params", {});
    expect(answer.answer).toEqual({ state: "success", data: { trace: Array.from({ length: count }, (_, i) => `s${i}`) } });
  });

  it("close disposes every version", async () => {
    const dir = scriptsFolder({ "a.ts": answering(false) });
    const { registry } = registryFor(dir);
    await registry.loadAll();
    const sandbox = registry.sandboxes()[0]!;
    // Its isolate boots at its first call (bootIsolates).
    await callLeased(registry, configSchema.parse({ scriptsDir: dir }), "need_registration", {});
    expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
    await registry.close();
    expect(sandbox.heapUsedBytes()).toBeUndefined();
    expect(registry.states()).toEqual([]);
  });
});

describe("bootIsolates", () => {
  const heaps = (registry: ScriptRegistry) => registry.sandboxes().map((sandbox) => [sandbox.name, sandbox.heapUsedBytes() !== undefined]);

  it("afterLoad (the default): ready with no isolate booted; they all boot then, in the background", async () => {
    // Eight scripts (registry.ts's FEW_SCRIPTS): loaded in probes.
    const names = ["a", "b", "c", "d", "e", "f", "g", "other"];
    const dir = scriptsFolder(Object.fromEntries(names.map((name) => [`${name}.ts`, name === "other" ? answering(false) : tracing(name)])));
    const { registry } = registryFor(dir);
    await registry.loadAll();
    expect(registry.ready).toBe(true);
    expect(registry.states().map((state) => state.isolateUp)).toEqual(names.map(() => false));
    await vi.waitFor(() => expect(heaps(registry)).toEqual(names.map((name) => [name, true])));
    expect(registry.states().map((state) => [state.name, state.isolateUp])).toEqual(names.map((name) => [name, true]));
  });

  it("onFirstCall: loaded without isolates; a hook's first call boots all of its scripts, answering as they would", async () => {
    const dir = scriptsFolder({ "a.ts": tracing("a"), "b.ts": tracing("b"), "c.ts": tracing("c"), "other.ts": answering(false) });
    const { registry } = registryFor(dir, { bootIsolates: "onFirstCall" });
    await registry.loadAll();
    expect(registry.ready).toBe(true);
    expect(heaps(registry)).toEqual([
      ["a", false],
      ["b", false],
      ["c", false],
      ["other", false],
    ]);
    const result = await callLeased(registry, configSchema.parse({ scriptsDir: dir }), "process_final_params", {});
    expect(result.answer).toEqual({ state: "success", data: { trace: ["a", "b", "c"] } });
    // The scripts of the hook called, and no other.
    expect(heaps(registry)).toEqual([
      ["a", true],
      ["b", true],
      ["c", true],
      ["other", false],
    ]);
  });

  it("afterLoad: a script saved alone, or a few together, boot their isolates as they load (no probe, then a boot); many at once load in probes", async () => {
    // Eight scripts: as many as registry.ts's FEW_SCRIPTS, so the folder loads in probes.
    const names = ["a", "b", "c", "d", "e", "f", "g", "h"];
    const dir = scriptsFolder(Object.fromEntries(names.map((name) => [`${name}.ts`, tracing(name)])));
    const { registry } = registryFor(dir);
    const isolatesUp = () => registry.states().map((state) => [state.name, state.isolateUp]);
    await registry.loadAll();
    expect(isolatesUp()).toEqual(names.map((name) => [name, false]));
    writeFileSync(path.join(dir, "a.ts"), tracing("a2"));
    const saved = await registry.reload(path.join(dir, "a.ts"));
    expect(saved.ok).toBe(true);
    expect(registry.states().find((state) => state.name === "a")?.isolateUp).toBe(true);
    // A few saved together (a helper's importers): booted as they load too.
    writeFileSync(path.join(dir, "b.ts"), tracing("b2"));
    writeFileSync(path.join(dir, "c.ts"), tracing("c2"));
    await registry.applyBatch({ reload: [path.join(dir, "b.ts"), path.join(dir, "c.ts")], unload: [] });
    expect(isolatesUp().filter(([name]) => name === "b" || name === "c")).toEqual([
      ["b", true],
      ["c", true],
    ]);
    // Every one of them at once (a git pull): in probes, their isolates booted later.
    for (const name of names) writeFileSync(path.join(dir, `${name}.ts`), tracing(`${name}3`));
    await registry.applyBatch({ reload: names.map((name) => path.join(dir, `${name}.ts`)), unload: [] });
    expect(isolatesUp()).toEqual(names.map((name) => [name, false]));
  });

  it("afterLoad: a folder of a few scripts boots each isolate as it loads (no probe worker for them)", async () => {
    const dir = scriptsFolder({ "a.ts": tracing("a"), "b.ts": answering(false) });
    const { registry } = registryFor(dir);
    await registry.loadAll();
    expect(registry.states().map((state) => [state.name, state.isolateUp])).toEqual([
      ["a", true],
      ["b", true],
    ]);
  });

  it("a script whose own isolate cannot boot in the background: a warning, and /scripts says why", async () => {
    const dir = scriptsFolder({ "a.ts": tracing("a") });
    const { registry, lines } = registryFor(dir, { bootIsolates: "onFirstCall" });
    await registry.loadAll();
    const [sandbox] = registry.sandboxes();
    // Its top level as if it now threw in its own isolate (the probe's run was fine).
    sandbox!.compiled.code = `"use strict";\nthrow new Error("not at this hour");\n`;
    sandbox!.bootLater();
    await vi.waitFor(() => expect(registry.states()[0]).toMatchObject({ name: "a", isolateUp: false, bootError: "not at this hour" }));
    expect(lines).toContainEqual({ level: "warn", message: "script's isolate could not be booted: its calls fail until it can" });
    expect(registry.states()[0]!.state).toBe("active");
  });

  it("atLoad: every script's isolate boots as it loads", async () => {
    const dir = scriptsFolder({ "a.ts": tracing("a"), "other.ts": answering(false) });
    const { registry } = registryFor(dir, { bootIsolates: "atLoad" });
    await registry.loadAll();
    expect(heaps(registry)).toEqual([
      ["a", true],
      ["other", true],
    ]);
  });
});
