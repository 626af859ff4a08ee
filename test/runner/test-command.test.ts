import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callscript } from "../helpers/build.js";
import { ANSWERED, BLOCK_CLIENTS, folder, lastLine, MISSED, payload, PAYLOADS } from "./fixtures.js";

const NR = "need_registration";

describe("callscript test", () => {
  it("passes: a ✓ line per case with its time, each script's worst use of its limits, the summary, exit 0", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": {
        $schema: "./cases.schema.json",
        cases: [
          { name: "a blocked client is not registered", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
          { name: "another client is registered", hook: NR, inputFile: ANSWERED, expect: { data: { result: true } } },
        ],
      },
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/✓ a blocked client is not registered {2}\d+(\.\d+)? ms/);
    expect(run.stdout).toMatch(/✓ another client is registered {2}\d+(\.\d+)? ms/);
    // The table of limits: the script, then time / heap / output / log against the defaults.
    const row = run.stdout.split("\n").find((line) => line.trimStart().startsWith("block-clients "));
    expect(row).toMatch(/block-clients\s+[\d.]+ ms \/ 250 ms\s+[\d.]+ (KB|MB) \/ 32 MB\s+16 B \/ 64 KB\s+\d+ B \/ 8 KB/);
    expect(lastLine(run.stdout)).toBe("2 passed, 0 failed");
  });

  it("a heap bomb expected to fail with memory passes every time; the table shows the heap it reached, not the other cases' heap", () => {
    const dir = folder({
      // The heap bomb of issue 12, with the default limits (250 ms, 32 MB), beside a healthy hook.
      "bomb.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: {\n  need_registration() { const a: unknown[] = []; for (;;) a.push(new Array(1e6)); },\n  process_client_phone(input) { return { phone: input.phone }; },\n} });\n`,
      "bomb.cases.json": {
        cases: [
          ...[1, 2, 3].map((n) => ({ name: `bomb ${n}`, hook: NR, inputFile: ANSWERED, expect: { error: "memory" } })),
          { name: "healthy", hook: "process_client_phone", inputFile: "payloads/phone.json", expect: { data: { phone: "89001234567" } } },
        ],
      },
      ...PAYLOADS,
      "payloads/phone.json": payload("process_client_phone.incoming-8-format.json"),
    });
    const run = callscript(["test", dir]);
    expect(lastLine(run.stdout)).toBe("4 passed, 0 failed");
    // Was 835 KB (the healthy case's heap): the bomb reached its limit.
    const row = run.stdout.split("\n").find((line) => line.trimStart().startsWith("bomb "));
    expect(row).toMatch(/bomb\s+[\d.]+ ms \/ 250 ms\s+(29|3\d|4\d)(\.\d)? MB \/ 32 MB/);
  });

  it("fails: names the field path with the expected and the actual value, shows the script's log, exit 1", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": {
        cases: [
          { name: "wrong on purpose", hook: NR, inputFile: MISSED, expect: { data: { result: true } } },
          { name: "extra key expected", hook: NR, inputFile: ANSWERED, expect: { data: { result: true, responsible: "5" } } },
          { name: "right", hook: NR, inputFile: ANSWERED, expect: { data: { result: true } } },
        ],
      },
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(1);
    const out = run.stdout;
    const failure = out.slice(out.indexOf("✗ wrong on purpose"), out.indexOf("✗ extra key expected"));
    expect(failure).toContain("data.result\n        expected  true\n        actual    false");
    expect(failure).toContain('block-clients returned {"result":false}');
    expect(failure).toMatch(/\+[\d.]+ ms info {2}client \+79124567890/);
    const missing = out.slice(out.indexOf("✗ extra key expected"));
    expect(missing).toContain('data.responsible\n        expected  "5"\n        actual    (absent)');
    expect(out).toMatch(/✓ right/);
    expect(lastLine(out)).toBe("1 passed, 2 failed");
  });

  it("checks cancel() and failures by reason, and says so when the answer is of another kind", () => {
    const gate = `import { cancel, defineScript } from "callscript";
export default defineScript({
  hooks: {
    need_registration({ call_full, call_stage }) {
      if (call_stage === "conversation_requested") return cancel();
      if (call_full.is_ivr) throw new Error("no IVR calls here");
      return { result: true };
    },
  },
});
`;
    const dir = folder({
      "gate.ts": gate,
      "gate.cases.json": [
        { name: "ringing: cancelled", hook: NR, inputFile: "payloads/ringing.json", expect: { cancel: true } },
        { name: "IVR: an exception", hook: NR, inputFile: "payloads/ivr.json", expect: { error: "exception" } },
        { name: "IVR, expected a timeout", hook: NR, inputFile: "payloads/ivr.json", expect: { error: "timeout" } },
        { name: "ringing, expected data", hook: NR, inputFile: "payloads/ringing.json", expect: { data: { result: true } } },
      ],
      "payloads/ringing.json": payload("need_registration.ringing.json"),
      "payloads/ivr.json": payload("need_registration.missed-in-ivr.json"),
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("✓ ringing: cancelled");
    expect(run.stdout).toContain("✓ IVR: an exception");
    const timeout = run.stdout.slice(run.stdout.indexOf("✗ IVR, expected a timeout"), run.stdout.indexOf("✗ ringing, expected data"));
    expect(timeout).toContain('error\n        expected  "timeout"\n        actual    "exception"');
    // The failure itself, pointing at the script's own line.
    expect(timeout).toContain("exception in gate at gate.ts:6:");
    expect(timeout).toContain("no IVR calls here");
    const data = run.stdout.slice(run.stdout.indexOf("✗ ringing, expected data"));
    expect(data).toContain('answer\n        expected  {"data":{"result":true}}\n        actual    {"cancel":true}');
    expect(data).toContain("gate cancelled the request");
    expect(lastLine(run.stdout)).toBe("2 passed, 2 failed");
  });

  it("reports each malformed case with its file and field path, and runs the others", () => {
    const broken = JSON.parse(payload("need_registration.incoming-missed.json")) as { call_full: { channel: { type: string } } };
    broken.call_full.channel.type = "sideways";
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": {
        cases: [
          { name: "typo in the hook", hook: "need_registraton", inputFile: MISSED, expect: { data: { result: false } } },
          { name: "no such payload", hook: NR, inputFile: "payloads/nope.json", expect: { data: { result: false } } },
          { name: "payload not fit for the hook", hook: NR, inputFile: "payloads/sideways.json", expect: { data: { result: false } } },
          { name: "inline input not fit for the hook", hook: NR, input: { call_full: { result: "x" } }, expect: { data: { result: false } } },
          { name: "unknown reason", hook: NR, inputFile: MISSED, expect: { error: "timeot" } },
          { name: "two expectations", hook: NR, inputFile: MISSED, expect: { data: { result: false }, cancel: true } },
          { name: "a hook the script does not handle", hook: "process_client_phone", input: { phone: "101" }, expect: { data: { phone: "101" } } },
          { name: "still runs", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
        ],
      },
      "payloads/sideways.json": broken,
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(1);
    const out = run.stdout;
    const file = path.join(dir, "block-clients.cases.json");
    expect(out).toContain(`✗ typo in the hook\n`);
    expect(out).toContain(`${file}: cases[0].hook: Unknown hook 'need_registraton'. Did you mean 'need_registration'?\n`);
    expect(out).toContain(`${file}: cases[1].inputFile: payloads/nope.json cannot be read: no such file`);
    expect(out).toContain(`${path.join(dir, "payloads", "sideways.json")}: call_full.channel.type: not a valid need_registration input: Invalid option`);
    expect(out).toContain(`${file}: cases[3].input.call_full.result: not a valid need_registration input: Invalid input: expected number, received string`);
    expect(out).toContain(`${file}: cases[4].expect.error: Invalid option: expected one of "timeout"|"memory"`);
    expect(out).toContain(`${file}: cases[5].expect: expect needs exactly one of changes, data, cancel, error (got data, cancel)`);
    expect(out).toContain(`${file}: cases[6].hook: block-clients has no handler for process_client_phone; it handles: need_registration`);
    expect(out).toMatch(/✓ still runs/);
    expect(lastLine(out)).toBe("1 passed, 7 failed");
  });

  it("a cases file that cannot be read as cases fails alone; the other files run", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": [{ name: "runs", hook: NR, inputFile: MISSED, expect: { data: { result: false } } }],
      "bad-json.ts": BLOCK_CLIENTS,
      "bad-json.cases.json": '{ "cases": [ { "name": "x", } ] }',
      "bad-shape.ts": BLOCK_CLIENTS,
      "bad-shape.cases.json": { cases: { name: "not a list" } },
      "orphan.cases.json": [{ name: "no script", hook: NR, inputFile: MISSED, expect: { data: { result: false } } }],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain(`${path.join(dir, "bad-json.cases.json")}: is not valid JSON:`);
    expect(run.stdout).toContain(`${path.join(dir, "bad-shape.cases.json")}: cases: Invalid input: expected array, received object`);
    expect(run.stdout).toContain(`${path.join(dir, "orphan.cases.json")}: there is no script orphan.ts beside it`);
    expect(run.stdout).toContain("✓ runs");
    expect(lastLine(run.stdout)).toBe("1 passed, 3 failed");
  });

  it("a script that does not compile fails each of its cases, pointing at file:line:col", () => {
    const dir = folder({
      "typo.ts": `import { defineScript } from "callscript";\nexport default defineScript({\n  hooks: { need_registration() { return { result: false }; }\n});\n`,
      "typo.cases.json": [
        { name: "first", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
        { name: "second", hook: NR, inputFile: ANSWERED, expect: { data: { result: false } } },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("compile in typo at typo.ts:4:");
    expect(run.stdout).toContain('answer\n        expected  {"data":{"result":false}}\n        actual    {"error":"compile"}');
    expect(lastLine(run.stdout)).toBe("0 passed, 2 failed");
  });

  it("--json prints the whole report as JSON", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": [
        { name: "blocked", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
        { name: "wrong", hook: NR, inputFile: ANSWERED, expect: { data: { result: false } } },
      ],
      "untested.ts": BLOCK_CLIENTS,
      ...PAYLOADS,
    });
    const run = callscript(["test", dir, "--json"]);
    expect(run.status).toBe(1);
    const report = JSON.parse(run.stdout) as {
      files: Array<{
        file: string;
        script: string;
        cases: Array<{
          name: string;
          status: string;
          differences?: unknown[];
          steps?: Array<{ script: string; outcome: string; logs: { lines: Array<{ message: string }> } }>;
        }>;
      }>;
      usage: Array<{ script: string; limits: { timeoutMs: number }; invocations: number; worst: { outputBytes: number } }>;
      untested: string[];
      summary: { passed: number; failed: number; skipped: number };
    };
    expect(report.summary).toEqual({ passed: 1, failed: 1, skipped: 0 });
    expect(report.files).toHaveLength(1);
    expect(report.files[0]!.file).toBe(path.join(dir, "block-clients.cases.json"));
    const [blocked, wrong] = report.files[0]!.cases;
    expect(blocked).toMatchObject({ name: "blocked", status: "passed", steps: [{ script: "block-clients", outcome: "data" }] });
    expect(blocked!.steps![0]!.logs.lines.map((line) => line.message)).toEqual(["client +79124567890"]);
    expect(wrong).toMatchObject({ status: "failed", differences: [{ path: "data.result", expected: false, actual: true, kind: "changed" }] });
    expect(report.usage).toMatchObject([{ script: "block-clients", limits: { timeoutMs: 250 }, invocations: 2, worst: { outputBytes: 16 } }]);
    expect(report.untested).toEqual([path.join(dir, "untested.ts")]);
  });

  it("--filter runs the cases whose name contains the text; none is a usage error", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": [
        { name: "Blocked client", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
        { name: "free client", hook: NR, inputFile: ANSWERED, expect: { data: { result: false } } },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir, "--filter", "blocked"]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("✓ Blocked client");
    expect(run.stdout).not.toContain("free client");
    expect(lastLine(run.stdout)).toBe("1 passed, 0 failed");

    const none = callscript(["test", dir, "--filter", "nothing like it"]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain('No case name contains "nothing like it"');
  });

  it("skipped cases are counted apart; .cases.yaml and a bare list are read too", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.yaml": [
        "# yaml-language-server: $schema=./cases.schema.json",
        "cases:",
        "  - name: blocked, from YAML",
        "    hook: need_registration",
        `    inputFile: ${MISSED}`,
        "    expect: { data: { result: false } }",
        "  - name: not yet",
        "    skip: waiting for the new trunk",
        "    hook: need_registration",
        `    inputFile: ${MISSED}`,
        "    expect: { data: { result: true } }",
      ].join("\n"),
      ...PAYLOADS,
    });
    const run = callscript(["test", path.join(dir, "block-clients.ts")]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("✓ blocked, from YAML");
    expect(run.stdout).toContain("- not yet skipped: waiting for the new trunk");
    expect(lastLine(run.stdout)).toBe("1 passed, 0 failed, 1 skipped");
  });

  it("per-case settings override the script's defaults", () => {
    const dir = folder({
      "block-clients.ts": BLOCK_CLIENTS,
      "block-clients.cases.json": [
        { name: "nobody blocked", hook: NR, inputFile: MISSED, settings: { block: [] }, expect: { data: { result: true } } },
        { name: "the other one blocked", hook: NR, inputFile: ANSWERED, settings: { block: ["+79001234567"] }, expect: { data: { result: false } } },
        { name: "defaults again", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.stdout).toContain("✓ nobody blocked");
    expect(run.stdout).toContain("✓ the other one blocked");
    expect(run.stdout).toContain("✓ defaults again");
    expect(run.status).toBe(0);
  });

  it("exits 2 when there is nothing to test or the path is wrong", () => {
    const empty = folder({ "block-clients.ts": BLOCK_CLIENTS });
    const none = callscript(["test", empty]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain("No cases files in");
    const script = callscript(["test", path.join(empty, "block-clients.ts")]);
    expect(script.status).toBe(2);
    expect(script.stderr).toContain("has no cases file; write block-clients.cases.json beside it");
    const missing = callscript(["test", path.join(empty, "nope")]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain("does not exist");
  });
});

describe("callscript test --pipeline", () => {
  const VETO_102 = `import { defineScript, participants } from "callscript";
export default defineScript({
  settings: { extensions: ["102"] },
  hooks: {
    need_registration({ call_full }, { settings }) {
      return participants(call_full).some((ext) => settings.extensions.includes(ext)) ? { result: false } : undefined;
    },
  },
});
`;
  const VETO_TRUNK = `import { defineScript, matchesAny } from "callscript";
export default defineScript({
  settings: { trunks: ["+73432723033"] },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      if (!matchesAny(call_full.channel.trunk, settings.trunks)) return undefined;
      log.info("vetoed for trunk " + call_full.channel.trunk.original);
      return { result: false };
    },
  },
});
`;
  const FIRST = `import { defineScript } from "callscript";
export default defineScript({ order: -1, hooks: { need_registration(_input, { log }) { log.info("first"); } } });
`;
  const pipelineFolder = () =>
    folder({
      "a-ext.ts": VETO_102,
      "b-trunk.ts": VETO_TRUNK,
      "z-first.ts": FIRST,
      "a-ext.cases.json": [
        { name: "answered by 101: registered", hook: NR, inputFile: ANSWERED, expect: { data: { result: true } } },
        { name: "nobody listed: the missed call is registered", hook: NR, inputFile: MISSED, settings: { extensions: [] }, expect: { data: { result: true } } },
      ],
      "pipeline.cases.json": [
        { name: "missed on the Ekaterinburg line: vetoed", hook: NR, inputFile: MISSED, expect: { data: { result: false } } },
        {
          name: "both lists emptied: registered",
          hook: NR,
          inputFile: MISSED,
          settings: { "a-ext": { extensions: [] }, "b-trunk": { trunks: [] } },
          expect: { data: { result: true } },
        },
        { name: "settings for a script that is not there", hook: NR, inputFile: MISSED, settings: { "c-nope": {} }, expect: { data: { result: false } } },
      ],
      ...PAYLOADS,
    });

  it("without --pipeline, a script's cases run it alone; pipeline.cases.json always runs the pipeline", () => {
    const run = callscript(["test", pipelineFolder()]);
    expect(run.stdout).toContain("✓ answered by 101: registered");
    expect(run.stdout).toContain("✓ nobody listed: the missed call is registered");
    expect(run.stdout).toContain("✓ missed on the Ekaterinburg line: vetoed");
    expect(run.stdout).toContain("✓ both lists emptied: registered");
    expect(run.stdout).toContain("cases[2].settings.c-nope: no script c-nope in the need_registration pipeline (its scripts: z-first, a-ext, b-trunk)");
    expect(lastLine(run.stdout)).toBe("4 passed, 1 failed");
  });

  it("with --pipeline, every script of the folder that implements the hook runs, in the server's order", () => {
    const dir = pipelineFolder();
    const run = callscript(["test", path.join(dir, "a-ext.cases.json"), "--pipeline"]);
    expect(run.status).toBe(1);
    expect(run.stdout).toContain("a-ext in the pipeline");
    expect(run.stdout).toContain("✓ answered by 101: registered");
    // a-ext alone registers it; the pipeline does not, and says which script changed it.
    const failure = run.stdout.slice(run.stdout.indexOf("✗ nobody listed"));
    expect(failure).toContain("data.result\n        expected  true\n        actual    false");
    expect(failure).toContain("z-first returned nothing\n        +");
    expect(failure).toContain("a-ext returned nothing");
    expect(failure).toContain('b-trunk returned {"result":false}');
    expect(failure).toMatch(/info {2}vetoed for trunk \+73432723033/);
    expect(lastLine(run.stdout)).toBe("1 passed, 1 failed");

    const json = callscript(["test", path.join(dir, "pipeline.cases.json"), "--json", "--filter", "Ekaterinburg"]);
    const report = JSON.parse(json.stdout) as { files: Array<{ kind: string; mode: string; cases: Array<{ steps: Array<{ script: string }> }> }> };
    expect(report.files[0]).toMatchObject({ kind: "pipeline", mode: "pipeline" });
    expect(report.files[0]!.cases[0]!.steps.map((step) => step.script)).toEqual(["z-first", "a-ext", "b-trunk"]);
  });
});

describe("the examples", () => {
  it("pass, with a script and its cases for every typical customization of domain/hooks.md", () => {
    const run = callscript(["test", "examples", "--json"]);
    const report = JSON.parse(run.stdout) as {
      files: Array<{ script: string | null; cases: Array<{ hook: string }> }>;
      summary: { failed: number; passed: number };
      untested: string[];
    };
    expect(run.status).toBe(0);
    expect(report.summary.failed).toBe(0);
    expect(report.untested).toEqual([]);
    const hooks = new Map(report.files.map((file) => [file.script, new Set(file.cases.map((testCase) => testCase.hook))]));
    expect(Object.fromEntries([...hooks].map(([script, set]) => [script, [...set]]))).toEqual({
      "blacklist-extensions": ["need_registration"], // 1. black list of extensions
      "trunk-whitelist": ["need_registration"], // 2. white list of trunks
      "client-phone-format": ["process_client_phone"], // 3. client number format
      "click-to-call": ["process_originate_params"], // 4. click-to-call
      "missed-call-responsible": ["process_final_params"], // 5. missed calls → responsible by trunk
      "skip-short-and-ivr": ["need_registration"], // 6. skip IVR and short calls
      "working-hours": ["customize_autodistribution"], // 7. working hours
      "record-path": ["process_record_file_path"], // 8. recording path
      "vip-client": ["process_registration_params"], // a VIP client looked up in the CRM goes to their manager (ctx.fetch)
      "missed-round-robin": ["process_final_params"], // missed calls shared out to a group in turn (ctx.kv)
      null: ["need_registration"], // pipeline.cases.json: the need_registration scripts together
    });
    for (const file of report.files) expect(file.cases.length, String(file.script)).toBeGreaterThanOrEqual(3);
  });

  it("the cases files the examples ship match the JSON Schema init writes", () => {
    const shipped = JSON.parse(readFileSync("examples/cases.schema.json", "utf8")) as unknown;
    const run = callscript(["init", "--force", folder({})]);
    const written = run.stdout.match(/created (\S+)/)![1]!;
    expect(JSON.parse(readFileSync(path.join(written, "cases.schema.json"), "utf8"))).toEqual(shipped);
  });
});
