import { cpSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callscript } from "../helpers/build.js";
import { examplesConfigOffline, examplesDir, folder, lastLine } from "./fixtures.js";
import { listening, serve } from "../server/serve-process.js";
import { waitFor } from "../helpers/wait.js";

const callsDir = path.join(examplesDir, "calls");
const examplesConfig = examplesConfigOffline();
type Step = { hook: string; input: Record<string, unknown> };
const stepsOf = (name: string) => (JSON.parse(readFileSync(path.join(callsDir, name), "utf8")) as { steps: Step[] }).steps;
const CALLS = ["incoming-answered.call.json", "incoming-missed.call.json", "outgoing.call.json", "transferred.call.json"];

/** A copy of the examples' scripts (and their helper), to change without touching the repository. */
function examplesCopy(): string {
  const dir = folder({});
  for (const name of readdirSync(examplesDir)) {
    if (name.endsWith(".ts") || name === "lib") cpSync(path.join(examplesDir, name), path.join(dir, name), { recursive: true });
  }
  return dir;
}

/**
 * The examples' config with `record` on, and the scripts folder given. Time limits are the
 * maximum: these tests are about what is recorded and replayed, and a first call that runs past
 * 250 ms on a loaded machine would be recorded as a timeout and replay as a difference.
 */
function configFile(scriptsDir: string, record: { dir: string; anonymize: boolean }): string {
  const file = path.join(folder({}), "callscript.json");
  const limits = {
    ...(examplesConfig.limits as Record<string, unknown>),
    defaults: { ...(examplesConfig.limits as { defaults: object }).defaults, timeoutMs: 5000 },
  };
  writeFileSync(file, JSON.stringify({ ...examplesConfig, limits, scriptsDir, record, port: 0, watch: false }));
  return file;
}

const answerFiles = (dir: string) => readdirSync(dir).filter((name) => name.endsWith(".answer.json"));

/** Real calls through a real `serve` with `record` on: the recordings replay has to work with. */
async function recordCalls(scriptsDir: string, anonymize: boolean): Promise<{ dir: string; config: string; count: number }> {
  const dir = path.join(folder({}), "recorded");
  const config = configFile(scriptsDir, { dir, anonymize });
  const served = serve(["--config", config]);
  const address = await listening(served);
  let count = 0;
  for (const name of CALLS) {
    for (const step of stepsOf(name)) {
      const response = await fetch(`${address}/hooks/${step.hook}`, {
        method: "POST",
        body: JSON.stringify(step.input),
        headers: { "content-type": "application/json" },
      });
      expect(response.status).toBe(200);
      count++;
    }
  }
  await waitFor(async () => answerFiles(dir).length === count, `${count} recordings`);
  served.child.kill("SIGTERM");
  expect((await served.exit).code).toBe(0);
  return { dir, config, count };
}

describe("callscript replay", () => {
  it("replays what a real `serve` recorded: every answer the same against the same scripts; a changed script shows field by field, exit 1", async () => {
    const scripts = examplesCopy();
    const { dir, config, count } = await recordCalls(scripts, false);
    const inputs = readdirSync(dir).filter((name) => name.endsWith(".json") && !name.endsWith(".answer.json"));
    expect(inputs).toHaveLength(count);
    const pair = JSON.parse(
      readFileSync(
        path.join(
          dir,
          answerFiles(dir).find((name) => name.startsWith("process_client_phone"))!,
        ),
        "utf8",
      ),
    );
    expect(pair).toMatchObject({
      hook: "process_client_phone",
      status: 200,
      answer: { state: "success" },
      scripts: { "client-phone-format": expect.stringMatching(/^[0-9a-f]{12}$/) },
    });

    const same = callscript(["replay", dir, "--config", config]);
    expect(same.status, same.stdout + same.stderr).toBe(0);
    expect(lastLine(same.stdout)).toBe(`${count} same, 0 different, 0 failed`);
    expect(same.stdout.split("\n").filter((line) => line.endsWith("  same"))).toHaveLength(count);

    // The next version of a script: numbers in 8XXXXXXXXXX instead of +7XXXXXXXXXX.
    const file = path.join(scripts, "client-phone-format.ts");
    writeFileSync(
      file,
      readFileSync(file, "utf8").replace("return formatted === phone ? undefined : { phone: formatted };", 'return { phone: "8" + formatted.slice(2) };'),
    );
    const changed = callscript(["replay", dir, "--config", config]);
    expect(changed.status).toBe(1);
    const phones = CALLS.flatMap((name) => stepsOf(name).filter((step) => step.hook === "process_client_phone"));
    expect(lastLine(changed.stdout)).toBe(`${count - phones.length} same, ${phones.length} different, 0 failed`);
    expect(changed.stdout).toMatch(
      /process_client_phone\.[^\n]+\.json {2}process_client_phone {2}different\n {4}data\.phone\n {6}recorded {2}"\+79001234567"\n {6}now {7}"89001234567"\n {4}changed since the recording: client-phone-format [0-9a-f]{12} → [0-9a-f]{12}\n {4}client-phone-format returned \{"phone":"89001234567"\}\n/,
    );

    const json = callscript(["replay", dir, "--config", config, "--json"]);
    expect(json.status).toBe(1);
    const report = JSON.parse(json.stdout) as {
      summary: unknown;
      results: Array<{ status: string; hook: string; differences?: unknown[]; versions: unknown[] }>;
    };
    expect(report.summary).toEqual({ same: count - phones.length, different: phones.length, failed: 0 });
    const different = report.results.find((result) => result.status === "different")!;
    expect(different).toMatchObject({
      hook: "process_client_phone",
      differences: [{ path: "data.phone", expected: "+79001234567", actual: "89001234567", kind: "changed" }],
    });
    expect(different.versions).toEqual([{ script: "client-phone-format", recorded: expect.any(String), now: expect.any(String) }]);
  });

  it("anonymized recordings replay the same: the fakes in an input and in its answer agree (server-side and `record anonymize`)", async () => {
    const scripts = examplesCopy();
    const anonymized = await recordCalls(scripts, true);
    const inputs = readdirSync(anonymized.dir).filter((name) => !name.endsWith(".answer.json"));
    const text = inputs.map((name) => readFileSync(path.join(anonymized.dir, name), "utf8")).join("\n");
    for (const real of ["9001234567", "9124567890", "9007654321", "9857778899", "Павел Сорокин"]) expect(text).not.toContain(real);
    const replayed = callscript(["replay", anonymized.dir, "--config", anonymized.config]);
    expect(replayed.status, replayed.stdout).toBe(0);
    expect(lastLine(replayed.stdout)).toBe(`${anonymized.count} same, 0 different, 0 failed`);

    // Recorded as they were, then anonymized by hand: each answer file with its input.
    const raw = await recordCalls(scripts, false);
    const files = readdirSync(raw.dir).map((name) => path.join(raw.dir, name));
    const run = callscript(["record", "anonymize", ...files, "--key", "k"]);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.split("\n").filter((line) => line.includes("(with its answer)"))).toHaveLength(raw.count);
    const phone = answerFiles(raw.dir).find((name) => name.startsWith("process_client_phone"))!;
    const answer = JSON.parse(readFileSync(path.join(raw.dir, phone), "utf8")) as { answer: { data: { phone: string } } };
    const input = JSON.parse(readFileSync(path.join(raw.dir, phone.replace(".answer.json", ".json")), "utf8")) as { phone: string };
    expect(answer.answer.data.phone).not.toBe("+79001234567");
    expect(answer.answer.data.phone).toBe(`+7${input.phone.slice(1)}`);
    const again = callscript(["replay", raw.dir, "--config", raw.config]);
    expect(lastLine(again.stdout)).toBe(`${raw.count} same, 0 different, 0 failed`);
  });

  it("--shadow replays (and simulates) with each script's shadow in its place: the calls as they will be once promoted", async () => {
    const scripts = examplesCopy();
    const { dir, config, count } = await recordCalls(scripts, false);
    const live = readFileSync(path.join(scripts, "client-phone-format.ts"), "utf8");
    writeFileSync(
      path.join(scripts, "client-phone-format.shadow.ts"),
      live.replace("return formatted === phone ? undefined : { phone: formatted };", 'return { phone: "8" + formatted.slice(2) };'),
    );
    const unchanged = callscript(["replay", dir, "--config", config]);
    expect(lastLine(unchanged.stdout)).toBe(`${count} same, 0 different, 0 failed`);

    const shadowed = callscript(["replay", dir, "--config", config, "--shadow"]);
    expect(shadowed.status).toBe(1);
    expect(shadowed.stdout.split("\n")[0]).toBe("shadows in place of: client-phone-format");
    const phones = CALLS.flatMap((name) => stepsOf(name).filter((step) => step.hook === "process_client_phone"));
    expect(lastLine(shadowed.stdout)).toBe(`${count - phones.length} same, ${phones.length} different, 0 failed`);
    expect(shadowed.stdout).toMatch(
      / {4}changed since the recording: client-phone-format [0-9a-f]{12} → [0-9a-f]{12}\n {4}client-phone-format\.shadow returned \{"phone":"89001234567"\}/,
    );

    const simulated = callscript(["simulate", path.join(callsDir, "incoming-answered.call.json"), "--config", config, "--shadow"]);
    expect(simulated.status).toBe(0);
    expect(simulated.stdout.split("\n")[1]).toBe("shadows in place of: client-phone-format");
    expect(simulated.stdout).toMatch(/client-phone-format\.shadow {2}\{"phone":"89001234567"\}/);
    expect(simulated.stdout).toContain("→ client number sent to the CRM: 89001234567");
  });

  it("reports what it cannot replay as failed and goes on: no answer beside an input, a broken answer file, an input that does not fit", async () => {
    const step = stepsOf("internal.call.json")[0]!;
    const recorded = {
      hook: "need_registration",
      requestId: "r1",
      at: "2026-11-20T12:00:00.000Z",
      status: 200,
      answer: { state: "success", data: { result: true } },
      scripts: {},
    };
    const dir = folder({
      "need_registration.2026-11-20T12-00-00.000Z-a.json": step.input,
      "need_registration.2026-11-20T12-00-00.000Z-a.answer.json": recorded,
      "need_registration.2026-11-20T12-00-01.000Z-b.json": step.input,
      "need_registration.2026-11-20T12-00-02.000Z-c.json": step.input,
      "need_registration.2026-11-20T12-00-02.000Z-c.answer.json": { ...recorded, answer: { state: "maybe" } },
      "need_registration.2026-11-20T12-00-03.000Z-d.json": { call_full: 1 },
      "need_registration.2026-11-20T12-00-03.000Z-d.answer.json": recorded,
    });
    const scripts = folder({
      "none.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { need_registration() { return undefined; } } });\n`,
    });
    const result = callscript(["replay", dir, "--scripts", scripts]);
    expect(result.status).toBe(1);
    const lines = result.stdout.split("\n");
    expect(lines[0]).toMatch(/-a\.json {2}need_registration {2}same$/);
    expect(lines[1]).toMatch(/-b\.json {2}need_registration {2}failed: no recorded answer beside it \(.*-b\.answer\.json\)/);
    expect(lines[2]).toMatch(/-c\.json {2}need_registration {2}failed: .*-c\.answer\.json is not a recorded answer: answer/);
    expect(lines[3]).toMatch(/-d\.json {2}need_registration {2}failed: the input is not a valid need_registration input: call_full: /);
    expect(lastLine(result.stdout)).toBe("1 same, 0 different, 3 failed");

    const empty = callscript(["replay", folder({}), "--scripts", scripts]);
    expect(empty.status).toBe(2);
    expect(empty.stderr).toContain("No recorded inputs in");
  });
});
