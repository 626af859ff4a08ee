import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BUILTIN_MAX_LIMITS } from "../../runtime/sandbox/limits.js";
import { LoadProbes } from "../../runtime/sandbox/load-probe.js";
import type { SandboxOptions } from "../../runtime/sandbox/sandbox.js";
import { dataOf, failureOf, HEADER, loadFailure, request, sandboxOptions, Sandboxes, scriptsFolder } from "../helpers/scripts.js";

// Scripts loaded in a probe isolate, their own isolate booted at their first call (config
// bootIsolates: "onFirstCall", the server's default), against the same scripts booted at load.
const probes = new LoadProbes();
const sandboxes = new Sandboxes();
afterAll(async () => {
  await sandboxes.disposeAll();
  await probes.close();
});

const probed = (options: SandboxOptions = sandboxOptions()): SandboxOptions => ({ ...options, loadProbes: probes });
const handler = `need_registration() { return { result: false }; }`;

describe("a script loaded in a probe", () => {
  it("has no isolate until its first call, which boots one and answers", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}console.log("loading");\nexport default defineScript({ order: 3, settings: { ext: ["101"] }, hooks: { ${handler} } });\n`,
      probed(),
    );
    expect(sandbox.meta.hooks).toEqual(["need_registration"]);
    expect(sandbox.meta.order).toBe(3);
    expect(sandbox.meta.settings).toEqual({ ext: ["101"] });
    expect(sandbox.meta.logs.lines.map(({ level, message }) => [level, message])).toEqual([["info", "loading"]]);
    expect(sandbox.heapUsedBytes()).toBeUndefined();
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
    expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
  });

  it("starts its first call from a fresh top level of its own: the probe's run is not the one its calls see", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}let loads = 0;\nloads++;\nlet calls = 0;\nexport default defineScript({ hooks: { need_registration() { calls++; return { result: false, loads, calls } as any; } } });\n`,
      probed(),
    );
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false, loads: 1, calls: 1 });
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false, loads: 1, calls: 2 });
  });

  it("with a larger heap of its own, that its top level needs: loaded the full way, and it answers", async () => {
    // About 96 MB of doubles at load: over the probe's heap (the default 32 MB).
    const sandbox = await sandboxes.load(
      `${HEADER}const table: number[][] = [];\nfor (let i = 0; i < 12; i++) table.push(new Array(1e6).fill(i + 0.5));\n` +
        `export default defineScript({ limits: { memoryMb: 160 }, hooks: { need_registration() { return { result: table.length === 12 }; } } });\n`,
      probed(),
    );
    expect(sandbox.limits.memoryMb).toBe(160);
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: true });
  });

  it("asking for a smaller heap than the probe's: booted at load, so that its top level is checked in a heap of its size", async () => {
    const sandbox = await sandboxes.load(`${HEADER}export default defineScript({ limits: { memoryMb: 16 }, hooks: { ${handler} } });\n`, probed());
    expect(sandbox.limits.memoryMb).toBe(16);
    expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
  });

  it("many at once, side by side: each answers with its own definition", async () => {
    const all = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        sandboxes.load(
          `${HEADER}export default defineScript({ order: ${i}, hooks: { need_registration() { return { result: false, n: ${i} } as any; } } });\n`,
          probed(),
        ),
      ),
    );
    expect(all.map((sandbox) => sandbox.meta.order)).toEqual(Array.from({ length: 24 }, (_, i) => i));
    expect(all.every((sandbox) => sandbox.heapUsedBytes() === undefined)).toBe(true);
    const answers = await Promise.all(all.map(async (sandbox) => dataOf(await sandbox.invoke(request()))));
    expect(answers).toEqual(Array.from({ length: 24 }, (_, i) => ({ result: false, n: i })));
  });
});

describe("probes are shared: what one script's top level does stays in its own context", () => {
  it("built-ins and globals changed by one top level are not those of the next script loaded in the same probe", async () => {
    // Loaded one after the other, so that the second takes the probe isolate the first left idle.
    const first = await sandboxes.load(
      `${HEADER}(Object.prototype as any).toJSON = () => ({ hooks: ["customize_entity"] });\n(globalThis as any).shared = "first";\n` +
        `JSON.stringify = () => "{}";\nexport default defineScript({ hooks: { ${handler} } });\n`,
      probed(),
    );
    const second = await sandboxes.load(
      `${HEADER}const seen = String((globalThis as any).shared);\n` +
        `export default defineScript({ settings: { seen }, hooks: { need_registration() { return { result: false, seen, json: JSON.stringify({ a: 1 }) } as any; } } });\n`,
      probed(),
    );
    expect(first.meta.hooks).toEqual(["need_registration"]);
    expect(second.meta.hooks).toEqual(["need_registration"]);
    expect(second.meta.settings).toEqual({ seen: "undefined" });
    expect(dataOf(await second.invoke(request()))).toEqual({ result: false, seen: "undefined", json: '{"a":1}' });
  });
});

// Every failure of a probe sends the script the full way: the admin reads what the isolate of its
// own says, word for word as when it boots at load.
describe("a script that does not load: the same failure as booted at load", () => {
  const failing: [string, string, SandboxOptions?][] = [
    ["no default export", `${HEADER}export const hooks = { ${handler} };\n`],
    ["a misspelt hook", `${HEADER}export default defineScript({ hooks: { need_registraton() {} } as any });\n`],
    ["no hooks", `${HEADER}export default defineScript({ hooks: {} });\n`],
    [
      "a top-level throw",
      `${HEADER}const ext = ["101"];\nif (ext.length < 2) {\n  throw new Error("need two extensions");\n}\nexport default defineScript({ hooks: { ${handler} } });\n`,
    ],
    ["settings that are not JSON", `${HEADER}export default defineScript({ settings: { f: () => 1 } as any, hooks: { ${handler} } });\n`],
    [
      "its top level uses the sandbox's entry",
      // A microtask runs once the bundle has finished, when the entry global exists.
      `${HEADER}void Promise.resolve().then(() => (globalThis as any).__callscript_entry.entry.connect(() => undefined, new SharedArrayBuffer(8)));\nexport default defineScript({ hooks: { ${handler} } });\n`,
    ],
    // Stopped at the probe's time limit, then at its own isolate's: the same message, 2 s later.
    ["a top-level infinite loop", `${HEADER}for (;;) {}\nexport default defineScript({ hooks: { ${handler} } });\n`],
    [
      "a top-level heap bomb",
      `${HEADER}const hoard: string[] = [];\nfor (;;) hoard.push("x".repeat(1024) + hoard.length);\nexport default defineScript({ hooks: { ${handler} } });\n`,
      { ...sandboxOptions({ memoryMb: 16 }), max: { ...BUILTIN_MAX_LIMITS, memoryMb: 32 } },
    ],
  ];
  for (const [what, source, options = sandboxOptions()] of failing) {
    it(what, async () => {
      const atLoad = await loadFailure(source, options);
      const inProbe = await loadFailure(source, probed(options));
      // (A failure the host finds carries the host's stack, which names this file's line.)
      const shown = (failure: typeof atLoad) => ({
        message: failure.message,
        location: failure.location,
        stack: failure.mappedStack?.split("\n").filter((line) => !line.includes(".test.ts")),
      });
      expect(shown(inProbe)).toEqual(shown(atLoad));
    });
  }

  it("a probe lost at its heap limit does not fail the scripts loaded after it", async () => {
    const bomb = `${HEADER}const hoard: string[] = [];\nfor (;;) hoard.push("x".repeat(1024) + hoard.length);\nexport default defineScript({ hooks: { ${handler} } });\n`;
    const [failure, sandbox] = await Promise.all([
      loadFailure(bomb, probed({ ...sandboxOptions({ memoryMb: 16 }), max: { ...BUILTIN_MAX_LIMITS, memoryMb: 16 } })),
      sandboxes.load(`${HEADER}export default defineScript({ hooks: { ${handler} } });\n`, probed(sandboxOptions({ memoryMb: 16 }))),
    ]);
    expect(failure.message).toBe("its top-level code ran out of its heap of 16 MB");
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
  });
});

describe("probe isolates in worker threads", () => {
  it("a top level that runs to its time limit in a probe does not hold the event loop meanwhile", async () => {
    const loop = `${HEADER}for (;;) {}\nexport default defineScript({ hooks: { ${handler} } });\n`;
    const order: string[] = [];
    const failing = loadFailure(loop, probed()).then((failure) => {
      order.push("load failed");
      return failure;
    });
    await new Promise<void>((resolve) => setTimeout(resolve, 50));
    order.push("a timer of the loop");
    expect((await failing).message).toBe("its top-level code ran past 2000 ms");
    // (The load takes the probe's 2 s limit, then its own isolate's: the timer comes first.)
    expect(order).toEqual(["a timer of the loop", "load failed"]);
  });

  it("a worker that fails: said once, and its scripts load the full way", async () => {
    const problems: string[] = [];
    const missing = path.join(scriptsFolder({}), "no-such-worker.js");
    const own = new LoadProbes(
      undefined,
      (problem) => problems.push(problem),
      () => missing,
    );
    try {
      const sandbox = await sandboxes.load(`${HEADER}export default defineScript({ order: 5, hooks: { ${handler} } });\n`, {
        ...sandboxOptions(),
        loadProbes: own,
      });
      expect(sandbox.meta.order).toBe(5);
      expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^a load-probe worker failed \(its scripts load the full way\): /);
    } finally {
      await own.close();
    }
  });

  it("where isolated-vm does not load in a worker: said once, and every script loads the full way", async () => {
    const problems: string[] = [];
    const dir = scriptsFolder({
      "worker.mjs": `import { parentPort } from "node:worker_threads";\nparentPort.postMessage({ unavailable: "no isolated-vm in this thread" });\nparentPort.on("message", () => undefined);\n`,
    });
    const own = new LoadProbes(
      undefined,
      (problem) => problems.push(problem),
      () => path.join(dir, "worker.mjs"),
    );
    try {
      for (const order of [1, 2]) {
        const sandbox = await sandboxes.load(`${HEADER}export default defineScript({ order: ${order}, hooks: { ${handler} } });\n`, {
          ...sandboxOptions(),
          loadProbes: own,
        });
        expect(sandbox.meta.order).toBe(order);
        expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
      }
      expect(problems).toEqual([
        "load probes are unavailable, so every script loads the full way, booting its own isolate (a slower start): " +
          "isolated-vm does not load in a worker thread: no isolated-vm in this thread",
      ]);
    } finally {
      await own.close();
    }
  });

  it.each([
    { when: "told to end by close() itself", idleMs: 0 },
    // The workers end 2 s after their last probe (load-probe.ts): close() comes while this one ends.
    { when: "ended by an idle moment just before close()", idleMs: 2_500 },
  ])("close() resolves once its workers have ended, not before: none is left for the process's exit to end by force ($when)", async ({ idleMs }) => {
    // A worker that takes its time to end (as a real one collects its isolates' handles first) and
    // leaves a mark as it does; every probe it is given fails, so scripts load the full way.
    const dir = scriptsFolder({});
    const mark = path.join(dir, "ended");
    writeFileSync(
      path.join(dir, "worker.mjs"),
      `import { writeFileSync } from "node:fs";\nimport { parentPort } from "node:worker_threads";\n` +
        `parentPort.on("message", (message) => {\n` +
        `  if (!("close" in message)) return parentPort.postMessage({ id: message.id, meta: undefined });\n` +
        `  setTimeout(() => { writeFileSync(${JSON.stringify(mark)}, "ended"); parentPort.close(); }, 1_500);\n` +
        `});\n`,
    );
    const own = new LoadProbes(undefined, undefined, () => path.join(dir, "worker.mjs"));
    const sandbox = await sandboxes.load(`${HEADER}export default defineScript({ order: 3, hooks: { ${handler} } });\n`, {
      ...sandboxOptions(),
      loadProbes: own,
    });
    expect(sandbox.meta.order).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, idleMs));
    expect(existsSync(mark)).toBe(false);
    await own.close();
    expect(existsSync(mark)).toBe(true);
  });

  it("closed while a probe is in flight: the script loads the full way, and answers", async () => {
    const own = new LoadProbes();
    const loading = sandboxes.load(`${HEADER}export default defineScript({ order: 7, hooks: { ${handler} } });\n`, { ...sandboxOptions(), loadProbes: own });
    const closed = own.close();
    const sandbox = await loading;
    expect(sandbox.meta.order).toBe(7);
    // Loaded the full way: its isolate booted at load.
    expect(sandbox.heapUsedBytes()).toBeGreaterThan(0);
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
    // And the worker ended, after the probe it had been given.
    await closed;
  });
});

// The top level ran in the probe; the script's own isolate runs it again, and a boot that fails
// there (a top level that depends on the time, say) has no caller when it runs in the background.
describe("a script whose own isolate cannot be booted", () => {
  it("says why in lastBootError and once to onBootFailure; its calls fail with it; a later boot clears it", async () => {
    const reported: [string, string, boolean][] = [];
    const sandbox = await sandboxes.load(`${HEADER}export default defineScript({ hooks: { ${handler} } });\n`, {
      ...probed(),
      onBootFailure: (script, message, rebuild) => reported.push([script, message, rebuild]),
    });
    // Its bundle as if its top level now threw in its own isolate (what the probe saw was fine).
    const good = sandbox.compiled.code;
    sandbox.compiled.code = `"use strict";\nthrow new Error("not at this hour");\n`;
    sandbox.bootLater();
    await expect.poll(() => sandbox.lastBootError, { timeout: 10_000 }).toBe("not at this hour");
    expect(sandbox.isolateUp).toBe(false);
    const failure = failureOf(await sandbox.invoke(request()));
    expect(failure).toMatchObject({ reason: "exception", message: "The script's isolate could not be booted at its first call: not at this hour" });
    // The same failure again is not reported again.
    expect(reported).toEqual([["script", "not at this hour", false]]);

    sandbox.compiled.code = good;
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
    expect(sandbox.lastBootError).toBeUndefined();
    expect(sandbox.isolateUp).toBe(true);
  });
});
