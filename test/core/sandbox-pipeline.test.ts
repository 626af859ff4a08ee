import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import type { Invocation, ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import {
  dataOf,
  failureOf,
  HEADER,
  misbehaving,
  MIXED_CALLS as mixed,
  request,
  sandboxOptions,
  Sandboxes,
  type MixedKind as Kind,
} from "../helpers/scripts.js";

/**
 * Invocations that arrive together are handed to the script's isolate together (isolated-vm runs
 * them one after the other). What must hold: they run in arrival order, one at a time, each seeing
 * the state the previous one left; one that times out, runs out of memory or never settles fails
 * alone, and those behind it run on the rebuilt isolate as if they had waited their turn.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

const phone = (n: number) => request("process_client_phone", { input: { phone: String(n) }, data: { phone: String(n) } });
const outcomes = (results: Invocation[]) => results.map((r) => (r.outcome.kind === "data" ? r.outcome.data.phone : failureOf(r).reason));

describe("invocations handed over together", () => {
  for (const busy of [false, true])
    it(`run one at a time in arrival order, each seeing the state the previous one left (${busy ? "gathered per loop turn" : "handed over one by one"})`, async () => {
      const sandbox = await sandboxes.load(misbehaving(`need_registration() { return {}; }`), { ...sandboxOptions({}, 64), loopBusy: () => busy });
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => sandbox.invoke(phone(i))));
      expect(outcomes(results)).toEqual(Array.from({ length: 40 }, (_, i) => `${i}#${i + 1}`));
      expect(sandbox.queueDepth).toBe(0);
      // Only the first found the isolate idle; the others waited their turn behind it.
      expect(results.filter((r) => r.stats.queuedMs > 0).length).toBeGreaterThan(0);
    });

  const failures = [
    { what: "an infinite loop", bad: `need_registration() { for (;;) {} }`, reason: "timeout" },
    { what: "a promise that never settles", bad: `need_registration() { return new Promise(() => {}); }`, reason: "timeout" },
    { what: "a microtask loop", bad: `async need_registration() { for (;;) await null; }`, reason: "timeout" },
    // Time enough to fill its heap on a busy machine: it must end on memory, not on time.
    {
      what: "a heap bomb",
      bad: `need_registration() { const hoard: string[] = []; for (;;) hoard.push("x".repeat(1024) + hoard.length); }`,
      reason: "memory",
      timeoutMs: 5000,
    },
  ];
  for (const { what, bad, reason, timeoutMs = 200 } of failures) {
    it(`${what} fails alone (${reason}); the calls behind it run in order on the rebuilt isolate`, async () => {
      const sandbox = await sandboxes.load(misbehaving(bad, `{ timeoutMs: ${timeoutMs}, memoryMb: 16 }`), sandboxOptions({}, 16));
      const before = await Promise.all([1, 2].map((n) => sandbox.invoke(phone(n))));
      const [failed, ...behind] = await Promise.all([sandbox.invoke(request("need_registration")), ...[3, 4, 5, 6].map((n) => sandbox.invoke(phone(n)))]);
      expect(outcomes(before)).toEqual(["1#1", "2#2"]);
      expect(failureOf(failed!).reason).toBe(reason);
      // None ran in the broken isolate after the failure: the counter starts again, in order.
      expect(outcomes(behind)).toEqual(["3#1", "4#2", "5#3", "6#4"]);
      expect(sandbox.queueDepth).toBe(0);
    });
  }

  for (const busy of [false, true])
    it(`calls that answered before a heap bomb handed over with them keep their answers; the bomb fails with memory (${busy ? "gathered per loop turn" : "handed over one by one"})`, async () => {
      // The first call of a fresh isolate used 0.9 ms of CPU (lazy compilation): its heap reading,
      // queued behind the bomb, found the isolate gone, and the call was taken for the one that had
      // filled the heap, its answer replaced by `memory`.
      const bomb = `need_registration() { const hoard: string[] = []; for (;;) hoard.push("x".repeat(1024) + hoard.length); }`;
      const sandbox = await sandboxes.load(misbehaving(bomb, "{ timeoutMs: 5000, memoryMb: 16 }"), {
        ...sandboxOptions({}, 16),
        loopBusy: () => busy,
        batch: false,
      });
      const results = await Promise.all([
        sandbox.invoke(phone(1)),
        sandbox.invoke(phone(2)),
        sandbox.invoke(request("need_registration")),
        sandbox.invoke(phone(3)),
      ]);
      expect(outcomes(results)).toEqual(["1#1", "2#2", "memory", "3#1"]);
      expect(sandbox.queueDepth).toBe(0);
    });

  it("one 128 MB string (past V8's own check) fails with memory once the host reads the heap; the isolate is then rebuilt", async () => {
    const bomb = `need_registration() { const s = "x".repeat(2 ** 27); return { result: s.indexOf("y") > 0 }; }`;
    const sandbox = await sandboxes.load(misbehaving(bomb, "{ timeoutMs: 2000, memoryMb: 16 }"), sandboxOptions({}, 16));
    const [failed, ...behind] = await Promise.all([sandbox.invoke(request("need_registration")), ...[1, 2, 3].map((n) => sandbox.invoke(phone(n)))]);
    expect(failureOf(failed!)).toEqual({ reason: "memory", script: "script", message: "The script ran out of its heap of 16 MB" });
    // The calls handed over behind it may run before the heap is read (the host reads it behind
    // them, not to hold their thread): they did not make the heap grow and keep their answers, or,
    // when V8 found the heap over while one of them ran, run again on the rebuilt isolate.
    expect(behind.map((r) => (r.outcome.kind === "failure" ? JSON.stringify(r.outcome.failure) : r.outcome.kind))).toEqual(["data", "data", "data"]);
    expect(dataOf(await sandbox.invoke(phone(4)))).toEqual({ phone: "4#1" });
  });

  it("a call that waits for a promise the next call would resolve times out; the next one never runs in its isolate", async () => {
    const sandbox = await sandboxes.load(
      misbehaving(`async need_registration() { await new Promise<void>((resolve) => { (globalThis as any).release = resolve; }); return { result: true }; }`) +
        `export const unused = 0;\n`,
      sandboxOptions({}, 16),
    );
    const releaser = `${HEADER}export default defineScript({ hooks: { process_client_phone() { return {}; } } });\n`;
    expect(releaser).toContain("defineScript");
    const [waiting, next] = await Promise.all([
      sandbox.invoke(request("need_registration")),
      // Were it run in the same isolate, it could call release(); it runs after the rebuild instead.
      sandbox.invoke(request("process_client_phone", { input: { phone: "9" }, data: { phone: "9" } })),
    ]);
    expect(failureOf(waiting).reason).toBe("timeout");
    expect(dataOf(next)).toEqual({ phone: "9#1" });
  });

  it("a queue full of calls behind a loop that always times out: each loop fails, every healthy call is answered", async () => {
    const sandbox = await sandboxes.load(misbehaving(`need_registration() { for (;;) {} }`, "{ timeoutMs: 50 }"), sandboxOptions({}, 32));
    const calls = [];
    for (let i = 0; i < 12; i++) calls.push(i % 3 === 0 ? sandbox.invoke(request("need_registration")) : sandbox.invoke(phone(i)));
    const results = await Promise.all(calls);
    const reasons = results.map((r, i) => (i % 3 === 0 ? failureOf(r).reason : r.outcome.kind));
    expect(reasons).toEqual(Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? "timeout" : "data")));
    // After each loop the isolate was rebuilt: two healthy calls, counting 1 and 2, between loops.
    expect(results.filter((_, i) => i % 3 !== 0).map((r) => String(dataOf(r).phone).split("#")[1])).toEqual(["1", "2", "1", "2", "1", "2", "1", "2"]);
  });
});

describe("what the host learns late, or from an entry that left its isolate stuck", () => {
  const stuck =
    `${HEADER}let calls = 0;\n` +
    `export default defineScript({ limits: { timeoutMs: 100 }, hooks: {\n` +
    `  async process_client_phone(input) {\n` +
    `    if (input.phone === "slow") { const until = Date.now() + 5; while (Date.now() < until) {} }\n` +
    `    if (input.phone === "loop") for (;;) {}\n` +
    `    if (input.phone === "reject") { Promise.reject(new Error("left rejected")); await new Promise(() => {}); }\n` +
    `    if (input.phone === "reject-only") Promise.reject(new Error("left rejected"));\n` +
    `    await null;\n` +
    `    calls++;\n` +
    `    return { phone: input.phone + "#" + calls };\n` +
    `  },\n` +
    `} });\n`;
  const call = (sandbox: ScriptSandbox, phone: string) => sandbox.invoke(request("process_client_phone", { input: { phone }, data: { phone } }));
  const answers = (results: Invocation[]) => results.map((r) => (r.outcome.kind === "data" ? String(r.outcome.data.phone) : failureOf(r).reason));

  it("a loop that started while the host's event loop was blocked still times out, counted from when it started", async () => {
    const sandbox = await sandboxes.load(stuck, sandboxOptions({}, 16));
    const calls = ["slow", "loop", "x", "x"].map((phone) => call(sandbox, phone));
    // Handed over; the host now hears nothing for 80 ms: the loop starts after "slow" (5 ms), so
    // when the host hears "slow" has ended, 75 of the loop's 100 ms have already gone by.
    await new Promise<void>((resolve) =>
      setImmediate(() => {
        const until = performance.now() + 80;
        while (performance.now() < until);
        resolve();
      }),
    );
    const results = await Promise.all(calls);
    expect(answers(results)).toEqual(["slow#1", "timeout", "x#1", "x#2"]);
    expect(failureOf(results[1]!).message).toContain("time limit of 100 ms");
    expect(sandbox.queueDepth).toBe(0);
  });

  it("a rejection handed over late (gathered while the host's loop was blocked) is the script's own exception; its isolate is kept", async () => {
    const sandbox = await sandboxes.load(stuck, { ...sandboxOptions({}, 16), loopBusy: () => true });
    expect(answers([await call(sandbox, "x")])).toEqual(["x#1"]);
    // At the head of its line at once, handed over at the loop's check phase: 150 ms later.
    const rejected = call(sandbox, "reject-only");
    const until = performance.now() + 150;
    while (performance.now() < until);
    expect(failureOf(await rejected)).toMatchObject({ reason: "exception", message: "left rejected" });
    // Not taken for a call stopped at its 100 ms limit and run again on a rebuilt isolate: the counter goes on.
    expect(answers([await call(sandbox, "x")])).toEqual(["x#3"]);
  });

  it("an entry failed by its own rejection that left its handler unsettled: the calls handed over behind it run on the rebuilt isolate", async () => {
    const sandbox = await sandboxes.load(stuck, sandboxOptions({}, 16));
    const results = await Promise.all(["x", "reject", "x", "x", "x"].map((phone) => call(sandbox, phone)));
    expect(answers(results)).toEqual(["x#1", "exception", "x#1", "x#2", "x#3"]);
    expect(failureOf(results[1]!).message).toBe("left rejected");
    expect(sandbox.queueDepth).toBe(0);
  });
});

describe("any mix of calls handed over together (generated)", () => {
  /**
   * What each call must answer, by a model of the rule: calls run in arrival order, one at a time;
   * a throw keeps the isolate (and its counter); a timeout rebuilds it, so the counter starts again.
   */
  function expected(kinds: Kind[]): string[] {
    let calls = 0;
    return kinds.map((kind) => {
      if (kind === "healthy") return `ok#${++calls}`;
      if (kind === "throw") return "exception";
      calls = 0;
      return "timeout";
    });
  }

  // With the event loop busy, entries wait for the loop's check phase and are handed over
  // together (handover.ts); otherwise each goes from a microtask. The same rule holds both ways.
  for (const busy of [false, true])
    it(`every call answers as if they had waited their turn, and nothing is left queued (${busy ? "gathered per loop turn" : "handed over one by one"})`, async () => {
      const sandbox = await sandboxes.load(mixed, { ...sandboxOptions({}, 64), loopBusy: () => busy });
      const kind = fc.constantFrom<Kind>("healthy", "healthy", "healthy", "throw", "loop", "hang");
      // Bursts of calls handed over at once, a macrotask apart.
      const bursts = fc.array(fc.array(kind, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 });
      await fc.assert(
        fc.asyncProperty(bursts, async (groups) => {
          // Start from a fresh isolate: a timeout first resets the counter, as the model assumes.
          await sandbox.invoke(request("process_client_phone", { input: { phone: "loop" }, data: { phone: "loop" } }));
          const calls: Promise<Invocation>[] = [];
          for (const group of groups) {
            for (const k of group)
              calls.push(sandbox.invoke(request("process_client_phone", { input: { phone: k === "healthy" ? "x" : k }, data: { phone: "x" } })));
            await new Promise((resolve) => setImmediate(resolve));
          }
          const answers = (await Promise.all(calls)).map((r) => (r.outcome.kind === "data" ? String(r.outcome.data.phone) : failureOf(r).reason));
          expect(answers).toEqual(expected(groups.flat()));
          expect(sandbox.queueDepth).toBe(0);
        }),
        { numRuns: 12 },
      );
    });
});
