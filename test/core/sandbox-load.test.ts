import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { hookNames } from "../../runtime/schema/hooks.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS, resolveLimits } from "../../runtime/sandbox/limits.js";
import { ScriptLoadFailure } from "../../runtime/errors.js";
import { ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { compiled, dataOf, failureOf, HEADER, loadFailure, request, sandboxOptions, Sandboxes, scriptsFolder } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

const handler = `need_registration() { return { result: false }; }`;

describe("definition errors", () => {
  it("no default export", async () => {
    const failure = await loadFailure(`${HEADER}export const hooks = { ${handler} };\n`);
    expect(failure).toBeInstanceOf(ScriptLoadFailure);
    expect(failure.script).toBe("script");
    expect(failure.code).toBe("CS_ERR_SCRIPT_LOAD");
    expect(failure.message).toBe("The script has no default export. End it with: export default defineScript({ hooks: { ... } })");
    // The failure is in the generated entry module, which is not the admin's file.
    expect(failure.location).toBeUndefined();
    expect(failure.mappedStack).not.toContain("entry");
  });

  it("a default export not made by defineScript", async () => {
    const failure = await loadFailure(`export default { hooks: { ${handler} } };\n`);
    expect(failure.message).toBe("The default export is not a script. Wrap it in defineScript({ hooks: { ... } }) imported from 'callscript'");
    expect(failure.location).toBeUndefined();
  });

  it("a default export that is a function", async () => {
    const failure = await loadFailure(`export default function need_registration() { return { result: false }; }\n`);
    expect(failure.message).toContain("The default export is not a script");
  });

  for (const hooks of ["3", "null", `"need_registration"`]) {
    it(`hooks that are not an object (${hooks})`, async () => {
      const failure = await loadFailure(`${HEADER}export default defineScript({ hooks: ${hooks} as any });\n`);
      expect(failure.message).toBe("defineScript({ hooks }) needs a hooks object: { need_registration(input, ctx) { ... } }");
    });
  }

  it("a hook that is not a function", async () => {
    const failure = await loadFailure(`${HEADER}export default defineScript({ hooks: { need_registration: { result: false } } as any });\n`);
    expect(failure.message).toBe("hooks.need_registration is not a function");
  });

  it("no hooks at all", async () => {
    const failure = await loadFailure(`${HEADER}export default defineScript({ hooks: {} });\n`);
    expect(failure.message).toBe("defineScript({ hooks }) has no handlers; add at least one, e.g. need_registration(input, ctx) { ... }");
  });

  it("a misspelt hook name, with did-you-mean and the known hooks", async () => {
    const failure = await loadFailure(
      `${HEADER}export default defineScript({ hooks: { need_registraton() {}, process_clinet_phone() {}, ${handler} } as any });\n`,
    );
    expect(failure.message).toBe(
      "Unknown hook 'need_registraton' (did you mean 'need_registration'?), 'process_clinet_phone' (did you mean 'process_client_phone'?) " +
        `in defineScript({ hooks }). Known hooks: ${hookNames.join(", ")}`,
    );
  });

  it("an unknown hook name far from any known one, without a guess", async () => {
    const failure = await loadFailure(`${HEADER}export default defineScript({ hooks: { on_call_started() {} } as any });\n`);
    expect(failure.message).toBe(`Unknown hook 'on_call_started' in defineScript({ hooks }). Known hooks: ${hookNames.join(", ")}`);
  });

  const orders: [string, string][] = [
    [`"1"`, "defineScript(): order: order must be a number"],
    ["1.5", "defineScript(): order: order must be an integer"],
    ["NaN", "defineScript({ order, limits, settings }) must hold JSON values: definition.order is NaN; only finite numbers are JSON"],
  ];
  for (const [order, message] of orders) {
    it(`order ${order}`, async () => {
      const failure = await loadFailure(`${HEADER}export default defineScript({ order: ${order} as any, hooks: { ${handler} } });\n`);
      expect(failure.message).toBe(message);
    });
  }

  it("settings that are not an object", async () => {
    const failure = await loadFailure(`${HEADER}export default defineScript({ settings: ["101"] as any, hooks: { ${handler} } });\n`);
    expect(failure.message).toBe("defineScript(): settings: settings must be an object");
  });

  it("settings that are not JSON", async () => {
    const failure = await loadFailure(`${HEADER}export default defineScript({ settings: { since: new Date(0) }, hooks: { ${handler} } });\n`);
    expect(failure.message).toBe(
      "defineScript({ order, limits, settings }) must hold JSON values: definition.settings.since is a Date; return plain objects, arrays and JSON values",
    );
  });

  it("limits with an unknown key or under the minimum", async () => {
    const unknown = await loadFailure(`${HEADER}export default defineScript({ limits: { timeout: 100 } as any, hooks: { ${handler} } });\n`);
    expect(unknown.message).toBe('defineScript(): limits: Unrecognized key: "timeout"');
    const small = await loadFailure(`${HEADER}export default defineScript({ limits: { memoryMb: 4 }, hooks: { ${handler} } });\n`);
    expect(small.message).toBe("defineScript(): limits.memoryMb: Too small: expected number to be >=8");
  });
});

describe("top-level code", () => {
  it("a top-level throw, mapped to its .ts line", async () => {
    const failure = await loadFailure(
      `${HEADER}const ext = ["101"];\nif (ext.length < 2) {\n  throw new Error("need two extensions");\n}\nexport default defineScript({ hooks: { ${handler} } });\n`,
    );
    expect(failure.message).toBe("need two extensions");
    expect(failure.location).toEqual({ file: "script.ts", line: 4, column: 9 });
    expect(failure.mappedStack!.split("\n")).toEqual(["Error: need two extensions", "    at script.ts:4:9"]);
  });

  it("a top-level throw in a helper, mapped to the helper's line", async () => {
    const dir = scriptsFolder({
      "script.ts": `${HEADER}import { LIST } from "./lib/list";\nexport default defineScript({ settings: { LIST }, hooks: { ${handler} } });\n`,
      "lib/list.ts": `export const LIST = ["101"];\nif (LIST.length) throw new TypeError("bad list");\n`,
    });
    let failure: unknown;
    try {
      sandboxes.add(await ScriptSandbox.load(await compiled(dir, "script.ts"), sandboxOptions()));
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(ScriptLoadFailure);
    expect((failure as ScriptLoadFailure).message).toBe("TypeError: bad list");
    expect((failure as ScriptLoadFailure).location).toEqual({ file: path.join("lib", "list.ts"), line: 2, column: 24 });
    expect((failure as ScriptLoadFailure).mappedStack).not.toContain(process.cwd());
  });

  it("a top-level infinite loop is stopped by the load time limit", async () => {
    const failure = await loadFailure(`${HEADER}for (;;) {}\nexport default defineScript({ hooks: { ${handler} } });\n`);
    expect(failure.message).toBe("its top-level code ran past 2000 ms");
    expect(failure.script).toBe("script");
  });

  it("a top-level heap bomb is stopped, even at the server's maximum heap", async () => {
    const failure = await loadFailure(
      `${HEADER}const hoard: string[] = [];\nfor (;;) hoard.push("x".repeat(1024) + hoard.length);\nexport default defineScript({ hooks: { ${handler} } });\n`,
      { ...sandboxOptions({ memoryMb: 16 }), max: { ...BUILTIN_MAX_LIMITS, memoryMb: 32 } },
    );
    expect(failure.message).toBe("its top-level code ran out of heap, even with the server's maximum of 32 MB");
  });

  it("a top-level heap bomb with the default heap as the maximum", async () => {
    const failure = await loadFailure(
      `${HEADER}const hoard: string[] = [];\nfor (;;) hoard.push("x".repeat(1024) + hoard.length);\nexport default defineScript({ hooks: { ${handler} } });\n`,
      { ...sandboxOptions({ memoryMb: 16 }), max: { ...BUILTIN_MAX_LIMITS, memoryMb: 16 } },
    );
    expect(failure.message).toBe("its top-level code ran out of its heap of 16 MB");
  });

  // About 96 MB of doubles built at load time: over the default heap of 32 MB.
  const bigTable = (memoryMb: number) =>
    `${HEADER}const table: number[][] = [];\nfor (let i = 0; i < 12; i++) table.push(new Array(1e6).fill(i + 0.5));\n` +
    `export default defineScript({ limits: { memoryMb: ${memoryMb} }, hooks: { need_registration() { return { result: table.length === 12 }; } } });\n`;

  it("a script that asks for a larger heap and needs it at load time loads with it", async () => {
    const sandbox = await sandboxes.load(bigTable(160));
    expect(sandbox.limits.memoryMb).toBe(160);
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: true });
  });

  it("a script whose load needs more heap than it asks for fails against its own limit", async () => {
    const failure = await loadFailure(bigTable(48));
    expect(failure.message).toBe("its top-level code ran out of its heap of 48 MB");
  });

  it("top-level code that breaks a built-in the sandbox relies on: it loads, and its calls say so", async () => {
    // The definition is serialized from a copy without a prototype, which Object.prototype.toJSON
    // does not reach (it used to fail the load); the answers still go through it.
    const sandbox = await sandboxes.load(
      `${HEADER}(Object.prototype as any).toJSON = () => undefined;\nexport default defineScript({ hooks: { ${handler} } });\n`,
    );
    expect(sandbox.meta.hooks).toEqual(["need_registration"]);
    expect(failureOf(await sandbox.invoke(request()))).toEqual({
      reason: "invalid_output",
      script: "script",
      message:
        "The sandbox could not read the script's answer: the script changed a built-in the sandbox relies on " +
        "(such as Object.prototype.toJSON or JSON.stringify); its isolate is rebuilt for the next call",
    });
  });

  it("logs of the top-level code are kept with the script's definition", async () => {
    const sandbox = await sandboxes.load(`${HEADER}console.log("loading", { v: 2 });\nexport default defineScript({ hooks: { ${handler} } });\n`);
    expect(sandbox.meta.logs.lines.map(({ level, message }) => [level, message])).toEqual([["info", "loading { v: 2 }"]]);
  });
});

describe("definition", () => {
  it("reads hooks, order and settings", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ order: -3, settings: { list: ["101"], on: true }, hooks: { ${handler}, process_client_phone() {} } });\n`,
      sandboxOptions(),
      "blacklist.ts",
    );
    expect(sandbox.name).toBe("blacklist");
    expect(sandbox.meta.hooks).toEqual(["need_registration", "process_client_phone"]);
    expect(sandbox.meta.order).toBe(-3);
    expect(sandbox.meta.settings).toEqual({ list: ["101"], on: true });
    expect(sandbox.implements("need_registration")).toBe(true);
    expect(sandbox.implements("customize_entity")).toBe(false);
    expect(sandbox.limits).toEqual(BUILTIN_DEFAULT_LIMITS);
    expect(sandbox.warnings).toEqual([]);
  });

  it("limits over the maxima are clamped, with a warning each", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ limits: { timeoutMs: 60000, memoryMb: 4096, outputBytes: 1000, logBytes: 1e9 }, hooks: { ${handler} } });\n`,
    );
    expect(sandbox.limits).toEqual({
      timeoutMs: BUILTIN_MAX_LIMITS.timeoutMs,
      memoryMb: BUILTIN_MAX_LIMITS.memoryMb,
      outputBytes: 1000,
      logBytes: BUILTIN_MAX_LIMITS.logBytes,
    });
    expect(sandbox.warnings).toEqual([
      "limits.timeoutMs 60000 is over the server's maximum 5000; using 5000",
      "limits.memoryMb 4096 is over the server's maximum 256; using 256",
      "limits.logBytes 1000000000 is over the server's maximum 262144; using 262144",
    ]);
    expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
  });

  it("a script's own limits within the maxima are used as given, the rest are the defaults", async () => {
    const options = sandboxOptions({ timeoutMs: 400 });
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ limits: { memoryMb: 64, logBytes: 100 }, hooks: { ${handler} } });\n`,
      options,
    );
    expect(sandbox.limits).toEqual({ ...BUILTIN_DEFAULT_LIMITS, timeoutMs: 400, memoryMb: 64, logBytes: 100 });
    expect(sandbox.warnings).toEqual([]);
    const measured = await sandbox.invoke(request(), { heap: true });
    expect(measured.stats.heapUsedBytes).toBeGreaterThan(0);
  });

  it("resolveLimits clamps defaults over the maxima too", () => {
    expect(resolveLimits(undefined, { ...BUILTIN_DEFAULT_LIMITS, timeoutMs: 9000 }, BUILTIN_MAX_LIMITS)).toEqual({
      limits: { ...BUILTIN_DEFAULT_LIMITS, timeoutMs: 5000 },
      warnings: ["limits.timeoutMs 9000 is over the server's maximum 5000; using 5000"],
    });
  });
});
