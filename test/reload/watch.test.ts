import { renameSync, unlinkSync, writeFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { pipelineNow } from "../helpers/lease.js";
import { compiled } from "../helpers/scripts.js";
import { waitFor } from "../helpers/wait.js";
import { closeAll, marked, setup, sleep, type Setup } from "./harness.js";

afterEach(closeAll);

const loadedEvents = (s: Setup, name: string) => s.events.filter((event) => event.kind === "loaded" && event.name === name);
const unloadedEvents = (s: Setup) => s.events.filter((event) => event.kind === "unloaded");

/** Call the hook over and over until stopped; every answer is kept. */
function keepCalling(s: Setup) {
  const answers: Awaited<ReturnType<Setup["call"]>>[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      answers.push(await s.call());
      await sleep(1);
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await done;
      return answers;
    },
  };
}

/** Line and column (1-based) of `needle` in `source`. */
function positionOf(source: string, needle: string): { line: number; column: number } {
  const lines = source.split("\n");
  const line = lines.findIndex((text) => text.includes(needle));
  if (line < 0) throw new Error(`${needle} not in the source`);
  return { line: line + 1, column: lines[line]!.indexOf(needle) + 1 };
}

describe("hot reload: saves", () => {
  it("an edit swaps in the new version: new data, new content hash, previous version kept", async () => {
    const s = await setup({ "s.ts": marked(1) });
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });
    const v1 = s.state("s")!.version!;
    expect(v1).toMatch(/^[0-9a-f]{12}$/);

    s.write("s.ts", marked(2));
    await waitFor(async () => (await s.data()).USER_ID === 2, "version 2 answering");

    const state = s.state("s")!;
    expect(state.state).toBe("active");
    expect(state.version).not.toBe(v1);
    expect(state.previousVersion).toBe(v1);
    expect(state.lastError).toBeNull();
    // The version id is the hash of what is on disk now, compiled the same way.
    expect(state.version).toBe((await compiled(s.dir, "s.ts")).version);
    expect(loadedEvents(s, "s").map((event) => event.kind === "loaded" && event.version)).toEqual([state.version]);
    expect(await s.data()).toEqual({ USER_ID: 2, LINE_NUMBER: 2 });
  });

  it("an atomic rename-save is a reload, not an unload: the script answers throughout", async () => {
    const s = await setup({ "s.ts": marked(1) });
    const v1 = s.state("s")!.version;
    const calls = keepCalling(s);
    await waitFor(() => calls.answers.length > 0, "a first answer");

    s.renameSave("s.ts", marked(2));
    await waitFor(() => calls.answers.some((answer) => answer.state === "success" && answer.data.USER_ID === 2), "version 2 answering");
    const answers = await calls.stop();

    expect(answers.every((answer) => answer.state === "success")).toBe(true);
    const seen = new Set(answers.map((answer) => answer.state === "success" && answer.data.USER_ID));
    expect([...seen].sort()).toEqual([1, 2]);
    expect(unloadedEvents(s)).toEqual([]);
    expect(s.registry.states().map((state) => state.name)).toEqual(["s"]);
    expect(s.state("s")!.previousVersion).toBe(v1);
    // The temporary file was never taken for a script or a helper.
    expect([...s.reloads.keys()]).toEqual(["s.ts"]);
  });

  it("a save that deletes the file and creates it again a few ms later is a reload, not an unload", async () => {
    const s = await setup({ "s.ts": marked(1) });
    const calls = keepCalling(s);
    await waitFor(() => calls.answers.length > 0, "a first answer");

    s.remove("s.ts");
    await sleep(3);
    s.write("s.ts", marked(2));
    await waitFor(() => calls.answers.some((answer) => answer.state === "success" && answer.data.USER_ID === 2), "version 2 answering");
    await s.watcher.idle();
    const answers = await calls.stop();

    expect(answers.filter((answer) => answer.state !== "success")).toEqual([]);
    expect(unloadedEvents(s)).toEqual([]);
    expect(s.state("s")!.state).toBe("active");
    expect(await s.data()).toEqual({ USER_ID: 2, LINE_NUMBER: 2 });
  });

  it("a vim-style save (file renamed to a backup, new file written, backup removed) is a reload", async () => {
    const s = await setup({ "s.ts": marked(1) });
    renameSync(s.file("s.ts"), s.file("s.ts~"));
    writeFileSync(s.file("4913"), "");
    unlinkSync(s.file("4913"));
    s.write("s.ts", marked(2));
    unlinkSync(s.file("s.ts~"));
    await waitFor(async () => (await s.data()).USER_ID === 2, "version 2 answering");
    await s.watcher.idle();
    expect(unloadedEvents(s)).toEqual([]);
    expect([...s.reloads.keys()]).toEqual(["s.ts"]);
    expect(s.registry.states().map((state) => [state.name, state.state])).toEqual([["s", "active"]]);
  });

  it("a scripts folder whose own name starts with a dot is watched (only dot entries inside it are ignored)", async () => {
    const s = await setup({ "s.ts": marked(1) }, {}, { folder: ".callscript" });
    s.write(".hidden.ts", marked(9));
    s.write("s.ts", marked(2));
    await waitFor(async () => (await s.data()).USER_ID === 2, "version 2 answering");
    await s.watcher.idle();
    expect(s.registry.states().map((state) => state.name)).toEqual(["s"]);
    expect([...s.reloads.keys()]).toEqual(["s.ts"]);
  });

  it("a save that does not compile keeps the old version serving and reports file, line, column; fixing it clears the error", async () => {
    const s = await setup({ "s.ts": marked(1) });
    const v1 = s.state("s")!.version;
    const broken = marked(2).replace("process_registration_params(input, ctx) {", "process_registration_params(input, ctx) {\n      const x = ;");
    const where = positionOf(broken, "= ;");
    where.column += 2; // at the ";"

    s.write("s.ts", broken);
    const problem = await waitFor(() => s.state("s")?.lastError, "the compile error to show");

    expect(problem.stage).toBe("compile");
    expect(problem.location).toEqual({ file: "s.ts", line: where.line, column: where.column });
    expect(problem.message).toMatch(/Unexpected ";"/);
    const state = s.state("s")!;
    expect(state.state).toBe("stale");
    expect(state.version).toBe(v1);
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });
    // In the log, with where it is, and as the event the metrics count.
    const logged = s.logs.find((entry) => entry.level === "error" && entry.fields.script === "s");
    expect(logged?.fields.location).toEqual(problem.location);
    expect(logged?.message).toMatch(new RegExp(`failed to compile; version ${v1} keeps serving`));
    expect(s.events.filter((event) => event.kind === "failed").map((event) => event.name)).toEqual(["s"]);

    s.write("s.ts", marked(3));
    await waitFor(async () => (await s.data()).USER_ID === 3, "the fixed version answering");
    const fixed = s.state("s")!;
    expect(fixed.state).toBe("active");
    expect(fixed.lastError).toBeNull();
    expect(fixed.previousVersion).toBe(v1);
  });

  it("a save that compiles but does not load (throws at top level, misspelt hook) keeps the old version serving", async () => {
    const s = await setup({ "s.ts": marked(1) });
    const v1 = s.state("s")!.version;

    const throwing = marked(2, { top: 'throw new Error("boom at load");' });
    s.write("s.ts", throwing);
    const thrown = await waitFor(() => s.state("s")?.lastError, "the load error to show");
    expect(thrown.stage).toBe("load");
    expect(thrown.message).toContain("boom at load");
    expect(thrown.location).toMatchObject({ file: "s.ts", line: positionOf(throwing, "throw new Error").line });
    expect(s.state("s")!.state).toBe("stale");
    expect(s.state("s")!.version).toBe(v1);
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });

    s.write("s.ts", marked(3).replace("process_registration_params(", "process_registration_parms("));
    await waitFor(() => s.state("s")?.lastError?.message.includes("process_registration_parms"), "the misspelt hook to be reported");
    const misspelt = s.state("s")!.lastError!;
    expect(misspelt.stage).toBe("load");
    expect(misspelt.message).toContain("Unknown hook 'process_registration_parms' (did you mean 'process_registration_params'?)");
    expect(s.state("s")!.state).toBe("stale");
    expect(s.state("s")!.version).toBe(v1);
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });

    s.write("s.ts", marked(4));
    await waitFor(async () => (await s.data()).USER_ID === 4, "the fixed version answering");
    expect(s.state("s")!.lastError).toBeNull();
    expect(s.state("s")!.state).toBe("active");
    expect(s.events.filter((event) => event.kind === "failed")).toHaveLength(2);
  });

  it("a script that never loaded reports failed, then loads once fixed", async () => {
    const s = await setup({
      "other.ts": marked(1)
        .replace("process_registration_params", "need_registration")
        .replace(/return \{.*\};/, "return { result: false };"),
    });
    s.write("s.ts", "export default 42;\n");
    const problem = await waitFor(() => s.state("s")?.lastError, "the new script's error");
    expect(problem.stage).toBe("load");
    expect(s.state("s")!.state).toBe("failed");
    expect(s.state("s")!.version).toBeNull();
    expect(pipelineNow(s.registry, "process_registration_params")).toEqual([]);

    s.write("s.ts", marked(5));
    await waitFor(async () => (await s.data()).USER_ID === 5, "the fixed script answering");
    expect(s.state("s")!.state).toBe("active");
  });

  it("a deleted script is unloaded and its hook no longer runs it; the other scripts are untouched", async () => {
    const s = await setup({
      "s.ts": marked(1),
      "t.ts": `import { defineScript } from "callscript";
export default defineScript({ hooks: { need_registration() { return { result: false }; } } });
`,
    });
    const t = s.state("t")!.version;
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });

    s.remove("s.ts");
    await waitFor(() => !s.state("s"), "s to be unloaded");

    expect(pipelineNow(s.registry, "process_registration_params")).toEqual([]);
    // No script: the hook's defaults, which pass the request's parameters through.
    expect(await s.call("process_registration_params", { LINE_NUMBER: "L-7" })).toEqual({ state: "success", data: { LINE_NUMBER: "L-7" } });
    expect(unloadedEvents(s)).toEqual([{ kind: "unloaded", name: "s" }]);
    expect(s.state("t")!.version).toBe(t);
    expect(await s.call("need_registration")).toEqual({ state: "success", data: { result: false } });
    expect(s.reloads.get("t.ts")).toBeUndefined();
  });

  it("a new script file is loaded and answers", async () => {
    const s = await setup({
      "t.ts": `import { defineScript } from "callscript";
export default defineScript({ hooks: { need_registration() { return { result: false }; } } });
`,
    });
    expect(await s.data()).toEqual({});

    s.write("n.ts", marked(7));
    await waitFor(async () => (await s.data()).USER_ID === 7, "the new script answering");
    expect(s.state("n")).toMatchObject({ state: "active", file: "n.ts", hooks: ["process_registration_params"], previousVersion: null });
    expect(loadedEvents(s, "n")).toHaveLength(1);
  });

  it("a changed helper in a subfolder reloads the scripts that import it, and only those", async () => {
    const importer = (key: string, plus: number) => `import { defineScript } from "callscript";
import { BASE } from "./lib/numbers";
export default defineScript({ hooks: { process_registration_params() { return { ${key}: BASE + ${plus} }; } } });
`;
    const s = await setup({
      "lib/numbers.ts": "export const BASE = 100;\n",
      "a.ts": importer("A", 1),
      "b.ts": importer("B", 2),
      "c.ts": `import { defineScript } from "callscript";
export default defineScript({ hooks: { process_registration_params() { return { C: 3 }; } } });
`,
    });
    expect(await s.data()).toEqual({ A: 101, B: 102, C: 3 });
    const before = Object.fromEntries(s.registry.states().map((state) => [state.name, state.version]));

    s.write("lib/numbers.ts", "export const BASE = 200;\n");
    await waitFor(async () => {
      const data = await s.data();
      return data.A === 201 && data.B === 202;
    }, "both importers on the new helper");
    await s.watcher.idle();

    const after = Object.fromEntries(s.registry.states().map((state) => [state.name, state]));
    expect(after.a!.version).not.toBe(before.a);
    expect(after.a!.previousVersion).toBe(before.a);
    expect(after.b!.version).not.toBe(before.b);
    expect(after.b!.previousVersion).toBe(before.b);
    expect(after.c!.version).toBe(before.c);
    expect(after.c!.previousVersion).toBeNull();
    expect(s.reloads.get("a.ts")).toBeGreaterThanOrEqual(1);
    expect(s.reloads.get("b.ts")).toBeGreaterThanOrEqual(1);
    expect(s.reloads.get("c.ts")).toBeUndefined();
    expect(await s.data()).toEqual({ A: 201, B: 202, C: 3 });
  });

  it("a broken helper leaves its importers stale; fixing the helper brings them back", async () => {
    const s = await setup({
      "lib/numbers.ts": "export const BASE = 100;\n",
      "a.ts": `import { defineScript } from "callscript";
import { BASE } from "./lib/numbers";
export default defineScript({ hooks: { process_registration_params() { return { A: BASE }; } } });
`,
    });
    const v1 = s.state("a")!.version;
    s.write("lib/numbers.ts", "export const BASE = ;\n");
    const problem = await waitFor(() => s.state("a")?.lastError, "the helper's error on its importer");
    expect(problem.location).toMatchObject({ file: "lib/numbers.ts", line: 1 });
    expect(s.state("a")).toMatchObject({ state: "stale", version: v1 });
    expect(await s.data()).toEqual({ A: 100 });

    s.write("lib/numbers.ts", "export const BASE = 300;\n");
    await waitFor(async () => (await s.data()).A === 300, "the importer on the fixed helper");
    expect(s.state("a")).toMatchObject({ state: "active", lastError: null, previousVersion: v1 });
  });

  it("a burst of 50 saves ends on the last one, with far fewer reloads than saves", async () => {
    const s = await setup({ "s.ts": marked(0) });
    for (let n = 1; n <= 50; n++) {
      s.write("s.ts", marked(n));
      await sleep(1);
    }
    await waitFor(async () => (await s.data()).USER_ID === 50, "the last save answering");
    await s.watcher.idle();

    expect(await s.data()).toEqual({ USER_ID: 50, LINE_NUMBER: 50 });
    const state = s.state("s")!;
    expect(state).toMatchObject({ state: "active", lastError: null });
    expect(state.version).toBe((await compiled(s.dir, "s.ts")).version);
    const reloads = s.reloads.get("s.ts") ?? 0;
    expect(reloads).toBeGreaterThanOrEqual(1);
    expect(reloads).toBeLessThan(50);
  });

  it("a save right after another, inside chokidar's 50 ms change throttle, is not lost", async () => {
    const s = await setup({ "s.ts": marked(1) });
    s.write("s.ts", marked(2));
    // The batch for the first save has started: its file is read; chokidar has just emitted a
    // change for this file and drops the next ones for 50 ms without a trailing event.
    await waitFor(() => (s.reloads.get("s.ts") ?? 0) >= 1, "the reload of the first save");
    s.write("s.ts", marked(3));
    await waitFor(async () => (await s.data()).USER_ID === 3, "the second save answering");
    expect(s.state("s")!.version).toBe((await compiled(s.dir, "s.ts")).version);
  });

  it("after close() nothing is reloaded", async () => {
    const s = await setup({ "s.ts": marked(1) });
    await s.watcher.close();
    s.write("s.ts", marked(2));
    s.write("n.ts", marked(3));
    s.remove("s.ts");
    // Longer than a settle, a batch and a re-check would take.
    await sleep(400);
    expect(s.reloads.size).toBe(0);
    expect(s.events).toEqual([]);
    expect(s.registry.states().map((state) => state.name)).toEqual(["s"]);
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });
  });
});

describe("hot reload: without watching (--no-watch) and SIGHUP", () => {
  it("a save changes nothing until loadAll(), which loads new files, reloads changed ones and unloads gone ones", async () => {
    const s = await setup({ "s.ts": marked(1), "gone.ts": marked(9).replace("process_registration_params", "process_final_params") });
    await s.watcher.close();
    s.write("s.ts", marked(2));
    s.write(
      "n.ts",
      marked(3)
        .replace("process_registration_params", "need_registration")
        .replace(/return \{.*\};/, "return { result: false };"),
    );
    s.remove("gone.ts");
    await sleep(100);
    expect(await s.data()).toEqual({ USER_ID: 1, LINE_NUMBER: 1 });

    const results = await s.registry.loadAll();
    expect(results.map((result) => [result.name, result.ok])).toEqual([
      ["n", true],
      ["s", true],
    ]);
    expect(await s.data()).toEqual({ USER_ID: 2, LINE_NUMBER: 2 });
    expect(await s.call("need_registration")).toEqual({ state: "success", data: { result: false } });
    expect(s.registry.states().map((state) => state.name)).toEqual(["n", "s"]);
  });

  it("watcher.reloadAll() runs in turn with the batches and keeps unchanged scripts as they are", async () => {
    const s = await setup({ "s.ts": marked(1), "t.ts": marked(2).replace("process_registration_params", "process_final_params") });
    const t = s.state("t")!.version;
    s.write("s.ts", marked(4));
    const results = await s.watcher.reloadAll();
    expect(results.find((result) => result.name === "t")).toMatchObject({ ok: true, unchanged: true, version: t });
    await waitFor(async () => (await s.data()).USER_ID === 4, "the save answering");
    expect(s.state("t")!.version).toBe(t);
  });
});
