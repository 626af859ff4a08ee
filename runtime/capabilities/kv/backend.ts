/**
 * A key-value backend: one namespace per script, values stored as JSON text, expiry in
 * milliseconds. Limits on sizes and operations are checked in front of it (store.ts); what only
 * the backend can check atomically (how many live keys a namespace holds, whether a value is an
 * integer to increment) it answers as a refusal, never an exception. An exception is a fault of
 * the store (down, full, corrupt).
 */

export type KvRefusal = "too-many-keys" | "not-a-number" | "out-of-range";

export interface KvBackend {
  /** `sqlite (better-sqlite3 12.x) /var/lib/callscript/kv.sqlite`, `redis redis://127.0.0.1:6379/0`: for logs. */
  readonly description: string;
  /** The JSON text, or undefined when absent or expired. */
  get(namespace: string, key: string, signal: AbortSignal): Promise<string | undefined>;
  /** Replaces the value; `ttlMs` undefined: no expiry (an existing one is cleared). */
  set(namespace: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number, signal: AbortSignal): Promise<KvRefusal | undefined>;
  /** Whether a live key was deleted. */
  delete(namespace: string, key: string, signal: AbortSignal): Promise<boolean>;
  /**
   * Adds `by` to the integer at `key` (0 when absent) and returns the new value; `ttlMs` given: the
   * key expires that long after this call; undefined: an existing expiry is kept (INCRBY, then
   * EXPIRE only when asked).
   */
  incr(namespace: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number, signal: AbortSignal): Promise<number | KvRefusal>;
  close(): Promise<void>;
}

/** Integers a script's incr may reach: JSON numbers that stay exact in JavaScript. */
export const MAX_COUNTER = Number.MAX_SAFE_INTEGER;

/** A stored JSON text that incr may add to: an integer, as JSON.stringify writes one. */
export function counterOf(json: string): number | undefined {
  if (!/^-?\d{1,16}$/.test(json)) return undefined;
  const value = Number(json);
  return Number.isSafeInteger(value) ? value : undefined;
}
