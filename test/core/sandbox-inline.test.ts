import { createConnection, createServer, type AddressInfo, type Socket } from "node:net";
import { afterAll, describe, expect, it } from "vitest";
import { INLINE_AFTER_SHORT_CALLS } from "../../runtime/sandbox/inline-policy.js";
import { watchLoopLoad } from "../../runtime/sandbox/loop-load.js";
import type { ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { dataOf, failureOf, HEADER, request, sandboxOptions, Sandboxes } from "../helpers/scripts.js";

/**
 * Calls of a script that has shown itself short run on the host's thread (inline-policy.ts). What
 * must hold: the same answers, state, limits and failures as on the isolate's own thread; a script
 * that turns long, waits for the host or would outlive the request's deadline is not run there;
 * and it can be turned off. No assertion is about how long anything took.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

/** process_client_phone counts its calls in this isolate; need_registration misbehaves as `bad` says. */
function counting(bad = `need_registration() { return {}; }`, limits = "{ timeoutMs: 100, memoryMb: 16 }"): string {
  return (
    `${HEADER}let calls = 0;\n` +
    `export default defineScript({\n` +
    `  limits: ${limits},\n` +
    `  hooks: {\n` +
    `    ${bad},\n` +
    `    async process_client_phone(input) { calls++; await null; return { phone: input.phone + "#" + calls }; },\n` +
    `  },\n` +
    `});\n`
  );
}

const phone = (n: number | string) => request("process_client_phone", { input: { phone: String(n) }, data: { phone: String(n) } });
const phones = (sandbox: ScriptSandbox, from: number, count: number) => Promise.all(Array.from({ length: count }, (_, i) => sandbox.invoke(phone(from + i))));
const answers = (results: { outcome: { kind: string; data?: Record<string, unknown> } }[]) =>
  results.map((r) => (r.outcome.kind === "data" ? r.outcome.data!.phone : r.outcome.kind));

describe("calls on the host's thread", () => {
  /**
   * Calls of `phone` one at a time until one runs on the host's thread (a call over 2 ms, such as a
   * cold isolate's first on a busy machine, starts the count again): the answers in order.
   */
  async function untilInline(sandbox: ScriptSandbox, from: number): Promise<number> {
    const before = sandbox.inline.inlineCalls;
    for (let n = from; n < from + 1000; n++) {
      expect(dataOf(await sandbox.invoke(phone(n)))).toEqual({ phone: `${n}#${n}` });
      if (sandbox.inline.inlineCalls > before) return n;
    }
    throw new Error("no call ran on the host's thread");
  }

  it(`start after ${INLINE_AFTER_SHORT_CALLS} short calls in a row; answers and state go on as before, in arrival order`, async () => {
    const sandbox = await sandboxes.load(counting(), sandboxOptions({}, 64));
    const first = await untilInline(sandbox, 1);
    expect(first).toBeGreaterThan(INLINE_AFTER_SHORT_CALLS);
    // Handed over together: the first waits for nothing, the others for the one before.
    const together = await phones(sandbox, first + 1, 30);
    expect(answers(together)).toEqual(Array.from({ length: 30 }, (_, i) => `${first + 1 + i}#${first + 1 + i}`));
    expect(sandbox.inline.inlineCalls).toBeGreaterThan(1);
    expect(sandbox.queueDepth).toBe(0);
  });

  it("a call that turns long keeps its limit and its failure (timeout at the loop's .ts line); the script goes back to its own thread for twice as many short calls", async () => {
    const sandbox = await sandboxes.load(
      counting(`need_registration(input: any) { if (input.loop) for (;;) {} return {}; }`),
      sandboxOptions({}, 16),
      "looping.ts",
    );
    await untilInline(sandbox, 1);
    // Counted from here: the call that ran inline first may itself have been long on a busy host.
    const inlineBefore = sandbox.inline.inlineCalls;
    const longBefore = sandbox.inline.longInlineCalls;
    const looped = await sandbox.invoke(request("need_registration", { input: { loop: true } }));
    expect(failureOf(looped)).toMatchObject({
      reason: "timeout",
      message: "The script ran past its time limit of 100 ms of CPU time (a loop that does not end, or one that does too much)",
      location: { file: "looping.ts", line: 6 },
    });
    expect(sandbox.inline.inlineCalls).toBe(inlineBefore + 1);
    expect(sandbox.inline.longInlineCalls).toBe(longBefore + 1);
    // The isolate was rebuilt (the counter starts again); at least twice as many short calls run
    // on the isolate's own thread before the next one runs inline.
    const back = await untilInline(sandbox, 1);
    expect(back).toBeGreaterThan(2 * INLINE_AFTER_SHORT_CALLS);
  });

  const inlineAtOnce = { ...sandboxOptions({}, 16), inlineAfter: 0 };

  it("a promise that never settles fails with timeout at once, and the next call runs on a rebuilt isolate", async () => {
    const sandbox = await sandboxes.load(counting(`need_registration() { return new Promise(() => {}); }`), inlineAtOnce);
    expect(dataOf(await sandbox.invoke(phone(1)))).toEqual({ phone: "1#1" });
    // Counted from here: that first call of a cold isolate, inline, may have been long on a busy host.
    const longBefore = sandbox.inline.longInlineCalls;
    const waiting = await sandbox.invoke(request("need_registration"));
    expect(failureOf(waiting)).toMatchObject({
      reason: "timeout",
      message: expect.stringMatching(
        /^The script's promise did not settle within \d+ ms, and nothing could settle it later: scripts have no timers or I\/O to wait for \(a promise that never settles\)$/,
      ) as unknown as string,
    });
    expect(dataOf(await sandbox.invoke(phone(2)))).toEqual({ phone: "2#1" });
    // After a call that failed inline, the next one ran on the isolate's own thread.
    expect(sandbox.inline).toMatchObject({ inlineCalls: 2, longInlineCalls: longBefore + 1 });
  });

  it("a heap bomb fails with memory, and the next call runs on a rebuilt isolate", async () => {
    const bomb = `need_registration() { const hoard: string[] = []; for (;;) hoard.push("x".repeat(1024) + hoard.length); }`;
    const sandbox = await sandboxes.load(counting(bomb, "{ timeoutMs: 5000, memoryMb: 16 }"), inlineAtOnce);
    expect(dataOf(await sandbox.invoke(phone(1)))).toEqual({ phone: "1#1" });
    expect(failureOf(await sandbox.invoke(request("need_registration")))).toMatchObject({
      reason: "memory",
      message: "The script ran out of its heap of 16 MB",
    });
    expect(dataOf(await sandbox.invoke(phone(2)))).toEqual({ phone: "2#1" });
  });

  it("a script that throws or returns what a hook does not take fails as on its own thread", async () => {
    const source = `${HEADER}export default defineScript({ hooks: { need_registration(input: any) { if (input.throw) throw new RangeError("no"); return input.bad ? (null as any) : { result: true }; } } });\n`;
    const [inline, hop] = await Promise.all([sandboxes.load(source, inlineAtOnce), sandboxes.load(source, { ...sandboxOptions(), inline: false })]);
    for (const input of [{ throw: true }, { bad: true }, {}]) {
      const [a, b] = [await inline.invoke(request("need_registration", { input })), await hop.invoke(request("need_registration", { input }))];
      expect({ outcome: a.outcome, logs: a.logs }).toEqual({ outcome: b.outcome, logs: b.logs });
    }
    // The first call at least ran inline (a cold call of 10 ms or more sends the next to its thread).
    expect(inline.inline.inlineCalls).toBeGreaterThanOrEqual(1);
    expect(hop.inline.inlineCalls).toBe(0);
  });

  it("what a script sees of its own stack is the same on either thread: its frames and the sandbox's, no host file", async () => {
    const source =
      `${HEADER}export default defineScript({ hooks: { need_registration() {\n` +
      `  const stack = String(new Error("here").stack).split("\\n").slice(1).map((line) => line.trim().replace(/:\\d+:\\d+\\)?$/, ""));\n` +
      `  return { result: true, note: stack.join(" | ") } as any;\n` +
      `} } });\n`;
    const [inline, hop] = await Promise.all([sandboxes.load(source, inlineAtOnce), sandboxes.load(source, { ...sandboxOptions(), inline: false })]);
    const [a, b] = [await inline.invoke(request()), await hop.invoke(request())];
    expect(a.outcome).toEqual(b.outcome);
    expect(JSON.stringify(a.outcome)).not.toMatch(/node:|node_modules|\/dist\/|runtime\//);
    expect(inline.inline.inlineCalls).toBe(1);
  });

  it("never for a script that sent a fetch/kv request: its calls wait for the host", async () => {
    const source = `${HEADER}export default defineScript({ hooks: { async need_registration(_input, ctx) { await ctx.kv.get("k").catch(() => null); return { result: true }; } } });\n`;
    const sandbox = await sandboxes.load(source, inlineAtOnce);
    for (let n = 0; n < 20; n++) expect(dataOf(await sandbox.invoke(request()))).toEqual({ result: true });
    // The first call ran inline (nothing was known of the script yet); it waited for the host, and the rest did not.
    expect(sandbox.inline.inlineCalls).toBe(1);
  });

  it("never when the call's time limit would end past the request's deadline (nothing else runs on that thread meanwhile)", async () => {
    const sandbox = await sandboxes.load(counting(), inlineAtOnce);
    const deadlineAt = (ms: number) => ({ ...phone(1), deadlineAt: performance.now() + ms });
    await sandbox.invoke(deadlineAt(50));
    expect(sandbox.inline.inlineCalls).toBe(0);
    await sandbox.invoke(deadlineAt(60_000));
    expect(sandbox.inline.inlineCalls).toBe(1);
  });

  it("never while the event loop is busy (serve's watchLoopLoad): the isolate's thread works beside it", async () => {
    let busy = true;
    const sandbox = await sandboxes.load(counting(), { ...inlineAtOnce, loopBusy: () => busy });
    expect(answers(await phones(sandbox, 1, 10))).toEqual(Array.from({ length: 10 }, (_, i) => `${i + 1}#${i + 1}`));
    expect(sandbox.inline.inlineCalls).toBe(0);
    busy = false;
    expect(dataOf(await sandbox.invoke(phone(11)))).toEqual({ phone: "11#11" });
    expect(sandbox.inline.inlineCalls).toBe(1);
  });

  it("watchLoopLoad: busy after the loop ran without a pause for a whole window, idle after it waited for one", async () => {
    const load = watchLoopLoad();
    try {
      const spin = (ms: number) => {
        for (const until = performance.now() + ms; performance.now() < until;);
      };
      // The timer reads the window that just ended: a spin longer than two windows fills one.
      spin(250);
      await new Promise((resolve) => setTimeout(resolve, 0));
      spin(250);
      await new Promise((resolve) => setTimeout(resolve, 0));
      expect(load.busy).toBe(true);
      expect(load.quiet).toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 350));
      expect(load.busy).toBe(false);
      expect(load.quiet).toBe(true);
    } finally {
      load.close();
    }
  });

  it("watchLoopLoad, counting its server's connections: a busy loop with one connection open is not busy for calls (no other request can wait); with two it is", async () => {
    const load = watchLoopLoad();
    const server = createServer();
    load.countConnections(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as AddressInfo;
    const sockets: Socket[] = [];
    /** A client connection, once the server has counted it; `closed` once the server saw it close. */
    const connect = async () => {
      const accepted = new Promise<Socket>((resolve) => server.once("connection", resolve));
      sockets.push(createConnection(port, "127.0.0.1"));
      const serverSide = await accepted;
      return { closed: new Promise((resolve) => serverSide.once("close", resolve)) };
    };
    // As in the test above: two spins of more than two windows leave the last window full.
    const spinTwice = async () => {
      for (let i = 0; i < 2; i++) {
        for (const until = performance.now() + 250; performance.now() < until;);
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
    };
    try {
      await spinTwice();
      expect(load.busy).toBe(false);
      await connect();
      await spinTwice();
      expect(load.busy).toBe(false);
      expect(load.quiet).toBe(false);
      const second = await connect();
      await spinTwice();
      expect(load.busy).toBe(true);
      sockets.pop()!.destroy();
      await second.closed;
      await spinTwice();
      expect(load.busy).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      load.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("watchLoopLoad: a loop at work half of the time is neither busy nor quiet (no room for the compiler's warm-up)", async () => {
    const load = watchLoopLoad();
    try {
      const seen = { busy: 0, quiet: 0, windows: 0 };
      // Half work, half wait, for several windows; a wait that a loaded machine stretches only
      // lowers the share, and it stays far above a fifth while each wait lasts under 120 ms.
      for (const until = performance.now() + 600; performance.now() < until;) {
        for (const spinUntil = performance.now() + 25; performance.now() < spinUntil;);
        await new Promise((resolve) => setTimeout(resolve, 25));
        seen.windows++;
        if (seen.windows > 4) {
          if (load.busy) seen.busy++;
          if (load.quiet) seen.quiet++;
        }
      }
      expect(seen.windows).toBeGreaterThan(5);
      expect(seen).toMatchObject({ busy: 0, quiet: 0 });
    } finally {
      load.close();
    }
  });

  it("calls awaited one after another still let the event loop turn (its timers and I/O are not starved)", async () => {
    const sandbox = await sandboxes.load(counting(), inlineAtOnce);
    let turned = -1;
    setImmediate(() => (turned = sandbox.inline.inlineCalls));
    for (let n = 1; n <= 100; n++) expect(dataOf(await sandbox.invoke(phone(n)))).toEqual({ phone: `${n}#${n}` });
    expect(sandbox.inline.inlineCalls).toBeGreaterThan(64);
    // The loop reached its check phase while the calls went on, not after the last of them.
    expect(turned).toBeGreaterThan(0);
    expect(turned).toBeLessThan(100);
  });

  it("never with inline: false (config inlineCalls)", async () => {
    const sandbox = await sandboxes.load(counting(), { ...sandboxOptions({}, 64), inline: false, inlineAfter: 0 });
    const results = await phones(sandbox, 1, 40);
    expect(answers(results)).toEqual(Array.from({ length: 40 }, (_, i) => `${i + 1}#${i + 1}`));
    expect(sandbox.inline.inlineCalls).toBe(0);
  });
});
