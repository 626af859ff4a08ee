import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { configSchema } from "../../runtime/config.js";
import { callHook } from "../../runtime/dispatch/hook-call.js";
import { hookCatalog } from "../../runtime/schema/hooks.js";
import { HEADER, loadScript, pipelineScript, Sandboxes } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

const payload = JSON.parse(readFileSync(path.join(import.meta.dirname, "../../examples/payloads/need_registration.incoming-missed.json"), "utf8")) as Record<
  string,
  unknown
>;
/** A parameter hook called with no parameters: its defaults are empty. */
const taskInput = hookCatalog.process_task_creation_params.input.parse({ call_full: payload.call_full }) as Record<string, unknown>;
const config = configSchema.parse({});

describe("empty data is never answered without a cancel()", () => {
  it("no script: an empty parameter set answers no_data, not {} (which would drop the CRM request)", async () => {
    const result = await callHook(config, "process_task_creation_params", taskInput, []);
    expect(result.answer).toEqual({ state: "error", error: expect.objectContaining({ reason: "no_data", script: null }) });
    if (result.answer.state === "error") expect(result.answer.error.message).toContain("cancel()");
  });

  it("a script that changes nothing: no_data as well", async () => {
    const sandbox = sandboxes.add(await loadScript(`${HEADER}export default defineScript({ hooks: { process_task_creation_params() { return {}; } } });`));
    const result = await callHook(config, "process_task_creation_params", taskInput, [pipelineScript(sandbox)]);
    expect(result.answer.state).toBe("error");
    expect(result.invocations).toHaveLength(1);
  });

  it("a script that adds a field: its data", async () => {
    const sandbox = sandboxes.add(
      await loadScript(`${HEADER}export default defineScript({ hooks: { process_task_creation_params() { return { RESPONSIBLE_ID: 5 }; } } });`),
    );
    const result = await callHook(config, "process_task_creation_params", taskInput, [pipelineScript(sandbox)]);
    expect(result.answer).toEqual({ state: "success", data: { RESPONSIBLE_ID: 5 } });
  });

  it("cancel() is still the one way to answer {}", async () => {
    const sandbox = sandboxes.add(
      await loadScript(`${HEADER}export default defineScript({ hooks: { process_task_creation_params() { return cancel(); } } });`),
    );
    const result = await callHook(config, "process_task_creation_params", taskInput, [pipelineScript(sandbox)]);
    expect(result.answer).toEqual({ state: "success", data: {} });
    expect(result.cancelledBy).toBe("script");
  });

  it("a disabled hook with empty defaults: no_data too", async () => {
    const disabled = configSchema.parse({ hooks: { process_task_creation_params: { enabled: false } } });
    const result = await callHook(disabled, "process_task_creation_params", taskInput, []);
    expect(result.answer.state === "error" && result.answer.error.reason).toBe("no_data");
  });
});
