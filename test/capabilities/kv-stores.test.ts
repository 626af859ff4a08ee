import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RedisKvBackend } from "../../runtime/capabilities/kv/redis.js";
import { availableSqliteDrivers, openSqlite } from "../../runtime/capabilities/kv/sqlite-driver.js";
import { SqliteKvBackend } from "../../runtime/capabilities/kv/sqlite.js";
import { redisAvailable, startRedisServer } from "../helpers/redis-server.js";
import { freshScript, sleep, storeOn } from "./kv-backends.js";

/** What only one backend has: the SQLite file (WAL, sweep, driver), Redis down or hung. */

const dir = mkdtempSync(path.join(tmpdir(), "callscript-kv-stores-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const signal = () => new AbortController().signal;

describe("SQLite", () => {
  it("uses better-sqlite3 where its binary loads (Node 20), node:sqlite otherwise, and says which", () => {
    const drivers = availableSqliteDrivers();
    if (Number(process.versions.node.split(".")[0]) === 20) expect(drivers[0]).toBe("better-sqlite3");
    expect(drivers.length).toBeGreaterThan(0);
    const backend = new SqliteKvBackend({ file: path.join(dir, "which.sqlite") });
    expect(backend.description).toMatch(new RegExp(`^sqlite \\(${drivers[0] === "better-sqlite3" ? "better-sqlite3 12\\." : "node:sqlite"}.*\\) ${dir}`));
    void backend.close();
  });

  it("keeps a real file in WAL mode, creating its folder", async () => {
    const file = path.join(dir, "nested", "folder", "kv.sqlite");
    const backend = new SqliteKvBackend({ file });
    await storeOn(backend).handle("kv.set", JSON.stringify({ key: "k", value: 1 }), "s", signal());
    expect(existsSync(file)).toBe(true);
    expect(existsSync(`${file}-wal`)).toBe(true);
    await backend.close();
    const { db } = openSqlite(file);
    expect(db.prepare("PRAGMA journal_mode").get()).toEqual({ journal_mode: "wal" });
    expect({ ...(db.prepare("SELECT namespace, key, value, expires_at FROM kv").get() as object) }).toEqual({
      namespace: "s",
      key: "k",
      value: "1",
      expires_at: null,
    });
    db.close();
  });

  it("sweeps expired keys it was never asked for again", async () => {
    let now = 1_000_000;
    const backend = new SqliteKvBackend({ file: path.join(dir, "sweep.sqlite"), now: () => now });
    const store = storeOn(backend, { maxKeysPerScript: 10_000 });
    for (let i = 0; i < 2_500; i++) await backend.set("s", `old-${i}`, "1", 1_000, 10_000);
    await store.handle("kv.set", JSON.stringify({ key: "kept", value: 1 }), "s", signal());
    now += 2_000;
    expect(backend.sweep()).toBe(2_500);
    expect(backend.sweep()).toBe(0);
    expect(JSON.parse(await store.handle("kv.get", JSON.stringify({ key: "kept" }), "s", signal()))).toEqual({ found: true, value: 1 });
    await backend.close();
  });

  it("refuses a file written by a newer schema, naming it", async () => {
    const file = path.join(dir, "newer.sqlite");
    const { db } = openSqlite(file);
    db.exec("PRAGMA user_version = 99");
    db.close();
    expect(() => new SqliteKvBackend({ file })).toThrow(`${file} was written by a newer callscript (kv schema 99; this one knows 1)`);
  });

  it("answers CS_CAP_KV_UNAVAILABLE with the reason kept for the log when the file is gone from under it", async () => {
    const backend = new SqliteKvBackend({ file: path.join(dir, "closed.sqlite") });
    const store = storeOn(backend);
    await backend.close();
    const error = await store.handle("kv.get", JSON.stringify({ key: "k" }), "s", signal()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "CS_CAP_KV_UNAVAILABLE", message: "kv.get: the store is unavailable (the server log says why)" });
    expect((error as { detail: string }).detail).toMatch(/^sqlite \(.*closed\.sqlite: .+/);
  });
});

describe.runIf(redisAvailable("test/capabilities/kv-stores.test.ts"))("Redis", () => {
  it("fails fast as unavailable while Redis is down, and works again once it is back", async () => {
    const server = await startRedisServer();
    const events: string[] = [];
    const { backend, ready } = await RedisKvBackend.open({ url: server.url, shown: server.url, onEvent: (event) => events.push(event.kind) });
    expect(ready).toBe(true);
    const store = storeOn(backend);
    const script = freshScript();
    await store.handle("kv.set", JSON.stringify({ key: "k", value: 1 }), script, signal());
    await server.stop();
    const error = await store.handle("kv.get", JSON.stringify({ key: "k" }), script, signal()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "CS_CAP_KV_UNAVAILABLE", message: "kv.get: the store is unavailable (the server log says why)" });
    expect(events).toEqual(["error"]);
    const again = await startRedisServer({ port: server.port });
    try {
      // It reconnects by itself (backing off up to 2 s between tries).
      let answer: string | undefined;
      for (let i = 0; i < 100 && answer === undefined; i++) {
        answer = await store.handle("kv.incr", JSON.stringify({ key: "k" }), script, signal()).catch(() => undefined);
        if (answer === undefined) await sleep(100);
      }
      expect(answer).toBe('{"value":1}');
      expect(events).toEqual(["error", "ready"]);
    } finally {
      await backend.close();
      await again.stop();
    }
  });

  it("gives up on a hung Redis after kv.timeoutMs", async () => {
    const server = await startRedisServer();
    const { backend } = await RedisKvBackend.open({ url: server.url, shown: server.url });
    const store = storeOn(backend, { timeoutMs: 300 });
    server.pause();
    try {
      const error = await store.handle("kv.incr", JSON.stringify({ key: "k" }), freshScript(), signal()).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: "CS_CAP_KV_UNAVAILABLE", message: "kv.incr: the store did not answer within 300 ms (kv.timeoutMs)" });
    } finally {
      server.resume();
      await backend.close();
      await server.stop();
    }
  });

  it("starts without a reachable Redis (ready: false) and answers unavailable meanwhile", async () => {
    const { backend, ready } = await RedisKvBackend.open({ url: "redis://127.0.0.1:1/0", shown: "redis://127.0.0.1:1/0" }, 300);
    expect(ready).toBe(false);
    const error = await storeOn(backend)
      .handle("kv.get", JSON.stringify({ key: "k" }), "s", signal())
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: "CS_CAP_KV_UNAVAILABLE" });
    await backend.close();
  });

  it("keeps a script's keys under its hash tag, with a sorted set of them scored by expiry", async () => {
    const server = await startRedisServer();
    const { backend } = await RedisKvBackend.open({ url: server.url, shown: server.url });
    const store = storeOn(backend);
    await store.handle("kv.set", JSON.stringify({ key: "forever", value: "x" }), "vip:client", signal());
    await store.handle("kv.set", JSON.stringify({ key: "soon", value: "y", ttlSeconds: 60 }), "vip:client", signal());
    const { createClient } = await import("@redis/client");
    const client = createClient({ url: server.url });
    await client.connect();
    try {
      expect((await client.keys("*")).sort()).toEqual([
        "callscript:kv:{vip%3Aclient}:forever",
        "callscript:kv:{vip%3Aclient}:soon",
        "callscript:kvkeys:{vip%3Aclient}",
      ]);
      const scored = await client.zRangeWithScores("callscript:kvkeys:{vip%3Aclient}", 0, -1);
      expect(scored.map((entry) => entry.value)).toEqual(["soon", "forever"]);
      expect(scored[1]!.score).toBe(Number.POSITIVE_INFINITY);
      expect(await client.pTTL("callscript:kv:{vip%3Aclient}:soon")).toBeGreaterThan(50_000);
    } finally {
      await client.close();
      await backend.close();
      await server.stop();
    }
  });
});
