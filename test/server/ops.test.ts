import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hookCatalog, hookNames } from "../../runtime/schema/hooks.js";
import { script } from "../helpers/scripts.js";
import { originateInput, recordInput, sample, startServer, type TestServer } from "./helpers.js";

const files = {
  "recordings.ts": script("process_record_file_path", `return { path: "/r" + input.path };`, "order: 1,"),
  "flaky.ts": script("process_record_file_path", `if (input.path.includes("bad")) throw new Error("bad path"); return undefined;`, "order: 2,"),
  "click-to-call.ts": script("process_originate_params", `return { context: "outbound" };`),
  // Does not compile: a type error is not the problem, an unknown import is.
  "broken.ts": `import { nothing } from "./missing-helper";\nexport default nothing;\n`,
};

let server: TestServer;
beforeAll(async () => {
  server = await startServer(files, {}, { docs: true, load: false });
});
afterAll(async () => server?.close());

describe("operations", () => {
  it("/healthz answers while nothing is loaded; /readyz only once a script serves", async () => {
    const health = await server.app.inject({ url: "/healthz" });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: "ok", uptimeSeconds: expect.any(Number) });

    const notReady = await server.app.inject({ url: "/readyz" });
    expect(notReady.statusCode).toBe(503);
    expect(notReady.json()).toEqual({
      statusCode: 503,
      code: "CS_ERR_NOT_READY",
      error: "Service Unavailable",
      message: "Not ready: no script is loaded (the scripts folder has none yet, or it is still loading)",
    });

    // broken.ts fails to compile and has no version to fall back on: the instance is not ready
    // (issue 13: an orchestrator must not route to a half-loaded instance), and the answer says why.
    await server.registry.loadAll();
    const halfLoaded = await server.app.inject({ url: "/readyz" });
    expect(halfLoaded.statusCode).toBe(503);
    expect(halfLoaded.json()).toMatchObject({
      code: "CS_ERR_NOT_READY",
      message: "Not ready: 1 enabled script has no version to serve: broken (GET /scripts says why)",
      issues: [{ path: "broken.ts", message: expect.stringContaining("compile: ") }],
    });
  });

  it("/scripts: version, hooks, state, last error and counters of each script", async () => {
    expect((await server.post("process_record_file_path", recordInput("/ok.wav"))).json()).toEqual({ state: "success", data: { path: "/r/ok.wav" } });
    expect((await server.post("process_record_file_path", recordInput("/bad.wav"))).json().error).toMatchObject({ reason: "exception", script: "flaky" });
    expect((await server.post("process_originate_params", originateInput())).statusCode).toBe(200);

    const res = await server.app.inject({ url: "/scripts" });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.ready).toBe(false);
    expect(body.scripts.map((state: { name: string }) => state.name)).toEqual(["broken", "click-to-call", "flaky", "recordings"]);
    const [broken, clickToCall, flaky, recordings] = body.scripts;
    const versions = Object.fromEntries(server.registry.states().map((state) => [state.name, state.version]));
    expect(recordings).toMatchObject({
      file: "recordings.ts",
      state: "active",
      version: versions.recordings,
      previousVersion: null,
      hooks: ["process_record_file_path"],
      order: 1,
      limits: { timeoutMs: 250, memoryMb: 32, outputBytes: 65536, logBytes: 8192 },
      lastError: null,
      queueDepth: 0,
      invocations: 2,
      outcomes: { data: 2 },
    });
    expect(recordings.version).toMatch(/^[0-9a-f]{8,}$/);
    expect(flaky).toMatchObject({ state: "active", order: 2, invocations: 2, outcomes: { none: 1, exception: 1 } });
    expect(clickToCall).toMatchObject({ state: "active", hooks: ["process_originate_params"], invocations: 1, outcomes: { data: 1 } });
    expect(broken).toMatchObject({ file: "broken.ts", state: "failed", version: null, hooks: [], invocations: 0 });
    expect(broken.lastError).toMatchObject({ stage: "compile", location: { file: "broken.ts", line: 1 } });
    expect(broken.lastError.message).toContain("missing-helper");
  });

  it("/metrics: counters by hook, script, outcome and status; gauges read at scrape", async () => {
    await server.post("nope_hook", {});
    await server.post("process_originate_params", "{");
    // A new version of a script: a reload.
    writeFileSync(path.join(server.dir, "click-to-call.ts"), script("process_originate_params", `return { context: "outbound-2" };`));
    expect((await server.registry.reload(path.join(server.dir, "click-to-call.ts"))).ok).toBe(true);
    expect((await server.post("process_originate_params", originateInput())).json().data.context).toBe("outbound-2");

    const res = await server.app.inject({ url: "/metrics" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = res.payload;
    const at = (name: string, labels: Record<string, string> = {}) => sample(text, name, labels);

    expect(at("callscript_invocations_total", { hook: "process_record_file_path", script: "recordings", outcome: "data" })).toBe(2);
    expect(at("callscript_invocations_total", { hook: "process_record_file_path", script: "flaky", outcome: "none" })).toBe(1);
    expect(at("callscript_invocations_total", { hook: "process_record_file_path", script: "flaky", outcome: "exception" })).toBe(1);
    expect(at("callscript_invocations_total", { hook: "process_originate_params", script: "click-to-call", outcome: "data" })).toBe(2);

    expect(at("callscript_http_requests_total", { hook: "process_record_file_path", status: "200" })).toBe(2);
    expect(at("callscript_http_requests_total", { hook: "process_originate_params", status: "200" })).toBe(2);
    expect(at("callscript_http_requests_total", { hook: "process_originate_params", status: "400" })).toBe(1);
    expect(at("callscript_http_requests_total", { hook: "unknown", status: "404" })).toBe(1);

    expect(at("callscript_hook_answers_total", { hook: "process_record_file_path", outcome: "success" })).toBe(1);
    expect(at("callscript_hook_answers_total", { hook: "process_record_file_path", outcome: "exception" })).toBe(1);
    expect(at("callscript_hook_duration_seconds_count", { hook: "process_record_file_path" })).toBe(2);
    expect(at("callscript_script_duration_seconds_count", { hook: "process_record_file_path", script: "recordings" })).toBe(2);
    expect(at("callscript_script_duration_seconds_count", { hook: "process_originate_params", script: "click-to-call" })).toBe(2);
    expect(at("callscript_script_duration_seconds_bucket", { hook: "process_record_file_path", script: "recordings", le: "+Inf" })).toBe(2);

    expect(at("callscript_script_load_failures_total", { script: "broken", stage: "compile" })).toBe(1);
    expect(at("callscript_script_reloads_total", { script: "click-to-call" })).toBe(1);
    expect(at("callscript_script_reloads_total", { script: "recordings" })).toBeUndefined();

    for (const name of ["recordings", "flaky", "click-to-call"]) {
      expect(at("callscript_script_queue_depth", { script: name })).toBe(0);
      expect(at("callscript_script_heap_used_bytes", { script: name })).toBeGreaterThan(100_000);
      // Calls one at a time, the server idle: none went in a batch.
      for (const kind of ["calls", "batches", "failed"]) expect(at("callscript_script_batched_calls", { script: name, kind })).toBe(0);
    }
    // This process's isolates: at least the three scripts' own (other tests of the file may hold more).
    expect(at("callscript_isolates")).toBeGreaterThanOrEqual(3);
    const clickVersion = server.registry.states().find((state) => state.name === "click-to-call")?.version ?? "";
    expect(at("callscript_script_info", { script: "click-to-call", version: clickVersion, state: "active" })).toBe(1);
    expect(at("callscript_script_info", { script: "broken", version: "", state: "failed" })).toBe(1);
  });

  it("/openapi.json: one operation per hook, schemas from the catalog, every $ref resolves", async () => {
    const res = await server.app.inject({ url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.info.title).toBe("callscript");
    const paths = Object.keys(doc.paths);
    for (const hook of hookNames) {
      const operation = doc.paths[`/hooks/${hook}`].post;
      expect(operation.operationId).toBe(hook);
      expect(operation.summary).toBe(hookCatalog[hook].summary);
      expect(operation.requestBody.content["application/json"].schema).toEqual({ $ref: `#/components/schemas/${hook}_input` });
      expect(Object.keys(operation.responses).sort()).toEqual(["200", "400", "401", "413", "503"]);
      expect(doc.components.schemas[`${hook}_input`]).toBeDefined();
      expect(doc.components.schemas[`${hook}_data`]).toBeDefined();
    }
    expect(paths).toEqual(expect.arrayContaining(["/healthz", "/readyz", "/scripts", "/metrics"]));
    expect(paths.some((url) => url.includes("{hook}"))).toBe(false);
    expect(doc.components.schemas.need_registration_data).toMatchObject({ properties: { result: { type: "boolean" } }, required: ["result"] });
    expect(doc.components.schemas.need_registration_input.properties.call_full).toEqual({ $ref: "#/components/schemas/CallFull" });
    expect(doc.components.schemas.HookFailure.properties.reason.enum).toEqual([
      "timeout",
      "memory",
      "exception",
      "invalid_output",
      "overloaded",
      "compile",
      "deadline",
      "no_data",
    ]);
    expect(doc.paths["/healthz"].get.security).toEqual([]);
    expect(doc.security).toEqual([{ bearerAuth: [] }]);

    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(hookNames.length * 3);
    for (const ref of new Set(refs)) {
      const target = ref.slice(8, -1);
      expect(target.startsWith("#/components/schemas/")).toBe(true);
      expect([target, doc.components.schemas[target.slice("#/components/schemas/".length)] !== undefined]).toEqual([target, true]);
    }
  });

  it("/docs serves Swagger UI", async () => {
    const res = await server.app.inject({ url: "/docs" });
    expect(res.statusCode).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/html/);
    expect(res.payload).toContain("swagger");
  });
});
