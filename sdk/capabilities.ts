/**
 * What a script may reach beyond its input: HTTP to the origins its config allows, secrets by
 * name, and a key-value store of its own. Types only: the sandbox's prelude implements them, and
 * the host (runtime/capabilities/) decides what each request may do.
 */

/** What ctx.fetch sends. The body is text: `JSON.stringify(...)` or a form's `URLSearchParams` text. */
export interface FetchInit {
  /** GET when absent; GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS. */
  method?: string;
  headers?: Record<string, string>;
  body?: string;
}

/** The answer of ctx.fetch, read whole (within the script's `fetch.maxResponseBytes`). */
export interface FetchResponse {
  /** status is 200–299. */
  ok: boolean;
  status: number;
  statusText: string;
  /** The URL answered, after redirects (placeholders of secrets, never their values). */
  url: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  /** The body as text. */
  text(): string;
  /** The body parsed as JSON; throws a SyntaxError when it is not JSON. */
  json<T = unknown>(): T;
}

/** A JSON value as the store keeps it. */
export type KvValue = string | number | boolean | null | KvValue[] | { [key: string]: KvValue };

/** This script's own keys: no other script reads or writes them. Values are JSON. */
export interface ScriptKv {
  /** The value, or undefined when the key is absent or expired. */
  get<T extends KvValue = KvValue>(key: string): Promise<T | undefined>;
  set(key: string, value: KvValue, options?: { ttlSeconds?: number }): Promise<void>;
  /** Whether the key was there. */
  delete(key: string): Promise<boolean>;
  /** Adds `by` (1) to the integer at `key` (0 when absent), atomically across calls and instances; the new value. */
  incr(key: string, options?: { by?: number; ttlSeconds?: number }): Promise<number>;
}

/** What ctx.fetch and ctx.kv throw when the host refuses or fails a request: catchable, with a stable code. */
export interface CapabilityError extends Error {
  name: "CapabilityError";
  /** `CS_CAP_FETCH_NOT_ALLOWED`, `CS_CAP_FETCH_TIMEOUT`, `CS_CAP_KV_TOO_MANY_OPS`, … (docs/capabilities.md lists them). */
  code: string;
}

export interface ScriptCapabilities {
  /**
   * An HTTP request to an origin of the script's `fetch.allow` in the config; anything else throws
   * a CapabilityError naming the key that would allow it. Secrets go in as `ctx.secret("NAME")`.
   */
  fetch(url: string, init?: FetchInit): Promise<FetchResponse>;
  /**
   * A stand-in for the secret NAME (granted to this script by `scripts.<name>.secrets`): the host
   * puts the value in its place only in the URL, headers or body of an allowed fetch. The value
   * never enters the script.
   */
  secret(name: string): string;
  kv: ScriptKv;
}
