import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileScript, compileScripts, formatDiagnostic, type CompileResult, type CompiledScript } from "../../runtime/compile/compile.js";
import { ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { compiled, dataOf, failureOf, HEADER, request, sandboxOptions, Sandboxes, scriptsFolder, writeFiles } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

function failed(result: CompileResult) {
  if (result.ok) throw new Error("expected the compile to fail");
  return result;
}

function ok(result: CompileResult): CompiledScript {
  if (!result.ok) throw new Error(`expected the compile to succeed: ${result.diagnostics.map(formatDiagnostic).join("\n")}`);
  return result.script;
}

/** 1-based column of `needle` in `line`. */
const columnOf = (line: string, needle: string) => line.indexOf(needle) + 1;

describe("import rules", () => {
  // TypeScript drops imports whose bindings are never used, so each script uses what it imports.
  const cases = [
    {
      what: "a Node built-in",
      importLine: `import { readFileSync } from "fs";`,
      specifier: `"fs"`,
      use: `readFileSync("/etc/hosts")`,
      reason: "Node built-in module 'fs' is not available to scripts: they run in a sandbox without file system, network or process access",
    },
    {
      what: "a node: built-in",
      importLine: `import { execSync } from "node:child_process";`,
      specifier: `"node:child_process"`,
      use: `execSync("id")`,
      reason: "Node built-in module 'child_process' is not available to scripts",
    },
    {
      what: "a built-in's subpath",
      importLine: `import { readFile } from "fs/promises";`,
      specifier: `"fs/promises"`,
      use: `readFile("/etc/hosts")`,
      reason: "Node built-in module 'fs/promises' is not available to scripts",
    },
    {
      what: "a package",
      importLine: `import { uniq } from "lodash";`,
      specifier: `"lodash"`,
      use: `uniq([1])`,
      reason: "Package 'lodash' cannot be imported: scripts may import only 'callscript' and files inside the scripts folder by relative path",
    },
    {
      what: "the runtime's own prelude (it runs ahead of every script, and is not a module of it)",
      importLine: `import { bindScript } from "callscript:prelude";`,
      specifier: `"callscript:prelude"`,
      use: `bindScript`,
      reason: "Package 'callscript:prelude' cannot be imported",
    },
    {
      what: "a path inside the SDK's package (only `callscript` itself is the SDK)",
      importLine: `import { x } from "callscript/internal";`,
      specifier: `"callscript/internal"`,
      use: `x()`,
      reason: "Package 'callscript/internal' cannot be imported",
    },
    {
      what: "an absolute path",
      importLine: `import { x } from "/etc/callscript/helper.ts";`,
      specifier: `"/etc/callscript/helper.ts"`,
      use: `x()`,
      reason: "Import '/etc/callscript/helper.ts' uses an absolute path; import files of the scripts folder by relative path",
    },
  ];

  for (const { what, importLine, specifier, use, reason } of cases) {
    it(`rejects ${what} at the import's file:line:col with the reason`, async () => {
      const dir = scriptsFolder({
        "script.ts": `${HEADER}${importLine}\nexport default defineScript({ hooks: { need_registration() { ${use}; } } });\n`,
      });
      const result = failed(await compileScript(path.join(dir, "script.ts"), dir));
      expect(result.name).toBe("script");
      expect(result.diagnostics).toHaveLength(1);
      const [diagnostic] = result.diagnostics;
      expect(diagnostic!.message).toContain(reason);
      expect(diagnostic!.location).toEqual({ file: "script.ts", line: 2, column: columnOf(importLine, specifier) });
      expect(diagnostic!.lineText).toBe(importLine);
      expect(formatDiagnostic(diagnostic!)).toBe(`script.ts:2:${columnOf(importLine, specifier)}: ${diagnostic!.message}`);
    });
  }

  it("rejects a relative import that leaves the scripts folder, even when the file exists", async () => {
    const root = scriptsFolder({ "outside.ts": `export const secret = 42;\n` });
    const dir = path.join(root, "scripts");
    const importLine = `import { secret } from "../outside.ts";`;
    writeFiles(dir, {
      "script.ts": `${HEADER}${importLine}\nexport default defineScript({ hooks: { need_registration() { return { result: secret > 1 }; } } });\n`,
    });
    const [diagnostic, ...rest] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(rest).toEqual([]);
    expect(diagnostic!.message).toBe(`Import '../outside.ts' leaves the scripts folder (${dir}); only files inside it are bundled.`);
    expect(diagnostic!.location).toEqual({ file: "script.ts", line: 2, column: columnOf(importLine, `"../outside.ts"`) });
  });

  it("rejects a path that starts with ./ and leaves the folder through .. segments (esbuild sends such paths to the rules)", async () => {
    const root = scriptsFolder({ "outside.ts": `export const secret = 42;\n` });
    const dir = path.join(root, "scripts");
    const importLine = `import { secret } from "./lib/../../outside.ts";`;
    writeFiles(dir, {
      "lib/x.ts": "export const x = 1;\n",
      "script.ts": `${HEADER}${importLine}\nexport default defineScript({ hooks: { need_registration() { return { result: secret > 1 }; } } });\n`,
    });
    const [diagnostic, ...rest] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(rest).toEqual([]);
    expect(diagnostic!.message).toBe(`Import './lib/../../outside.ts' leaves the scripts folder (${dir}); only files inside it are bundled.`);
  });

  it("a helper in a subfolder imports callscript and its own neighbours", async () => {
    const dir = scriptsFolder({
      "lib/phones.ts": `import { formatE164 } from "callscript";\nimport { PREFIX } from "./prefix";\nexport const phone = (raw: string) => PREFIX + formatE164(raw);\n`,
      "lib/prefix.ts": `export const PREFIX = "tel:";\n`,
      "script.ts": `${HEADER}import { phone } from "./lib/phones";\nexport default defineScript({ hooks: { process_client_phone() { return { phone: phone("+1 212 555 0100") }; } } });\n`,
    });
    const result = await compileScript(path.join(dir, "script.ts"), dir);
    if (!result.ok) throw new Error(JSON.stringify(result));
    expect([...result.script.inputs].map((input) => path.relative(dir, input)).sort()).toEqual(["lib/phones.ts", "lib/prefix.ts", "script.ts"]);
  });

  it("rejects require() and dynamic import() of built-ins too", async () => {
    const dir = scriptsFolder({
      "script.ts":
        `${HEADER}declare const require: (name: string) => unknown;\n` +
        `const os = require("os");\n` +
        `export default defineScript({ hooks: { async need_registration() { await import("net"); return { result: !!os }; } } });\n`,
    });
    const { diagnostics } = failed(await compileScript(path.join(dir, "script.ts"), dir));
    expect(diagnostics.map((d) => [d.message.slice(0, 40), d.location?.line])).toEqual([
      ["Node built-in module 'os' is not availab", 3],
      ["Node built-in module 'net' is not availa", 4],
    ]);
  });

  it("reports a forbidden import in a helper against the helper's own file", async () => {
    const importLine = `import { createServer } from "http";`;
    const dir = scriptsFolder({
      "script.ts": `${HEADER}import { serve } from "./lib/serve";\nexport default defineScript({ hooks: { need_registration() { serve(); } } });\n`,
      "lib/serve.ts": `// a helper\n${importLine}\nexport const serve = () => createServer();\n`,
    });
    const [diagnostic] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(diagnostic!.location).toEqual({ file: path.join("lib", "serve.ts"), line: 2, column: columnOf(importLine, `"http"`) });
    expect(diagnostic!.message).toContain("Node built-in module 'http' is not available");
  });

  it("reports every bad import of a script, not only the first", async () => {
    const dir = scriptsFolder({
      "script.ts":
        `${HEADER}import { a } from "left-pad";\nimport { b } from "node:dns";\n` +
        `export default defineScript({ hooks: { need_registration() { a(); b(); } } });\n`,
    });
    const { diagnostics } = failed(await compileScript(path.join(dir, "script.ts"), dir));
    expect(diagnostics.map((d) => d.location?.line)).toEqual([2, 3]);
    expect(diagnostics[0]!.message).toContain("Package 'left-pad'");
    expect(diagnostics[1]!.message).toContain("Node built-in module 'dns'");
  });
});

describe("compile errors", () => {
  it("gives a syntax error's file:line:col and the line", async () => {
    const dir = scriptsFolder({
      "script.ts": `${HEADER}\nconst blocked = [101, 102;\nexport default defineScript({ hooks: { need_registration() {} } });\n`,
    });
    const [diagnostic, ...rest] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(rest).toEqual([]);
    expect(diagnostic!.message).toBe('Expected "]" but found ";"');
    expect(diagnostic!.location).toEqual({ file: "script.ts", line: 3, column: 26 });
    expect(diagnostic!.lineText).toBe("const blocked = [101, 102;");
  });

  it("gives a syntax error in a helper against the helper", async () => {
    const dir = scriptsFolder({
      "script.ts": `${HEADER}import { f } from "./lib/f";\nexport default defineScript({ hooks: { need_registration() { f(); } } });\n`,
      "lib/f.ts": `export function f() {\n  return 1 +;\n}\n`,
    });
    const [diagnostic] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(diagnostic!.location).toEqual({ file: path.join("lib", "f.ts"), line: 2, column: 13 });
  });

  it("names a relative import that does not exist", async () => {
    const dir = scriptsFolder({
      "script.ts": `${HEADER}import { f } from "./lib/missing";\nexport default defineScript({ hooks: { need_registration() { f(); } } });\n`,
    });
    const [diagnostic] = failed(await compileScript(path.join(dir, "script.ts"), dir)).diagnostics;
    expect(diagnostic!.message).toBe('Could not resolve "./lib/missing"');
    expect(diagnostic!.location).toMatchObject({ file: "script.ts", line: 2 });
  });
});

describe("bundle", () => {
  it("bundles a relative helper in a subfolder, lists it in inputs, and runs it", async () => {
    const dir = scriptsFolder({
      "script.ts":
        `${HEADER}import { blocked } from "./lib/numbers";\n` +
        `export default defineScript({ hooks: { need_registration(input: any) { return { result: !blocked(input.ext) }; } } });\n`,
      "lib/numbers.ts": `import { LIST } from "./list";\nexport const blocked = (ext: string) => LIST.includes(ext);\n`,
      "lib/list.ts": `export const LIST = ["101", "102"];\n`,
      "lib/unused.ts": `export const nothing = 1;\n`,
    });
    const script = ok(await compileScript(path.join(dir, "script.ts"), dir));
    expect(script.name).toBe("script");
    expect(script.file).toBe(path.join(dir, "script.ts"));
    expect([...script.inputs].sort()).toEqual([path.join(dir, "lib", "list.ts"), path.join(dir, "lib", "numbers.ts"), path.join(dir, "script.ts")]);
    const sandbox = sandboxes.add(await ScriptSandbox.load(script, sandboxOptions()));
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { ext: "101" } })))).toEqual({ result: false });
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { ext: "200" } })))).toEqual({ result: true });
  });

  it("runs the script's code in strict mode", async () => {
    const dir = scriptsFolder({
      "script.ts": `${HEADER}export default defineScript({ hooks: { need_registration() { const o = Object.freeze({ a: 1 }); (o as any).a = 2; return { result: false }; } } });\n`,
    });
    const sandbox = sandboxes.add(await ScriptSandbox.load(await compiled(dir, "script.ts"), sandboxOptions()));
    const failure = failureOf(await sandbox.invoke(request()));
    expect(failure.reason).toBe("exception");
    expect(failure.message).toBe("TypeError: Cannot assign to read only property 'a' of object '#<Object>'");
    expect(failure.location).toMatchObject({ file: "script.ts", line: 2 });
  });
});

describe("version", () => {
  const source = `${HEADER}import { f } from "./lib/f";\nexport default defineScript({ hooks: { need_registration() { return { result: f() }; } } });\n`;
  const helper = `export const f = () => true;\n`;

  async function versionOf(dir: string, name = "script.ts"): Promise<string> {
    return ok(await compileScript(path.join(dir, name), dir)).version;
  }

  it("is the same for the same content, compiled again or rewritten unchanged", async () => {
    const dir = scriptsFolder({ "script.ts": source, "lib/f.ts": helper });
    const first = await versionOf(dir);
    expect(first).toMatch(/^[0-9a-f]{12}$/);
    expect(await versionOf(dir)).toBe(first);
    writeFileSync(path.join(dir, "script.ts"), source);
    writeFileSync(path.join(dir, "lib", "f.ts"), helper);
    expect(await versionOf(dir)).toBe(first);
  });

  it("is the same in another folder with the same files", async () => {
    const a = scriptsFolder({ "script.ts": source, "lib/f.ts": helper });
    const b = scriptsFolder({ "script.ts": source, "lib/f.ts": helper });
    expect(await versionOf(b)).toBe(await versionOf(a));
  });

  it("changes with the script's code, with a helper's code, and with a comment or blank line", async () => {
    const dir = scriptsFolder({ "script.ts": source, "lib/f.ts": helper });
    const versions = [await versionOf(dir)];
    writeFileSync(path.join(dir, "script.ts"), source.replace("result: f()", "result: !f()"));
    versions.push(await versionOf(dir));
    writeFileSync(path.join(dir, "lib", "f.ts"), `export const f = () => false;\n`);
    versions.push(await versionOf(dir));
    // Same code once comments are stripped, but every line below moves: errors must map to the new lines.
    writeFileSync(path.join(dir, "lib", "f.ts"), `// returns false\nexport const f = () => false;\n`);
    versions.push(await versionOf(dir));
    writeFileSync(path.join(dir, "script.ts"), `\n${source.replace("result: f()", "result: !f()")}`);
    versions.push(await versionOf(dir));
    expect(new Set(versions).size).toBe(versions.length);
  });

  it("a comment that moves lines gives errors at the new lines", async () => {
    const thrower = `export default defineScript({ hooks: { need_registration() { throw new Error("no"); } } });\n`;
    const dir = scriptsFolder({ "script.ts": `${HEADER}${thrower}` });
    const before = sandboxes.add(await ScriptSandbox.load(await compiled(dir, "script.ts"), sandboxOptions()));
    writeFileSync(path.join(dir, "script.ts"), `${HEADER}// a comment\n${thrower}`);
    const after = sandboxes.add(await ScriptSandbox.load(await compiled(dir, "script.ts"), sandboxOptions()));
    expect(after.version).not.toBe(before.version);
    expect(failureOf(await before.invoke(request())).location?.line).toBe(2);
    expect(failureOf(await after.invoke(request())).location?.line).toBe(3);
  });

  it("is the same whether a script is compiled alone or in a batch", async () => {
    const other = `${HEADER}export default defineScript({ hooks: { need_registration() { return { result: false }; } } });\n`;
    const dir = scriptsFolder({ "a.ts": source, "b.ts": other, "lib/f.ts": helper });
    const batch = await compileScripts([path.join(dir, "a.ts"), path.join(dir, "b.ts")], dir);
    const alone = [await compileScript(path.join(dir, "a.ts"), dir), await compileScript(path.join(dir, "b.ts"), dir)];
    expect(batch.map((result) => ok(result).version)).toEqual(alone.map((result) => ok(result).version));
    expect(ok(batch[0]!).code).toBe(ok(alone[0]!).code);
    expect([...ok(batch[0]!).inputs].sort()).toEqual([path.join(dir, "a.ts"), path.join(dir, "lib", "f.ts")]);
    expect(ok(batch[1]!).inputs).toEqual([path.join(dir, "b.ts")]);
  });
});

describe("compileScripts", () => {
  it("reports each failing script against its own file and still compiles the others", async () => {
    const good = `${HEADER}export default defineScript({ hooks: { need_registration() { return { result: false }; } } });\n`;
    const dir = scriptsFolder({
      "a.ts": good,
      "b.ts": `${HEADER}import { x } from "node:os";\nexport default defineScript({ hooks: { need_registration() { x; } } });\n`,
      "c.ts": `${HEADER}const = 1;\n`,
    });
    const [a, b, c] = await compileScripts(
      ["a.ts", "b.ts", "c.ts"].map((name) => path.join(dir, name)),
      dir,
    );
    expect(ok(a!).name).toBe("a");
    expect(failed(b!).diagnostics.map((d) => [d.location?.file, d.location?.line])).toEqual([["b.ts", 2]]);
    expect(failed(c!).diagnostics.map((d) => [d.location?.file, d.location?.line])).toEqual([["c.ts", 2]]);
  });

  it("gives loadable bundles", async () => {
    const dir = scriptsFolder({
      "a.ts": `${HEADER}export default defineScript({ hooks: { need_registration() { return { result: false }; } } });\n`,
      "b.ts": `${HEADER}export default defineScript({ hooks: { need_registration() { return undefined; } } });\n`,
    });
    const results = await compileScripts([path.join(dir, "a.ts"), path.join(dir, "b.ts")], dir);
    const [a, b] = await Promise.all(results.map(async (result) => sandboxes.add(await ScriptSandbox.load(ok(result), sandboxOptions()))));
    expect(dataOf(await a!.invoke(request()))).toEqual({ result: false });
    expect((await b!.invoke(request())).outcome).toEqual({ kind: "none" });
  });
});
