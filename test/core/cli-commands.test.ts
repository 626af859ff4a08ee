import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, symlinkSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callscript, repoRoot } from "../helpers/build.js";

/**
 * `callscript` loads only the module of the command it is given (runtime/cli/main.ts): help, a
 * typo and `help <command>` must still see every command.
 */

const COMMANDS = ["run", "serve", "test", "check", "init", "record", "simulate", "replay", "promote"];

describe("the command line's commands", () => {
  it("lists every command, in order, when none is named", () => {
    const { status, stdout } = callscript(["--help"]);
    expect(status).toBe(0);
    const listed = [...stdout.matchAll(/^ {2}(\w+) /gm)].map((match) => match[1]);
    expect(listed).toEqual([...COMMANDS, "help"]);
  });

  it("names the closest command for a typo, with exit code 2", () => {
    const { status, stderr } = callscript(["serv"]);
    expect(status).toBe(2);
    expect(stderr).toContain("unknown command 'serv'");
    expect(stderr).toContain("Did you mean serve?");
  });

  it("answers `help <command>` and `<command> --help` with that command's usage", () => {
    for (const args of [
      ["help", "check"],
      ["check", "--help"],
    ]) {
      const { status, stdout } = callscript(args);
      expect(status).toBe(0);
      expect(stdout).toContain("Usage: callscript check [options] [dir]");
    }
  });

  it("prints the version (no command named)", () => {
    const { status, stdout } = callscript(["--version"]);
    expect(status).toBe(0);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("says the runtime is not built when dist/ is missing, with exit code 1", () => {
    const copy = mkdtempSync(path.join(os.tmpdir(), "callscript-unbuilt-"));
    cpSync(path.join(repoRoot, "bin"), path.join(copy, "bin"), { recursive: true });
    cpSync(path.join(repoRoot, "package.json"), path.join(copy, "package.json"));
    symlinkSync(path.join(repoRoot, "node_modules"), path.join(copy, "node_modules"));
    const child = spawnSync(process.execPath, ["--no-node-snapshot", path.join(copy, "bin", "callscript.js"), "--version"], { encoding: "utf8" });
    expect(child.status).toBe(1);
    expect(child.stderr).toContain("the runtime is not built; run `npm run build`");
  });
});
