import { counterOf, MAX_COUNTER, type KvBackend, type KvRefusal } from "./backend.js";

/**
 * KV in memory, for the runner's canned runs (callscript run/test/simulate/replay): the same
 * semantics as SQLite and Redis (the shared suite in test/capabilities/kv.test.ts runs on all
 * three), nothing kept after the process.
 */

interface Entry {
  json: string;
  expiresAt: number | undefined;
}

export class MemoryKvBackend implements KvBackend {
  readonly description = "memory";
  private readonly spaces = new Map<string, Map<string, Entry>>();

  constructor(private readonly now: () => number = Date.now) {}

  private live(namespace: string, key: string): Entry | undefined {
    const space = this.spaces.get(namespace);
    const entry = space?.get(key);
    if (entry?.expiresAt !== undefined && entry.expiresAt <= this.now()) {
      space!.delete(key);
      return undefined;
    }
    return entry;
  }

  /** Live keys of a namespace, expired ones deleted on the way. */
  private count(namespace: string): number {
    const space = this.spaces.get(namespace);
    if (!space) return 0;
    const now = this.now();
    for (const [key, entry] of space) if (entry.expiresAt !== undefined && entry.expiresAt <= now) space.delete(key);
    return space.size;
  }

  private put(namespace: string, key: string, entry: Entry): void {
    let space = this.spaces.get(namespace);
    if (!space) this.spaces.set(namespace, (space = new Map()));
    space.set(key, entry);
  }

  async get(namespace: string, key: string): Promise<string | undefined> {
    return this.live(namespace, key)?.json;
  }

  async set(namespace: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number): Promise<KvRefusal | undefined> {
    if (!this.live(namespace, key) && this.count(namespace) >= maxKeys) return "too-many-keys";
    this.put(namespace, key, { json, expiresAt: ttlMs === undefined ? undefined : this.now() + ttlMs });
    return undefined;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    const existed = this.live(namespace, key) !== undefined;
    this.spaces.get(namespace)?.delete(key);
    return existed;
  }

  async incr(namespace: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number): Promise<number | KvRefusal> {
    const entry = this.live(namespace, key);
    let current = 0;
    if (entry) {
      const counter = counterOf(entry.json);
      if (counter === undefined) return "not-a-number";
      current = counter;
    } else if (this.count(namespace) >= maxKeys) {
      return "too-many-keys";
    }
    const value = current + by;
    if (Math.abs(value) > MAX_COUNTER) return "out-of-range";
    const expiresAt = ttlMs !== undefined ? this.now() + ttlMs : entry?.expiresAt;
    this.put(namespace, key, { json: JSON.stringify(value), expiresAt });
    return value;
  }

  /** Every live key and value of a namespace (for the runner's report). */
  snapshot(namespace: string): Record<string, unknown> {
    this.count(namespace);
    const out: Record<string, unknown> = {};
    for (const [key, entry] of this.spaces.get(namespace) ?? []) out[key] = JSON.parse(entry.json);
    return out;
  }

  async close(): Promise<void> {
    this.spaces.clear();
  }
}
