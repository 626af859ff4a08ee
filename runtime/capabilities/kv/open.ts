import type { KvLocation } from "../config.js";
import type { KvBackend } from "./backend.js";
import { SqliteKvBackend } from "./sqlite.js";

export interface OpenKvOptions {
  sweepSeconds?: number;
  /** Connection trouble of a shared store (Redis), for the server log. */
  onEvent?: (event: { kind: "error" | "ready"; message: string }) => void;
  /** How long to wait for a first Redis connection before serving without it. */
  redisWaitMs?: number;
}

/**
 * The backend a `kv.url` names. SQLite opens at once (a problem with the file is a startup error);
 * Redis is returned even when not reachable yet (`ready: false`), reconnecting in the background.
 */
export async function openKvBackend(location: KvLocation, options: OpenKvOptions = {}): Promise<{ backend: KvBackend; ready: boolean }> {
  if (location.kind === "sqlite") {
    return { backend: new SqliteKvBackend({ file: location.file, sweepSeconds: options.sweepSeconds }), ready: true };
  }
  // Imported when a config names Redis: its client is 70 ms of every start that does not (bench/scale.mjs).
  const { RedisKvBackend } = await import("./redis.js");
  return RedisKvBackend.open({ url: location.url, shown: location.shown, onEvent: options.onEvent }, options.redisWaitMs);
}
