import { afterAll, describe, expect, it } from "vitest";
import { GrantedCapabilities } from "../../runtime/capabilities/capabilities.js";
import { LiveFetcher } from "../../runtime/capabilities/fetch.js";
import { freshScript, kvBackendsUnderTest, kvOptions, storeOn } from "../capabilities/kv-backends.js";
import { invocation } from "../capabilities/fetch-fixtures.js";

/**
 * Attacks on ctx.kv: a script that writes 10 000 keys, one that hammers the store within one
 * invocation, one that reaches for another script's keys. On every backend.
 */

const backends = kvBackendsUnderTest("test/security/capabilities-kv.test.ts");
afterAll(async () => {
  for (const under of backends) await under.cleanup();
});

describe.each(backends)("kv attacks on $name", (under) => {
  it("10 000 keys: the store keeps kv.maxKeysPerScript of them, refuses the rest, and the neighbours do not notice", async () => {
    const backend = await under.open();
    const limits = kvOptions({ maxKeysPerScript: 1_000 });
    const fetcher = new LiveFetcher();
    const caps = new GrantedCapabilities({
      grantsOf: () => ({ fetch: undefined, secrets: new Map() }),
      fetcher,
      kv: async () => storeOn(backend, limits),
      kvLimits: limits,
    });
    const attacker = freshScript("attacker");
    const neighbour = freshScript("neighbour");
    await caps.handle("kv.set", JSON.stringify({ key: "mine", value: "safe" }), invocation(neighbour));
    const outcomes = new Map<string, number>();
    // As many invocations as it takes: each may do kv.maxOpsPerInvocation operations.
    for (let start = 0; start < 10_000; start += limits.maxOpsPerInvocation) {
      const call = invocation(attacker);
      await Promise.all(
        Array.from({ length: limits.maxOpsPerInvocation }, (_, i) =>
          caps.handle("kv.set", JSON.stringify({ key: `k${start + i}`, value: "x".repeat(100) }), call).then(
            () => outcomes.set("ok", (outcomes.get("ok") ?? 0) + 1),
            (error: { code: string }) => outcomes.set(error.code, (outcomes.get(error.code) ?? 0) + 1),
          ),
        ),
      );
    }
    expect(Object.fromEntries(outcomes)).toEqual({ ok: 1_000, CS_CAP_KV_TOO_MANY_KEYS: 9_000 });
    // What it has still works; the neighbour's keys and room are untouched.
    expect(await caps.handle("kv.set", JSON.stringify({ key: "k0", value: "updated" }), invocation(attacker))).toBe("{}");
    expect(JSON.parse(await caps.handle("kv.get", JSON.stringify({ key: "mine" }), invocation(neighbour)))).toEqual({ found: true, value: "safe" });
    expect(await caps.handle("kv.set", JSON.stringify({ key: "more", value: 1 }), invocation(neighbour))).toBe("{}");
    await fetcher.close();
  }, 120_000);

  it("an invocation that loops on kv stops at kv.maxOpsPerInvocation; the next one starts again", async () => {
    const backend = await under.open();
    const limits = kvOptions({ maxOpsPerInvocation: 20 });
    const caps = new GrantedCapabilities({
      grantsOf: () => ({ fetch: undefined, secrets: new Map() }),
      fetcher: new LiveFetcher(),
      kv: async () => storeOn(backend, limits),
      kvLimits: limits,
    });
    const call = invocation(freshScript());
    const results = await Promise.allSettled(Array.from({ length: 1_000 }, () => caps.handle("kv.incr", JSON.stringify({ key: "n" }), call)));
    const refused = results.filter((result): result is PromiseRejectedResult => result.status === "rejected").map((result) => (result.reason as Error).message);
    expect(results.length - refused.length).toBe(20);
    expect(new Set(refused)).toEqual(new Set(["kv.incr: more than 20 kv operations in one invocation (kv.maxOpsPerInvocation)"]));
    expect(JSON.parse(await caps.handle("kv.get", JSON.stringify({ key: "n" }), invocation(call.script)))).toEqual({ found: true, value: 20 });
  });

  it("a script cannot name its way into another script's keys", async () => {
    const backend = await under.open();
    const store = storeOn(backend);
    const victim = freshScript("victim");
    await store.handle("kv.set", JSON.stringify({ key: "token", value: "victim's" }), victim, new AbortController().signal);
    const signal = new AbortController().signal;
    for (const key of [`${victim}:token`, `../${victim}/token`, `{${victim}}:token`, `callscript:kv:{${encodeURIComponent(victim)}}:token`, "*", "token"]) {
      expect(JSON.parse(await store.handle("kv.get", JSON.stringify({ key }), freshScript("thief"), signal)), key).toEqual({ found: false });
    }
  });
});
