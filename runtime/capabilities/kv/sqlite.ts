import { mkdirSync } from "node:fs";
import path from "node:path";
import { counterOf, MAX_COUNTER, type KvBackend, type KvRefusal } from "./backend.js";
import { openSqlite, type SqliteDatabase, type SqliteDriverName, type SqliteStatement } from "./sqlite-driver.js";

/**
 * KV in an SQLite file (the default: embedded, nothing to run). WAL journal, so that reads do not
 * wait for a write; each write a short IMMEDIATE transaction, so that the check of the key count
 * and the write are one step even with a second process on the file. An expired key is deleted
 * when it is read, and a periodic sweep deletes the rest. For several instances, use Redis: the
 * file is meant for one.
 */

export interface SqliteKvOptions {
  file: string;
  /** Seconds between sweeps of expired keys. */
  sweepSeconds?: number;
  driver?: SqliteDriverName;
  now?: () => number;
}

const SCHEMA_VERSION = 1;

export class SqliteKvBackend implements KvBackend {
  readonly description: string;
  private readonly db: SqliteDatabase;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly statements: Record<"select" | "upsert" | "remove" | "count" | "sweep", SqliteStatement>;

  constructor(options: SqliteKvOptions) {
    mkdirSync(path.dirname(options.file), { recursive: true });
    const opened = openSqlite(options.file, options.driver);
    this.db = opened.db;
    this.description = `sqlite (${opened.driver}) ${options.file}`;
    this.now = options.now ?? Date.now;
    this.db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000;");
    const version = (this.db.prepare("PRAGMA user_version").get() as { user_version: number }).user_version;
    if (version > SCHEMA_VERSION) {
      this.db.close();
      throw new Error(`${options.file} was written by a newer callscript (kv schema ${version}; this one knows ${SCHEMA_VERSION})`);
    }
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        expires_at INTEGER,
        PRIMARY KEY (namespace, key)
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS kv_expiry ON kv (expires_at) WHERE expires_at IS NOT NULL;
      PRAGMA user_version = ${SCHEMA_VERSION};
    `);
    this.statements = {
      select: this.db.prepare("SELECT value, expires_at FROM kv WHERE namespace = ? AND key = ?"),
      upsert: this.db.prepare(
        "INSERT INTO kv (namespace, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
      ),
      remove: this.db.prepare("DELETE FROM kv WHERE namespace = ? AND key = ?"),
      count: this.db.prepare("SELECT count(*) AS n FROM kv WHERE namespace = ? AND (expires_at IS NULL OR expires_at > ?)"),
      sweep: this.db.prepare("DELETE FROM kv WHERE (namespace, key) IN (SELECT namespace, key FROM kv WHERE expires_at <= ? LIMIT 1000)"),
    };
    this.sweeper = setInterval(() => this.sweep(), (options.sweepSeconds ?? 60) * 1000).unref();
  }

  /** Deletes expired keys, a thousand at a time; returns how many. */
  sweep(): number {
    let total = 0;
    for (;;) {
      const { changes } = this.statements.sweep.run(this.now());
      total += Number(changes);
      if (Number(changes) < 1000) return total;
    }
  }

  private transaction<T>(work: () => T): T {
    this.db.exec("BEGIN IMMEDIATE");
    try {
      const result = work();
      this.db.exec("COMMIT");
      return result;
    } catch (error) {
      this.db.exec("ROLLBACK");
      throw error;
    }
  }

  /** The live row, an expired one deleted. */
  private live(namespace: string, key: string, now: number): { value: string; expires_at: number | null } | undefined {
    const row = this.statements.select.get(namespace, key) as { value: string; expires_at: number | null } | undefined;
    if (row && row.expires_at !== null && row.expires_at <= now) {
      this.statements.remove.run(namespace, key);
      return undefined;
    }
    return row;
  }

  private full(namespace: string, now: number, maxKeys: number): boolean {
    return (this.statements.count.get(namespace, now) as { n: number }).n >= maxKeys;
  }

  async get(namespace: string, key: string): Promise<string | undefined> {
    const now = this.now();
    const row = this.statements.select.get(namespace, key) as { value: string; expires_at: number | null } | undefined;
    if (!row) return undefined;
    if (row.expires_at !== null && row.expires_at <= now) {
      this.transaction(() => this.live(namespace, key, now));
      return undefined;
    }
    return row.value;
  }

  async set(namespace: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<KvRefusal | undefined> {
    return this.transaction(() => {
      const now = this.now();
      if (!this.live(namespace, key, now) && this.full(namespace, now, maxKeys)) return "too-many-keys";
      this.statements.upsert.run(namespace, key, json, ttlMs === undefined ? null : now + ttlMs);
      return undefined;
    });
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    return this.transaction(() => {
      const existed = this.live(namespace, key, this.now()) !== undefined;
      if (existed) this.statements.remove.run(namespace, key);
      return existed;
    });
  }

  async incr(namespace: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number | KvRefusal> {
    return this.transaction(() => {
      const now = this.now();
      const row = this.live(namespace, key, now);
      let current = 0;
      if (row) {
        const counter = counterOf(row.value);
        if (counter === undefined) return "not-a-number";
        current = counter;
      } else if (this.full(namespace, now, maxKeys)) {
        return "too-many-keys";
      }
      const value = current + by;
      if (Math.abs(value) > MAX_COUNTER) return "out-of-range";
      this.statements.upsert.run(namespace, key, JSON.stringify(value), ttlMs !== undefined ? now + ttlMs : (row?.expires_at ?? null));
      return value;
    });
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.db.close();
  }
}
