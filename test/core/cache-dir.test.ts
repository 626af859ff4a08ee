import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync } from "node:fs";
import module from "node:module";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { keepCompiledCode, privateFolder } from "../../runtime/compile/cache-dir.js";
import { callscript } from "../helpers/build.js";

/**
 * V8's compiled code of the command line, kept between starts on Node 22.1+ (bin/callscript.js):
 * only in a folder no one else can change, since V8 runs that code as it finds it.
 */

const tempFolder = () => mkdtempSync(path.join(os.tmpdir(), "callscript-cache-dir-"));
const hasCompileCache = typeof (module as { enableCompileCache?: unknown }).enableCompileCache === "function";

describe("a private folder", () => {
  it("is one that only its owner can change, up to the root (/tmp is sticky)", () => {
    const dir = tempFolder();
    expect(privateFolder(dir)).toBe(true);
    mkdirSync(path.join(dir, "inner"), { mode: 0o700 });
    expect(privateFolder(path.join(dir, "inner"))).toBe(true);
    // Writable by others, and not sticky: anyone could replace what is inside.
    chmodSync(dir, 0o777);
    expect(privateFolder(dir)).toBe(false);
    expect(privateFolder(path.join(dir, "inner"))).toBe(false);
  });

  it("is judged through a link as where it leads", () => {
    const open = tempFolder();
    chmodSync(open, 0o777);
    const closed = tempFolder();
    const links = tempFolder();
    symlinkSync(open, path.join(links, "to-open"));
    symlinkSync(closed, path.join(links, "to-closed"));
    expect(privateFolder(path.join(links, "to-open"))).toBe(false);
    expect(privateFolder(path.join(links, "to-closed"))).toBe(true);
  });
});

describe("keeping V8's compiled code", () => {
  it("turns Node's compile cache on in the cache folder", () => {
    const cache = tempFolder();
    const asked: string[] = [];
    const enable = (dir: string) => (asked.push(dir), { status: 1, directory: dir });
    expect(keepCompiledCode(enable, { CALLSCRIPT_CACHE_DIR: cache })).toBe(path.join(cache, "node-compile-cache"));
    expect(asked).toEqual([path.join(cache, "node-compile-cache")]);
  });

  it("does nothing where Node has no compile cache, and not in a folder others can change", () => {
    const cache = tempFolder();
    expect(keepCompiledCode(undefined, { CALLSCRIPT_CACHE_DIR: cache })).toBeUndefined();
    expect(existsSync(path.join(cache, "node-compile-cache"))).toBe(false);
    chmodSync(cache, 0o777);
    let asked = false;
    expect(keepCompiledCode(() => ((asked = true), { status: 1, directory: "x" }), { CALLSCRIPT_CACHE_DIR: cache })).toBeUndefined();
    expect(asked).toBe(false);
  });

  it.skipIf(!hasCompileCache)("is on for the command line on Node 22.1+: a run leaves V8's code in the cache folder", () => {
    const cache = tempFolder();
    const { status } = callscript(["--version"], undefined, { CALLSCRIPT_CACHE_DIR: cache });
    expect(status).toBe(0);
    expect(readdirSync(path.join(cache, "node-compile-cache")).length).toBeGreaterThan(0);
  });

  it.skipIf(hasCompileCache)("is off on Node 20, which has no compile cache: nothing is made", () => {
    const cache = tempFolder();
    const { status } = callscript(["--version"], undefined, { CALLSCRIPT_CACHE_DIR: cache });
    expect(status).toBe(0);
    expect(existsSync(path.join(cache, "node-compile-cache"))).toBe(false);
  });
});
