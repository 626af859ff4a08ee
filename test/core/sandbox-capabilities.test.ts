import { afterAll, describe, expect, it } from "vitest";
import { createCannedCapabilities } from "../../runtime/capabilities/canned.js";
import type { Capabilities, CapabilityCall } from "../../runtime/capabilities/types.js";
import { CapabilityError } from "../../runtime/capabilities/errors.js";
import { dataOf, failureOf, HEADER, request, Sandboxes, sandboxOptions } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

/** Capabilities answered by `answer` after `delayMs`, recording every request. */
function recording(answer: (op: string, payload: unknown) => unknown, delayMs = 0) {
  const seen: { op: string; payload: unknown; call: CapabilityCall }[] = [];
  const capabilities: Capabilities = {
    async handle(op, payloadJson, call) {
      seen.push({ op, payload: JSON.parse(payloadJson), call });
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      const value = answer(op, JSON.parse(payloadJson));
      if (value instanceof Error) throw value;
      return JSON.stringify(value);
    },
  };
  return { capabilities, seen };
}

const fetchAnswer = (body: unknown, status = 200) => ({
  ok: status < 300,
  status,
  statusText: "OK",
  url: "https://crm.example/x",
  headers: { "content-type": "application/json" },
  body: JSON.stringify(body),
});

// With the event loop busy, entries (the invocations and the answers to their requests) are handed
// over together once per loop turn (handover.ts); otherwise one by one. Both ways alike.
for (const busy of [false, true])
  describe(`ctx.fetch, ctx.secret and ctx.kv inside the isolate (${busy ? "entries gathered per loop turn" : "entries handed over one by one"})`, () => {
    const load = (source: string, options = sandboxOptions()) => sandboxes.load(source, { ...options, loopBusy: () => busy });

    it("a handler awaits a fetch and uses its answer", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          const res = await ctx.fetch("https://crm.example/rest/crm.contact.list.json", { method: "POST", headers: { Authorization: "Bearer " + ctx.secret("TOKEN") }, body: JSON.stringify({ a: 1 }) });
          const json = res.json() as { result: boolean };
          return { result: json.result && res.ok && res.status === 200 && res.headers["content-type"] === "application/json" };
        } } });`,
      );
      const { capabilities, seen } = recording(() => fetchAnswer({ result: false }));
      const invocation = await sandbox.invoke({ ...request(), capabilities });
      expect(dataOf(invocation)).toEqual({ result: false });
      expect(seen).toHaveLength(1);
      expect(seen[0]!.op).toBe("fetch");
      expect(seen[0]!.payload).toEqual({
        url: "https://crm.example/rest/crm.contact.list.json",
        method: "POST",
        headers: { Authorization: "Bearer __callscript_secret_TOKEN__" },
        body: '{"a":1}',
      });
      expect(seen[0]!.call).toMatchObject({ script: "script", hook: "need_registration", requestId: "test-request" });
      expect(seen[0]!.call.signal.aborted).toBe(true);
    });

    it("kv get, set, delete and incr reach the host with the contract's payloads", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          const before = await ctx.kv.get("k");
          await ctx.kv.set("k", { n: 1 }, { ttlSeconds: 60 });
          const after = await ctx.kv.get<{ n: number }>("k");
          const n = await ctx.kv.incr("turn", { by: 2 });
          const deleted = await ctx.kv.delete("k");
          return { result: before === undefined && after?.n === 1 && n === 2 && deleted };
        } } });`,
      );
      const capabilities = createCannedCapabilities({ script: "script" });
      const invocation = await sandbox.invoke({ ...request(), capabilities });
      expect(dataOf(invocation)).toEqual({ result: true });
      expect(capabilities.kv()).toEqual({ turn: 2 });
    });

    it("a refusal is a catchable CapabilityError with its code, its message and the script's line", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          try {
            await ctx.fetch("https://elsewhere.example/");
            return { result: true };
          } catch (error) {
            const e = error as { name: string; code: string; message: string; stack: string };
            ctx.log.info(e.name, e.code, e.message);
            ctx.log.info(e.stack.split("\\n")[1]);
            return { result: false };
          }
        } } });`,
      );
      const { capabilities } = recording(
        () => new CapabilityError("CS_CAP_FETCH_NOT_ALLOWED", "fetch: https://elsewhere.example is not in scripts.script.fetch.allow"),
      );
      const invocation = await sandbox.invoke({ ...request(), capabilities });
      expect(dataOf(invocation)).toEqual({ result: false });
      expect(invocation.logs.lines[0]!.message).toBe(
        "CapabilityError CS_CAP_FETCH_NOT_ALLOWED fetch: https://elsewhere.example is not in scripts.script.fetch.allow",
      );
      // The frames under the sandbox's own are the script's: where it called ctx.fetch.
      expect(invocation.logs.lines[1]!.message).toMatch(/at (sendRequest|request|fetch) /);
    });

    it("an uncaught refusal fails the invocation with an exception naming it", async () => {
      const sandbox = await load(
        HEADER + `export default defineScript({ hooks: { async need_registration(input, ctx) { await ctx.kv.incr("n"); return { result: true }; } } });`,
      );
      const { capabilities } = recording(() => new CapabilityError("CS_CAP_KV_UNAVAILABLE", "kv.incr: the store is unavailable (the server log says why)"));
      const failure = failureOf(await sandbox.invoke({ ...request(), capabilities }));
      expect(failure.reason).toBe("exception");
      expect(failure.message).toContain("CapabilityError: kv.incr: the store is unavailable");
      // Mapped to the .ts line that asked.
      expect(failure.stack).toMatch(/script\.ts:2:/);
    });

    it("without capabilities every request fails with CS_CAP_NONE", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          try { await ctx.kv.get("x"); return { result: true }; } catch (e) { return { result: (e as { code: string }).code === "CS_CAP_NONE" ? false : true }; }
        } } });`,
      );
      expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: false });
    });

    it("bad arguments are TypeErrors in the guest, before anything is sent", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          const messages: string[] = [];
          const attempts: (() => unknown)[] = [
            () => ctx.fetch(42 as never),
            () => ctx.fetch("https://x.example", { body: { a: 1 } as never }),
            () => ctx.fetch("https://x.example", { headers: { a: 1 } as never }),
            () => ctx.secret("lower"),
            () => ctx.kv.get(1 as never),
            () => ctx.kv.set("k", undefined as never),
          ];
          for (const attempt of attempts) {
            try { await attempt(); messages.push("no error"); } catch (e) { messages.push((e as Error).name + ": " + (e as Error).message); }
          }
          ctx.log.info(messages.join("\\n"));
          return { result: true };
        } } });`,
      );
      const { capabilities, seen } = recording(() => ({}));
      const invocation = await sandbox.invoke({ ...request(), capabilities });
      expect(dataOf(invocation)).toEqual({ result: true });
      expect(seen).toHaveLength(0);
      const lines = invocation.logs.lines[0]!.message.split("\n");
      expect(lines).toHaveLength(6);
      for (const line of lines) expect(line).toMatch(/^TypeError: ctx\./);
      expect(lines[1]).toContain("init.body must be a string");
    });

    it("while one call waits for the host, other calls of the same script run: 16 calls of a 200 ms request overlap", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ hooks: { async need_registration(input, ctx) {
          const res = await ctx.fetch("https://crm.example/slow");
          return { result: res.ok };
        } } });`,
        sandboxOptions({}, 32),
      );
      let inFlight = 0;
      let most = 0;
      const capabilities: Capabilities = {
        async handle() {
          inFlight++;
          most = Math.max(most, inFlight);
          await new Promise((resolve) => setTimeout(resolve, 200));
          inFlight--;
          return JSON.stringify(fetchAnswer({}));
        },
      };
      const invocations = await Promise.all(
        Array.from({ length: 16 }, (_, i) => sandbox.invoke({ ...request("need_registration", { requestId: `r${i}` }), capabilities })),
      );
      for (const invocation of invocations) expect(dataOf(invocation)).toEqual({ result: true });
      // Every call's request was in flight at once: none waited for another's answer.
      expect(most).toBe(16);
    });

    it("a call's CPU limit counts its own slices: a loop after the answer times out, and the other calls keep theirs", async () => {
      const sandbox = await load(
        HEADER +
          `export default defineScript({ limits: { timeoutMs: 100 }, hooks: { async need_registration(input, ctx) {
          await ctx.kv.get("x");
          if ((input as { loop?: boolean }).loop) for (;;) {}
          return { result: true };
        } } });`,
      );
      const capabilities = createCannedCapabilities({ script: "script" });
      const looping = await sandbox.invoke({ ...request("need_registration", { input: { loop: true } }), capabilities });
      expect(failureOf(looping), JSON.stringify(looping)).toMatchObject({ reason: "timeout" });
      expect(failureOf(looping).message).toContain("100 ms of CPU time");
      expect(dataOf(await sandbox.invoke({ ...request(), capabilities }))).toEqual({ result: true });
    });

    it("a call that sent a request is not run again when its isolate is rebuilt under it", async () => {
      const sandbox = await load(
        HEADER +
          `let n = 0;
        export default defineScript({ limits: { timeoutMs: 100 }, hooks: { async need_registration(input, ctx) {
          if ((input as { loop?: boolean }).loop) { for (;;) {} }
          n++;
          await ctx.kv.incr("sent");
          return { result: true };
        } } });`,
        sandboxOptions({}, 32),
      );
      const capabilities = createCannedCapabilities({ script: "script" });
      const { capabilities: slow } = recording(() => ({ value: 1 }), 300);
      const waiting = sandbox.invoke({ ...request(), capabilities: slow });
      await new Promise((resolve) => setTimeout(resolve, 50));
      const looping = await sandbox.invoke({ ...request("need_registration", { input: { loop: true } }), capabilities });
      expect(failureOf(looping).reason).toBe("timeout");
      const failure = failureOf(await waiting);
      expect(failure.reason).toBe("exception");
      expect(failure.message).toContain("not run again");
    });
  });

describe("a storm of requests from one call", () => {
  it("past the host's budget each request fails with its code; past the sandbox's own bound the guest refuses without sending", async () => {
    const sandbox = await sandboxes.load(
      HEADER +
        `export default defineScript({ limits: { timeoutMs: 5000 }, hooks: { async need_registration(input, ctx) {
          const codes: Record<string, number> = {};
          const all = [];
          for (let i = 0; i < 10_150; i++) all.push(ctx.kv.get("k").then(() => "ok", (e) => (e as { code: string }).code + ":" + ((e as Error).message.includes("10100") ? "bound" : "budget")));
          for (const outcome of await Promise.all(all)) codes[outcome] = (codes[outcome] ?? 0) + 1;
          ctx.log.info(JSON.stringify(codes));
          return { result: true };
        } } });`,
    );
    const capabilities = createCannedCapabilities({ script: "script" });
    const invocation = await sandbox.invoke({ ...request(), capabilities });
    expect(dataOf(invocation)).toEqual({ result: true });
    // kv.maxOpsPerInvocation (20) answered; the rest of the first 10 100 refused by the host; the last 50 never sent.
    expect(JSON.parse(invocation.logs.lines[0]!.message)).toEqual({ ok: 20, "CS_CAP_KV_TOO_MANY_OPS:budget": 10_080, "CS_CAP_BAD_REQUEST:bound": 50 });
  });
});
