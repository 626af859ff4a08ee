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
 * While the event loop is busy, the calls of a short script gathered in one loop turn go to its
 * isolate in one isolated-vm task (runtime/sandbox/batch.ts). What must hold, as without batches:
 * every call answers in arrival order, each seeing the state the one before left; a call that
 * fails fails alone, with its own reason, and the calls gathered with it answer.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

/** Busy from the first call, and short from the first call: every gathered call goes in a batch. */
const batching = (maxQueue = 64) => ({ ...sandboxOptions({}, maxQueue), loopBusy: () => true, inlineAfter: 0 });
const phone = (n: number | string) => request("process_client_phone", { input: { phone: String(n) }, data: { phone: String(n) } });
const outcomes = (results: Invocation[]) => results.map((r) => (r.outcome.kind === "data" ? String(r.outcome.data.phone) : failureOf(r).reason));

describe("calls in batches", () => {
  it("run one at a time in arrival order, each seeing the state the previous one left", async () => {
    const sandbox = await sandboxes.load(misbehaving(`need_registration() { return {}; }`), batching());
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => sandbox.invoke(phone(i))));
    expect(outcomes(results)).toEqual(Array.from({ length: 40 }, (_, i) => `${i}#${i + 1}`));
    expect(sandbox.inline.batchedCalls).toBe(40);
    // Gathered: fewer tasks than calls, none of more than eight calls.
    expect(sandbox.inline.batches).toBeGreaterThanOrEqual(5);
    expect(sandbox.inline.batches).toBeLessThan(40);
    expect(sandbox.inline.failedBatches).toBe(0);
    expect(sandbox.queueDepth).toBe(0);
  });

  it("each call has its share of the batch's time, and its own logs", async () => {
    const logging = `${HEADER}export default defineScript({ hooks: { process_client_phone(input, ctx) { ctx.log.info("call " + input.phone); return { phone: input.phone }; } } });\n`;
    const sandbox = await sandboxes.load(logging, batching());
    const results = await Promise.all([1, 2, 3, 4].map((n) => sandbox.invoke(phone(n))));
    expect(sandbox.inline.batchedCalls).toBe(4);
    results.forEach((result, i) => {
      expect(dataOf(result)).toEqual({ phone: String(i + 1) });
      expect(result.logs.lines.map((line) => line.message)).toEqual([`call ${i + 1}`]);
      expect(result.stats.wallMs).toBeGreaterThanOrEqual(0);
      expect(result.stats.cpuMs).toBeGreaterThanOrEqual(0);
      expect(result.stats.outputBytes).toBe(JSON.stringify({ phone: String(i + 1) }).length);
    });
    expect(results.reduce((sum, result) => sum + result.stats.wallMs, 0)).toBeGreaterThan(0);
  });

  it("without loopBusy, or with batch: false, no call goes in a batch", async () => {
    const idle = await sandboxes.load(misbehaving(`need_registration() { return {}; }`), { ...batching(), loopBusy: () => false, inline: false });
    const off = await sandboxes.load(misbehaving(`need_registration() { return {}; }`), { ...batching(), batch: false });
    for (const sandbox of [idle, off]) {
      const results = await Promise.all(Array.from({ length: 10 }, (_, i) => sandbox.invoke(phone(i))));
      expect(outcomes(results)).toEqual(Array.from({ length: 10 }, (_, i) => `${i}#${i + 1}`));
      expect(sandbox.inline.batches).toBe(0);
    }
  });

  // What each call answers: as without batches. A batch that fails as a whole (a timeout, the heap,
  // a rejection the script left) runs all of its calls again alone, on a rebuilt isolate: the calls
  // before the failing one count from 1 again there, as the ones after a timeout always do.
  it("batches go on with inline calls off (config inlineCalls and batchCalls are each their own switch)", async () => {
    const sandbox = await sandboxes.load(misbehaving(`need_registration() { return {}; }`), { ...batching(), inline: false });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => sandbox.invoke(phone(i))));
    expect(outcomes(results)).toEqual(Array.from({ length: 8 }, (_, i) => `${i}#${i + 1}`));
    expect(sandbox.inline.batchedCalls).toBe(8);
    expect(sandbox.inline.inlineCalls).toBe(0);
  });

  const failures = [
    { what: "an infinite loop", bad: `for (;;) {}`, answers: ["a#1", "b#2", "timeout", "c#1", "d#2"], failedBatches: 1 },
    { what: "a promise that never settles", bad: `await new Promise(() => {});`, answers: ["a#1", "b#2", "timeout", "c#1", "d#2"], failedBatches: 1 },
    { what: "a microtask loop", bad: `for (;;) await null;`, answers: ["a#1", "b#2", "timeout", "c#1", "d#2"], failedBatches: 1 },
    {
      what: "a heap bomb",
      bad: `const hoard: string[] = []; for (;;) hoard.push("x".repeat(1024) + hoard.length);`,
      answers: ["a#1", "b#2", "memory", "c#1", "d#2"],
      failedBatches: 1,
      // Time enough to fill its heap on a busy machine: it must end on memory, not on time.
      timeoutMs: 5000,
    },
    // The script's own exception: the batch answers, and the isolate (with its counter) goes on.
    { what: "a thrown error", bad: `throw new Error("thrown");`, answers: ["a#1", "b#2", "exception", "c#3", "d#4"], failedBatches: 0 },
    // isolated-vm fails the whole task: run again alone, it is the script's exception, its isolate
    // kept (its handler went on and counted: c#4).
    {
      what: "a rejection it leaves behind",
      bad: `Promise.reject(new Error("left rejected"));`,
      answers: ["a#1", "b#2", "exception", "c#4", "d#5"],
      failedBatches: 1,
    },
  ];
  for (const { what, bad, answers, failedBatches, timeoutMs = 300 } of failures) {
    it(`${what} in a batch fails alone (${answers[2]}); the calls gathered with it answer`, async () => {
      const source =
        `${HEADER}let calls = 0;\n` +
        `export default defineScript({ limits: { timeoutMs: ${timeoutMs}, memoryMb: 16 }, hooks: {\n` +
        `  async process_client_phone(input) {\n` +
        `    if (input.phone === "bad") { ${bad} }\n` +
        `    await null;\n` +
        `    calls++;\n` +
        `    return { phone: input.phone + "#" + calls };\n` +
        `  },\n` +
        `} });\n`;
      const sandbox = await sandboxes.load(source, batching());
      const results = await Promise.all(["a", "b", "bad", "c", "d"].map((n) => sandbox.invoke(phone(n))));
      expect(outcomes(results)).toEqual(answers);
      expect(sandbox.inline.failedBatches).toBe(failedBatches);
      expect(sandbox.queueDepth).toBe(0);
      if (what.startsWith("a rejection")) expect(failureOf(results[2]!).message).toBe("left rejected");
      // Short calls again: batches resume once the script has shown itself short.
      const after = await Promise.all(Array.from({ length: 4 }, (_, i) => sandbox.invoke(phone(`x${i}`))));
      expect(after.every((result) => result.outcome.kind === "data")).toBe(true);
    });
  }

  it("a script that replaces the built-ins the batch could use still gets its own answers", async () => {
    const hostile =
      `${HEADER}export default defineScript({ hooks: { process_client_phone(input) {\n` +
      `  Promise.prototype.then = function () { return this; };\n` +
      `  Array.prototype.join = () => "forged";\n` +
      `  String.prototype.concat = () => "forged";\n` +
      `  Object.defineProperty(Array.prototype, "0", { set() {}, get() { return "forged"; }, configurable: true });\n` +
      `  return { phone: input.phone };\n` +
      `} } });\n`;
    const sandbox = await sandboxes.load(hostile, batching());
    const results = await Promise.all([1, 2, 3, 4, 5].map((n) => sandbox.invoke(phone(n))));
    expect(results.map((result) => dataOf(result).phone)).toEqual(["1", "2", "3", "4", "5"]);
    expect(sandbox.inline.batchedCalls).toBe(5);
    expect(sandbox.inline.failedBatches).toBe(0);
  });
});

describe("any mix of calls in batches (generated)", () => {
  const reasonOf: Record<Kind, string> = { healthy: "ok", throw: "exception", loop: "timeout", hang: "timeout" };

  it("every call answers with its own outcome; the counter goes on, or starts again only where a batch of calls met a timeout", async () => {
    let sandbox: ScriptSandbox | undefined;
    const kind = fc.constantFrom<Kind>("healthy", "healthy", "healthy", "throw", "loop", "hang");
    // Bursts of calls gathered at once, a macrotask apart.
    const bursts = fc.array(fc.array(kind, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(bursts, async (groups) => {
        // A fresh sandbox: batching again from its first call.
        sandbox = await sandboxes.load(mixed, batching());
        const calls: Promise<Invocation>[] = [];
        for (const group of groups) {
          for (const k of group)
            calls.push(sandbox.invoke(request("process_client_phone", { input: { phone: k === "healthy" ? "x" : k }, data: { phone: "x" } })));
          await new Promise((resolve) => setImmediate(resolve));
        }
        const kinds = groups.flat();
        const answers = (await Promise.all(calls)).map((r) => (r.outcome.kind === "data" ? String(r.outcome.data.phone) : failureOf(r).reason));
        expect(answers.map((answer) => (answer.startsWith("ok#") ? "ok" : answer))).toEqual(kinds.map((k) => reasonOf[k]));
        // Healthy calls count up by one; the count starts again at 1 only where a timeout rebuilt
        // the isolate (after it, or, for the calls of its batch that ran again alone, before it).
        const anyTimeout = kinds.some((k) => k === "loop" || k === "hang");
        let last = 0;
        for (const answer of answers) {
          if (!answer.startsWith("ok#")) continue;
          const n = Number(answer.slice(3));
          if (n !== last + 1) {
            expect(n).toBe(1);
            expect(anyTimeout).toBe(true);
          }
          last = n;
        }
        expect(sandbox.queueDepth).toBe(0);
        await sandbox.drainAndDispose();
      }),
      { numRuns: 12 },
    );
  });
});
