import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { folderKey, TypeCheckCache } from "../../runtime/compile/typecheck-cache.js";
import { WorkerTypeChecking } from "../../runtime/compile/typecheck-service.js";
import { InProcessTypeChecking } from "../../runtime/compile/typecheck.js";
import { scriptsFolder } from "../helpers/scripts.js";

/** The type check's results kept between runs: used only for the very folder they were found in. */

let previous: string | undefined;
beforeAll(() => {
  previous = process.env.CALLSCRIPT_CACHE_DIR;
  process.env.CALLSCRIPT_CACHE_DIR = scriptsFolder({});
});
afterAll(() => {
  if (previous === undefined) delete process.env.CALLSCRIPT_CACHE_DIR;
  else process.env.CALLSCRIPT_CACHE_DIR = previous;
});

const typo = `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration({ call_full }) { return { result: call_full.chanel.type === "incoming" }; } } });\n`;
const helper = `export const LIMIT = 3;\n`;

describe("type check results on disk", () => {
  it("are found again for the same folder, by a new cache (a restart), and for no other content", async () => {
    const dir = scriptsFolder({ "a.ts": typo, "lib/limit.ts": helper });
    const file = path.join(dir, "a.ts");
    const checking = new InProcessTypeChecking();
    const problems = await checking.check(dir, [file]);
    await checking.close();
    expect(problems).toHaveLength(1);

    new TypeCheckCache().store(dir, folderKey(dir, { exact: true }), [file], problems);
    const restarted = new TypeCheckCache();
    expect(restarted.lookup(dir, [file])).toEqual(problems);
    // A file it was not asked about is not known.
    expect(restarted.lookup(dir, [file, path.join(dir, "b.ts")])).toBeUndefined();

    // Any change of the folder's sources, even one the script's bundle does not include, is a miss.
    writeFileSync(path.join(dir, "lib/limit.ts"), `${helper}export type Limit = number;\n`);
    // (A key is reused within one turn of the event loop, the burst of lookups of a start.)
    await new Promise((resolve) => setImmediate(resolve));
    expect(new TypeCheckCache().lookup(dir, [file])).toBeUndefined();
  });

  it("a start served from them loads the compiler only a moment after the last script checked, not while scripts still load", async () => {
    const dir = scriptsFolder({ "a.ts": typo, "b.ts": typo });
    const files = [path.join(dir, "a.ts"), path.join(dir, "b.ts")];
    const inProcess = new InProcessTypeChecking();
    const found = await Promise.all(files.map((file) => inProcess.check(dir, [file])));
    await inProcess.close();
    const cache = new TypeCheckCache();
    files.forEach((file, i) => cache.store(dir, folderKey(dir, { exact: true }), [file], found[i]!));

    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const checking = new WorkerTypeChecking();
    const compilerLoaded = () => (checking as unknown as { worker?: unknown }).worker !== undefined;
    try {
      // Scripts load in runs (one per esbuild run): the second run's check comes 0.9 s after the first.
      expect(await checking.check(dir, [files[0]!])).toEqual(found[0]);
      vi.advanceTimersByTime(900);
      await new Promise((resolve) => setImmediate(resolve));
      expect(compilerLoaded()).toBe(false);
      expect(await checking.check(dir, [files[1]!])).toEqual(found[1]);
      vi.advanceTimersByTime(900);
      expect(compilerLoaded()).toBe(false);
      vi.advanceTimersByTime(200);
      expect(compilerLoaded()).toBe(true);
    } finally {
      vi.useRealTimers();
      await checking.close();
    }
  });

  it("nor while the server is busy: it waits for a quiet moment, and a save checked before loads it at once", async () => {
    const dir = scriptsFolder({ "a.ts": typo });
    const file = path.join(dir, "a.ts");
    const inProcess = new InProcessTypeChecking();
    const found = await inProcess.check(dir, [file]);
    await inProcess.close();
    new TypeCheckCache().store(dir, folderKey(dir, { exact: true }), [file], found);

    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    let busy = true;
    const checking = new WorkerTypeChecking({ quiet: () => !busy });
    const compilerLoaded = () => (checking as unknown as { worker?: unknown }).worker !== undefined;
    try {
      expect(await checking.check(dir, [file])).toEqual(found);
      vi.advanceTimersByTime(5_000);
      expect(compilerLoaded()).toBe(false);
      busy = false;
      vi.advanceTimersByTime(1_000);
      expect(compilerLoaded()).toBe(true);
    } finally {
      vi.useRealTimers();
      await checking.close();
    }

    // Busy all along, and a save comes: its check loads the compiler and answers.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    const saved = new WorkerTypeChecking({ quiet: () => false });
    try {
      expect(await saved.check(dir, [file])).toEqual(found);
      vi.advanceTimersByTime(3_000);
      expect((saved as unknown as { worker?: unknown }).worker).toBeUndefined();
    } finally {
      vi.useRealTimers();
    }
    try {
      writeFileSync(file, `${typo}// saved\n`);
      // (The folder's key is kept for one turn of the event loop.)
      await new Promise((resolve) => setImmediate(resolve));
      const problems = await saved.check(dir, [file]);
      expect(problems).toHaveLength(1);
      expect((saved as unknown as { worker?: unknown }).worker).toBeDefined();
    } finally {
      await saved.close();
    }
  });

  it("equal content gives an equal key; a different file gives another", () => {
    const one = scriptsFolder({ "a.ts": typo });
    const two = scriptsFolder({ "a.ts": typo });
    const other = scriptsFolder({ "a.ts": `${typo}// changed\n` });
    expect(folderKey(one, { exact: true })).toBe(folderKey(two, { exact: true }));
    expect(folderKey(one, { exact: true })).not.toBe(folderKey(other, { exact: true }));
  });
});
