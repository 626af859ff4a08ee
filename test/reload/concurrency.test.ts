import { afterEach, describe, expect, it } from "vitest";
import type { HookAnswer } from "../../runtime/schema/envelope.js";
import { pipelineNow } from "../helpers/lease.js";
import { busy, script } from "../helpers/scripts.js";
import { waitFor } from "../helpers/wait.js";
import { closeAll, marked, setup } from "./harness.js";

afterEach(closeAll);

const LOOPS = 8;
/** Each loop makes at least this many calls, and keeps calling while the file is rewritten. */
const MIN_CALLS_PER_LOOP = 250;
/** A bound, so that a loop cannot run away. */
const MAX_CALLS_PER_LOOP = 200_000;
const REWRITES = 32;

/** A handler that keeps its isolate busy for `ms` before it answers (a slow CRM lookup, say). */
const slow = (key: string, n: number, ms: number) =>
  script("process_registration_params", `${busy(ms)} return { ${key}: ${n} };`, "limits: { timeoutMs: 5000 },");

const fast = (key: string, n: number) => script("process_registration_params", `return { ${key}: ${n} };`);

describe("hot reload under load", () => {
  it(`${LOOPS} loops of requests while the script is rewritten ${REWRITES} times: no failed answer, every answer from one whole version`, async () => {
    const s = await setup({ "s.ts": marked(0) });
    let writing = true;
    const seen: number[][] = Array.from({ length: LOOPS }, () => []);
    const bad: unknown[] = [];

    const loops = seen.map(async (values) => {
      let calls = 0;
      /** Calls started once the last version was swapped in. */
      let final = 0;
      while ((writing || calls < MIN_CALLS_PER_LOOP || final === 0) && calls < MAX_CALLS_PER_LOOP) {
        if (!writing) final++;
        let answer: HookAnswer;
        try {
          answer = await s.call();
        } catch (error) {
          bad.push({ thrown: String(error) });
          continue;
        } finally {
          calls++;
        }
        if (answer.state !== "success") {
          bad.push(answer);
          continue;
        }
        const { USER_ID, LINE_NUMBER } = answer.data;
        // Both fields come from one version's code, never one from each.
        if (typeof USER_ID !== "number" || USER_ID !== LINE_NUMBER) bad.push({ mixed: answer.data });
        values.push(USER_ID as number);
      }
      return calls;
    });

    for (let n = 1; n <= REWRITES; n++) {
      // Half in place (truncate and write, as most editors), half as atomic rename-saves.
      if (n % 2 === 0) s.renameSave("s.ts", marked(n));
      else s.write("s.ts", marked(n));
      await waitFor(() => s.events.filter((event) => event.kind === "loaded").length >= n, `version ${n} swapped in`);
    }
    writing = false;
    const calls = await Promise.all(loops);

    expect(bad).toEqual([]);
    const total = calls.reduce((sum, count) => sum + count, 0);
    expect(total).toBeGreaterThanOrEqual(LOOPS * MIN_CALLS_PER_LOOP);
    expect(seen.flat()).toHaveLength(total);
    // Each loop makes its calls one after another, each on the pipeline of the moment it starts,
    // and versions are swapped in in the order of the saves: a loop never goes back to an older
    // version once it has seen a newer one. (Across loops there is no such order: a call that
    // started on the old version may answer after another loop's call on the new one.)
    for (const values of seen) {
      const backwards = values.findIndex((value, i) => i > 0 && value < values[i - 1]!);
      expect(backwards).toBe(-1);
    }
    // A call that starts after the last swap answers from the last version.
    for (const values of seen) expect(values.at(-1)).toBe(REWRITES);
    // The requests did overlap the reloads: together they saw many versions.
    expect(new Set(seen.flat()).size).toBeGreaterThanOrEqual(10);
    expect(await s.data()).toEqual({ USER_ID: REWRITES, LINE_NUMBER: REWRITES });
    expect(s.state("s")).toMatchObject({ state: "active", lastError: null });
    expect(s.events.filter((event) => event.kind === "unloaded")).toEqual([]);
  });

  it("an invocation in flight finishes on the version it started with; the old isolate is disposed once drained", async () => {
    const s = await setup({ "s.ts": slow("USER_ID", 1, 800) }, { hooks: { process_registration_params: { deadlineMs: 2_500 } } });
    const v1 = s.state("s")!.version;
    const old = pipelineNow(s.registry, "process_registration_params")[0]!.sandbox;
    expect(old.version).toBe(v1);

    let settled = false;
    const inFlight = s.call().then((answer) => {
      settled = true;
      return answer;
    });
    await waitFor(() => old.queueDepth === 1, "the slow call running");
    s.write("s.ts", marked(2));
    await waitFor(() => s.state("s")?.version !== v1, "version 2 swapped in");
    // The swap happened while the slow call was running on the old version.
    expect(settled).toBe(false);
    expect(await s.data()).toEqual({ USER_ID: 2, LINE_NUMBER: 2 });
    expect(settled).toBe(false);

    expect(await inFlight).toEqual({ state: "success", data: { CALL_ID: "c-1", USER_ID: 1 } });
    expect(s.registry.sandboxes().map((sandbox) => sandbox.version)).toEqual([s.state("s")!.version]);
    // Drained, then disposed (once the request that leased it let it go).
    await waitFor(() => old.heapUsedBytes() === undefined, "the old isolate disposed", 10_000);
    const late = await old.invoke({ hook: "process_registration_params", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "late" });
    expect(late.outcome).toMatchObject({ kind: "failure", failure: { message: "This script version was unloaded" } });
    expect(await s.data()).toEqual({ USER_ID: 2, LINE_NUMBER: 2 });
  });

  it("a script reloaded while an earlier script of the same request runs: the request still succeeds, on the versions it started with", async () => {
    // a runs first (by name), slowly; b is saved meanwhile. The request took its pipeline with
    // b's old version: that version must still answer it, not "unloaded".
    const s = await setup({ "a.ts": slow("A", 1, 500), "b.ts": fast("B", 1) }, { hooks: { process_registration_params: { deadlineMs: 2_500 } } });
    const a = pipelineNow(s.registry, "process_registration_params")[0]!.sandbox;
    const b1 = s.state("b")!.version;

    const inFlight = s.call();
    await waitFor(() => a.queueDepth === 1, "a running");
    s.write("b.ts", fast("B", 2));
    await waitFor(() => s.state("b")?.version !== b1, "b's version 2 swapped in");
    expect(a.queueDepth).toBe(1);

    expect(await inFlight).toEqual({ state: "success", data: { CALL_ID: "c-1", A: 1, B: 1 } });
    expect(await s.call()).toEqual({ state: "success", data: { CALL_ID: "c-1", A: 1, B: 2 } });
  });

  it("a script deleted while an earlier script of the same request runs: that request still succeeds; the next ones run without it", async () => {
    const s = await setup({ "a.ts": slow("A", 1, 500), "b.ts": fast("B", 1) }, { hooks: { process_registration_params: { deadlineMs: 2_500 } } });
    const a = pipelineNow(s.registry, "process_registration_params")[0]!.sandbox;

    const inFlight = s.call();
    await waitFor(() => a.queueDepth === 1, "a running");
    s.remove("b.ts");
    await waitFor(() => !s.state("b"), "b unloaded");
    expect(a.queueDepth).toBe(1);

    expect(await inFlight).toEqual({ state: "success", data: { CALL_ID: "c-1", A: 1, B: 1 } });
    expect(await s.call()).toEqual({ state: "success", data: { CALL_ID: "c-1", A: 1 } });
  });
});
