import { chmodSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BundleCache } from "../../runtime/compile/compile-cache.js";
import { compileScript, compileScripts, type CompileResult } from "../../runtime/compile/compile.js";
import { scriptsFolder } from "../helpers/scripts.js";

/**
 * Bundles kept between runs (compile-cache.ts): a script is bundled again whenever anything it
 * was made from changed, and what comes from the cache is what esbuild would make now.
 */

let cache: string;
let previous: string | undefined;
beforeAll(() => {
  previous = process.env.CALLSCRIPT_CACHE_DIR;
});
beforeEach(() => {
  cache = scriptsFolder({});
  process.env.CALLSCRIPT_CACHE_DIR = cache;
});
afterAll(() => {
  if (previous === undefined) delete process.env.CALLSCRIPT_CACHE_DIR;
  else process.env.CALLSCRIPT_CACHE_DIR = previous;
});

const script = (limit: string) =>
  `import { defineScript } from "callscript";\nimport { LIMIT } from "${limit}";\n` +
  `export default defineScript({ hooks: { need_registration({ call_full }) { return { result: call_full.calls.length < LIMIT }; } } });\n`;
const plain = `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { return { result: true }; } } });\n`;

function files(dir: string, names: string[]): string[] {
  return names.map((name) => path.join(dir, name));
}

const reused = (results: CompileResult[]) => results.map((result) => (result.ok ? result.reused === true : "failed"));
const bundles = (results: CompileResult[]) => results.map((result) => (result.ok ? { code: result.script.code, version: result.script.version } : result));

describe("bundles kept between runs", () => {
  it("a second batch of the same folder reuses every bundle, equal to what esbuild makes now", async () => {
    const dir = scriptsFolder({ "a.ts": script("./lib/limit"), "b.ts": plain, "lib/limit.ts": "export const LIMIT = 3;\n" });
    const names = files(dir, ["a.ts", "b.ts"]);
    const first = await compileScripts(names, dir);
    expect(reused(first)).toEqual([false, false]);
    const second = await compileScripts(names, dir);
    expect(reused(second)).toEqual([true, true]);
    expect(bundles(second)).toEqual(bundles(first));
    // Each the same as compiled alone, with its inputs (the watcher's) and its source map.
    for (const [i, name] of names.entries()) {
      const alone = await compileScript(name, dir);
      const kept = second[i]!;
      if (!alone.ok || !kept.ok) throw new Error("did not compile");
      expect(kept.script.version).toBe(alone.script.version);
      expect(kept.script.sourceMap).toBe(alone.script.sourceMap);
      // (A batch lists them in another order than a compile alone.)
      expect([...kept.script.inputs].sort()).toEqual([...alone.script.inputs].sort());
    }
  });

  it("tells each script's result as soon as it is known: kept bundles before esbuild runs, each once, the same as returned", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain, "c.ts": script("./lib/limit"), "lib/limit.ts": "export const LIMIT = 3;\n" });
    const names = files(dir, ["a.ts", "b.ts", "c.ts"]);
    await compileScripts(names, dir);
    writeFileSync(path.join(dir, "lib/limit.ts"), "export const LIMIT = 4;\n");
    const told: { index: number; reused: boolean | "failed" }[] = [];
    const results = await compileScripts(names, dir, { onCompiled: (index, result) => told.push({ index, reused: reused([result])[0]! }) });
    // a and b come from the cache at once; c, whose helper changed, once its esbuild run is over.
    expect(told).toEqual([
      { index: 0, reused: true },
      { index: 1, reused: true },
      { index: 2, reused: false },
    ]);
    expect(reused(results)).toEqual([true, true, false]);
  });

  it("a changed helper bundles again the scripts that import it, and only them", async () => {
    const dir = scriptsFolder({ "a.ts": script("./lib/limit"), "b.ts": plain, "lib/limit.ts": "export const LIMIT = 3;\n" });
    const names = files(dir, ["a.ts", "b.ts"]);
    await compileScripts(names, dir);
    writeFileSync(path.join(dir, "lib/limit.ts"), "export const LIMIT = 4;\n");
    const after = await compileScripts(names, dir);
    expect(reused(after)).toEqual([false, true]);
    expect(after[0]!.ok && after[0]!.script.code).toContain("LIMIT=4");
  });

  it("a file added where an unchanged import now resolves sets the folder's bundles aside", async () => {
    // `./lib/limit` is lib/limit/index.ts until lib/limit.ts exists, which esbuild then prefers.
    const dir = scriptsFolder({ "a.ts": script("./lib/limit"), "b.ts": plain, "lib/limit/index.ts": "export const LIMIT = 3;\n" });
    const names = files(dir, ["a.ts", "b.ts"]);
    await compileScripts(names, dir);
    writeFileSync(path.join(dir, "lib/limit.ts"), "export const LIMIT = 9;\n");
    const after = await compileScripts(names, dir);
    expect(reused(after)).toEqual([false, false]);
    expect(after[0]!.ok && after[0]!.script.code).toContain("LIMIT=9");
  });

  it("a change of the SDK or of the bundler's own code is a miss (the toolchain is part of the key)", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain.replace("true", "false") });
    const names = files(dir, ["a.ts", "b.ts"]);
    await compileScripts(names, dir);
    const [store] = readdirSync(cache).filter((name) => name.startsWith("bundles-"));
    const file = path.join(cache, store!);
    const bytes = readFileSync(file);
    const newline = bytes.indexOf(10);
    const header = JSON.parse(bytes.toString("utf8", 0, newline)) as { toolchain: string; hashes: Record<string, string> };
    // The SDK is among the files every bundle was made from.
    expect(Object.keys(header.hashes).some((input) => input.includes(`${path.sep}sdk${path.sep}`))).toBe(true);
    writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify({ ...header, toolchain: "another" }) + "\n"), bytes.subarray(newline + 1)]));
    expect(reused(await compileScripts(names, dir))).toEqual([false, false]);
  });

  it("a store that cannot be read is only a miss, and one that cannot be written only slower", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain.replace("true", "false") });
    const names = files(dir, ["a.ts", "b.ts"]);
    const first = await compileScripts(names, dir);
    const [store] = readdirSync(cache).filter((name) => name.startsWith("bundles-"));
    writeFileSync(path.join(cache, store!), "{ not json");
    expect(bundles(await compileScripts(names, dir))).toEqual(bundles(first));
    // The cache folder is a file: nothing can be written under it.
    rmSync(cache, { recursive: true, force: true });
    writeFileSync(cache, "");
    const unwritable = await compileScripts(names, dir);
    expect(reused(unwritable)).toEqual([false, false]);
    expect(bundles(unwritable)).toEqual(bundles(first));
    rmSync(cache, { force: true });
    mkdirSync(cache);
  });

  it("a store that someone else could have written is not used: its code would run as the scripts' own", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain.replace("true", "false") });
    const names = files(dir, ["a.ts", "b.ts"]);
    await compileScripts(names, dir);
    const [store] = readdirSync(cache).filter((name) => name.startsWith("bundles-"));
    expect(reused(await compileScripts(names, dir))).toEqual([true, true]);
    chmodSync(path.join(cache, store!), 0o666);
    expect(reused(await compileScripts(names, dir))).toEqual([false, false]);
    // Written again, 0600: used again; not in a folder others may write to.
    expect(reused(await compileScripts(names, dir))).toEqual([true, true]);
    chmodSync(cache, 0o777);
    expect(reused(await compileScripts(names, dir))).toEqual([false, false]);
    chmodSync(cache, 0o700);
  });

  it("what keeps the store from being used or written is reported (the registry logs it); a first run, with no store yet, reports nothing", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain.replace("true", "false") });
    const names = files(dir, ["a.ts", "b.ts"]);
    const problems: string[] = [];
    const onCacheProblem = (problem: string) => problems.push(problem);
    await compileScripts(names, dir, { onCacheProblem });
    await compileScripts(names, dir, { onCacheProblem });
    expect(problems).toEqual([]);
    const [store] = readdirSync(cache).filter((name) => name.startsWith("bundles-"));
    chmodSync(path.join(cache, store!), 0o666);
    await compileScripts(names, dir, { onCacheProblem });
    expect(problems).toEqual([`the bundles kept in ${path.join(cache, store!)} are not used: that file or its folder can be written by another user`]);
    problems.length = 0;
    rmSync(cache, { recursive: true, force: true });
    writeFileSync(cache, "");
    await compileScripts(names, dir, { onCacheProblem });
    expect(problems).toEqual([
      expect.stringMatching(new RegExp(`^the bundles could not be kept in ${cache} \\(.+\\): the next start bundles every script again$`)),
    ]);
    rmSync(cache, { force: true });
    mkdirSync(cache);
  });

  it("a store whose ranges or shapes are not a store's is not used: every bundle is made again", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": plain.replace("true", "false") });
    const names = files(dir, ["a.ts", "b.ts"]);
    const first = await compileScripts(names, dir);
    const [store] = readdirSync(cache).filter((name) => name.startsWith("bundles-"));
    const file = path.join(cache, store!);
    const bytes = readFileSync(file);
    const newline = bytes.indexOf(10);
    type Stored = { bundles: Record<string, { code: [number, number]; inputs: unknown }> };
    const header = JSON.parse(bytes.toString("utf8", 0, newline)) as Stored;
    const tampered = (change: (header: Stored) => void) => {
      const copy = structuredClone(header);
      change(copy);
      writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify(copy) + "\n"), bytes.subarray(newline + 1)]), { mode: 0o600 });
    };
    const cases: [string, (header: Stored) => void][] = [
      ["a range past the end", (h) => (h.bundles["a.ts"]!.code = [0, bytes.length * 2])],
      ["a range backwards", (h) => (h.bundles["a.ts"]!.code = [10, 2])],
      ["inputs that are not a list", (h) => (h.bundles["a.ts"]!.inputs = "a.ts")],
    ];
    for (const [what, change] of cases) {
      tampered(change);
      const again = await compileScripts(names, dir);
      expect(reused(again), what).toEqual([false, false]);
      expect(bundles(again), what).toEqual(bundles(first));
    }
  });

  it("a script that does not compile is never kept: its failure is found again, with its message", async () => {
    const dir = scriptsFolder({ "a.ts": plain, "b.ts": `import { nope } from "./missing";\nconsole.log(nope);\n${plain}` });
    const names = files(dir, ["a.ts", "b.ts"]);
    const first = await compileScripts(names, dir);
    expect(first[1]!.ok).toBe(false);
    const second = await compileScripts(names, dir);
    expect(second[1]).toEqual(first[1]);
  });

  it("a bundle whose files changed while esbuild read them is not kept", () => {
    const dir = scriptsFolder({ "a.ts": script("./lib/limit"), "lib/limit.ts": "export const LIMIT = 3;\n" });
    const [file, helper] = files(dir, ["a.ts", "lib/limit.ts"]);
    const made = { code: "made", sourceMap: "{}", inputs: ["a.ts", "lib/limit.ts"] };
    // The cache reads the folder before the build; the helper is saved during it.
    const during = new BundleCache(dir, "prelude");
    writeFileSync(helper!, "export const LIMIT = 4;\n");
    during.keep(file!, made, [file!, helper!], new Map());
    during.save();
    expect(new BundleCache(dir, "prelude").lookup(file!)).toBeUndefined();
    // Unchanged through the build: kept, and found again while the files stay as they are.
    const quiet = new BundleCache(dir, "prelude");
    quiet.keep(file!, made, [file!, helper!], new Map());
    quiet.save();
    expect(new BundleCache(dir, "prelude").lookup(file!)).toMatchObject({ code: "made", inputs: made.inputs });
    expect(new BundleCache(dir, "another prelude").lookup(file!)).toBeUndefined();
  });
});
