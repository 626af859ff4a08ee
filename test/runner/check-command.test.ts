import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../runtime/config.js";
import { codeRoot } from "../../runtime/paths.js";
import { checkFolder, SANDBOX_GLOBALS, SANDBOX_GLOBALS_FILE, scriptsTsconfig, sdkTypes } from "../../runtime/runner/check.js";
import { callscript, repoRoot } from "../helpers/build.js";
import { folder, lastLine } from "./fixtures.js";

const CLEAN = `import { defineScript, participants } from "callscript";
import { blocked } from "./lib/lists";

export default defineScript({
  settings: { extensions: ["101"] },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      console.log("checking", call_full.channel.id);
      if (!participants(call_full).some((ext) => blocked(settings.extensions, ext))) return undefined;
      log.info("blocked");
      return { result: false };
    },
  },
});
`;
const LISTS = `export function blocked(list: readonly string[], ext: string): boolean {
  return list.includes(ext);
}
`;
// The handler returns a string where the hook's data has a boolean: TypeScript reports it at the handler (5:5).
const WRONG_TYPE = `import { defineScript } from "callscript";

export default defineScript({
  hooks: {
    need_registration() {
      return { result: "no" };
    },
  },
});
`;
const UNKNOWN_FIELD = `import { defineScript } from "callscript";

export default defineScript({
  hooks: {
    process_final_params({ call_full }) {
      return { USER_ID: call_full.chanel.id };
    },
  },
});
`;
const NODE_IMPORT = `import { readFileSync } from "node:fs";
import { defineScript } from "callscript";

export default defineScript({ hooks: { need_registration() { readFileSync("/etc/passwd"); return undefined; } } });
`;

describe("callscript check", () => {
  it("a clean folder (a script, a helper, console): no errors, exit 0", () => {
    const dir = folder({ "blocker.ts": CLEAN, "lib/lists.ts": LISTS });
    const run = callscript(["check", dir]);
    expect(run.stdout).toBe("1 script, 2 files checked: no errors\n");
    expect(run.status).toBe(0);
  });

  it("type errors against the SDK as file:line:col, with the code frame; exit 1", () => {
    const dir = folder({ "blocker.ts": CLEAN, "lib/lists.ts": LISTS, "wrong-type.ts": WRONG_TYPE, "unknown-field.ts": UNKNOWN_FIELD });
    const run = callscript(["check", dir]);
    expect(run.status).toBe(1);
    // call_full parses loosely, but scripts see its declared fields only: a misspelt field is an error with a hint.
    expect(run.stdout).toContain(`${path.join(dir, "unknown-field.ts")}:6:35 error TS2551: Property 'chanel' does not exist`);
    expect(run.stdout).toContain("Did you mean 'channel'?");
    // A return that does not fit the hook is reported at the return itself (issue 13), not at the
    // handler's name with the handler's whole type.
    expect(run.stdout).toContain(`${path.join(dir, "wrong-type.ts")}:6:7 error TS2322: need_registration returns '{ result: string; }'`);
    expect(run.stdout).toContain("Type 'string' is not assignable to type 'boolean | undefined'.");
    expect(run.stdout).toContain('>    6 |       return { result: "no" };');
    expect(lastLine(run.stdout)).toBe("2 errors in 2 files · 3 scripts, 4 files checked");
  });

  it("a helper's type error is reported in the helper; a forbidden import as the server's compiler says it", () => {
    const dir = folder({
      "blocker.ts": CLEAN,
      "lib/lists.ts": LISTS.replace("list.includes(ext)", "list.includes(ext) ? 1 : 0"),
      "reads-files.ts": NODE_IMPORT,
    });
    const run = callscript(["check", dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`${path.join(dir, "lib", "lists.ts")}:2:31 error TS2322: Type 'number' is not assignable to type 'boolean'.`);
    expect(run.stdout).toContain(`${path.join(dir, "lib", "lists.ts")}:2:35 error TS2322: Type 'number' is not assignable to type 'boolean'.`);
    expect(run.stdout).toContain(`${path.join(dir, "reads-files.ts")}:1:30 error compile: Node built-in module 'fs' is not available to scripts`);
    expect(run.stdout).not.toContain("TS2307");
  });

  it("a script whose defineScript names an unknown hook fails when it loads", () => {
    const dir = folder({
      "typo.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registraton() { return undefined; } } } as never);\n`,
    });
    const run = callscript(["check", dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`${path.join(dir, "typo.ts")} error load: Unknown hook 'need_registraton' (did you mean 'need_registration'?)`);
  });

  it("passes on the examples; exit 2 on a folder that is not there", () => {
    const run = callscript(["check", "examples"]);
    expect(run.stdout).toMatch(/^10 scripts, \d+ files checked: no errors$/m);
    expect(run.status).toBe(0);
    const missing = callscript(["check", path.join(repoRoot, "nope")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("is not a folder");
  });

  it("examples/ has the tsconfig and globals init writes, resolving callscript to the SDK's sources", () => {
    const examples = path.join(repoRoot, "examples");
    expect(JSON.parse(readFileSync(path.join(examples, "tsconfig.json"), "utf8"))).toEqual(scriptsTsconfig(examples));
    expect(scriptsTsconfig(examples).compilerOptions.paths).toEqual({ callscript: ["../sdk/index"] });
    expect(readFileSync(path.join(examples, SANDBOX_GLOBALS_FILE), "utf8")).toBe(SANDBOX_GLOBALS);
  });

  it("from the sources, against sdk/index.ts, finds the same errors as the built CLI", async () => {
    expect(codeRoot).toBe(repoRoot);
    expect(sdkTypes()).toBe(path.join(repoRoot, "sdk", "index"));
    const dir = folder({ "blocker.ts": CLEAN, "lib/lists.ts": LISTS, "wrong-type.ts": WRONG_TYPE });
    const report = await checkFolder(dir, loadConfig({ env: {} }));
    expect(report.scripts.map((file) => path.basename(file))).toEqual(["blocker.ts", "wrong-type.ts"]);
    expect(report.problems.map((problem) => [path.basename(problem.file), problem.line, problem.column, problem.code])).toEqual([
      ["wrong-type.ts", 6, 7, "TS2322"],
    ]);
  });
});
