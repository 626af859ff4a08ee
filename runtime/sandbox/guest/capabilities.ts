/**
 * ctx.fetch, ctx.secret and ctx.kv as a script sees them, INSIDE the isolate. Each request leaves
 * as an operation name and JSON text through `send` (the host's function, reachable only from the
 * prelude's closures) and comes back as JSON text through the binding's settle. Nothing here
 * decides what a request may do: the host checks everything again (runtime/capabilities/).
 *
 * Intrinsics are captured at load, before the script's code runs: a script that replaces
 * JSON.stringify or Promise can only break its own requests, never send another script's or reach
 * a secret.
 */
import { SECRET_PLACEHOLDER_PREFIX, SECRET_PLACEHOLDER_SUFFIX } from "../../capabilities/placeholder.js";
import { MAX_HOST_PAYLOAD_CHARS, MAX_HOST_REQUESTS } from "../protocol.js";

import { createObject, ErrorClass, freeze, objectKeys, parseJson, PromiseClass, StringOf, toJson, TypeErrorClass } from "./intrinsics.js";

/** What a script catches when the host refuses or fails a request. */
export class CapabilityError extends ErrorClass {
  code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
  }
}
Object.defineProperty(CapabilityError.prototype, "name", { value: "CapabilityError", writable: true, configurable: true });

/** One invocation, as the binding tracks it across the slices it runs in. */
export interface GuestCall {
  token: number;
  /** Its handler has settled: a request now is refused (a ctx kept past its call). */
  done: boolean;
  /** Requests sent so far (bounded by MAX_HOST_REQUESTS). */
  requests: number;
}

/** Sends one request of a call; resolves with the host's JSON text or rejects with a CapabilityError. */
export type SendRequest = (call: GuestCall, op: string, payload: string) => Promise<string>;

function refused(code: string, message: string): Promise<never> {
  return PromiseClass.reject(new CapabilityError(code, message));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object";
}

/** `A`–`Z`, `0`–`9` and `_`, starting with a letter, at most 64: by index (no regular expression: see isIdentifier in the prelude). */
function isSecretName(name: string): boolean {
  if (name.length === 0 || name.length > 64) return false;
  for (let i = 0; i < name.length; i++) {
    const ch = name[i]!;
    const letter = ch >= "A" && ch <= "Z";
    if (!letter && !(i > 0 && ((ch >= "0" && ch <= "9") || ch === "_"))) return false;
  }
  return true;
}

/** A copy of headers as string → string, or a message saying what is wrong. */
function headersOf(headers: unknown): Record<string, string> | string {
  if (headers === undefined) return createObject(null) as Record<string, string>;
  if (!isRecord(headers)) return "init.headers must be an object of header name → string value";
  const copy = createObject(null) as Record<string, string>;
  const names = objectKeys(headers);
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const value = headers[name];
    if (typeof value !== "string") return `init.headers['${name}'] must be a string (it is ${value === null ? "null" : typeof value})`;
    copy[name] = value;
  }
  return copy;
}

/** ctx.fetch, ctx.secret and ctx.kv of one invocation. */
export function capabilitiesFor(call: GuestCall, send: SendRequest) {
  function request(op: string, payload: unknown): Promise<string> {
    let json: string;
    try {
      json = toJson(payload);
    } catch (error) {
      return refused("CS_CAP_BAD_REQUEST", `${op}: the request is not JSON: ${(error as Error)?.message}`);
    }
    if (typeof json !== "string") return refused("CS_CAP_BAD_REQUEST", `${op}: the request is not JSON`);
    if (json.length > MAX_HOST_PAYLOAD_CHARS) {
      return refused("CS_CAP_BAD_REQUEST", `${op}: the request is ${json.length} characters of JSON, over the ${MAX_HOST_PAYLOAD_CHARS} any request may have`);
    }
    if (call.done) return refused("CS_CAP_ABORTED", `${op}: the invocation this ctx belongs to has ended (keep no ctx between calls)`);
    if (call.requests >= MAX_HOST_REQUESTS) {
      return refused("CS_CAP_BAD_REQUEST", `${op}: more than ${MAX_HOST_REQUESTS} fetch and kv requests in one invocation`);
    }
    call.requests++;
    return send(call, op, json);
  }

  async function fetch(url: unknown, init?: unknown) {
    if (typeof url !== "string") {
      throw new TypeErrorClass(`ctx.fetch(url, init): url must be a string (it is ${url === null ? "null" : typeof url})`);
    }
    if (init !== undefined && !isRecord(init)) throw new TypeErrorClass("ctx.fetch(url, init): init must be an object { method, headers, body }");
    const options = (init ?? {}) as Record<string, unknown>;
    const method = options.method;
    if (method !== undefined && typeof method !== "string") throw new TypeErrorClass("ctx.fetch: init.method must be a string such as 'POST'");
    const headers = headersOf(options.headers);
    if (typeof headers === "string") throw new TypeErrorClass(`ctx.fetch: ${headers}`);
    const body = options.body;
    if (body !== undefined && typeof body !== "string") {
      throw new TypeErrorClass("ctx.fetch: init.body must be a string: JSON.stringify(value), or a form's text (new URLSearchParams(...).toString())");
    }
    const text = await request("fetch", { url, method, headers, body });
    const answer = parseJson(text) as { ok: boolean; status: number; statusText: string; url: string; headers: Record<string, string>; body: string };
    const answerBody = answer.body;
    return freeze({
      ok: answer.ok,
      status: answer.status,
      statusText: answer.statusText,
      url: answer.url,
      headers: freeze(answer.headers),
      text: () => answerBody,
      json: () => parseJson(answerBody) as unknown,
    });
  }

  function secret(name: unknown): string {
    if (typeof name !== "string" || !isSecretName(name)) {
      throw new TypeErrorClass(
        `ctx.secret(name): '${StringOf(name)}' is not a secret name (A–Z, 0–9 and _, starting with a letter, as in the config's secrets)`,
      );
    }
    return SECRET_PLACEHOLDER_PREFIX + name + SECRET_PLACEHOLDER_SUFFIX;
  }

  function key(op: string, value: unknown): string {
    if (typeof value !== "string") throw new TypeErrorClass(`ctx.kv.${op}(key): key must be a string (it is ${value === null ? "null" : typeof value})`);
    return value;
  }

  function ttlOf(op: string, options: unknown): number | undefined {
    if (options === undefined) return undefined;
    if (!isRecord(options)) throw new TypeErrorClass(`ctx.kv.${op}: options must be an object`);
    return options.ttlSeconds as number | undefined;
  }

  const kv = freeze({
    async get(name: unknown): Promise<unknown> {
      const answer = parseJson(await request("kv.get", { key: key("get", name) })) as { found: boolean; value?: unknown };
      return answer.found ? answer.value : undefined;
    },
    async set(name: unknown, value: unknown, options?: unknown): Promise<void> {
      const k = key("set", name);
      if (value === undefined) throw new TypeErrorClass("ctx.kv.set(key, value): value is undefined; ctx.kv.delete(key) removes a key");
      await request("kv.set", { key: k, value, ttlSeconds: ttlOf("set", options) });
    },
    async delete(name: unknown): Promise<boolean> {
      return (parseJson(await request("kv.delete", { key: key("delete", name) })) as { deleted: boolean }).deleted;
    },
    async incr(name: unknown, options?: unknown): Promise<number> {
      const k = key("incr", name);
      const by = options !== undefined && isRecord(options) ? options.by : undefined;
      return (parseJson(await request("kv.incr", { key: k, by, ttlSeconds: ttlOf("incr", options) })) as { value: number }).value;
    },
  });

  return { fetch, secret, kv };
}
