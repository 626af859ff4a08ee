import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { hookNames } from "../../runtime/schema/hooks.js";
import { busy, script } from "../helpers/scripts.js";
import { originateInput, payload, recordInput, startServer, type TestServer } from "./helpers.js";

const blacklist = readFileSync(path.join(packageRoot, "examples", "blacklist-extensions.ts"), "utf8");

/** One server, one hook per behaviour (a hook's scripts all run in one pipeline). */
const scripts = {
  "blacklist-extensions.ts": blacklist,
  "recordings.ts": script("process_record_file_path", `return { path: "/recordings/" + input.path.split("/").pop() };`),
  "click-to-call.ts": script(
    "process_originate_params",
    `if (input.params.extension === "000") return cancel();
      return { context: "outbound-" + input.params.context };`,
  ),
  // Line 6 of the file is the throw (see script()).
  "thrower.ts": script("process_client_phone", `throw new Error("no format for " + input.phone);`),
  "looper.ts": script("process_user_phone", "while (true) {}", "limits: { timeoutMs: 50 },"),
  "wrong-type.ts": script("process_final_params", "return { USER_ID: { id: 5 } } as never;"),
  // What the script was given: the call_full's keys in order, and one list the connector may send as null.
  "echo-input.ts": script(
    "customize_autodistribution",
    `return { extension: Object.keys(input.call_full).join(",") + "|" + JSON.stringify(input.call_full.channel.from.variants) };`,
  ),
};

let server: TestServer;
beforeAll(async () => {
  server = await startServer(scripts);
});
afterAll(async () => server?.close());

describe("200 success", () => {
  it("answers the example black list over recorded calls", async () => {
    const blocked = await server.post("need_registration", payload("need_registration.incoming-answered"));
    expect(blocked.statusCode).toBe(200);
    expect(blocked.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(blocked.json()).toEqual({ state: "success", data: { result: false } });
    const registered = await server.post("need_registration", payload("need_registration.outgoing"));
    expect(registered.json()).toEqual({ state: "success", data: { result: true } });
  });

  it("merges a script's changes over the hook's defaults", async () => {
    const res = await server.post("process_record_file_path", recordInput("/var/spool/asterisk/monitor/2026/11/20/out-101.wav"));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ state: "success", data: { path: "/recordings/out-101.wav" } });
    const originate = await server.post("process_originate_params", originateInput());
    expect(originate.json()).toEqual({
      state: "success",
      data: { caller_id: "101", channel: "PJSIP/101", context: "outbound-from-internal", extension: "89001234567", priority: 1 },
    });
  });

  it("answers {} only when a script cancels", async () => {
    const input = originateInput();
    input.params.extension = "000";
    const res = await server.post("process_originate_params", input);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ state: "success", data: {} });
  });

  it("reads the body as JSON whatever the Content-Type says", async () => {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=utf-8"]) {
      const res = await server.post("process_record_file_path", recordInput("/a/b.wav"), { "content-type": type });
      expect([type, res.statusCode, res.json()]).toEqual([type, 200, { state: "success", data: { path: "/recordings/b.wav" } }]);
    }
    const bare = await server.post("process_record_file_path", recordInput("/c.wav"), { "content-type": undefined });
    expect(bare.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(bare.json()).toEqual({ state: "success", data: { path: "/recordings/c.wav" } });
    // A Content-Type that does not parse is still one error shape.
    const garbled = await server.post("process_record_file_path", recordInput(), { "content-type": "\u0000/" });
    expect(garbled.json()).toMatchObject({ statusCode: 415, code: "FST_ERR_CTP_INVALID_MEDIA_TYPE", error: "Unsupported Media Type" });
  });
});

describe("the input as scripts see it", () => {
  const callFull = () => (payload("need_registration.incoming-answered") as { call_full: Record<string, any> }).call_full;
  /** call_full with its keys in the reverse of the usual order, as a connector might send them. */
  const reversed = (value: Record<string, any>) => Object.fromEntries(Object.entries(value).reverse());

  it("in the connector's key order, from the body's own text (a byte order mark dropped)", async () => {
    const call = reversed(callFull());
    const expected = { state: "success", data: { extension: `${Object.keys(call).join(",")}|${JSON.stringify(call.channel.from.variants)}` } };
    expect((await server.post("customize_autodistribution", { call_full: call })).json()).toEqual(expected);
    expect((await server.post("customize_autodistribution", `\ufeff${JSON.stringify({ call_full: call })}`)).json()).toEqual(expected);
  });

  it("with empty values as the schemas make them (a null list is [])", async () => {
    const call = reversed(callFull());
    call.channel.from.variants = null;
    const answer = (await server.post("customize_autodistribution", { call_full: call })).json();
    expect(answer.data.extension).toMatch(/\|\[\]$/);
  });
});

describe("200 error answers (the connector falls back to its default)", () => {
  it("exception: the script, the message and the .ts line", async () => {
    const res = await server.post("process_client_phone", payload("process_client_phone.incoming-8-format"));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.state).toBe("error");
    expect(body).not.toHaveProperty("data");
    expect(body.error).toMatchObject({
      reason: "exception",
      script: "thrower",
      message: "no format for 89001234567",
      location: { file: "thrower.ts", line: 6 },
    });
    expect(body.error.stack).toContain("thrower.ts:6");
  });

  it("timeout", async () => {
    const res = await server.post("process_user_phone", payload("process_client_phone.incoming-8-format"));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).not.toHaveProperty("data");
    expect(body.error).toMatchObject({ reason: "timeout", script: "looper" });
    expect(body.error.message).toContain("50 ms");
  });

  it("invalid_output", async () => {
    const res = await server.post("process_final_params", payload("process_final_params.answered"));
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body).not.toHaveProperty("data");
    expect(body.error).toMatchObject({ reason: "invalid_output", script: "wrong-type" });
    expect(body.error.message).toContain("data.USER_ID");
  });
});

describe("400, 404, 413: one JSON error shape", () => {
  it("400 for a body that is not JSON", async () => {
    const res = await server.post("need_registration", '{"call_full": {');
    expect(res.statusCode).toBe(400);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(["code", "error", "issues", "message", "statusCode"]);
    expect(body).toMatchObject({ statusCode: 400, code: "CS_ERR_INVALID_JSON", error: "Bad Request" });
    expect(body.issues).toHaveLength(1);
    expect(body.issues[0].path).toBe("(body)");
    expect(body.message).toMatch(/^The body is not JSON: /);
    const empty = await server.post("need_registration", "");
    expect(empty.json()).toMatchObject({ statusCode: 400, code: "CS_ERR_INVALID_JSON", issues: [{ path: "(body)" }] });
  });

  it("400 for a body that is not a valid input, with the path of every bad field", async () => {
    const input = payload("need_registration.incoming-answered") as { call_full: Record<string, any> };
    input.call_full.channel.type = "sideways";
    input.call_full.channel.from.base = 9001234567;
    delete input.call_full.is_ivr;
    const res = await server.post("need_registration", input);
    expect(res.statusCode).toBe(400);
    const body = res.json();
    expect(body).toMatchObject({ statusCode: 400, code: "CS_ERR_INVALID_INPUT", error: "Bad Request" });
    const paths = body.issues.map((issue: { path: string }) => issue.path).sort();
    expect(paths).toEqual(["call_full.channel.from.base", "call_full.channel.type", "call_full.is_ivr"]);
    for (const issue of body.issues) expect(issue.message).toEqual(expect.any(String));
    expect(body.message).toContain("call_full.channel.type");
    const notObject = await server.post("need_registration", "[1, 2]");
    expect(notObject.json()).toMatchObject({ statusCode: 400, code: "CS_ERR_INVALID_INPUT", issues: [{ path: "(body)" }] });
  });

  it("404 for an unknown hook, naming the known ones (before the body is read)", async () => {
    const res = await server.post("need_registation", "this is not even JSON");
    expect(res.statusCode).toBe(404);
    const body = res.json();
    expect(body).toMatchObject({ statusCode: 404, code: "CS_ERR_UNKNOWN_HOOK", error: "Not Found" });
    for (const hook of hookNames) expect(body.message).toContain(hook);
    expect(body.message).toContain("Did you mean 'need_registration'?");
  });

  it("404 in the same shape for any other route, never HTML", async () => {
    const res = await server.app.inject({ method: "GET", url: "/hooks/need_registration" });
    expect(res.statusCode).toBe(404);
    expect(res.headers["content-type"]).toBe("application/json; charset=utf-8");
    expect(res.json()).toEqual({
      statusCode: 404,
      code: "CS_ERR_NOT_FOUND",
      error: "Not Found",
      message: "No route GET /hooks/need_registration. Hooks are called with POST /hooks/<hook>; GET /openapi.json lists every route",
    });
  });

  it("413 for a body over bodyLimitBytes", async () => {
    const small = await startServer({ "recordings.ts": scripts["recordings.ts"] }, { bodyLimitBytes: 1024 });
    try {
      const fits = await small.post("process_record_file_path", recordInput("/x/" + "a".repeat(900)));
      expect(fits.statusCode).toBe(200);
      const res = await small.post("process_record_file_path", recordInput("/x/" + "a".repeat(1100)));
      expect(res.statusCode).toBe(413);
      expect(res.json()).toEqual({
        statusCode: 413,
        code: "CS_ERR_BODY_TOO_LARGE",
        error: "Payload Too Large",
        message: "The body is over the limit of 1024 bytes (bodyLimitBytes in the config)",
      });
    } finally {
      await small.close();
    }
  });
});

describe("configured hooks", () => {
  it("a disabled hook answers its defaults without running its scripts", async () => {
    const disabled = await startServer(
      { "thrower.ts": script("process_record_file_path", `throw new Error("must not run");`) },
      { hooks: { process_record_file_path: { enabled: false } } },
    );
    try {
      const res = await disabled.post("process_record_file_path", recordInput("/r/1.wav"));
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ state: "success", data: { path: "/r/1.wav" } });
      const [state] = disabled.registry.states();
      expect(state).toMatchObject({ name: "thrower", state: "active", invocations: 0 });
      const line = disabled.logs.find((entry) => entry.msg === "hook answered");
      expect(line).toMatchObject({ hook: "process_record_file_path", scripts: [], disabled: true, outcome: "success" });
    } finally {
      await disabled.close();
    }
  });

  it("the deadline over a hook's scripts answers `deadline`, naming the script that was running", async () => {
    const slow = (order: number) =>
      script("process_record_file_path", `${busy(300)} return { path: "/late" };`, `order: ${order}, limits: { timeoutMs: 2000 },`);
    const late = await startServer({ "slow-a.ts": slow(1), "slow-b.ts": slow(2) }, { hooks: { process_record_file_path: { deadlineMs: 450 } } });
    try {
      const res = await late.post("process_record_file_path", recordInput());
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body).not.toHaveProperty("data");
      expect(body.error).toEqual({
        reason: "deadline",
        script: "slow-b",
        message: "The scripts of process_record_file_path did not finish within the request deadline of 450 ms",
      });
    } finally {
      await late.close();
    }
  });

  it("failure policy: `error` answers the first failure, `skip` runs the rest", async () => {
    const files = {
      "a-throws.ts": script("process_record_file_path", `throw new Error("a is broken");`, "order: 1,").replace(
        "hooks: {",
        `hooks: {
    process_originate_params() { throw new Error("a is broken"); },`,
      ),
      "b-works.ts": script("process_record_file_path", `return { path: "/b" + input.path };`, "order: 2,").replace(
        "hooks: {",
        `hooks: {
    process_originate_params() { return { context: "b" }; },`,
      ),
    };
    const policies = await startServer(files, {
      hooks: { process_record_file_path: { failurePolicy: "skip" }, process_originate_params: { failurePolicy: "error" } },
    });
    try {
      const skipped = await policies.post("process_record_file_path", recordInput("/1.wav"));
      // The answer names the script the policy stepped over (issue 13), with where it failed.
      expect(skipped.json()).toEqual({
        state: "success",
        data: { path: "/b/1.wav" },
        skipped: [{ reason: "exception", script: "a-throws", message: "a is broken", location: { file: "a-throws.ts", line: 7, column: 13 } }],
      });
      const failed = await policies.post("process_originate_params", originateInput());
      expect(failed.statusCode).toBe(200);
      expect(failed.json().error).toMatchObject({ reason: "exception", script: "a-throws", message: "a is broken" });
      const b = policies.registry.states().find((state) => state.name === "b-works");
      expect(b?.outcomes).toEqual({ data: 1 });
      const skipLine = policies.logs.find((entry) => entry.msg === "hook answered" && entry.hook === "process_record_file_path");
      expect(skipLine).toMatchObject({ scripts: ["a-throws", "b-works"], skipped: [{ script: "a-throws", reason: "exception" }] });
    } finally {
      await policies.close();
    }
  });
});

describe("503 overloaded", () => {
  it("past a script's queue bound: 503, Retry-After: 1, the error answer as the body", async () => {
    const busyServer = await startServer(
      { "slow.ts": script("process_record_file_path", `${busy(300)} return { path: "/slow" };`, "limits: { timeoutMs: 2000 },") },
      { maxQueue: 0, deadlineMs: 5000 },
    );
    try {
      const responses = await Promise.all([1, 2, 3].map(() => busyServer.post("process_record_file_path", recordInput())));
      const statuses = responses.map((res) => res.statusCode).sort();
      expect(statuses).toEqual([200, 503, 503]);
      for (const res of responses) {
        if (res.statusCode === 200) {
          expect(res.json()).toEqual({ state: "success", data: { path: "/slow" } });
          expect(res.headers["retry-after"]).toBeUndefined();
        } else {
          expect(res.headers["retry-after"]).toBe("1");
          const body = res.json();
          expect(body).not.toHaveProperty("data");
          expect(body.state).toBe("error");
          expect(body.error).toMatchObject({ reason: "overloaded", script: "slow" });
          expect(body.error.message).toContain("queue limit 0");
        }
      }
      expect(busyServer.registry.states()[0]?.outcomes).toEqual({ data: 1, overloaded: 2 });
    } finally {
      await busyServer.close();
    }
  });
});
