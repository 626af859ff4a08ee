import { writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { hookAnswer } from "../../runtime/schema/envelope.js";
import { hookNames } from "../../runtime/schema/hooks.js";
import { answeredIncoming, channel } from "../sdk/fixtures.js";
import { callscript } from "../helpers/build.js";
import { HEADER, scriptsFolder } from "../helpers/scripts.js";

/**
 * `callscript run` spawned as a user runs it: `node bin/callscript.js run SCRIPT --hook H --input FILE`.
 * Exit codes: 0 the script answered with data, 1 the script failed, 2 the command was wrong.
 */

const thrower =
  `${HEADER}` + // 1
  `function check(ext: string): boolean {\n` + // 2
  `  if (ext.length < 4) throw new RangeError("extension " + ext + " is too short");\n` + // 3
  `  return true;\n` + // 4
  `}\n` + // 5
  `export default defineScript({ hooks: { need_registration({ call_full }) { return { result: check(call_full.channel.to.base) }; } } });\n`; // 6

const files = {
  "blacklist.ts":
    `import { defineScript, participants } from "callscript";\n` +
    `export default defineScript({\n` +
    `  settings: { extensions: ["101"] },\n` +
    `  hooks: {\n` +
    `    need_registration({ call_full }, { settings, log }) {\n` +
    `      const seen = participants(call_full);\n` +
    `      log.info("participants: " + seen.join(", "));\n` +
    `      const blocked = seen.filter((ext) => settings.extensions.includes(ext));\n` +
    `      if (blocked.length === 0) return undefined;\n` +
    `      log.warn("not registering: " + blocked.join(", "));\n` +
    `      return { result: false };\n` +
    `    },\n` +
    `  },\n` +
    `});\n`,
  "thrower.ts": thrower,
  "broken.ts": `${HEADER}import { readFileSync } from "node:fs";\nexport default defineScript({ hooks: { need_registration() { return { result: readFileSync("/x").length > 0 }; } } });\n`,
  "misspelt.ts": `${HEADER}export default defineScript({ hooks: { need_registraton() {} } as any });\n`,
  "flood.ts": `${HEADER}export default defineScript({ limits: { logBytes: 100 }, hooks: { need_registration(input, ctx) { for (let i = 0; i < 50; i++) ctx.log.info("line " + i); } } });\n`,
  "loop.ts": `${HEADER}export default defineScript({ limits: { timeoutMs: 100 }, hooks: { need_registration() { for (;;) {} } } });\n`,
  "canceller.ts": `${HEADER}export default defineScript({ hooks: { need_registration() { return cancel(); } } });\n`,
  // The heap bomb of issue 12, with the default limits (250 ms, 32 MB).
  "bomb.ts": `${HEADER}export default defineScript({ hooks: { need_registration() { const a: unknown[] = []; for (;;) a.push(new Array(1e6)); } } });\n`,
};

let dir: string;
const at = (name: string) => path.join(dir, name);

beforeAll(async () => {
  dir = scriptsFolder({
    ...files,
    "input.json": JSON.stringify({ call_full: answeredIncoming(), call_stage: "call_ended" }),
    "bad-input.json": JSON.stringify({ call_full: { ...answeredIncoming(), channel: channel({ type: "sideways" as never }) } }),
    "not-json.json": `{ "call_full": `,
    "settings.json": JSON.stringify({ extensions: ["555"] }),
    "config.json": JSON.stringify({ limits: { defaults: { timeoutMs: 1000, logBytes: 4096 } }, scripts: { blacklist: { settings: { extensions: ["100"] } } } }),
  });
}, 180_000);

const run = (script: string, ...rest: string[]) => callscript(["run", at(script), "--hook", "need_registration", "--input", at("input.json"), ...rest]);

describe("callscript run: the script answers", () => {
  it("prints the data, the log lines and the four limit lines; exit 0", () => {
    const { status, stdout, stderr } = run("blacklist.ts");
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(stdout).toMatch(/^blacklist · need_registration · version [0-9a-f]{12}\n/);
    expect(stdout).toContain(`data\n  {\n    "result": false\n  }\n`);
    expect(stdout).toMatch(/^ {2}\+\S+ ms info {2}participants: 100, 101$/m);
    expect(stdout).toMatch(/^ {2}\+\S+ ms warn {2}not registering: 101$/m);
    const limits = stdout.slice(stdout.indexOf("\nlimits\n"));
    // The time limit counts CPU time; the wall time is beside it.
    expect(limits).toMatch(/^ {2}time +\S+ ms +of 250 ms \(CPU time; wall \S+ ms\)$/m);
    expect(limits).toMatch(/^ {2}heap +\S+ (B|KB|MB) +of 32 MB$/m);
    expect(limits).toMatch(/^ {2}output +16 B +of 64 KB$/m);
    expect(limits).toMatch(/^ {2}log +\S+ (B|KB) +of 8 KB$/m);
  });

  it("--json prints exactly the envelope the server would send", () => {
    const { status, stdout, stderr } = run("blacklist.ts", "--json");
    expect(stderr).toBe("");
    expect(status).toBe(0);
    expect(stdout).toBe(`${JSON.stringify({ state: "success", data: { result: false } })}\n`);
  });

  it("--settings and --config change the settings and the limits", () => {
    // The settings file wins over the config's settings, which win over the script's own.
    expect(run("blacklist.ts", "--json", "--settings", at("settings.json")).stdout).toBe(`${JSON.stringify({ state: "success", data: { result: true } })}\n`);
    const withConfig = run("blacklist.ts", "--config", at("config.json"));
    expect(withConfig.status).toBe(0);
    expect(withConfig.stdout).toMatch(/not registering: 100$/m);
    expect(withConfig.stdout).toMatch(/^ {2}time +\S+ ms +of 1000 ms/m);
    expect(withConfig.stdout).toMatch(/^ {2}log +\S+ (B|KB) +of 4 KB$/m);
  });

  it("shows a cancel as such; exit 0", () => {
    const { status, stdout } = run("canceller.ts");
    expect(status).toBe(0);
    expect(stdout).toContain("cancelled: the CRM request is not sent (data {})");
    expect(run("canceller.ts", "--json").stdout).toBe(`${JSON.stringify({ state: "success", data: {} })}\n`);
  });

  it("shows dropped log lines with a visible marker", () => {
    const { status, stdout } = run("flood.ts");
    expect(status).toBe(0);
    // "line 0".."line 9" are 7 bytes each with the newline, "line 10".. 8: 13 lines fit in 100 bytes.
    expect(stdout).toMatch(/^ {2}\+\S+ ms info {2}line 12$/m);
    expect(stdout).not.toMatch(/line 13$/m);
    expect(stdout).toMatch(/^ {2}… 37 more line\(s\), 296 B, dropped: over the log limit$/m);
  });
});

describe("callscript run: the script fails (exit 1)", () => {
  it("an exception shows the .ts location and a code frame", () => {
    const { status, stdout } = run("thrower.ts");
    expect(status).toBe(1);
    const line3 = thrower.split("\n")[2]!;
    const column = line3.indexOf("new RangeError") + 1;
    expect(stdout).toContain(`exception in thrower at thrower.ts:3:${column}\n  RangeError: extension 100 is too short\n`);
    expect(stdout).toContain(`  >    3 | ${line3}\n         | ${" ".repeat(column - 1)}^\n`);
    expect(stdout).toContain(`       2 | function check(ext: string): boolean {\n`);
    expect(stdout).toMatch(/at check \(thrower\.ts:3:\d+\)/);
    expect(stdout).not.toContain("callscript://");
  });

  it("a compile error with --json gives reason compile and the location", () => {
    const { status, stdout } = run("broken.ts", "--json");
    expect(status).toBe(1);
    const answer = hookAnswer.parse(JSON.parse(stdout));
    const column = `import { readFileSync } from "node:fs";`.indexOf(`"node:fs"`) + 1;
    expect(answer).toEqual({
      state: "error",
      error: {
        reason: "compile",
        script: "broken",
        message: expect.stringMatching(new RegExp(`^broken\\.ts:2:${column}: Node built-in module 'fs' is not available to scripts`)),
        location: { file: "broken.ts", line: 2, column },
      },
    });
    expect(stdout.trim().split("\n")).toHaveLength(1);
  });

  it("a compile error without --json says so, with the code frame", () => {
    const { status, stdout } = run("broken.ts");
    expect(status).toBe(1);
    expect(stdout).toContain("broken does not compile");
    expect(stdout).toContain(`  >    2 | import { readFileSync } from "node:fs";`);
  });

  it("a script that does not load (misspelt hook) says why", () => {
    const { status, stdout } = run("misspelt.ts", "--json");
    expect(status).toBe(1);
    const answer = JSON.parse(stdout);
    expect(answer.state).toBe("error");
    expect(answer.error.reason).toBe("compile");
    expect(answer.error.message).toContain("Unknown hook 'need_registraton' (did you mean 'need_registration'?)");
  });

  it("a heap bomb: memory every time, with the CPU time it used and the heap it reached", () => {
    for (let round = 0; round < 3; round++) {
      const { status, stdout } = run("bomb.ts");
      expect(status).toBe(1);
      expect(stdout).toContain("The script ran out of its heap of 32 MB");
      const limits = stdout.slice(stdout.indexOf("\nlimits\n"));
      // Was `cpu 0.00 ms` and `heap ?`: the isolate V8 disposed took its figures with it.
      const cpu = Number(/^ {2}time +([\d.]+) ms +of 250 ms/m.exec(limits)?.[1]);
      expect(cpu).toBeGreaterThan(10);
      expect(limits).toMatch(/^ {2}heap +(2[89](\.\d)?|3\d(\.\d)?|4\d(\.\d)?) MB +of 32 MB$/m);
    }
  });

  it("a timeout gives its reason", () => {
    const { status, stdout } = run("loop.ts", "--json");
    expect(status).toBe(1);
    const message = "The script ran past its time limit of 100 ms of CPU time (a loop that does not end, or one that does too much)";
    // With where the loop was interrupted, mapped to the .ts line.
    expect(JSON.parse(stdout)).toEqual({
      state: "error",
      error: {
        reason: "timeout",
        script: "loop",
        message,
        location: { file: "loop.ts", line: 2, column: 90 },
        stack: `${message}\n    at need_registration (loop.ts:2:90)`,
      },
    });
  });
});

describe("callscript run: the command is wrong (exit 2)", () => {
  it("a missing script", () => {
    const { status, stdout, stderr } = callscript(["run", at("nope.ts"), "--hook", "need_registration", "--input", at("input.json")]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe(`callscript: Script ${at("nope.ts")} does not exist\n`);
  });

  it("a missing input file", () => {
    const { status, stderr } = callscript(["run", at("blacklist.ts"), "--hook", "need_registration", "--input", at("missing.json")]);
    expect(status).toBe(2);
    expect(stderr).toBe(`callscript: Input file ${at("missing.json")} cannot be read: no such file\n`);
  });

  it("an input that is not JSON", () => {
    const { status, stderr } = callscript(["run", at("blacklist.ts"), "--hook", "need_registration", "--input", at("not-json.json")]);
    expect(status).toBe(2);
    expect(stderr).toMatch(new RegExp(`^callscript: Input file ${at("not-json.json")} is not valid JSON: `));
  });

  it("an input that fails the hook's schema, naming the field", () => {
    const { status, stderr } = callscript(["run", at("blacklist.ts"), "--hook", "need_registration", "--input", at("bad-input.json")]);
    expect(status).toBe(2);
    expect(stderr).toContain(`callscript: Input file ${at("bad-input.json")} is not a valid need_registration input:\n`);
    expect(stderr).toMatch(/^ {2}call_full\.channel\.type: Invalid option: expected one of "local"\|"incoming"\|"outgoing"\|"unknown"$/m);
  });

  it("an unknown hook, listing the hooks", () => {
    const { status, stderr } = callscript(["run", at("blacklist.ts"), "--hook", "need_registraton", "--input", at("input.json")]);
    expect(status).toBe(2);
    expect(stderr).toBe(`callscript: Unknown hook 'need_registraton'. Known hooks: ${hookNames.join(", ")}. Did you mean 'need_registration'?\n`);
  });

  it("a script without a handler for the hook", () => {
    writeFileSync(at("phone.json"), JSON.stringify({ call_full: answeredIncoming(), phone: "+79001234567" }));
    const { status, stdout, stderr } = callscript(["run", at("blacklist.ts"), "--hook", "process_client_phone", "--input", at("phone.json")]);
    expect(status).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toBe("callscript: blacklist has no handler for process_client_phone; it handles: need_registration\n");
  });

  it("a missing --hook", () => {
    const { status, stderr } = callscript(["run", at("blacklist.ts"), "--input", at("input.json")]);
    expect(status).toBe(2);
    expect(stderr).toContain("required option '--hook <name>' not specified");
  });
});
