import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it } from "vitest";
import { prebuiltPrelude, PREBUILT_PRELUDE } from "../../runtime/compile/guest-runtime.js";
import { repoRoot } from "../helpers/build.js";

/**
 * The guest prelude as `npm run build` keeps it (runtime/cli/bundle.mjs): used only while every
 * module it was made from is unchanged, so that a start never runs a prelude older than the code.
 */

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** A package folder with two modules and a prelude bundle kept from them. */
function packageWith(modules: Record<string, string>, kept: { code: string; inputs: Record<string, string> }): string {
  const root = mkdtempSync(path.join(os.tmpdir(), "callscript-prelude-"));
  for (const [file, content] of Object.entries(modules)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), content);
  }
  mkdirSync(path.dirname(path.join(root, PREBUILT_PRELUDE)), { recursive: true });
  writeFileSync(path.join(root, PREBUILT_PRELUDE), JSON.stringify(kept));
  return root;
}

describe("the prelude kept by the build", () => {
  const modules = { "runtime/sandbox/guest/prelude.js": "export const a = 1;\n", "runtime/sandbox/protocol.js": "export const b = 2;\n" };
  const inputs = Object.fromEntries(Object.entries(modules).map(([file, content]) => [file, sha256(content)]));

  it("is used while its modules are as they were, with its lines and version", () => {
    const runtime = prebuiltPrelude(packageWith(modules, { code: '"use strict";\n(()=>{})();', inputs }));
    expect(runtime).toEqual({ code: '"use strict";\n(()=>{})();\n', lines: 2, version: sha256('"use strict";\n(()=>{})();\n').slice(0, 12) });
  });

  it("is not used once one of its modules changed, is gone, or when it is not whole", () => {
    const code = '"use strict";\n';
    expect(prebuiltPrelude(packageWith({ ...modules, "runtime/sandbox/protocol.js": "export const b = 3;\n" }, { code, inputs }))).toBeUndefined();
    expect(prebuiltPrelude(packageWith({ "runtime/sandbox/guest/prelude.js": modules["runtime/sandbox/guest/prelude.js"] }, { code, inputs }))).toBeUndefined();
    expect(prebuiltPrelude(packageWith(modules, { code, inputs: {} }))).toBeUndefined();
    expect(prebuiltPrelude(packageWith(modules, { inputs } as unknown as { code: string; inputs: Record<string, string> }))).toBeUndefined();
    const root = packageWith(modules, { code, inputs });
    writeFileSync(path.join(root, PREBUILT_PRELUDE), "{ not json");
    expect(prebuiltPrelude(root)).toBeUndefined();
    expect(prebuiltPrelude(mkdtempSync(path.join(os.tmpdir(), "callscript-prelude-none-")))).toBeUndefined();
  });

  it("in the built package is what bundling the package's modules gives now", async () => {
    // The built package's own copy of this module: its codeRoot is dist/, so it bundles tsc's output.
    const dist = path.join(repoRoot, "dist");
    const built = (await import(
      pathToFileURL(path.join(dist, "runtime", "compile", "guest-runtime.js")).href
    )) as typeof import("../../runtime/compile/guest-runtime.js");
    const kept = built.prebuiltPrelude(dist);
    expect(kept, `npm run build keeps dist/${PREBUILT_PRELUDE}`).toBeDefined();
    const fresh = await built.bundlePrelude();
    (await import(pathToFileURL(path.join(dist, "runtime", "compile", "esbuild-service.js")).href)).releaseEsbuild();
    expect(Object.keys(fresh.inputs)).toContain("runtime/sandbox/guest/prelude.js");
    expect(kept!.code).toBe(fresh.code.endsWith("\n") ? fresh.code : `${fresh.code}\n`);
  });
});
