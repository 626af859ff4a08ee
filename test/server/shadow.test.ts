import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import { callHook } from "../../runtime/dispatch/hook-call.js";
import { parseHookInput } from "../../runtime/schema/hook-input.js";
import { MAX_SHADOW_RUNS_IN_FLIGHT, SHADOW_RUNS_PER_SECOND, ShadowRunner } from "../../runtime/registry/shadow-runner.js";
import type { ShadowState } from "../../runtime/registry/states.js";
import { pipelineNow } from "../helpers/lease.js";
import { script } from "../helpers/scripts.js";
import { LEVEL, payload, sample, startServer, type TestServer } from "./helpers.js";
import { waitFor } from "../helpers/wait.js";

/**
 * Shadows (NAME.shadow.ts) on a real fastify app and real isolates: each live call of NAME has its
 * shadow run after the answer, on the same input and data so far, compared and never answering.
 */

const servers: TestServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

/** Time limits at the maximum unless a script asks for less: a loaded machine must not turn a comparison into a timeout. */
async function serve(files: Record<string, string>, config: Record<string, unknown> = {}): Promise<TestServer> {
  const server = await startServer(files, { limits: { defaults: { timeoutMs: 5000 } }, ...config });
  servers.push(server);
  return server;
}

async function call(server: TestServer, hook: string, body: unknown) {
  const response = await server.post(hook, body);
  return { status: response.statusCode, body: response.json() as Record<string, unknown> };
}

async function shadowOf(server: TestServer, name: string): Promise<ShadowState | undefined> {
  const response = await server.app.inject({ method: "GET", url: "/scripts" });
  const scripts = (response.json() as { scripts: Array<{ name: string; shadow?: ShadowState }> }).scripts;
  return scripts.find((state) => state.name === name)?.shadow;
}

/** Until NAME's shadow has compared `calls` runs (and shed `shed`). */
async function settled(server: TestServer, name: string, calls: number, shed = 0): Promise<ShadowState> {
  let state: ShadowState | undefined;
  await waitFor(async () => {
    state = await shadowOf(server, name);
    return state !== undefined && state.calls === calls && state.shed === shed;
  }, `${calls} shadow runs of ${name}`);
  return state!;
}

const metrics = async (server: TestServer) => (await server.app.inject({ method: "GET", url: "/metrics" })).body;

const PHONE = script("process_client_phone", `return input.phone === "101" ? undefined : { phone: "+7" + input.phone.slice(1) };`);
const PHONE_NEXT = script("process_client_phone", `return input.phone === "101" ? undefined : { phone: "8" + input.phone.slice(1) };`);

describe("shadow runs", () => {
  it("run on the same input and the data so far NAME saw, with NAME's settings, and never answer", async () => {
    const server = await serve(
      {
        "a-first.ts": script("process_registration_params", `return { USER_ID: "9" };`, "order: 0,"),
        "b-second.ts": script("process_registration_params", `return { LINE_NUMBER: "live" };`, "order: 1, settings: { tag: 'default' },"),
        "b-second.shadow.ts": script(
          "process_registration_params",
          `return { LINE_NUMBER: ctx.data.USER_ID + "/" + input.PHONE_NUMBER + "/" + ctx.settings.tag };`,
          "order: 1, settings: { tag: 'default' },",
        ),
      },
      { scripts: { "b-second": { settings: { tag: "from-config" } } } },
    );
    const input = payload("process_registration_params.incoming");
    const answer = await call(server, "process_registration_params", input);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ state: "success", data: { USER_ID: "9", LINE_NUMBER: "live" } });

    const state = await settled(server, "b-second", 1);
    const { call_full: _, call_stage: __, ...defaults } = input;
    const seen = { ...defaults, USER_ID: "9" };
    expect(state).toMatchObject({ file: "b-second.shadow.ts", state: "active", calls: 1, same: 0, different: 1, failed: 0, shed: 0, lastFailure: null });
    expect(Object.keys(state.lastDifference!)).toEqual(["hook", "at", "active", "shadow"]);
    expect(state.lastDifference).toEqual({
      hook: "process_registration_params",
      at: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      active: { data: { ...seen, LINE_NUMBER: "live" } },
      shadow: { data: { ...seen, LINE_NUMBER: "9/+79001234567/from-config" } },
    });
    // Only the live scripts are scripts; the shadow is no pipeline member and has no entry of its own.
    const names = ((await server.app.inject({ method: "GET", url: "/scripts" })).json() as { scripts: Array<{ name: string }> }).scripts.map((s) => s.name);
    expect(names).toEqual(["a-first", "b-second"]);
    expect(await shadowOf(server, "a-first")).toBeUndefined();
    expect(pipelineNow(server.registry, "process_registration_params").map((entry) => entry.sandbox.name)).toEqual(["a-first", "b-second"]);
  });

  it("count same, different and failed; metrics and a sampled log line per difference; the live answer is untouched", async () => {
    const server = await serve({
      "phone.ts": PHONE,
      "phone.shadow.ts": script(
        "process_client_phone",
        `if (input.phone === "boom") throw new Error("shadow broke"); return input.phone === "101" ? undefined : { phone: "8" + input.phone.slice(1) };`,
      ),
    });
    const client = payload("process_client_phone.incoming-8-format");
    const internal = payload("process_client_phone.internal");
    expect((await call(server, "process_client_phone", internal)).body).toEqual({ state: "success", data: { phone: "101" } });
    await settled(server, "phone", 1);
    expect((await call(server, "process_client_phone", client)).body).toEqual({ state: "success", data: { phone: "+79001234567" } });
    await settled(server, "phone", 2);
    expect((await call(server, "process_client_phone", client)).body).toEqual({ state: "success", data: { phone: "+79001234567" } });
    await settled(server, "phone", 3);
    expect((await call(server, "process_client_phone", { ...client, phone: "boom" })).body).toEqual({ state: "success", data: { phone: "+7oom" } });
    const state = await settled(server, "phone", 4);
    expect(state).toMatchObject({ calls: 4, same: 1, different: 2, failed: 1, shed: 0 });
    expect(state.lastDifference).toMatchObject({ active: { data: { phone: "+79001234567" } }, shadow: { data: { phone: "89001234567" } } });
    expect(state.lastFailure).toMatchObject({
      hook: "process_client_phone",
      error: { reason: "exception", script: "phone.shadow", message: "shadow broke", location: { file: "phone.shadow.ts" } },
    });
    expect(state.lastFailure!.error).not.toHaveProperty("stack");

    const text = await metrics(server);
    for (const [result, count] of [
      ["same", 1],
      ["different", 2],
      ["failed", 1],
    ] as const) {
      expect(sample(text, "callscript_shadow_runs_total", { script: "phone", hook: "process_client_phone", result })).toBe(count);
    }
    // The live script's own counters know nothing of the shadow.
    expect(sample(text, "callscript_invocations_total", { hook: "process_client_phone", script: "phone", outcome: "data" })).toBe(3);
    expect(text).not.toContain('script="phone.shadow"');
    // Two differences and a failure in a row: one line (the first difference); the rest wait for the next line.
    const lines = server.logs.filter((line) => line.msg === "shadow answered differently" || line.msg === "shadow failed");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: LEVEL.info,
      script: "phone",
      hook: "process_client_phone",
      differences: [{ path: "data.phone", active: "+79001234567", shadow: "89001234567" }],
    });
  });

  it("never delay the answer: the answer is out while the shadow still runs, and a shadow over its own limits fails alone", async () => {
    // The loop's 1 500 ms are CPU time: on a busy host they take longer than that on the clock, past
    // the hook's default deadline of 2 s (seen in CI: `deadline`), so the deadline here is far off.
    const server = await serve(
      {
        "phone.ts": PHONE,
        "phone.shadow.ts": script("process_client_phone", `while (true) {}`, "limits: { timeoutMs: 1500 },"),
      },
      { deadlineMs: 20_000 },
    );
    const answer = await call(server, "process_client_phone", payload("process_client_phone.incoming-8-format"));
    expect(answer.body).toEqual({ state: "success", data: { phone: "+79001234567" } });
    const shadow = server.registry.shadows.of("phone")!.script!.sandbox;
    expect(shadow.limits.timeoutMs).toBe(1500);
    // Answered; the shadow started after it and is still in its loop.
    await waitFor(async () => shadow.queueDepth === 1, "the shadow's run");
    expect((await shadowOf(server, "phone"))!.calls).toBe(0);
    const state = await settled(server, "phone", 1);
    expect(state).toMatchObject({ failed: 1, lastFailure: { error: { reason: "timeout", script: "phone.shadow" } } });
    // The live script never waited for it: one invocation, answered with data.
    expect(server.registry.states().find((s) => s.name === "phone")!.outcomes).toEqual({ data: 1 });
  });

  it("are shed first under load: while the shadow runs, while NAME has calls waiting, past the server's shadow runs in flight", async () => {
    const loop = script("need_registration", `while (true) {}`, "limits: { timeoutMs: 1500 },");
    const veto = (order: number) => script("need_registration", `return undefined;`, `order: ${order},`);
    const server = await serve({
      "a.ts": veto(0),
      "a.shadow.ts": loop,
      "b.ts": veto(1),
      "b.shadow.ts": loop,
      "c.ts": veto(2),
      "c.shadow.ts": loop,
      "phone.ts": script(
        "process_client_phone",
        `if (input.phone === "slow") { const until = Date.now() + 600; while (Date.now() < until) {} } return undefined;`,
      ),
      "phone.shadow.ts": script("process_client_phone", `return undefined;`),
    });
    expect(MAX_SHADOW_RUNS_IN_FLIGHT).toBe(2);
    // One request, three scripts with shadows: two shadow runs start, the third is shed.
    const input = payload("need_registration.incoming-answered");
    expect((await call(server, "need_registration", input)).body).toEqual({ state: "success", data: { result: true } });
    await waitFor(async () => server.registry.shadows.inFlight === 2, "two shadow runs");
    expect(await shadowOf(server, "c")).toMatchObject({ calls: 0, shed: 1 });
    // While a's shadow still runs, the next call of a sheds it too.
    expect((await call(server, "need_registration", input)).body).toEqual({ state: "success", data: { result: true } });
    expect(await shadowOf(server, "a")).toMatchObject({ calls: 0, shed: 1 });
    await settled(server, "a", 1, 1);
    await settled(server, "b", 1, 1);
    await waitFor(async () => server.registry.shadows.inFlight === 0, "the shadow runs to end");

    // Three calls of `phone` at once, the first slow: the first two answers find calls of phone
    // still waiting behind them (their shadows are shed), the last one's shadow runs.
    const client = payload("process_client_phone.incoming-8-format");
    const answers = await Promise.all(["slow", "89001234567", "89001234567"].map((phone) => call(server, "process_client_phone", { ...client, phone })));
    expect(answers.map((answer) => answer.status)).toEqual([200, 200, 200]);
    expect(await settled(server, "phone", 1, 2)).toMatchObject({ same: 1 });
    expect(sample(await metrics(server), "callscript_shadow_runs_total", { script: "phone", hook: "process_client_phone", result: "shed" })).toBe(2);
  });

  it("are shed past the server's shadow runs per second (a token bucket a second deep)", async () => {
    const server = await serve({ "phone.ts": PHONE, "phone.shadow.ts": PHONE_NEXT });
    expect(SHADOW_RUNS_PER_SECOND).toBe(50);
    // The route's runner allows 50 a second; one allowing a run every 1000 s shows the rule alone.
    const results: string[] = [];
    const runner = new ShadowRunner(() => server.config, server.registry.shadows, {
      runsPerSecond: 0.001,
      onResult: (_script, _hook, result) => results.push(result),
    });
    const parsed = parseHookInput("process_client_phone", payload("process_client_phone.incoming-8-format"));
    if (!parsed.ok) throw parsed.error;
    const log = pino({ level: "silent" });
    for (const requestId of ["r1", "r2", "r3"]) {
      const { scripts, release } = server.registry.lease("process_client_phone");
      try {
        const result = await callHook(server.config, "process_client_phone", parsed.input, scripts, { inputJson: parsed.inputJson, requestId });
        await Promise.all(
          runner.afterAnswer({ hook: "process_client_phone", input: parsed.input, inputJson: parsed.inputJson, requestId, result, scripts }, log),
        );
      } finally {
        release();
      }
    }
    expect(results).toEqual(["different", "shed", "shed"]);
    expect(await shadowOf(server, "phone")).toMatchObject({ calls: 1, different: 1, shed: 2 });
  });

  it("compare a hook the shadow no longer handles as 'changes nothing'; a shadow that does not load is shown and NAME serves on", async () => {
    const both = `import { defineScript } from "callscript";
export default defineScript({ hooks: {
  need_registration() { return undefined; },
  process_client_phone(input) { return { phone: "+7" + input.phone.slice(1) }; },
} });
`;
    const server = await serve({
      "both.ts": both,
      "both.shadow.ts": script("need_registration", `return undefined;`),
      "other.ts": PHONE,
      "other.shadow.ts": `import { defineScript } from "callscript";\nexport default defineScript({ hooks: { process_client_phone() { return undefined; } } }`,
    });
    const client = payload("process_client_phone.incoming-8-format");
    const answer = await call(server, "process_client_phone", client);
    expect(answer.body).toEqual({ state: "success", data: { phone: "+79001234567" } });
    const state = await settled(server, "both", 1);
    // The data so far was the defaults (the phone as given): promoted, the shadow would leave it so.
    expect(state.lastDifference).toMatchObject({ active: { data: { phone: "+79001234567" } }, shadow: { data: { phone: "89001234567" } } });
    // other ran after both: it saw +79001234567 and answered the same; its shadow never loaded.
    const other = await shadowOf(server, "other");
    expect(other).toMatchObject({
      file: "other.shadow.ts",
      state: "failed",
      version: null,
      calls: 0,
      lastError: { stage: "compile", location: { file: "other.shadow.ts", line: 2 } },
    });
    expect(server.registry.states().find((s) => s.name === "other")).toMatchObject({ state: "active", outcomes: { data: 1 } });
  });

  it("differ from NAME in the sense the connector sees: a cancel and a failure of NAME are answers too", async () => {
    const server = await serve({
      "gate.ts": script("need_registration", `if (input.call_stage === "call_ended") throw new Error("live broke"); return cancel();`),
      "gate.shadow.ts": script("need_registration", `return { result: false };`),
    });
    const input = { ...payload("need_registration.incoming-answered"), call_stage: "conversation_accepted" };
    expect((await call(server, "need_registration", input)).body).toEqual({ state: "success", data: {} });
    let state = await settled(server, "gate", 1);
    expect(state.lastDifference).toMatchObject({ active: { cancel: true }, shadow: { data: { result: false } } });
    expect((await call(server, "need_registration", { ...input, call_stage: "call_ended" })).body).toMatchObject({
      state: "error",
      error: { reason: "exception" },
    });
    state = await settled(server, "gate", 2);
    expect(state.lastDifference).toMatchObject({ active: { error: "exception" }, shadow: { data: { result: false } } });
  });
});
