import { z } from "zod";
import type { KvLimits } from "../config.js";
import { CapabilityError, isCapabilityError } from "../errors.js";
import { MAX_COUNTER, type KvBackend, type KvRefusal } from "./backend.js";

/**
 * ctx.kv on any backend: the contract's payloads parsed, keys and values bounded, refusals of
 * the backend turned into messages that name the config key, a fault of the store (down, slow)
 * into CS_CAP_KV_UNAVAILABLE with the real reason kept for the log. Each script is its own
 * namespace: the namespace is the script's config name, never anything the script sends.
 */

export type KvOp = "kv.get" | "kv.set" | "kv.delete" | "kv.incr";

/** Up to ten years: longer is "no expiry". */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;

const ttl = z.number().positive().max(MAX_TTL_SECONDS).optional();
const payloads = {
  "kv.get": z.strictObject({ key: z.string() }),
  "kv.set": z.strictObject({ key: z.string(), value: z.unknown().optional(), ttlSeconds: ttl }),
  "kv.delete": z.strictObject({ key: z.string() }),
  "kv.incr": z.strictObject({
    key: z.string(),
    by: z.number().int().min(-MAX_COUNTER).max(MAX_COUNTER).optional(),
    ttlSeconds: ttl,
  }),
};
const SHAPES: Record<KvOp, string> = {
  "kv.get": "{ key: string }",
  "kv.set": `{ key: string, value: JSON value, ttlSeconds?: number (0 < s <= ${MAX_TTL_SECONDS}) }`,
  "kv.delete": "{ key: string }",
  "kv.incr": `{ key: string, by?: integer, ttlSeconds?: number (0 < s <= ${MAX_TTL_SECONDS}) }`,
};

export interface KvStoreOptions extends KvLimits {
  /** Per operation; the invocation's signal bounds it too. */
  timeoutMs: number;
}

const shownKey = (key: string) => (key.length > 80 ? `${key.slice(0, 80)}…` : key);

export class KvStore {
  constructor(
    readonly backend: KvBackend,
    readonly options: KvStoreOptions,
  ) {}

  /** One operation of `script`; the answer is the contract's JSON text. */
  async handle(op: KvOp, payloadJson: string, script: string, signal: AbortSignal): Promise<string> {
    let payload: unknown;
    try {
      payload = payloads[op].parse(JSON.parse(payloadJson));
    } catch {
      throw new CapabilityError("CS_CAP_BAD_REQUEST", `${op}: expects ${SHAPES[op]}`);
    }
    const { key } = payload as { key: string };
    this.checkKey(op, key);
    switch (op) {
      case "kv.get": {
        const json = await this.call(op, signal, (bounded) => this.backend.get(script, key, bounded));
        return json === undefined ? '{"found":false}' : `{"found":true,"value":${json}}`;
      }
      case "kv.set": {
        const { value, ttlSeconds } = payload as { value: unknown; ttlSeconds?: number };
        if (value === undefined) throw new CapabilityError("CS_CAP_BAD_REQUEST", "kv.set: needs a value (kv.delete removes a key)");
        const json = JSON.stringify(value);
        const bytes = Buffer.byteLength(json, "utf8");
        if (bytes > this.options.maxValueBytes) {
          throw new CapabilityError("CS_CAP_KV_VALUE", `kv.set: the value is ${bytes} bytes as JSON, over kv.maxValueBytes (${this.options.maxValueBytes})`);
        }
        const refusal = await this.call(op, signal, (bounded) => this.backend.set(script, key, json, toMs(ttlSeconds), this.options.maxKeysPerScript, bounded));
        if (refusal) throw this.refused(op, refusal, script, key);
        return "{}";
      }
      case "kv.delete": {
        const deleted = await this.call(op, signal, (bounded) => this.backend.delete(script, key, bounded));
        return JSON.stringify({ deleted });
      }
      case "kv.incr": {
        const { by, ttlSeconds } = payload as { by?: number; ttlSeconds?: number };
        const result = await this.call(op, signal, (bounded) =>
          this.backend.incr(script, key, by ?? 1, toMs(ttlSeconds), this.options.maxKeysPerScript, bounded),
        );
        if (typeof result !== "number") throw this.refused(op, result, script, key);
        return JSON.stringify({ value: result });
      }
    }
  }

  private checkKey(op: KvOp, key: string): void {
    const bytes = Buffer.byteLength(key, "utf8");
    if (bytes === 0 || bytes > this.options.maxKeyBytes) {
      throw new CapabilityError("CS_CAP_KV_KEY", `${op}: a key is a string of 1 to ${this.options.maxKeyBytes} bytes (kv.maxKeyBytes); this one has ${bytes}`);
    }
    if (Buffer.from(key, "utf8").toString("utf8") !== key)
      throw new CapabilityError("CS_CAP_KV_KEY", `${op}: the key '${shownKey(key)}' is not valid Unicode (a lone surrogate)`);
  }

  private refused(op: KvOp, refusal: KvRefusal, script: string, key: string): CapabilityError {
    switch (refusal) {
      case "too-many-keys":
        return new CapabilityError(
          "CS_CAP_KV_TOO_MANY_KEYS",
          `${op}: ${script} already has ${this.options.maxKeysPerScript} keys (kv.maxKeysPerScript): delete some, give them a ttlSeconds, or raise kv.maxKeysPerScript`,
        );
      case "not-a-number":
        return new CapabilityError("CS_CAP_KV_NOT_A_NUMBER", `${op}: the value at '${shownKey(key)}' is not an integer`);
      case "out-of-range":
        return new CapabilityError("CS_CAP_KV_NOT_A_NUMBER", `${op}: the value at '${shownKey(key)}' would go past ±${MAX_COUNTER} (Number.MAX_SAFE_INTEGER)`);
    }
  }

  /** Runs one backend call within kv.timeoutMs and the invocation; a fault of the store becomes CS_CAP_KV_UNAVAILABLE. */
  private async call<T>(op: KvOp, signal: AbortSignal, work: (bounded: AbortSignal) => Promise<T>): Promise<T> {
    if (signal.aborted) throw new CapabilityError("CS_CAP_ABORTED", `${op}: the invocation ended before the store answered`);
    const timeout = AbortSignal.timeout(this.options.timeoutMs);
    const bounded = AbortSignal.any([signal, timeout]);
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new Error("aborted"));
      bounded.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => {});
    try {
      return await Promise.race([work(bounded), aborted]);
    } catch (error) {
      if (isCapabilityError(error)) throw error;
      if (signal.aborted) throw new CapabilityError("CS_CAP_ABORTED", `${op}: the invocation ended before the store answered`);
      if (timeout.aborted) {
        throw new CapabilityError(
          "CS_CAP_KV_UNAVAILABLE",
          `${op}: the store did not answer within ${this.options.timeoutMs} ms (kv.timeoutMs)`,
          `${this.backend.description}: timeout`,
        );
      }
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new CapabilityError("CS_CAP_KV_UNAVAILABLE", `${op}: the store is unavailable (the server log says why)`, `${this.backend.description}: ${reason}`);
    } finally {
      bounded.removeEventListener("abort", onAbort!);
    }
  }
}

function toMs(ttlSeconds: number | undefined): number | undefined {
  return ttlSeconds === undefined ? undefined : Math.max(1, Math.ceil(ttlSeconds * 1000));
}
