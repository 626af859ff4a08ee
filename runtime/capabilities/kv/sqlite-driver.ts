import { createRequire } from "node:module";

/**
 * The SQLite library under the SQLite backend: better-sqlite3 12.x where its native binary loads
 * (Node 20 builds it from source at install; 13.x needs Node 22), else Node's own node:sqlite
 * (Node 22.13 and later), so that a server installed without install scripts (the container
 * image) or whose better-sqlite3 was built for another Node still has its embedded store. Both are
 * synchronous and share the small surface used here.
 */

export interface SqliteStatement {
  run(...params: (string | number | null)[]): { changes: number | bigint };
  get(...params: (string | number | null)[]): unknown;
}

export interface SqliteDatabase {
  exec(sql: string): void;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

export type SqliteDriverName = "better-sqlite3" | "node:sqlite";

export interface OpenedSqlite {
  db: SqliteDatabase;
  /** `better-sqlite3 12.11.1`, `node:sqlite (Node 24.21.0)`. */
  driver: string;
}

const require = createRequire(import.meta.url);

function openBetterSqlite(file: string): OpenedSqlite {
  const Database = require("better-sqlite3") as typeof import("better-sqlite3");
  const db = new Database(file);
  const version = (require("better-sqlite3/package.json") as { version: string }).version;
  return { db: db as unknown as SqliteDatabase, driver: `better-sqlite3 ${version}` };
}

function openNodeSqlite(file: string): OpenedSqlite {
  // Not in @types/node 20: typed by the surface used.
  const { DatabaseSync } = getBuiltinModule!("node:sqlite") as { DatabaseSync: new (file: string) => SqliteDatabase };
  return { db: new DatabaseSync(file), driver: `node:sqlite (Node ${process.versions.node})` };
}

const getBuiltinModule = process.getBuiltinModule?.bind(process) as ((id: string) => unknown) | undefined;

function nodeSqliteAvailable(): boolean {
  try {
    return getBuiltinModule?.("node:sqlite") !== undefined;
  } catch {
    return false;
  }
}

/** Whether better-sqlite3's native binary loads here; the reason when it does not. */
function betterSqliteLoads(): true | string {
  try {
    const Database = require("better-sqlite3") as typeof import("better-sqlite3");
    new Database(":memory:").close();
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "MODULE_NOT_FOUND"
      ? "better-sqlite3 is not installed"
      : `better-sqlite3 does not load (${(error as Error).message.split("\n")[0]})`;
  }
}

/** The drivers that load in this process, in the order they are tried. */
export function availableSqliteDrivers(): SqliteDriverName[] {
  const found: SqliteDriverName[] = [];
  if (betterSqliteLoads() === true) found.push("better-sqlite3");
  if (nodeSqliteAvailable()) found.push("node:sqlite");
  return found;
}

/** Opens `file` with the first driver that loads (or the one asked for); says why none did. */
export function openSqlite(file: string, driver?: SqliteDriverName): OpenedSqlite {
  if (driver === "better-sqlite3") return openBetterSqlite(file);
  if (driver === "node:sqlite") return openNodeSqlite(file);
  const better = betterSqliteLoads();
  if (better === true) return openBetterSqlite(file);
  if (nodeSqliteAvailable()) return openNodeSqlite(file);
  throw new Error(
    `SQLite is not available: ${better}, and this Node (${process.versions.node}) has no node:sqlite (22.13 or later). Install better-sqlite3 with its install script allowed (allowScripts in package.json), run Node 22.13 or later, or set kv.url to a redis:// URL`,
  );
}
