import { z } from "zod";
import type { FetchGrant } from "./config.js";
import { CapabilityError } from "./errors.js";
import { parseAllowEntry, parseUrl, type Origin } from "./origin.js";
import { placeholdersIn, type SecretEncoding } from "./secrets.js";

/**
 * A script's fetch request checked against its grant, before anything reaches the network: the
 * same checks for a live fetch (fetch.ts) and a canned one (canned.ts), so that `callscript test`
 * refuses what the server would refuse.
 */

/** The contract's payload of op "fetch". */
export const fetchPayloadSchema = z.strictObject({
  url: z.string(),
  method: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.string().optional(),
});

/** The contract's answer of op "fetch". */
export interface FetchAnswer {
  ok: boolean;
  status: number;
  statusText: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** A grant with its allow list normalised once. */
export interface ResolvedFetchGrant extends FetchGrant {
  origins: ReadonlyMap<string, Origin>;
}

export function resolveFetchGrant(grant: FetchGrant): ResolvedFetchGrant {
  const origins = new Map<string, Origin>();
  for (const entry of grant.allow) {
    const parsed = parseAllowEntry(entry);
    // The config schema refuses these first; a grant made in code gets the same message.
    if (!parsed.ok) throw new Error(`fetch.allow: ${parsed.problem}`);
    origins.set(parsed.origin.key, parsed.origin);
  }
  return { ...grant, origins };
}

/** What one script may fetch. */
export interface FetchPolicy {
  script: string;
  /** Undefined: the script has no fetch grant. */
  grant: ResolvedFetchGrant | undefined;
  /** Names of the secrets granted to the script. */
  secrets: readonly string[];
  /** A canned run without a config: the case's list is the only limit on origins. */
  anyOrigin?: boolean;
}

export interface PreparedFetch {
  /** As the script wrote it, normalised, placeholders in: safe to show and to log. */
  url: URL;
  origin: Origin;
  method: string;
  /** Lower-case names; values with placeholders. */
  headers: [string, string][];
  /** Headers the script gave that callscript sets or refuses to forward. */
  dropped: string[];
  body: string | undefined;
  /** How a secret's value is written into the body (from its Content-Type). */
  bodyEncoding: SecretEncoding;
  /** Granted secrets the request uses. */
  secrets: string[];
}

export const FETCH_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1), Host and the framing headers, which undici sets from the
 * request itself, and Accept-Encoding, which callscript sets (it decodes what it asked for).
 */
export const DROPPED_HEADERS = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
  "content-length",
  "expect",
  "accept-encoding",
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const PLACEHOLDER_PREFIX = "__callscript_secret_";

const bad = (message: string) => new CapabilityError("CS_CAP_BAD_REQUEST", `fetch: ${message}`);

export function byteLength(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

function encodingOf(contentType: string | undefined): SecretEncoding {
  if (contentType === undefined) return "raw";
  if (/json/i.test(contentType)) return "json";
  if (/application\/x-www-form-urlencoded/i.test(contentType)) return "url";
  return "raw";
}

/** Parses and checks one request of the script; throws a CapabilityError that says what would allow it. */
export function prepareFetch(payloadJson: string, policy: FetchPolicy): PreparedFetch {
  const { script, grant } = policy;
  let payload: z.output<typeof fetchPayloadSchema>;
  try {
    payload = fetchPayloadSchema.parse(JSON.parse(payloadJson));
  } catch {
    throw bad("expects { url: string, method?: string, headers?: Record<string, string>, body?: string }");
  }
  if (!grant && !policy.anyOrigin) {
    throw new CapabilityError("CS_CAP_FETCH_NO_GRANT", `fetch: this script has no fetch grant: add scripts.${script}.fetch.allow to the config`);
  }

  const parsed = parseUrl(payload.url);
  if (!parsed.ok) {
    if (parsed.problem.includes("user:password@")) throw new CapabilityError("CS_CAP_FETCH_NOT_ALLOWED", `fetch: ${parsed.problem}`);
    throw bad(`'${payload.url.slice(0, 200)}' ${parsed.problem.startsWith("is ") ? parsed.problem : `is refused: ${parsed.problem}`}`);
  }
  const { url, origin } = parsed;
  if (origin.host.includes(PLACEHOLDER_PREFIX)) throw bad("a secret may not stand in the URL's host: the origin must be one of fetch.allow as written");

  const granted = new Set(policy.secrets);
  const headerEntries = Object.entries(payload.headers ?? {});
  const body = payload.body;
  const texts = [url.href, ...headerEntries.map(([, value]) => value), body ?? ""];
  const used = new Set<string>();
  const notGranted = new Set<string>();
  for (const text of texts) {
    const found = placeholdersIn(text, granted);
    found.granted.forEach((name) => used.add(name));
    found.other.forEach((name) => notGranted.add(name));
  }

  if (grant && !policy.anyOrigin && !grant.origins.has(origin.key)) {
    const carried = [...used, ...notGranted];
    const secrets = carried.length > 0 ? ` (it carries secret ${carried.join(", ")}, which is only ever sent to an allowed origin)` : "";
    throw new CapabilityError(
      "CS_CAP_FETCH_NOT_ALLOWED",
      `fetch: ${origin.key} is not allowed for ${script}${secrets}: add ${origin.key} to scripts.${script}.fetch.allow`,
    );
  }
  if (notGranted.size > 0) {
    const names = [...notGranted];
    throw new CapabilityError(
      "CS_CAP_SECRET_NOT_GRANTED",
      `fetch: secret ${names.join(", ")} is not granted to ${script}: add ${names.length === 1 ? "it" : "them"} to scripts.${script}.secrets`,
    );
  }

  const method = (payload.method ?? "GET").toUpperCase();
  if (!(FETCH_METHODS as readonly string[]).includes(method)) throw bad(`method ${payload.method} is not one of ${FETCH_METHODS.join(", ")}`);
  if (body !== undefined && (method === "GET" || method === "HEAD")) throw bad(`a ${method} request has no body`);

  const headers: [string, string][] = [];
  const dropped: string[] = [];
  const seen = new Set<string>();
  for (const [name, value] of headerEntries) {
    if (!TOKEN.test(name)) throw bad(`'${name.slice(0, 100)}' is not a header name`);
    const lower = name.toLowerCase();
    if (seen.has(lower)) throw bad(`header ${name} is given twice`);
    seen.add(lower);
    if (/[\r\n\0]/.test(value)) throw bad(`the value of header ${name} has a line break`);
    if (!/^[\t\x20-\x7e\x80-\xff]*$/.test(value))
      throw bad(`the value of header ${name} has characters HTTP headers cannot carry (outside Latin-1): encode it (encodeURIComponent)`);
    if (DROPPED_HEADERS.has(lower)) dropped.push(lower);
    else headers.push([lower, value]);
  }

  const limit = grant?.maxRequestBytes;
  if (body !== undefined && limit !== undefined && byteLength(body) > limit) {
    throw new CapabilityError(
      "CS_CAP_FETCH_REQUEST_TOO_LARGE",
      `fetch: the body is ${byteLength(body)} bytes, over scripts.${script}.fetch.maxRequestBytes (${limit})`,
    );
  }

  const contentType = headers.find(([name]) => name === "content-type")?.[1];
  return { url, origin, method, headers, dropped, body, bodyEncoding: encodingOf(contentType), secrets: [...used] };
}
