import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { configSchema, type ConfigInput } from "../../runtime/config.js";
import { dispatch, pipelineFor, pipelineOrder, type DispatchOptions, type DispatchResult } from "../../runtime/dispatch/dispatch.js";
import { callHook } from "../../runtime/dispatch/hook-call.js";
import { loadScriptFile } from "../../runtime/registry/load-script.js";
import { hookAnswer, type HookAnswer } from "../../runtime/schema/envelope.js";
import type { Invocation, ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { HEADER, pipelineScript, request, sandboxOptions, Sandboxes, scriptsFolder } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

const options = (extra: Partial<DispatchOptions> = {}): DispatchOptions => ({ requestId: "req-1", policy: "error", deadlineMs: 10_000, ...extra });

function success(answer: HookAnswer): Record<string, unknown> {
  if (answer.state !== "success") throw new Error(`expected success, got ${JSON.stringify(answer)}`);
  return answer.data;
}

function error(answer: HookAnswer) {
  if (answer.state !== "error") throw new Error(`expected an error, got ${JSON.stringify(answer)}`);
  return answer.error;
}

/** Every answer the dispatcher gives is a valid envelope. */
function checked(result: DispatchResult): DispatchResult {
  expect(hookAnswer.parse(result.answer)).toEqual(result.answer);
  return result;
}

/**
 * A script for process_final_params (whose data takes any extra keys) that appends its name to
 * `trace`, records what it saw, and may misbehave as `input.fail[name]` says.
 */
function tracer(name: string, order?: number): string {
  return `${HEADER}export default defineScript({
  ${order === undefined ? "" : `order: ${order},`}
  limits: { timeoutMs: 300 },
  hooks: {
    process_final_params(input: any, ctx) {
      const how = input.fail?.[${JSON.stringify(name)}];
      if (how === "throw") throw new Error(${JSON.stringify(name)} + " failed");
      if (how === "loop") for (;;) {}
      if (how === "invalid") return { USER_ID: { not: "an id" } } as any;
      if (how === "cancel") return cancel();
      if (how === "nothing") return undefined;
      const data = ctx.data as any;
      return {
        trace: [...(data.trace ?? []), ${JSON.stringify(name)}],
        seen: { ...(data.seen ?? {}), ${JSON.stringify(name)}: { call: input.CALL_ID, data: JSON.stringify(ctx.data) } },
        [${JSON.stringify(name)}]: true,
      };
    },
  },
});
`;
}

let a: ScriptSandbox;
let b: ScriptSandbox;
let c: ScriptSandbox;
beforeAll(async () => {
  [a, b, c] = await Promise.all([
    sandboxes.load(tracer("a"), sandboxOptions(), "a.ts"),
    sandboxes.load(tracer("b"), sandboxOptions(), "b.ts"),
    sandboxes.load(tracer("c"), sandboxOptions(), "c.ts"),
  ]);
});

const finalInput = (fail: Record<string, string> = {}) => ({ CALL_ID: "call-1", USER_ID: "5", fail });
const finalDefaults = { CALL_ID: "call-1", USER_ID: "5" };

describe("pipeline", () => {
  it("runs scripts by order, then by name, whatever order they are loaded in (pipelineFor)", async () => {
    const scripts = pipelineFor("process_final_params", [pipelineScript(c, 0), pipelineScript(a, 5), pipelineScript(b, -1)]);
    const result = checked(await dispatch("process_final_params", finalInput(), finalDefaults, scripts, options()));
    expect(success(result.answer).trace).toEqual(["b", "c", "a"]);
    expect(result.invocations.map((i) => i.script)).toEqual(["b", "c", "a"]);
    const sameOrder = checked(
      await dispatch(
        "process_final_params",
        finalInput(),
        finalDefaults,
        pipelineFor("process_final_params", [pipelineScript(c), pipelineScript(b), pipelineScript(a)]),
        options(),
      ),
    );
    expect(success(sameOrder.answer).trace).toEqual(["a", "b", "c"]);
    expect([pipelineScript(c, 1), pipelineScript(a, 1), pipelineScript(b, 0)].sort(pipelineOrder).map((s) => s.sandbox.name)).toEqual(["b", "a", "c"]);
  });

  it("gives each script the input and the data so far, and merges each partial over it", async () => {
    const result = checked(await dispatch("process_final_params", finalInput(), finalDefaults, [pipelineScript(a), pipelineScript(b)], options()));
    const data = success(result.answer);
    expect(data).toMatchObject({ CALL_ID: "call-1", USER_ID: "5", a: true, b: true, trace: ["a", "b"] });
    const seen = data.seen as Record<string, { call: string; data: string }>;
    expect(seen.a!.call).toBe("call-1");
    expect(JSON.parse(seen.a!.data)).toEqual(finalDefaults);
    expect(JSON.parse(seen.b!.data)).toEqual({ ...finalDefaults, a: true, trace: ["a"], seen: { a: seen.a } });
  });

  it("a script that returns nothing changes nothing", async () => {
    const result = checked(
      await dispatch("process_final_params", finalInput({ a: "nothing" }), finalDefaults, [pipelineScript(a), pipelineScript(b)], options()),
    );
    const data = success(result.answer);
    expect(data.trace).toEqual(["b"]);
    expect(data.a).toBeUndefined();
    expect(result.invocations.map((i) => i.outcome.kind)).toEqual(["none", "data"]);
  });

  it("with no scripts, answers the defaults", async () => {
    expect(checked(await dispatch("need_registration", {}, { result: true }, [], options())).answer).toEqual({ state: "success", data: { result: true } });
  });

  it("reports each invocation as it finishes", async () => {
    const seen: Invocation[] = [];
    const result = await dispatch(
      "process_final_params",
      finalInput(),
      finalDefaults,
      [pipelineScript(a), pipelineScript(b)],
      options({ onInvocation: (i) => seen.push(i) }),
    );
    expect(seen).toEqual(result.invocations);
    expect(seen.map((i) => [i.script, i.version])).toEqual([
      ["a", a.version],
      ["b", b.version],
    ]);
  });
});

describe("partial output validation", () => {
  let strict: ScriptSandbox;
  beforeAll(async () => {
    strict = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: {
  need_registration(input: any) { return input.give as any; },
  process_originate_params(input: any) { return input.give as any; },
} });\n`,
      sandboxOptions(),
      "strict.ts",
    );
  });

  it("a wrong type for need_registration.result → invalid_output with the path", async () => {
    const result = checked(await dispatch("need_registration", { give: { result: "no" } }, { result: true }, [pipelineScript(strict)], options()));
    expect(error(result.answer)).toEqual({
      reason: "invalid_output",
      script: "strict",
      message: "The returned data does not fit need_registration: data.result: Invalid input: expected boolean, received string",
      // The handler's return (line 3 of strict.ts).
      location: { file: "strict.ts", line: 3, column: 35 },
    });
    expect(result.invocations[0]!.outcome).toEqual({ kind: "failure", failure: error(result.answer) });
  });

  it("an unknown key for a strict hook → invalid_output naming the key's path", async () => {
    const result = checked(
      await dispatch("need_registration", { give: { result: false, reslt: true } }, { result: true }, [pipelineScript(strict)], options()),
    );
    expect(error(result.answer).message).toBe("The returned data does not fit need_registration: data.reslt: not a field of this hook's data");
  });

  it("several problems are all named", async () => {
    const result = checked(
      await dispatch("process_originate_params", { give: { priority: true, context: 5, trunk: "x" } }, {}, [pipelineScript(strict)], options()),
    );
    const message = error(result.answer).message;
    expect(message).toContain("data.priority: Invalid input");
    expect(message).toContain("data.context: Invalid input: expected string, received number");
    expect(message).toContain("data.trunk: not a field of this hook's data");
  });

  it("a valid partial of a strict hook is merged", async () => {
    const defaults = { caller_id: "101", channel: "PJSIP/101", context: "from-internal", extension: "89001234567", priority: 1 };
    const result = checked(await dispatch("process_originate_params", { give: { context: "outbound" } }, defaults, [pipelineScript(strict)], options()));
    expect(success(result.answer)).toEqual({ ...defaults, context: "outbound" });
  });
});

describe("cancel", () => {
  it("stops the pipeline and answers data {}", async () => {
    const result = checked(
      await dispatch("process_final_params", finalInput({ b: "cancel" }), finalDefaults, [pipelineScript(a), pipelineScript(b), pipelineScript(c)], options()),
    );
    expect(result.answer).toEqual({ state: "success", data: {} });
    expect(result.cancelledBy).toBe("b");
    expect(result.invocations.map((i) => [i.script, i.outcome.kind])).toEqual([
      ["a", "data"],
      ["b", "cancel"],
    ]);
  });

  it("skip policy does not turn a cancel into a skip", async () => {
    const result = checked(
      await dispatch("process_final_params", finalInput({ a: "cancel" }), finalDefaults, [pipelineScript(a), pipelineScript(b)], options({ policy: "skip" })),
    );
    expect(result.answer).toEqual({ state: "success", data: {} });
    expect(result.skipped).toEqual([]);
  });
});

describe("failures", () => {
  const failing = [
    { how: "throw", reason: "exception", message: "a failed" },
    {
      how: "loop",
      reason: "timeout",
      message: "The script ran past its time limit of 300 ms of CPU time (a loop that does not end, or one that does too much)",
    },
    { how: "invalid", reason: "invalid_output", message: "The returned data does not fit process_final_params: data.USER_ID: Invalid input" },
  ];

  for (const { how, reason, message } of failing) {
    it(`policy error: a script that fails (${how}) gives an error answer, never data, and stops the pipeline`, async () => {
      const result = checked(await dispatch("process_final_params", finalInput({ a: how }), finalDefaults, [pipelineScript(a), pipelineScript(b)], options()));
      expect(result.answer.state).toBe("error");
      expect(result.answer).not.toHaveProperty("data");
      const failure = error(result.answer);
      expect(failure.reason).toBe(reason);
      expect(failure.script).toBe("a");
      expect(failure.message).toContain(message);
      expect(result.invocations.map((i) => i.script)).toEqual(["a"]);
      expect(result.cancelledBy).toBeUndefined();
    });

    it(`policy skip: a script that fails (${how}) changes nothing, the rest run, the failure is recorded`, async () => {
      const result = checked(
        await dispatch(
          "process_final_params",
          finalInput({ b: how }),
          finalDefaults,
          [pipelineScript(a), pipelineScript(b), pipelineScript(c)],
          options({ policy: "skip" }),
        ),
      );
      const data = success(result.answer);
      expect(data.trace).toEqual(["a", "c"]);
      expect(data.b).toBeUndefined();
      expect(result.skipped).toHaveLength(1);
      expect(result.skipped[0]!.reason).toBe(reason);
      expect(result.skipped[0]!.script).toBe("b");
      expect(result.invocations.map((i) => [i.script, i.outcome.kind])).toEqual([
        ["a", "data"],
        ["b", "failure"],
        ["c", "data"],
      ]);
    });
  }

  it("policy skip: when every script fails, the answer is the defaults, never {}", async () => {
    const result = checked(
      await dispatch(
        "process_final_params",
        finalInput({ a: "throw", b: "invalid", c: "throw" }),
        finalDefaults,
        [pipelineScript(a), pipelineScript(b), pipelineScript(c)],
        options({ policy: "skip" }),
      ),
    );
    expect(result.answer).toEqual({ state: "success", data: finalDefaults });
    expect(result.skipped.map((f) => [f.script, f.reason])).toEqual([
      ["a", "exception"],
      ["b", "invalid_output"],
      ["c", "exception"],
    ]);
  });

  it("an exception answer carries the .ts location and the mapped stack", async () => {
    const result = checked(await dispatch("process_final_params", finalInput({ c: "throw" }), finalDefaults, [pipelineScript(c)], options()));
    const failure = error(result.answer);
    const lines = tracer("c").split("\n");
    const line = lines.findIndex((text) => text.includes("throw new Error")) + 1;
    const column = lines[line - 1]!.indexOf("new Error") + 1;
    expect(failure.location).toEqual({ file: "c.ts", line, column });
    expect(failure.stack).toContain(`at process_final_params (c.ts:${line}:${column})`);
  });
});

describe("deadline", () => {
  const slowSource = (name: string) =>
    `${HEADER}let calls = 0;\nexport default defineScript({ limits: { timeoutMs: 5000 }, hooks: { process_final_params(input: any) {
  calls++;
  if (input.slow?.includes(${JSON.stringify(name)})) { const until = Date.now() + 600; while (Date.now() < until) {} }
  return { calls } as any;
} } });\n`;

  it("answers `deadline` with the running script's name, and starts no script after it", async () => {
    const quick = await sandboxes.load(slowSource("quick"), sandboxOptions(), "quick.ts");
    const slow = await sandboxes.load(slowSource("slow"), sandboxOptions(), "slow.ts");
    const late = await sandboxes.load(slowSource("late"), sandboxOptions(), "late.ts");
    const reported: string[] = [];
    const scripts = [pipelineScript(quick, 0), pipelineScript(slow, 1), pipelineScript(late, 2)];
    const result = await dispatch("process_final_params", { slow: ["slow"] }, {}, scripts, {
      ...options({ deadlineMs: 150 }),
      onInvocation: (invocation) => reported.push(invocation.script),
    });
    expect(checked(result).answer).toEqual({
      state: "error",
      error: { reason: "deadline", script: "slow", message: "The scripts of process_final_params did not finish within the request deadline of 150 ms" },
    });
    expect(result.invocations.map((i) => i.script)).toEqual(["quick"]);
    // Wait for the slow script to finish (the next call runs after the running one).
    expect((await slow.invoke(request("process_final_params", { data: {} }))).outcome).toEqual({ kind: "data", data: { calls: 2 } });
    // The late script never ran for that request, and the request's result did not change afterwards.
    expect((await late.invoke(request("process_final_params", { data: {} }))).outcome).toEqual({ kind: "data", data: { calls: 1 } });
    expect(result.invocations.map((i) => i.script)).toEqual(["quick"]);
    // The slow script's late invocation is still reported, for logs and metrics (its answer and the
    // next call's arrive together; which one the host finishes first is not fixed).
    await vi.waitFor(() => expect(reported).toEqual(["quick", "slow"]));
  });

  it("names the first script when it is the one running", async () => {
    const slow = await sandboxes.load(slowSource("first"), sandboxOptions(), "first.ts");
    const result = await dispatch("process_final_params", { slow: ["first"] }, {}, [pipelineScript(slow)], options({ deadlineMs: 100 }));
    expect(error(result.answer)).toMatchObject({ reason: "deadline", script: "first" });
    expect(result.invocations).toEqual([]);
  });
});

describe("callHook with a configuration", () => {
  // process_final_params takes extra keys in its data, so the script can hand back what it saw.
  const settingsScript = `${HEADER}export default defineScript({
  settings: { extensions: ["101", "102"], mode: "block", nested: { level: 1 } },
  hooks: {
    process_final_params(input: any, ctx) {
      const s = ctx.settings as any;
      if (input.mutate === "top") s.mode = "allow";
      if (input.mutate === "nested") s.nested.level = 2;
      if (input.mutate === "list") s.extensions.push("103");
      return { blocked: s.extensions.includes(input.ext), settings: s };
    },
  },
});\n`;

  let dir: string;
  beforeAll(() => {
    dir = scriptsFolder({ "blacklist.ts": settingsScript });
  });

  async function load(config: ConfigInput) {
    const parsed = configSchema.parse(config);
    const loaded = await loadScriptFile(path.join(dir, "blacklist.ts"), dir, parsed, { sandbox: sandboxOptions() });
    if (!loaded.ok) throw new Error(loaded.failure.message);
    sandboxes.add(loaded.script.sandbox);
    return { config: parsed, script: loaded.script };
  }

  it("uses the declared settings when the config has none", async () => {
    const { config, script } = await load({});
    const result = checked(await callHook(config, "process_final_params", { ext: "101" }, [script]));
    expect(success(result.answer)).toEqual({ ext: "101", blocked: true, settings: { extensions: ["101", "102"], mode: "block", nested: { level: 1 } } });
  });

  it("settings from the config override the declared defaults key by key", async () => {
    const { config, script } = await load({ scripts: { blacklist: { settings: { extensions: ["200"] } } } });
    const result = checked(await callHook(config, "process_final_params", { ext: "101" }, [script]));
    expect(success(result.answer)).toEqual({
      ext: "101",
      blocked: false,
      settings: { extensions: ["200"], mode: "block", nested: { level: 1 } },
    });
  });

  it("a setting the script does not declare, or of another kind, keeps it from loading, named (issue 13)", async () => {
    const parsed = configSchema.parse({ scripts: { blacklist: { settings: { extension: ["200"], mode: ["x"] } } } });
    const loaded = await loadScriptFile(path.join(dir, "blacklist.ts"), dir, parsed, { sandbox: sandboxOptions() });
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.stage).toBe("config");
    expect(loaded.failure.reason).toBe("compile");
    expect(loaded.failure.message).toBe(
      "scripts.blacklist.settings.extension: blacklist has no setting 'extension' (did you mean 'extensions'?); it declares extensions, mode, nested; " +
        "scripts.blacklist.settings.mode: expected a string as blacklist declares, got an array",
    );
  });

  for (const [mutate, message] of [
    ["top", "TypeError: Cannot assign to read only property 'mode' of object '#<Object>'"],
    ["nested", "TypeError: Cannot assign to read only property 'level' of object '#<Object>'"],
    ["list", "TypeError: Cannot add property 2, object is not extensible"],
  ] as const) {
    it(`settings are frozen: changing them (${mutate}) is an exception, not a silent no-op`, async () => {
      const { config, script } = await load({ scripts: { blacklist: { settings: { mode: "audit" } } } });
      const result = checked(await callHook(config, "process_final_params", { ext: "101", mutate }, [script]));
      expect(error(result.answer)).toMatchObject({ reason: "exception", script: "blacklist", message, location: { file: "blacklist.ts" } });
    });
  }

  it("a disabled hook answers its defaults without running scripts", async () => {
    const { config, script } = await load({ hooks: { process_final_params: { enabled: false } } });
    const result = checked(await callHook(config, "process_final_params", { ext: "101", mutate: "top" }, [script]));
    expect(result.answer).toEqual({ state: "success", data: { ext: "101", mutate: "top" } });
    expect(result.invocations).toEqual([]);
  });

  it("uses the hook's defaults from its input, the policy and the deadline from the config", async () => {
    const phone = await sandboxes.load(
      `${HEADER}export default defineScript({ limits: { timeoutMs: 3000 }, hooks: {
  process_client_phone(input) { if (input.phone === "slow") { const t = Date.now() + 500; while (Date.now() < t) {} } return input.phone === "bad" ? ({ phone: 7 } as any) : undefined; },
} });\n`,
      sandboxOptions(),
      "phone.ts",
    );
    const config = configSchema.parse({ hooks: { process_client_phone: { failurePolicy: "skip", deadlineMs: 100 } } });
    const unchanged = checked(await callHook(config, "process_client_phone", { phone: "+7 900" }, [pipelineScript(phone)], { requestId: "r" }));
    expect(unchanged.answer).toEqual({ state: "success", data: { phone: "+7 900" } });
    const skipped = checked(await callHook(config, "process_client_phone", { phone: "bad" }, [pipelineScript(phone)]));
    // The answer names what the skip policy stepped over (issue 13): the connector and its logs see it.
    expect(skipped.answer).toEqual({
      state: "success",
      data: { phone: "bad" },
      skipped: [
        {
          reason: "invalid_output",
          script: "phone",
          message: "The returned data does not fit process_client_phone: data.phone: Invalid input: expected string, received number",
          // Where the data came from (issue 12): the `return` that produced it.
          location: { file: "phone.ts", line: 3, column: expect.any(Number) },
        },
      ],
    });
    expect(skipped.skipped.map((f) => f.reason)).toEqual(["invalid_output"]);
    const late = checked(await callHook(config, "process_client_phone", { phone: "slow" }, [pipelineScript(phone)]));
    expect(error(late.answer)).toMatchObject({ reason: "deadline", script: "phone" });
  });
});

describe("a full queue in the pipeline", () => {
  /** A process_final_params script that spins ≈ 150 ms, so that calls pile up behind it. */
  const slow = (name: string) => `${HEADER}export default defineScript({ limits: { timeoutMs: 2000 }, hooks: {
  process_final_params(input: any, ctx) {
    const until = Date.now() + 150;
    while (Date.now() < until) {}
    return { trace: [...((ctx.data as any).trace ?? []), ${JSON.stringify(name)}] };
  },
} });\n`;

  it("turns the request away before any script runs (no work lost halfway), naming the full script", async () => {
    const first = await sandboxes.load(tracer("first", 0), sandboxOptions({}, 1), "first.ts");
    const busy = await sandboxes.load(slow("busy"), sandboxOptions({}, 1), "busy.ts");
    // Two calls fill busy's queue (one running, one waiting; maxQueue 1).
    const filling = [
      busy.invoke(request("process_final_params", { input: finalInput() })),
      busy.invoke(request("process_final_params", { input: finalInput() })),
    ];
    expect(busy.queueDepth).toBe(2);
    const refused = checked(
      await dispatch("process_final_params", finalInput(), finalDefaults, [pipelineScript(first, 0), pipelineScript(busy, 1)], options()),
    );
    expect(error(refused.answer)).toEqual({
      reason: "overloaded",
      script: "busy",
      message: "2 invocations of this script are already running or waiting (queue limit 1); retry later",
    });
    // The first script never ran for it.
    expect(refused.invocations.map((i) => i.script)).toEqual(["busy"]);
    expect(first.queueDepth).toBe(0);
    await Promise.all(filling);
    // Once the queue drains, the same request runs through.
    const passed = checked(await dispatch("process_final_params", finalInput(), finalDefaults, [pipelineScript(first, 0), pipelineScript(busy, 1)], options()));
    expect(success(passed.answer).trace).toEqual(["first", "busy"]);
  });

  it("a request let in runs to its end, even if a later script's queue fills meanwhile", async () => {
    const gate = await sandboxes.load(slow("gate"), sandboxOptions({}, 0), "gate.ts");
    const last = await sandboxes.load(slow("last"), sandboxOptions({}, 0), "last.ts");
    const admitted = dispatch("process_final_params", finalInput(), finalDefaults, [pipelineScript(gate, 0), pipelineScript(last, 1)], options());
    // While it runs in gate, last's queue (maxQueue 0) fills with a call of its own.
    const other = last.invoke(request("process_final_params", { input: finalInput() }));
    const result = checked(await admitted);
    expect(success(result.answer).trace).toEqual(["gate", "last"]);
    expect((await other).outcome.kind).toBe("data");
  });
});
