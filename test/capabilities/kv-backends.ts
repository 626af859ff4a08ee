import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { kvConfigSchema, type KvConfig } from "../../runtime/capabilities/config.js";
import type { KvBackend } from "../../runtime/capabilities/kv/backend.js";
import { MemoryKvBackend } from "../../runtime/capabilities/kv/memory.js";
import { RedisKvBackend } from "../../runtime/capabilities/kv/redis.js";
import { availableSqliteDrivers } from "../../runtime/capabilities/kv/sqlite-driver.js";
import { SqliteKvBackend } from "../../runtime/capabilities/kv/sqlite.js";
import { KvStore } from "../../runtime/capabilities/kv/store.js";
import { redisAvailable, startRedisServer, type RedisServer } from "../helpers/redis-server.js";

/**
 * The KV backends every shared suite runs against: memory (the runner), SQLite with each driver
 * that loads on this Node (better-sqlite3 on Node 20; node:sqlite on 22.13+), and a real
 * redis-server started for the suite.
 */

export interface BackendUnderTest {
  name: string;
  /** A fresh backend on shared storage: a second one sees what the first wrote. */
  open(): Promise<KvBackend>;
  /** Stops what the suite started. */
  cleanup(): Promise<void>;
}

export function kvBackendsUnderTest(suite: string): BackendUnderTest[] {
  const backends: BackendUnderTest[] = [];
  const memory = new MemoryKvBackend();
  backends.push({ name: "memory", open: async () => memory, cleanup: async () => {} });
  const drivers = availableSqliteDrivers();
  if (drivers.length === 0) throw new Error(`${suite}: no SQLite driver loads on Node ${process.versions.node}`);
  for (const driver of drivers) {
    const dir = mkdtempSync(path.join(tmpdir(), "callscript-kv-"));
    const opened: KvBackend[] = [];
    backends.push({
      name: `sqlite (${driver})`,
      open: async () => {
        const backend = new SqliteKvBackend({ file: path.join(dir, "kv.sqlite"), driver });
        opened.push(backend);
        return backend;
      },
      cleanup: async () => {
        for (const backend of opened) await backend.close();
        rmSync(dir, { recursive: true, force: true });
      },
    });
  }
  if (redisAvailable(suite)) {
    let server: RedisServer | undefined;
    const opened: KvBackend[] = [];
    backends.push({
      name: "redis",
      open: async () => {
        server ??= await startRedisServer();
        const { backend, ready } = await RedisKvBackend.open({ url: server.url, shown: server.url });
        if (!ready) throw new Error(`redis at ${server.url} is not ready`);
        opened.push(backend);
        return backend;
      },
      cleanup: async () => {
        for (const backend of opened) await backend.close();
        await server?.stop();
      },
    });
  }
  return backends;
}

export function kvOptions(overrides: Partial<KvConfig> = {}): KvConfig {
  return { ...kvConfigSchema.parse({}), ...overrides };
}

export function storeOn(backend: KvBackend, overrides: Partial<KvConfig> = {}): KvStore {
  return new KvStore(backend, kvOptions(overrides));
}

let unique = 0;
/** A script name no other test uses, so that tests on one shared store do not see each other. */
export function freshScript(prefix = "script"): string {
  return `${prefix}-${process.pid}-${++unique}`;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
