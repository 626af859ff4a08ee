import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseHookInput } from "../../runtime/schema/hook-input.js";
import { callFileSchema, callJsonSchema } from "../../runtime/runner/simulate.js";
import { recordPair } from "../../runtime/record/recording.js";
import { parsePbxTime } from "../../sdk/time.js";
import { isHookName } from "../../runtime/schema/hooks.js";
import { callscript } from "../helpers/build.js";
import { examplesConfigOffline, examplesDir, folder, lastLine } from "./fixtures.js";
import { listening, serve } from "../server/serve-process.js";

const callsDir = path.join(examplesDir, "calls");
/**
 * The examples' config with the time limit at its maximum: these tests compare answers, and a first
 * call that runs past 250 ms on a loaded machine would be a timeout on one side and not the other.
 */
const CONFIG = path.join(folder({}), "callscript.json");
{
  const config = examplesConfigOffline() as { limits: { defaults: Record<string, unknown> } };
  config.limits.defaults.timeoutMs = 5000;
  writeFileSync(CONFIG, JSON.stringify({ ...config, scriptsDir: examplesDir }));
}
const callFiles = readdirSync(callsDir)
  .filter((name) => name.endsWith(".call.json"))
  .sort();

type CallFile = { name: string; steps: Array<{ hook: string; input: Record<string, unknown> }> };
const readCallFile = (name: string) => JSON.parse(readFileSync(path.join(callsDir, name), "utf8")) as CallFile;

function simulate(args: string[]) {
  return callscript(["simulate", ...args]);
}

type JsonStep = {
  hook: string;
  answer: { state: string; data?: Record<string, unknown>; error?: { reason: string; script: string | null } } | null;
  problem?: string;
};

function simulateJson(args: string[]): { status: number | null; steps: JsonStep[]; stderr: string } {
  const result = simulate([...args, "--json"]);
  return { status: result.status, steps: JSON.parse(result.stdout) as JsonStep[], stderr: result.stderr };
}

const SCRIPT = (body: string, hook = "need_registration") => `import { defineScript, cancel } from "callscript";
export default defineScript({ hooks: { ${hook}(input, ctx) { ${body} } } });
`;

describe("the example calls (examples/calls)", () => {
  it("has one call for each of the six shapes, each a valid call file of valid inputs", () => {
    expect(callFiles).toEqual([
      "incoming-answered.call.json",
      "incoming-missed.call.json",
      "internal.call.json",
      "missed-in-ivr.call.json",
      "outgoing.call.json",
      "transferred.call.json",
    ]);
    for (const name of callFiles) {
      const call = callFileSchema.parse(readCallFile(name));
      for (const [index, step] of call.steps.entries()) {
        expect(isHookName(step.hook), `${name} steps[${index}].hook`).toBe(true);
        const parsed = parseHookInput(step.hook as never, step.input);
        expect(parsed.ok ? [] : parsed.issues, `${name} steps[${index}]`).toEqual([]);
      }
    }
    expect(JSON.parse(readFileSync(path.join(callsDir, "call.schema.json"), "utf8"))).toEqual(callJsonSchema());
  });

  it("keeps call_full consistent across a call's steps: one call id, times and stages that only move forward", () => {
    const stages = ["conversation_requested", "conversation_accepted", "conversation_ended", "call_ended"];
    for (const name of callFiles) {
      const call = readCallFile(name);
      const ids = new Set<string>();
      let latest = -Infinity;
      let start: string | undefined;
      let lastStage = -1;
      for (const [index, step] of call.steps.entries()) {
        const callFull = step.input.call_full as
          { channel: { id: string; start_time: string }; conversations: Record<string, { channel: Record<string, string> }> } | undefined;
        if (!callFull) continue;
        ids.add(callFull.channel.id);
        start ??= callFull.channel.start_time;
        expect(callFull.channel.start_time, `${name} steps[${index}]: the call's start`).toBe(start);
        const times = [callFull.channel, ...Object.values(callFull.conversations).map((conversation) => conversation.channel)].flatMap((channel) =>
          ["start_time", "answer_time", "end_time"].map((key) => parsePbxTime((channel as Record<string, string>)[key]!)?.epochMs ?? -Infinity),
        );
        const now = Math.max(...times);
        expect(now, `${name} steps[${index}]: time goes back`).toBeGreaterThanOrEqual(latest);
        latest = now;
        const stage = stages.indexOf(String(step.input.call_stage ?? ""));
        // A new conversation (a transfer) asks again from conversation_requested.
        if (stage >= 0 && !(stage === 0 && lastStage === 1)) expect(stage, `${name} steps[${index}]: stage goes back`).toBeGreaterThanOrEqual(lastStage);
        if (stage >= 0) lastStage = stage;
      }
      expect(ids.size, `${name}: one call`).toBe(1);
    }
  });
});

describe("callscript simulate", () => {
  it("plays each example call against the examples, with the words of what the connector does", () => {
    const expectations: Record<string, Array<[number, RegExp]>> = {
      "incoming-answered.call.json": [
        [2, /client number sent to the CRM: \+79001234567/],
        [7, /call finished in Bitrix24: responsible user 3, status 200 \(answered\), 201 s/],
      ],
      "incoming-missed.call.json": [
        [0, /the call is routed to extension 104/],
        [6, /call finished in Bitrix24: responsible user 5, status 304 \(missed\)/],
      ],
      "missed-in-ivr.call.json": [[0, /the call is not registered in the CRM \(call_ended\)/]],
      "outgoing.call.json": [[0, /the PBX dials 89007654321 for 103/]],
      "internal.call.json": [[1, /CRM user looked up by the number 104/]],
      "transferred.call.json": [[9, /responsible user 4/]],
    };
    for (const name of callFiles) {
      const result = simulate([path.join(callsDir, name), "--scripts", examplesDir, "--config", CONFIG]);
      expect(result.status, `${name}: ${result.stdout}${result.stderr}`).toBe(0);
      const steps = readCallFile(name).steps.length;
      expect(lastLine(result.stdout)).toBe(`${steps} step${steps === 1 ? "" : "s"}: ${steps} answered, 0 failed`);
      const blocks = result.stdout.split("\n\n").slice(1, -1);
      expect(blocks).toHaveLength(steps);
      for (const [index, words] of expectations[name]!) expect(blocks[index], `${name} step ${index + 1}`).toMatch(words);
    }
  });

  it("prints each step's time in the call, its scripts with their data and logs, and the changes", () => {
    const result = simulate([path.join(callsDir, "incoming-missed.call.json"), "--scripts", examplesDir, "--config", CONFIG]);
    expect(result.stdout.split("\n")[0]).toBe("missed call on the Ekaterinburg line, out of hours · 8 steps · scripts from examples (10 scripts)");
    const final = result.stdout.split("\n\n").find((block) => block.includes("process_final_params"))!;
    const lines = final.split("\n");
    expect(lines[0]).toMatch(/^\+0:35 {4}19:20:40 {2}process_final_params · call_ended {2}telephony\.externalcall\.finish$/);
    expect(lines[1]).toMatch(/^ {9}missed-call-responsible {2}\{"USER_ID":"5"\} {2}[\d.]+ ms$/);
    expect(lines[2]).toMatch(/^ {11}\+[\d.]+ ms info {2}missed on \+73432723033: responsible 5 instead of 4$/);
    expect(final).toContain(`change USER_ID: "4" → "5"`);
    const first = result.stdout.split("\n\n")[1]!;
    expect(first.split("\n")[0]).toMatch(/^\+0:00 {4}19:20:05 {2}customize_autodistribution/);
  });

  it("--json prints [{ hook, answer }] in step order: what a real `serve` answers for the same calls", async () => {
    const served = serve(["--scripts", examplesDir, "--config", CONFIG, "--port", "0", "--no-watch"]);
    const address = await listening(served);
    for (const name of callFiles) {
      const { status, steps } = simulateJson([path.join(callsDir, name), "--scripts", examplesDir, "--config", CONFIG]);
      expect(status).toBe(0);
      const call = readCallFile(name);
      expect(steps.map((step) => step.hook)).toEqual(call.steps.map((step) => step.hook));
      for (const [index, step] of call.steps.entries()) {
        const response = await fetch(`${address}/hooks/${step.hook}`, {
          method: "POST",
          body: JSON.stringify(step.input),
          headers: { "content-type": "application/json" },
        });
        expect(steps[index]!.answer, `${name} steps[${index}]`).toEqual(await response.json());
        expect(Object.keys(steps[index]!)).toEqual(["hook", "answer"]);
      }
    }
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });

  it("words a cancel and an error the same for every hook, and exits 1 when a step fails", () => {
    const call = readCallFile("incoming-answered.call.json");
    const dir = folder({
      "canceller.ts": SCRIPT(`return input.call_stage === "conversation_requested" ? cancel() : undefined;`),
      "thrower.ts": SCRIPT(`if (input.phone === "89001234567") throw new Error("no such number"); return undefined;`, "process_client_phone"),
      "call.json": { name: "two steps", steps: call.steps.slice(1, 3) },
    });
    const result = simulate([path.join(dir, "call.json"), "--scripts", dir]);
    expect(result.status).toBe(1);
    const blocks = result.stdout.split("\n\n");
    expect(blocks[1]).toContain("canceller  cancel()");
    expect(blocks[1]).toContain("→ CRM request cancelled");
    expect(blocks[2]).toContain("exception in thrower at thrower.ts:2:");
    expect(blocks[2]).toContain("  no such number\n");
    expect(blocks[2]).toContain("→ error (exception in thrower): the connector falls back to its own behaviour");
    expect(lastLine(result.stdout)).toBe("2 steps: 1 answered, 1 failed");

    const json = simulateJson([path.join(dir, "call.json"), "--scripts", dir]);
    expect(json.status).toBe(1);
    expect(json.steps[0]).toEqual({ hook: "need_registration", answer: { state: "success", data: {} } });
    expect(json.steps[1]!.answer).toMatchObject({ state: "error", error: { reason: "exception", script: "thrower" } });
  });

  it("names a step it cannot play (unknown hook, bad input) and a script that does not load; the rest still play", () => {
    const call = readCallFile("internal.call.json");
    const dir = folder({
      "broken.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { return { result: false }; } } }`,
      "fine.ts": SCRIPT(`return undefined;`),
      "call.json": {
        name: "bad steps",
        steps: [
          { hook: "need_registraton", input: call.steps[0]!.input },
          { hook: "need_registration", input: { call_full: { channel: "nope" } } },
          call.steps[0],
        ],
      },
    });
    const result = simulate([path.join(dir, "call.json"), "--scripts", dir]);
    expect(result.status).toBe(1);
    expect(result.stdout).toContain("not called: Unknown hook 'need_registraton'. Did you mean 'need_registration'?\n");
    expect(result.stdout).toContain("call.json#steps[0]\n");
    expect(result.stdout).toContain("not called: not a valid need_registration input:\n");
    expect(result.stdout).toContain("\n           call_full.channel: Invalid input: expected object, received string\n");
    expect(result.stdout).toContain("3 steps: 1 answered, 2 failed");
    expect(result.stdout).toMatch(
      /\nbroken does not compile: \/.*broken\.ts:2:\d+: Expected "\)" but found end of file — the server would run every hook without it\n/,
    );
    expect(result.stdout.split("\n")[0]).toContain("(1 script, 1 not loading)");

    const bad = simulate([path.join(dir, "fine.ts"), "--scripts", dir]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("is not JSON");
    const shape = folder({ "call.json": { steps: [] } });
    const wrong = simulate([path.join(shape, "call.json"), "--scripts", shape]);
    expect(wrong.status).toBe(2);
    expect(wrong.stderr).toContain("is not { name, steps: [{ hook, input }] }: name: ");
    expect(simulate([path.join(dir, "nothing.json")]).stderr).toContain("nothing.json does not exist");
  });

  it("plays a folder of one call's recorded inputs in the order they came, whatever their hooks' names", async () => {
    const call = readCallFile("incoming-missed.call.json");
    const dir = folder({});
    const recorded = path.join(dir, "recorded");
    // Recorded in the call's order: the file names sort by hook first, the time in them decides.
    for (const step of call.steps) {
      await recordPair(recorded, step.hook, step.input, { state: "success", data: {} }, { anonymize: false, requestId: "r", status: 200, scripts: {} });
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    const { status, steps } = simulateJson([recorded, "--scripts", examplesDir, "--config", CONFIG]);
    expect(status).toBe(0);
    expect(steps.map((step) => step.hook)).toEqual(call.steps.map((step) => step.hook));
    expect(steps[6]!.answer).toMatchObject({ state: "success", data: { USER_ID: "5" } });
    const text = simulate([recorded, "--scripts", examplesDir, "--config", CONFIG]);
    expect(text.stdout.split("\n")[0]).toMatch(/^recorded · 8 steps/);
    expect(text.stdout).not.toContain("warning");

    // A folder of many calls: a warning, and --call plays one of them.
    const other = readCallFile("internal.call.json").steps[0]!;
    await recordPair(recorded, other.hook, other.input, { state: "success", data: {} }, { anonymize: false, requestId: "r", status: 200, scripts: {} });
    const mixed = simulate([recorded, "--scripts", examplesDir, "--config", CONFIG]);
    expect(mixed.stdout).toMatch(/warning: the steps are of 2 different calls \(call_full\.channel\.id \d+\.3301, \d+\.3001\); --call <id> plays one of them/);
    const id = (call.steps[1]!.input.call_full as { channel: { id: string } }).channel.id;
    const one = simulateJson([recorded, "--scripts", examplesDir, "--config", CONFIG, "--call", id]);
    expect(one.steps.map((step) => step.hook)).toEqual(call.steps.map((step) => step.hook));
    expect(simulate([recorded, "--call", "nope", "--scripts", examplesDir]).stderr).toContain("No step of");
  });
});
