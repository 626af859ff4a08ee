import { createClient, type RedisClientType } from "@redis/client";
import { createHash } from "node:crypto";
import { MAX_COUNTER, type KvBackend, type KvRefusal } from "./backend.js";

/**
 * KV in Redis, so that several instances share state. Each script's keys live under
 * `callscript:kv:{<script>}:<key>`, and a sorted set `callscript:kvkeys:{<script>}` holds its keys
 * scored by expiry time (+inf for none): the live-key count per script is a ZCOUNT after dropping
 * expired members, never a SCAN. Every write is one Lua script (atomic: the count check, the write,
 * the expiry and the index together), and uses the server's clock (TIME), so that instances with
 * skewed clocks agree. The `{<script>}` hash tag keeps a script's keys in one slot.
 */

export interface RedisKvOptions {
  url: string;
  /** The URL as logs may show it (no password). */
  shown: string;
  /** Called on connection trouble (once per outage) and on reconnection, for the server log. */
  onEvent?: (event: { kind: "error" | "ready"; message: string }) => void;
}

const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
`;

/** KEYS: value, index. ARGV: json, ttlMs ('' for none), maxKeys, member. */
const SET = `${NOW}
if redis.call('EXISTS', KEYS[1]) == 0 and redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  return 'too-many-keys'
end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('ZADD', KEYS[2], '+inf', ARGV[4])
end
return 'ok'
`;

/** KEYS: value, index. ARGV: by, ttlMs ('' to keep the expiry), maxKeys, member, max. */
const INCR = `${NOW}
local current = redis.call('GET', KEYS[1])
local existed = current ~= false
if existed then
  if not string.match(current, '^%-?%d+$') or string.len(current) > 17 then return 'not-a-number' end
  current = tonumber(current)
else
  if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then return 'too-many-keys' end
  current = 0
end
local value = current + tonumber(ARGV[1])
if math.abs(current) > tonumber(ARGV[5]) or math.abs(value) > tonumber(ARGV[5]) then return 'out-of-range' end
local text = string.format('%.0f', value)
if text == '-0' then text = '0' end
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[1], text, 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[4])
elseif existed then
  redis.call('SET', KEYS[1], text, 'KEEPTTL')
else
  redis.call('SET', KEYS[1], text)
  redis.call('ZADD', KEYS[2], '+inf', ARGV[4])
end
return text
`;

/** KEYS: value, index. ARGV: member. */
const DELETE = `
local deleted = redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return deleted
`;

interface Script {
  source: string;
  sha: string;
}
const script = (source: string): Script => ({ source, sha: createHash("sha1").update(source).digest("hex") });
const SCRIPTS = { set: script(SET), incr: script(INCR), delete: script(DELETE) };

/** A namespace as it appears inside a hash tag: no ':', '{' or '}'. */
const tag = (namespace: string) => encodeURIComponent(namespace);

export class RedisKvBackend implements KvBackend {
  readonly description: string;
  private readonly client: RedisClientType;

  private constructor(options: RedisKvOptions) {
    this.description = `redis ${options.shown}`;
    let down = false;
    this.client = createClient({
      url: options.url,
      // Fail at once while disconnected instead of queueing until the invocation's deadline.
      disableOfflineQueue: true,
      socket: { connectTimeout: 2_000, reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 2_000) },
    }) as RedisClientType;
    this.client.on("error", (error: Error) => {
      if (down) return;
      down = true;
      options.onEvent?.({ kind: "error", message: `${this.description}: ${error.message || error.name}` });
    });
    this.client.on("ready", () => {
      if (!down) return;
      down = false;
      options.onEvent?.({ kind: "ready", message: `${this.description}: connected again` });
    });
  }

  /**
   * Connects, waiting at most `waitMs` for the first connection; past that the backend is returned
   * anyway and keeps reconnecting (operations fail as unavailable meanwhile), so that a Redis that
   * starts after callscript does not keep callscript down.
   */
  static async open(options: RedisKvOptions, waitMs = 2_000): Promise<{ backend: RedisKvBackend; ready: boolean }> {
    const backend = new RedisKvBackend(options);
    const connected = backend.client.connect().then(
      () => true,
      () => false,
    );
    let timer: NodeJS.Timeout | undefined;
    const ready = await Promise.race([connected, new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), waitMs)))]);
    clearTimeout(timer);
    return { backend, ready };
  }

  private keys(namespace: string, key: string): [string, string] {
    return [`callscript:kv:{${tag(namespace)}}:${key}`, `callscript:kvkeys:{${tag(namespace)}}`];
  }

  private async run(which: keyof typeof SCRIPTS, keys: string[], args: string[], signal: AbortSignal): Promise<unknown> {
    const client = this.client.withAbortSignal(signal);
    const { source, sha } = SCRIPTS[which];
    try {
      return await client.evalSha(sha, { keys, arguments: args });
    } catch (error) {
      if (!String((error as Error).message).startsWith("NOSCRIPT")) throw error;
      return client.eval(source, { keys, arguments: args });
    }
  }

  async get(namespace: string, key: string, signal: AbortSignal): Promise<string | undefined> {
    const value = await this.client.withAbortSignal(signal).get(this.keys(namespace, key)[0]);
    return value ?? undefined;
  }

  async set(namespace: string, key: string, json: string, ttlMs: number | undefined, maxKeys: number, signal: AbortSignal): Promise<KvRefusal | undefined> {
    const answer = await this.run("set", this.keys(namespace, key), [json, ttlMs === undefined ? "" : String(ttlMs), String(maxKeys), key], signal);
    return answer === "too-many-keys" ? answer : undefined;
  }

  async delete(namespace: string, key: string, signal: AbortSignal): Promise<boolean> {
    return Number(await this.run("delete", this.keys(namespace, key), [key], signal)) > 0;
  }

  async incr(namespace: string, key: string, by: number, ttlMs: number | undefined, maxKeys: number, signal: AbortSignal): Promise<number | KvRefusal> {
    const answer = String(
      await this.run(
        "incr",
        this.keys(namespace, key),
        [String(by), ttlMs === undefined ? "" : String(ttlMs), String(maxKeys), key, String(MAX_COUNTER)],
        signal,
      ),
    );
    if (answer === "not-a-number" || answer === "too-many-keys" || answer === "out-of-range") return answer;
    return Number(answer);
  }

  async close(): Promise<void> {
    if (this.client.isOpen) await this.client.close().catch(() => this.client.destroy());
    else this.client.destroy();
  }
}
