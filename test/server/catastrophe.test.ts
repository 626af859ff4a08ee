import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { DispatchResult } from "../../runtime/dispatch/dispatch.js";
import type { ScriptRegistry } from "../../runtime/registry/registry.js";
import { buildServer } from "../../runtime/server/app.js";
import { Catastrophe } from "../../runtime/server/catastrophe.js";
import { CATASTROPHE_GRACE_MS, handleSignals } from "../../runtime/server/shutdown.js";
import { busy, script } from "../helpers/scripts.js";
import { recordInput, startServer, type TestServer } from "./helpers.js";

/**
 * The catastrophic-error path without a real catastrophe (test/load/catastrophe.test.ts provokes a
 * real one in a real process): the handler that isolated-vm would call is called directly.
 */
const success = (data: Record<string, unknown>): DispatchResult => ({ answer: { state: "success", data }, invocations: [], skipped: [] });

describe("Catastrophe.race", () => {
  it("answers a request in flight with the error at once, and a later one without running it", async () => {
    const catastrophe = new Catastrophe();
    expect(await catastrophe.race(async () => success({ result: true }))).toEqual(success({ result: true }));

    const never = catastrophe.race(() => new Promise<DispatchResult>(() => {}));
    const failure = catastrophe.trip("broken", "Script failed to terminate");
    expect(failure).toMatchObject({ reason: "exception", script: "broken" });
    expect(failure.message).toContain("catastrophic error in the isolate of script broken: Script failed to terminate");
    expect(await never).toEqual({ answer: { state: "error", error: failure }, invocations: [], skipped: [] });

    const call = vi.fn(async () => success({ result: true }));
    expect(await catastrophe.race(call)).toEqual({ answer: { state: "error", error: failure }, invocations: [], skipped: [] });
    expect(call).not.toHaveBeenCalled();
    // The first catastrophe is the one reported.
    expect(catastrophe.trip("other", "Catastrophic out-of-memory error")).toBe(failure);
  });

  it("keeps nothing of a request once it is answered (no reaction left on a promise that never settles)", async () => {
    const catastrophe = new Catastrophe();
    for (let i = 0; i < 100; i++) await catastrophe.race(async () => success({ i }));
    await expect(catastrophe.race(async () => Promise.reject(new Error("dispatch failed")))).rejects.toThrow("dispatch failed");
    const { waiting } = catastrophe as unknown as { waiting: unknown[] };
    // One at a time, every request used the same slot, emptied when it was answered.
    expect(waiting).toEqual([undefined]);

    // Sixteen at once take sixteen slots, and the next sixteen reuse them.
    const batch = () => Promise.all(Array.from({ length: 16 }, (_, i) => catastrophe.race(async () => success({ i }))));
    await batch();
    await batch();
    expect(waiting).toHaveLength(16);
    expect(waiting.every((slot) => slot === undefined)).toBe(true);
  });

  it("answers every request waiting when it trips, each with the error, whatever its call does later", async () => {
    const catastrophe = new Catastrophe();
    let finish!: () => void;
    const late = new Promise<void>((resolve) => (finish = resolve));
    const waiting = Array.from({ length: 5 }, (_, i) => catastrophe.race(() => late.then(() => success({ i }))));
    const done = await catastrophe.race(async () => success({ done: true }));
    expect(done).toEqual(success({ done: true }));
    const failure = catastrophe.trip("broken", "Catastrophic out-of-memory error");
    const errorAnswer = { answer: { state: "error", error: failure }, invocations: [], skipped: [] };
    expect(await Promise.all(waiting)).toEqual(Array.from({ length: 5 }, () => errorAnswer));
    // Their calls ending afterwards changes nothing.
    finish();
    await late;
    expect(await Promise.all(waiting)).toEqual(Array.from({ length: 5 }, () => errorAnswer));
  });
});

describe("a catastrophic error in a serving server", () => {
  let server: TestServer | undefined;
  afterEach(async () => {
    vi.useRealTimers();
    await server?.close().catch(() => undefined);
    server = undefined;
  });

  it("answers the requests in flight with an error envelope, stops accepting, then aborts (not exit, not before the answers)", async () => {
    server = await startServer({ "slow.ts": script("process_record_file_path", `${busy(600)} return { path: "/done" };`, "limits: { timeoutMs: 5000 },") });
    // The server of startServer, rebuilt with a catastrophe wired as serve wires it.
    await server.app.close();
    const catastrophe = new Catastrophe();
    const logs: { level: string; fields: object; message: string }[] = [];
    const log = {
      info: (fields: object, message: string) => void logs.push({ level: "info", fields, message }),
      warn: (fields: object, message: string) => void logs.push({ level: "warn", fields, message }),
      error: (fields: object, message: string) => void logs.push({ level: "error", fields, message }),
      fatal: (fields: object, message: string) => void logs.push({ level: "fatal", fields, message }),
    };
    const app = buildServer({
      config: server.config,
      registry: server.registry,
      logger: pino({ level: "silent" }),
      docs: false,
      processMetrics: false,
      catastrophe,
    });
    server.app = app as typeof server.app;
    const address = await app.listen({ host: "127.0.0.1", port: 0 });
    const exit = vi.fn();
    let aborted!: () => void;
    const abortedPromise = new Promise<void>((resolve) => (aborted = resolve));
    const abort = vi.fn(() => aborted());
    const signals = handleSignals({ app, registry: server.registry, log, graceMs: 10_000, catastrophe, exit, abort });
    try {
      const post = () =>
        fetch(`${address}/hooks/process_record_file_path`, { method: "POST", body: JSON.stringify(recordInput()), signal: AbortSignal.timeout(10_000) }).then(
          async (response) => ({ status: response.status, body: (await response.json()) as unknown }),
        );
      const inFlight = [post(), post(), post()];
      await vi.waitFor(() => expect(server!.registry.sandboxes()[0]!.queueDepth).toBe(3), { timeout: 5_000 });

      catastrophe.trip("slow", "Script failed to terminate");
      const answers = await Promise.all(inFlight);
      for (const answer of answers) {
        expect(answer).toMatchObject({ status: 200, body: { state: "error", error: { reason: "exception", script: "slow" } } });
      }
      await abortedPromise;
      expect(abort).toHaveBeenCalledTimes(1);
      expect(exit).not.toHaveBeenCalled();
      expect(logs.find((line) => line.level === "fatal")).toMatchObject({ fields: { script: "slow" } });
      expect(logs.map((line) => line.message)).toContain("stopped after a catastrophic error; ending the process");
      // No longer accepting.
      await expect(fetch(`${address}/healthz`, { signal: AbortSignal.timeout(2_000) })).rejects.toThrow();
    } finally {
      signals.dispose();
    }
  });

  it("aborts after CATASTROPHE_GRACE_MS even when the server cannot close", async () => {
    vi.useFakeTimers();
    const catastrophe = new Catastrophe();
    const app = { close: () => new Promise<void>(() => {}) } as unknown as FastifyInstance;
    const registry = { close: vi.fn(async () => undefined) } as unknown as ScriptRegistry;
    const abort = vi.fn();
    const log = { info: vi.fn(), warn: vi.fn(), error: vi.fn(), fatal: vi.fn() };
    const signals = handleSignals({ app, registry, log, graceMs: 60_000, catastrophe, exit: vi.fn(), abort });
    try {
      catastrophe.trip("broken", "Catastrophic out-of-memory error");
      await vi.advanceTimersByTimeAsync(CATASTROPHE_GRACE_MS - 1);
      expect(abort).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1_000);
      expect(abort).toHaveBeenCalledTimes(1);
      expect(registry.close).not.toHaveBeenCalled();
      expect(log.error).toHaveBeenCalledWith(expect.anything(), "requests still in flight after a catastrophic error: ending the process now");
    } finally {
      signals.dispose();
    }
  });
});
