import { writeFileSync } from "node:fs";
import path from "node:path";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { configSchema } from "../../runtime/config.js";
import { callHook } from "../../runtime/dispatch/hook-call.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { liveIsolateCount } from "../../runtime/sandbox/isolates.js";
import { busy, request, script, scriptsFolder } from "../helpers/scripts.js";

/**
 * Retired versions and memory: a request leases its pipeline (as the hook route does), and a version
 * swapped out is disposed as soon as no request holds it, not after the hook's deadline. Saves in
 * quick succession (10 a second measured 590 MB RSS with the deadline rule: one isolate per save
 * for 9 s on process_record_file_path) then keep one or two isolates alive.
 */
const version = (n: number, wait = 0) => script("process_final_params", `${busy(wait)} return { USER_ID: ${n} };`, "limits: { timeoutMs: 2000 },");

const registries: ScriptRegistry[] = [];
afterEach(async () => {
  await Promise.all(registries.splice(0).map((registry) => registry.close()));
});

async function setup(first: string) {
  const dir = scriptsFolder({ "s.ts": first });
  const config = configSchema.parse({ scriptsDir: dir, watch: false, deadlineMs: 5_000 });
  const registry = new ScriptRegistry(config, pino({ level: "silent" }));
  registries.push(registry);
  await registry.loadAll();
  const save = async (source: string) => {
    writeFileSync(path.join(dir, "s.ts"), source);
    expect(await registry.reload(path.join(dir, "s.ts"))).toMatchObject({ ok: true, unchanged: false });
  };
  return { registry, config, save };
}

describe("retired versions", () => {
  it("a version no request holds is disposed as soon as it is swapped out", async () => {
    const { registry, save } = await setup(version(1));
    const lease = registry.lease("process_final_params");
    const v1 = lease.scripts[0]!.sandbox;
    lease.release();
    await save(version(2));
    await vi.waitFor(() => expect(v1.heapUsedBytes()).toBeUndefined(), { timeout: 2_000 });
    expect((await v1.invoke(request("process_final_params"))).outcome).toMatchObject({
      kind: "failure",
      failure: { message: "This script version was unloaded" },
    });
  });

  it("a version a request holds answers that request, then is disposed when the request lets it go", async () => {
    const { registry, config, save } = await setup(version(1, 300));
    const lease = registry.lease("process_final_params");
    const v1 = lease.scripts[0]!.sandbox;
    const running = callHook(config, "process_final_params", {}, lease.scripts);
    await save(version(2));
    // Swapped out while the request runs on it: still alive.
    expect(registry.sandboxes()[0]).not.toBe(v1);
    expect(await running).toMatchObject({ answer: { state: "success", data: { USER_ID: 1 } } });
    // A late call of the same request (a script later in its pipeline) would still be answered.
    expect((await v1.invoke(request("process_final_params"))).outcome).toMatchObject({ kind: "data", data: { USER_ID: 1 } });
    lease.release();
    await vi.waitFor(() => expect(v1.heapUsedBytes()).toBeUndefined(), { timeout: 2_000 });
    const next = registry.lease("process_final_params");
    expect(await callHook(config, "process_final_params", {}, next.scripts)).toMatchObject({ answer: { state: "success", data: { USER_ID: 2 } } });
    next.release();
  });

  it("many saves while requests run leave one isolate per version still held, not one per save", async () => {
    const { registry, config, save } = await setup(version(0));
    const alive = new Set<{ heapUsedBytes(): number | undefined }>();
    for (let n = 1; n <= 20; n++) {
      const lease = registry.lease("process_final_params");
      alive.add(lease.scripts[0]!.sandbox);
      await callHook(config, "process_final_params", {}, lease.scripts);
      lease.release();
      await save(version(n));
    }
    await vi.waitFor(() => expect([...alive].filter((sandbox) => sandbox.heapUsedBytes() !== undefined)).toEqual([]), { timeout: 3_000 });
    expect(registry.sandboxes()).toHaveLength(1);
  });

  it("the process's isolate count (metric callscript_isolates) comes back to where it was after saves, and down when the registry closes", async () => {
    const { registry, config, save } = await setup(version(0));
    const first = registry.lease("process_final_params");
    await callHook(config, "process_final_params", {}, first.scripts);
    first.release();
    const before = liveIsolateCount();
    expect(before).toBeGreaterThanOrEqual(1);
    for (let n = 1; n <= 10; n++) {
      const lease = registry.lease("process_final_params");
      const running = callHook(config, "process_final_params", {}, lease.scripts);
      await save(version(n));
      await running;
      lease.release();
    }
    const last = registry.lease("process_final_params");
    await callHook(config, "process_final_params", {}, last.scripts);
    last.release();
    await vi.waitFor(() => expect(liveIsolateCount()).toBe(before), { timeout: 3_000 });
    await registry.close();
    expect(liveIsolateCount()).toBe(before - 1);
  });
});
