import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callscript, repoRoot } from "../helpers/build.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { lastLine } from "./fixtures.js";

/**
 * Issue 13, through the CLI as an admin runs it: the mistakes made every week (a typo in a field,
 * a `fetch`, a misspelt script name or setting in the config, a handler that returns nothing) are
 * errors that say what is wrong and where, in the admin's own terms.
 */

const payloads = path.join(repoRoot, "examples", "payloads");
const missed = path.join(payloads, "need_registration.incoming-missed.json");

const mistakes = `import { defineScript, participants } from "callscript";

export default defineScript({
  settings: { extensions: ["101"] },
  hooks: {
    need_registration({ call_full }, { settings }) {
      const incoming = call_full.chanel.type === "incoming";
      void fetch("https://crm.example/" + incoming);
      if (participants(call_full).some((ext) => settings.extensions.includes(ext))) return { result: "no" };
      return undefined;
    },
  },
});
`;

describe("check: errors at the script's own line, in the SDK's names", () => {
  it("a misspelt field, a global the sandbox lacks, a return that does not fit the hook", () => {
    const dir = scriptsFolder({ "mistakes.ts": mistakes });
    const check = callscript(["check", dir]);
    expect(check.status).toBe(1);
    const errors = check.stdout.split("\n").filter((line) => line.includes(" error "));
    expect(errors).toEqual([
      `${dir}/mistakes.ts:7:34 error TS2551: Property 'chanel' does not exist on type 'CallFull'. Did you mean 'channel'?`,
      `${dir}/mistakes.ts:8:12 error TS2304: Cannot find name 'fetch': the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config.`,
      `${dir}/mistakes.ts:9:85 error TS2322: need_registration returns '{ result: string; }', which does not fit 'HookResult<"need_registration"> | Promise<HookResult<"need_registration">>'. Types of property 'result' are incompatible. Type 'string' is not assignable to type 'boolean | undefined'.`,
    ]);
    // Each with the line it points at, never a type expanded over dozens of lines.
    expect(check.stdout).toContain(`  >    9 |       if (participants(call_full).some((ext) => settings.extensions.includes(ext))) return { result: "no" };`);
    expect(Math.max(...check.stdout.split("\n").map((line) => line.length))).toBeLessThan(400);
    expect(lastLine(check.stdout)).toBe("3 errors in 1 file · 1 script, 1 file checked");
  });

  it("setTimeout and require get what the sandbox offers instead", () => {
    const dir = scriptsFolder({
      "timers.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { setTimeout(() => undefined, 5); const fs = require("fs"); void fs; return undefined; } } });\n`,
    });
    const messages = callscript(["check", dir, "--json"]);
    const problems = (JSON.parse(messages.stdout) as { problems: { code: string; message: string }[] }).problems;
    expect(problems.map((problem) => problem.message)).toEqual(
      expect.arrayContaining([
        "Cannot find name 'setTimeout': there are no timers: a handler runs once per call, within its time limit; for times use the call's own (call_full.channel.start_time, ...) or Date.now().",
        "Cannot find name 'require': there is no module loader: import 'callscript' or files of the scripts folder by relative path (import { x } from \"./lib/x\"), which are bundled into the script.",
      ]),
    );
  });
});

describe("run", () => {
  it("says when the handler returned nothing, as test does", () => {
    const dir = scriptsFolder({
      "quiet.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { return undefined; } } });\n`,
    });
    const run = callscript(["run", path.join(dir, "quiet.ts"), "--hook", "need_registration", "--input", missed]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("quiet returned nothing: the data is need_registration's defaults, unchanged");
  });

  it("a script that calls fetch fails with what the sandbox offers instead", () => {
    const dir = scriptsFolder({
      "lookup.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { return (globalThis as any).fetch("x"); } } });\n`,
    });
    const run = callscript(["run", path.join(dir, "lookup.ts"), "--hook", "need_registration", "--input", missed, "--json"]);
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout).error.message).toBe(
      "TypeError: globalThis.fetch is not a function (fetch: the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config)",
    );
    const bare = scriptsFolder({
      "lookup.ts": `import { defineScript } from "callscript";\n// @ts-expect-error: not in the sandbox\nconst get = () => fetch("x");\nexport default defineScript({ hooks: { need_registration() { return get(); } } });\n`,
    });
    const hinted = callscript(["run", path.join(bare, "lookup.ts"), "--hook", "need_registration", "--input", missed, "--json"]);
    expect(JSON.parse(hinted.stdout).error.message).toBe(
      "ReferenceError: fetch is not defined (fetch: the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config)",
    );
  });

  it("settings the script does not declare are refused, named with their file (exit 2)", () => {
    const dir = scriptsFolder({
      "bl.ts": `import { defineScript } from "callscript";\nexport default defineScript({ settings: { extensions: [] as string[] }, hooks: { need_registration() { return undefined; } } });\n`,
      "settings.json": JSON.stringify({ extension: ["102"] }),
    });
    const run = callscript(["run", path.join(dir, "bl.ts"), "--hook", "need_registration", "--input", missed, "--settings", path.join(dir, "settings.json")]);
    expect(run.status).toBe(2);
    expect(run.stderr).toBe(
      `callscript: Invalid configuration in ${path.join(dir, "settings.json")}: settings.extension: bl has no setting 'extension' (did you mean 'extensions'?); it declares extensions (in ${path.join(dir, "settings.json")})\n`,
    );
  });
});

describe("a config that names a script that is not there (exit 2, with did-you-mean)", () => {
  for (const command of ["test", "check", "run"] as const) {
    it(command, () => {
      const dir = scriptsFolder({
        "block-clients.ts": `import { defineScript } from "callscript";\nexport default defineScript({ settings: { extensions: [] as string[] }, hooks: { need_registration() { return undefined; } } });\n`,
        "block-clients.cases.json": JSON.stringify({ cases: [{ name: "c", hook: "need_registration", inputFile: missed, expect: { changes: {} } }] }),
      });
      const config = path.join(scriptsFolder({ "c.json": JSON.stringify({ scripts: { "block-client": { settings: { extensions: ["102"] } } } }) }), "c.json");
      const args = command === "run" ? ["run", path.join(dir, "block-clients.ts"), "--hook", "need_registration", "--input", missed] : [command, dir];
      const result = callscript([...args, "--config", config]);
      expect(result.status).toBe(2);
      expect(result.stderr).toBe(
        `callscript: Invalid configuration in ${config}: scripts.block-client: there is no script block-client.ts in ${dir} (did you mean 'block-clients'?) (in ${config})\n`,
      );
    });
  }
});

describe("cases that assert what matters: expect { changes }", () => {
  const responsible = `import { defineScript } from "callscript";
export default defineScript({
  settings: { user: "5", touchStatus: false },
  hooks: {
    process_final_params({ STATUS_CODE }, { settings }) {
      if (String(STATUS_CODE) !== "304") return undefined;
      return settings.touchStatus ? { USER_ID: settings.user, STATUS_CODE: 200 } : { USER_ID: settings.user };
    },
  },
});
`;
  const input = path.join(payloads, "process_final_params.missed-trunk-3432723033.json");

  it("names only the fields the script changes; one it changes without the case naming it fails, shown field by field", () => {
    const dir = scriptsFolder({
      "responsible.ts": responsible,
      "responsible.cases.json": JSON.stringify({
        cases: [
          { name: "missed: user 5", hook: "process_final_params", inputFile: input, expect: { changes: { USER_ID: "5" } } },
          {
            name: "answered: nothing changes",
            hook: "process_final_params",
            inputFile: path.join(payloads, "process_final_params.answered.json"),
            expect: { changes: {} },
          },
          {
            name: "a change the case does not name",
            hook: "process_final_params",
            inputFile: input,
            settings: { touchStatus: true },
            expect: { changes: { USER_ID: "5" } },
          },
          { name: "a setting the script does not have", hook: "process_final_params", inputFile: input, settings: { users: "7" }, expect: { changes: {} } },
        ],
      }),
    });
    const test = callscript(["test", dir]);
    expect(test.status).toBe(1);
    expect(test.stdout).toContain("✓ missed: user 5");
    expect(test.stdout).toContain("✓ answered: nothing changes");
    expect(test.stdout).toContain(["  ✗ a change the case does not name"].join("\n"));
    expect(test.stdout).toMatch(/data\.STATUS_CODE\n\s+expected {2}304\n\s+actual {4}200/);
    expect(test.stdout).toContain(
      `responsible.cases.json: cases[3].settings.users: responsible has no setting 'users' (did you mean 'user'?); it declares user, touchStatus (in this case)`,
    );
    expect(lastLine(test.stdout)).toBe("2 passed, 2 failed");
  });
});

describe("init in a project: its next lines work as typed", () => {
  it("npx callscript test / check / run, on the folder it made", () => {
    const project = mkdtempSync(path.join(tmpdir(), "callscript-project-"));
    writeFileSync(path.join(project, "package.json"), JSON.stringify({ name: "pbx-scripts", private: true }));
    // As npm installs a local dependency: the package in node_modules, its bin in node_modules/.bin.
    mkdirSync(path.join(project, "node_modules", ".bin"), { recursive: true });
    symlinkSync(repoRoot, path.join(project, "node_modules", "callscript"));
    symlinkSync(path.join("..", "callscript", "bin", "callscript.js"), path.join(project, "node_modules", ".bin", "callscript"));

    const sh = (command: string) =>
      spawnSync("/bin/sh", ["-c", command], {
        cwd: project,
        encoding: "utf8",
        env: { ...process.env, NO_COLOR: "1", npm_config_offline: "true" },
        timeout: 60_000,
      });
    const init = sh("npx callscript init scripts");
    expect(init.status).toBe(0);
    const next = init.stdout
      .split("\n")
      .slice(init.stdout.split("\n").indexOf("next") + 1)
      .map((line) => line.trim().split(/ {2,}/)[0]!)
      .filter(Boolean);
    expect(next.map((line) => line.split(" ").slice(0, 3).join(" "))).toEqual([
      "npx callscript test",
      "npx callscript check",
      "npx callscript run",
      "npx callscript serve",
    ]);
    for (const command of next.filter((line) => !line.includes(" serve "))) {
      const ran = sh(command);
      expect(ran.status, `${command}\n${ran.stdout}${ran.stderr}`).toBe(0);
    }
    // The starter changes nothing until edited: the recorded missed call is registered as usual.
    const run = sh(`${next.find((line) => line.includes(" run "))} --json`);
    expect(run.stdout.trim()).toBe('{"state":"success","data":{"result":true}}');
  });
});
