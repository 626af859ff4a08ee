import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CapabilityError } from "../../runtime/capabilities/errors.js";
import type { KvBackend } from "../../runtime/capabilities/kv/backend.js";
import type { KvOp, KvStore } from "../../runtime/capabilities/kv/store.js";
import { freshScript, kvBackendsUnderTest, sleep, storeOn } from "./kv-backends.js";

/** One suite, every backend: the same answers from memory, SQLite and Redis. */

const backends = kvBackendsUnderTest("test/capabilities/kv.test.ts");
afterAll(async () => {
  for (const under of backends) await under.cleanup();
});

const signal = () => new AbortController().signal;

async function kv(store: KvStore, script: string, op: KvOp, payload: unknown): Promise<unknown> {
  return JSON.parse(await store.handle(op, JSON.stringify(payload), script, signal()));
}

async function refused(store: KvStore, script: string, op: KvOp, payload: unknown): Promise<CapabilityError> {
  try {
    await store.handle(op, typeof payload === "string" ? payload : JSON.stringify(payload), script, signal());
  } catch (error) {
    expect(error).toBeInstanceOf(CapabilityError);
    return error as CapabilityError;
  }
  throw new Error(`${op} ${JSON.stringify(payload)} was not refused`);
}

describe.each(backends)("kv on $name", (under) => {
  let backend: KvBackend;
  let store: KvStore;
  beforeAll(async () => {
    backend = await under.open();
    store = storeOn(backend);
  });

  it("answers found: false for a key never set, and JSON values as they were set", async () => {
    const script = freshScript();
    expect(await kv(store, script, "kv.get", { key: "nothing" })).toEqual({ found: false });
    const values = ["+79001234567", 42, -1.5, true, null, [1, "two", { three: 3 }], { nested: { list: [], text: "привет ✓" } }];
    for (const [index, value] of values.entries()) {
      expect(await kv(store, script, "kv.set", { key: `k${index}`, value })).toEqual({});
      expect(await kv(store, script, "kv.get", { key: `k${index}` })).toEqual({ found: true, value });
    }
  });

  it("replaces a value on set, and a set without ttlSeconds clears an earlier expiry", async () => {
    const script = freshScript();
    await kv(store, script, "kv.set", { key: "k", value: "first", ttlSeconds: 0.2 });
    await kv(store, script, "kv.set", { key: "k", value: "second" });
    await sleep(400);
    expect(await kv(store, script, "kv.get", { key: "k" })).toEqual({ found: true, value: "second" });
  });

  it("forgets a key once its ttlSeconds have passed, and keeps it before", async () => {
    const script = freshScript();
    await kv(store, script, "kv.set", { key: "short", value: 1, ttlSeconds: 0.2 });
    await kv(store, script, "kv.set", { key: "long", value: 2, ttlSeconds: 3600 });
    await sleep(400);
    expect(await kv(store, script, "kv.get", { key: "short" })).toEqual({ found: false });
    expect(await kv(store, script, "kv.get", { key: "long" })).toEqual({ found: true, value: 2 });
    expect(await kv(store, script, "kv.delete", { key: "short" })).toEqual({ deleted: false });
  });

  it("deletes: true for a live key, false for an absent one", async () => {
    const script = freshScript();
    await kv(store, script, "kv.set", { key: "k", value: "v" });
    expect(await kv(store, script, "kv.delete", { key: "k" })).toEqual({ deleted: true });
    expect(await kv(store, script, "kv.delete", { key: "k" })).toEqual({ deleted: false });
    expect(await kv(store, script, "kv.get", { key: "k" })).toEqual({ found: false });
  });

  it("increments from 0, by any integer, and refuses what is not an integer", async () => {
    const script = freshScript();
    expect(await kv(store, script, "kv.incr", { key: "turn" })).toEqual({ value: 1 });
    expect(await kv(store, script, "kv.incr", { key: "turn" })).toEqual({ value: 2 });
    expect(await kv(store, script, "kv.incr", { key: "turn", by: 10 })).toEqual({ value: 12 });
    expect(await kv(store, script, "kv.incr", { key: "turn", by: -20 })).toEqual({ value: -8 });
    expect(await kv(store, script, "kv.get", { key: "turn" })).toEqual({ found: true, value: -8 });
    await kv(store, script, "kv.set", { key: "set-number", value: 41 });
    expect(await kv(store, script, "kv.incr", { key: "set-number" })).toEqual({ value: 42 });
    for (const value of ["5", 1.5, { n: 1 }, null, true]) {
      await kv(store, script, "kv.set", { key: "text", value });
      const error = await refused(store, script, "kv.incr", { key: "text" });
      expect(error.code).toBe("CS_CAP_KV_NOT_A_NUMBER");
      expect(error.message).toBe("kv.incr: the value at 'text' is not an integer");
    }
    expect((await refused(store, script, "kv.incr", { key: "turn", by: 0.5 })).code).toBe("CS_CAP_BAD_REQUEST");
  });

  it("refuses an increment past Number.MAX_SAFE_INTEGER and leaves the value as it was", async () => {
    const script = freshScript();
    await kv(store, script, "kv.set", { key: "big", value: Number.MAX_SAFE_INTEGER - 1 });
    expect(await kv(store, script, "kv.incr", { key: "big" })).toEqual({ value: Number.MAX_SAFE_INTEGER });
    const error = await refused(store, script, "kv.incr", { key: "big" });
    expect(error.message).toContain("would go past ±9007199254740991");
    expect(await kv(store, script, "kv.get", { key: "big" })).toEqual({ found: true, value: Number.MAX_SAFE_INTEGER });
  });

  it("incr with ttlSeconds sets the expiry; without, it keeps the one the key has", async () => {
    const script = freshScript();
    expect(await kv(store, script, "kv.incr", { key: "window", ttlSeconds: 0.2 })).toEqual({ value: 1 });
    await kv(store, script, "kv.set", { key: "kept", value: 5, ttlSeconds: 0.2 });
    expect(await kv(store, script, "kv.incr", { key: "kept" })).toEqual({ value: 6 });
    await kv(store, script, "kv.incr", { key: "forever" });
    await sleep(400);
    expect(await kv(store, script, "kv.get", { key: "window" })).toEqual({ found: false });
    expect(await kv(store, script, "kv.get", { key: "kept" })).toEqual({ found: false });
    expect(await kv(store, script, "kv.get", { key: "forever" })).toEqual({ found: true, value: 1 });
    expect(await kv(store, script, "kv.incr", { key: "window" })).toEqual({ value: 1 });
  });

  it("increments atomically: 40 concurrent incr give 40", async () => {
    const script = freshScript();
    const results = await Promise.all(Array.from({ length: 40 }, () => kv(store, script, "kv.incr", { key: "n" })));
    expect(results.map((result) => (result as { value: number }).value).sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(await kv(store, script, "kv.get", { key: "n" })).toEqual({ found: true, value: 40 });
  });

  it("keeps each script's keys apart", async () => {
    const [a, b] = [freshScript("a"), freshScript("b")];
    await kv(store, a, "kv.set", { key: "shared-name", value: "a's" });
    expect(await kv(store, b, "kv.get", { key: "shared-name" })).toEqual({ found: false });
    await kv(store, b, "kv.set", { key: "shared-name", value: "b's" });
    expect(await kv(store, b, "kv.delete", { key: "shared-name" })).toEqual({ deleted: true });
    expect(await kv(store, a, "kv.get", { key: "shared-name" })).toEqual({ found: true, value: "a's" });
    // Names that would collide if namespaces were joined naively.
    await kv(store, "x:y", "kv.set", { key: "z", value: 1 });
    expect(await kv(store, "x", "kv.get", { key: "y:z" })).toEqual({ found: false });
    expect(await kv(store, "x}", "kv.get", { key: "z" })).toEqual({ found: false });
  });

  it("bounds keys and values in bytes, and names the config key", async () => {
    const script = freshScript();
    const small = storeOn(backend, { maxKeyBytes: 8, maxValueBytes: 16 });
    expect(await kv(small, script, "kv.set", { key: "12345678", value: "0123456789abcd" })).toEqual({});
    const longKey = await refused(small, script, "kv.set", { key: "123456789", value: 1 });
    expect(longKey.code).toBe("CS_CAP_KV_KEY");
    expect(longKey.message).toBe("kv.set: a key is a string of 1 to 8 bytes (kv.maxKeyBytes); this one has 9");
    // Bytes, not characters: three Cyrillic letters are 6 bytes, five are 10.
    expect(await kv(small, script, "kv.get", { key: "при" })).toEqual({ found: false });
    expect((await refused(small, script, "kv.get", { key: "привет" })).code).toBe("CS_CAP_KV_KEY");
    expect((await refused(small, script, "kv.get", { key: "" })).code).toBe("CS_CAP_KV_KEY");
    expect((await refused(small, script, "kv.get", '{"key":"\\ud800"}')).message).toContain("not valid Unicode");
    const big = await refused(small, script, "kv.set", { key: "k", value: "0123456789abcdef" });
    expect(big.code).toBe("CS_CAP_KV_VALUE");
    expect(big.message).toBe("kv.set: the value is 18 bytes as JSON, over kv.maxValueBytes (16)");
    expect(await kv(small, script, "kv.get", { key: "k" })).toEqual({ found: false });
  });

  it("refuses malformed payloads with the shape it expects", async () => {
    const script = freshScript();
    expect((await refused(store, script, "kv.set", { key: "k" })).message).toBe("kv.set: needs a value (kv.delete removes a key)");
    expect((await refused(store, script, "kv.set", { key: "k", value: 1, ttlSeconds: -1 })).message).toMatch(
      /^kv\.set: expects \{ key: string, value: JSON value, ttlSeconds/,
    );
    expect((await refused(store, script, "kv.get", { key: 5 })).code).toBe("CS_CAP_BAD_REQUEST");
    expect((await refused(store, script, "kv.get", "not json")).code).toBe("CS_CAP_BAD_REQUEST");
    expect((await refused(store, script, "kv.delete", { key: "k", extra: true })).code).toBe("CS_CAP_BAD_REQUEST");
  });

  it("bounds the live keys of a script: a new key past kv.maxKeysPerScript is refused, updates, deletes and expiry make room", async () => {
    const script = freshScript();
    const other = freshScript("other");
    const three = storeOn(backend, { maxKeysPerScript: 3 });
    for (const key of ["a", "b", "c"]) await kv(three, script, "kv.set", { key, value: key });
    const error = await refused(three, script, "kv.set", { key: "d", value: "d" });
    expect(error.code).toBe("CS_CAP_KV_TOO_MANY_KEYS");
    expect(error.message).toBe(`kv.set: ${script} already has 3 keys (kv.maxKeysPerScript): delete some, give them a ttlSeconds, or raise kv.maxKeysPerScript`);
    expect((await refused(three, script, "kv.incr", { key: "counter" })).code).toBe("CS_CAP_KV_TOO_MANY_KEYS");
    expect(await kv(three, script, "kv.set", { key: "a", value: "updated" })).toEqual({});
    expect(await kv(three, other, "kv.set", { key: "d", value: "other script" })).toEqual({});
    await kv(three, script, "kv.delete", { key: "a" });
    expect(await kv(three, script, "kv.set", { key: "d", value: "d", ttlSeconds: 0.2 })).toEqual({});
    expect((await refused(three, script, "kv.set", { key: "e", value: "e" })).code).toBe("CS_CAP_KV_TOO_MANY_KEYS");
    await sleep(400);
    expect(await kv(three, script, "kv.set", { key: "e", value: "e" })).toEqual({});
    expect(await kv(three, script, "kv.get", { key: "d" })).toEqual({ found: false });
  });

  it("shares state between two backends on the same storage (another instance, or a restart)", async () => {
    const script = freshScript();
    await kv(store, script, "kv.set", { key: "k", value: { from: "first" } });
    await kv(store, script, "kv.incr", { key: "n", by: 3 });
    const second = storeOn(await under.open());
    expect(await kv(second, script, "kv.get", { key: "k" })).toEqual({ found: true, value: { from: "first" } });
    expect(await kv(second, script, "kv.incr", { key: "n" })).toEqual({ value: 4 });
    expect(await kv(store, script, "kv.get", { key: "n" })).toEqual({ found: true, value: 4 });
  });

  it("answers CS_CAP_ABORTED once the invocation has ended", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(store.handle("kv.get", JSON.stringify({ key: "k" }), freshScript(), controller.signal)).rejects.toMatchObject({
      code: "CS_CAP_ABORTED",
      message: "kv.get: the invocation ended before the store answered",
    });
  });
});
