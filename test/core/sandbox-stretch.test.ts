import { afterAll, describe, expect, it } from "vitest";
import type { Invocation } from "../../runtime/sandbox/sandbox.js";
import { failureOf, HEADER, request, sandboxOptions, Sandboxes } from "../helpers/scripts.js";

/**
 * isolated-vm runs an isolate's queued tasks in one go, under one handle scope, and frees what
 * they handed over only once none is left; texts of 1 KB or more live outside the heap and count
 * against the isolate's memory limit meanwhile. A busy server that kept the queue from emptying had
 * its isolates killed "for memory" while their scripts held nothing (runtime/sandbox/line.ts,
 * stretchOver). Calls now wait for the isolate to run out of work once the texts of its stretch
 * reach a quarter of its memory limit.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

// A 60 KB call_full of two-byte text, as a long call with many conversations is: 120 KB outside
// the heap per call.
const conversations = Array.from({ length: 360 }, (_, i) => ({
  id: `1732618800.${2000 + i}`,
  note: `Разговор ${i}: клиент перезвонит позже, менеджер Иванова`,
  from: { base: `903123${String(i).padStart(4, "0")}`, variants: ["+7", "8", "7"].map((p) => `${p}903123${i}`) },
}));
const largeInput = { call_full: { id: "1732618800.2001", conversations } };

const source = `${HEADER}export default defineScript({ hooks: { need_registration(input) { return { result: input.call_full.conversations.length === 360 }; } } });\n`;

async function closedLoops(invoke: () => Promise<Invocation>, loops: number, callsEach: number): Promise<Invocation[]> {
  const results: Invocation[] = [];
  await Promise.all(
    Array.from({ length: loops }, async () => {
      for (let i = 0; i < callsEach; i++) results.push(await invoke());
    }),
  );
  return results;
}

describe("long inputs under sustained load", () => {
  for (const batch of [false, true]) {
    it(`never kill an isolate whose script holds nothing (${batch ? "calls in batches" : "one task per call"})`, async () => {
      expect(JSON.stringify(largeInput).length).toBeGreaterThan(50_000);
      // 16 MB: a stretch of 70 such calls held without a break fills it; 2 400 calls make many stretches.
      const sandbox = await sandboxes.load(source, { ...sandboxOptions({ memoryMb: 16 }, 64), loopBusy: () => true, batch, inlineAfter: 0 });
      const results = await closedLoops(() => sandbox.invoke(request("need_registration", { input: largeInput })), 16, 150);
      const failures = results.filter((r) => r.outcome.kind === "failure").map((r) => `${failureOf(r).reason}: ${failureOf(r).message}`);
      expect(failures).toEqual([]);
      expect(results.every((r) => r.outcome.kind === "data" && r.outcome.data.result === true)).toBe(true);
      expect(results).toHaveLength(2400);
    });
  }
});
