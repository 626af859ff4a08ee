import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { casesJsonSchema } from "../../runtime/runner/cases.js";
import { callscript, repoRoot } from "../helpers/build.js";
import { lastLine } from "./fixtures.js";

const FILES = [
  "tsconfig.json",
  "callscript-env.d.ts",
  "cases.schema.json",
  "blacklist-extensions.ts",
  "blacklist-extensions.cases.json",
  "payloads/need_registration.incoming-missed.json",
  "payloads/need_registration.incoming-answered.json",
  "payloads/need_registration.outgoing.json",
  "payloads/process_client_phone.incoming-8-format.json",
  "payloads/process_final_params.missed-trunk-3432723033.json",
];

function freshDir(): string {
  return path.join(mkdtempSync(path.join(tmpdir(), "callscript-init-")), "scripts");
}

describe("callscript init", () => {
  it("makes a folder on which test and check pass at once", () => {
    const dir = freshDir();
    const init = callscript(["init", dir]);
    expect(init.status).toBe(0);
    expect(init.stdout).toContain(`created ${dir}`);
    for (const file of FILES) {
      expect(existsSync(path.join(dir, file)), file).toBe(true);
      expect(init.stdout).toContain(`  ${file}`);
    }
    // The starter is not a production rule (issue 13): its list is empty until the admin fills it.
    expect(readFileSync(path.join(dir, "blacklist-extensions.ts"), "utf8")).toContain("extensions: [] as string[],");
    for (const file of FILES.filter((name) => name.startsWith("payloads/"))) {
      expect(readFileSync(path.join(dir, file), "utf8")).toBe(readFileSync(path.join(repoRoot, "examples", file), "utf8"));
    }
    expect(init.stdout).toContain(`5 of the 25 recorded calls that come with callscript are in payloads/; the rest: examples/payloads`);

    const test = callscript(["test", dir]);
    expect(test.stdout).toContain("✓ with the empty list, a missed call to 102 is registered as usual");
    expect(test.stdout).toContain("✓ with 102 on the list, the same call is not registered");
    expect(lastLine(test.stdout)).toBe("2 passed, 0 failed");
    expect(test.status).toBe(0);

    const check = callscript(["check", dir]);
    expect(check.stdout).toBe("1 script, 2 files checked: no errors\n");
    expect(check.status).toBe(0);
  });

  it("writes a tsconfig with which an editor resolves callscript to the SDK's types", () => {
    const dir = freshDir();
    expect(callscript(["init", dir]).status).toBe(0);
    const tsconfig = JSON.parse(readFileSync(path.join(dir, "tsconfig.json"), "utf8")) as { compilerOptions: { paths: { callscript: string[] } } };
    // The CLI runs from dist/: the SDK's declarations, by a path relative to the folder.
    expect(path.resolve(dir, tsconfig.compilerOptions.paths.callscript[0]!)).toBe(path.join(repoRoot, "dist", "sdk", "index"));

    // What an editor's TypeScript does with the folder: no errors, and `callscript` resolves.
    const parsed = ts.getParsedCommandLineOfConfigFile(
      path.join(dir, "tsconfig.json"),
      {},
      { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined },
    );
    const program = ts.createProgram({ rootNames: parsed!.fileNames, options: parsed!.options });
    expect(ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"))).toEqual([]);
    const resolved = ts.resolveModuleName("callscript", path.join(dir, "blacklist-extensions.ts"), parsed!.options, ts.sys);
    expect(resolved.resolvedModule?.resolvedFileName).toBe(path.join(repoRoot, "dist", "sdk", "index.d.ts"));
  });

  it("takes its recorded calls from examples/, which the published package ships", () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, "package.json"), "utf8")) as { files: string[] };
    expect(pkg.files).toContain("examples/");
  });

  it("writes the cases file's JSON Schema and points the cases file at it", () => {
    const dir = freshDir();
    callscript(["init", dir]);
    expect(JSON.parse(readFileSync(path.join(dir, "cases.schema.json"), "utf8"))).toEqual(casesJsonSchema());
    const cases = JSON.parse(readFileSync(path.join(dir, "blacklist-extensions.cases.json"), "utf8")) as { $schema: string };
    expect(cases.$schema).toBe("./cases.schema.json");
  });

  it("refuses to overwrite, naming the files, unless --force", () => {
    const dir = freshDir();
    callscript(["init", dir]);
    const script = path.join(dir, "blacklist-extensions.ts");
    writeFileSync(script, "// mine\n");
    const again = callscript(["init", dir]);
    expect(again.status).toBe(2);
    expect(again.stderr).toContain("Not overwriting what is already there: tsconfig.json, callscript-env.d.ts, cases.schema.json, blacklist-extensions.ts");
    expect(again.stderr).toContain("Pass --force to overwrite");
    expect(readFileSync(script, "utf8")).toBe("// mine\n");

    const forced = callscript(["init", dir, "--force"]);
    expect(forced.status).toBe(0);
    expect(readFileSync(script, "utf8")).toContain("defineScript");
  });

  it("refuses even when only one of its files is there, and writes none", () => {
    const dir = freshDir();
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, "tsconfig.json"), "{}\n");
    const run = callscript(["init", dir]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain(`Not overwriting what is already there: tsconfig.json in ${dir}`);
    expect(existsSync(path.join(dir, "blacklist-extensions.ts"))).toBe(false);
    expect(readFileSync(path.join(dir, "tsconfig.json"), "utf8")).toBe("{}\n");
  });
});
