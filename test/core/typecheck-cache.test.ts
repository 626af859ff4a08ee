import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { folderKey, TypeCheckCache } from "../../runtime/compile/typecheck-cache.js";
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

  it("equal content gives an equal key; a different file gives another", () => {
    const one = scriptsFolder({ "a.ts": typo });
    const two = scriptsFolder({ "a.ts": typo });
    const other = scriptsFolder({ "a.ts": `${typo}// changed\n` });
    expect(folderKey(one, { exact: true })).toBe(folderKey(two, { exact: true }));
    expect(folderKey(one, { exact: true })).not.toBe(folderKey(other, { exact: true }));
  });
});
