import { describe, expect, it } from "vitest";
import { callscript } from "../helpers/build.js";

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
});
