import { STATUS_CODES } from "node:http";
import { isIP } from "node:net";
import type { Readable } from "node:stream";
import zlib from "node:zlib";
import type { Agent, buildConnector, Dispatcher } from "undici";
import { addressRange, isPublicAddress, systemResolver, type Resolver } from "./address.js";
import { CapabilityError, isCapabilityError } from "./errors.js";
import { byteLength, type FetchAnswer, type PreparedFetch, type ResolvedFetchGrant } from "./fetch-request.js";
import { originOfUrl, withOriginHost, type Origin } from "./origin.js";
import { maskSecretValues, substituteSecrets, type SecretValues } from "./secrets.js";

/**
 * Live fetches of scripts (undici). What reaches the network: only a request prepared and checked
 * by prepareFetch; redirects followed by hand, each hop checked against the same allow list; for a
 * host name, one resolution per connection whose every address must be public (address.ts), and
 * the connection made to the address checked (no second lookup, so DNS rebinding cannot swap it);
 * one timer per call (fetch.timeoutMs, redirects included) tied to the invocation's signal; the
 * response body counted as it arrives and cut at fetch.maxResponseBytes.
 */

/** What one fetch of one script may do, and with which secrets. */
export interface FetchContext {
  script: string;
  grant: ResolvedFetchGrant;
  /** Values of the secrets granted to the script. */
  secrets: SecretValues;
  /** The invocation's signal. */
  signal: AbortSignal;
}

/** Something that answers a prepared fetch: the network, or a case's canned answers. */
export interface Fetcher {
  fetch(prepared: PreparedFetch, context: FetchContext): Promise<FetchAnswer>;
  close(): Promise<void>;
}

export interface LiveFetcherOptions {
  /** Resolves host names (default: the system's resolver). Tests play a hostile DNS with it. */
  resolve?: Resolver;
  /**
   * Which resolved addresses a host name may reach (default: global unicast only). Tests widen it to
   * let a second loopback address stand for a public server; nothing else should.
   */
  isAllowedAddress?: (address: string) => boolean;
  /** Default User-Agent, when the script sets none. */
  userAgent?: string;
  /** CA certificates (PEM) trusted for https instead of Node's own list (tests); to add to that list, use NODE_EXTRA_CA_CERTS. */
  ca?: string | string[];
  /** Connections kept per origin. */
  connectionsPerOrigin?: number;
}

export const MAX_REDIRECTS = 5;
/** What a header value may hold on the wire. */
const LATIN1 = /^[\t\x20-\x7e\x80-\xff]*$/;
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** Headers not carried to another origin on a redirect (as fetch does), besides those that held a secret. */
const CREDENTIAL_HEADERS = new Set(["authorization", "cookie", "proxy-authorization"]);

/** A host name resolved to an address it may not reach; made in the connector, turned into a CapabilityError with the script's config key. */
class BlockedAddressError extends Error {
  constructor(
    readonly hostname: string,
    readonly address: string,
    readonly range: string,
  ) {
    super(`${hostname} resolves to ${address} (${range})`);
  }
}

class NameNotFoundError extends Error {
  readonly code = "ENOTFOUND";
  constructor(readonly hostname: string) {
    super(`${hostname} has no address`);
  }
}

/** The network fetcher, one per server: its connection pools are shared by every script. */
export class LiveFetcher implements Fetcher {
  /** undici and its pool, made at the first fetch: importing undici is 90 ms of every start (bench/scale.mjs), and most servers' scripts fetch nothing. */
  private undici: Promise<{ agent: Agent; request: typeof import("undici").request }> | undefined;
  private readonly userAgent: string;

  constructor(private readonly options: LiveFetcherOptions = {}) {
    this.userAgent = options.userAgent ?? "callscript";
  }

  private connection(): Promise<{ agent: Agent; request: typeof import("undici").request }> {
    this.undici ??= import("undici").then(({ Agent, buildConnector, request }) => ({ agent: this.newAgent(Agent, buildConnector), request }));
    return this.undici;
  }

  private newAgent(AgentClass: typeof Agent, connector: typeof buildConnector): Agent {
    const { options } = this;
    const resolve = options.resolve ?? systemResolver;
    const allowed = options.isAllowedAddress ?? isPublicAddress;
    const base = connector({ timeout: 10_000, ...(options.ca ? { ca: options.ca } : {}) });
    const connect: buildConnector.connector = (connectOptions, callback) => {
      const hostname = connectOptions.hostname.replace(/^\[(.*)\]$/, "$1");
      // An IP literal is only ever requested when that literal itself is in the allow list.
      if (isIP(hostname) !== 0) return base({ ...connectOptions, hostname }, callback);
      resolve(hostname)
        .then((addresses) => {
          if (addresses.length === 0) throw new NameNotFoundError(hostname);
          const refused = addresses.find(({ address }) => !allowed(address));
          if (refused) throw new BlockedAddressError(hostname, refused.address, addressRange(refused.address));
          // Connect to the address just checked; TLS still verifies the certificate for the name.
          base({ ...connectOptions, hostname: addresses[0]!.address, servername: connectOptions.servername ?? hostname }, callback);
        })
        .catch((error: Error) => callback(error, null));
    };
    return new AgentClass({ connect, connections: options.connectionsPerOrigin ?? 16, keepAliveTimeout: 10_000 });
  }

  async fetch(prepared: PreparedFetch, context: FetchContext): Promise<FetchAnswer> {
    const { grant, script, secrets } = context;
    const timeout = AbortSignal.timeout(grant.timeoutMs);
    const signal = AbortSignal.any([context.signal, timeout]);
    let url = prepared.url;
    let origin = prepared.origin;
    let method = prepared.method;
    let headers = new Map(prepared.headers);
    let body = prepared.body;
    let bodyEncoding = prepared.bodyEncoding;
    // Headers whose value holds a secret: they stay with the origin the script named.
    const secretHeaders = new Set(prepared.headers.filter(([, value]) => value.includes("__callscript_secret_")).map(([name]) => name));
    try {
      for (let hop = 0; ; hop++) {
        const sentUrl = hop === 0 ? substituteSecrets(url.href, secrets, "url") : url.href;
        const sentHeaders: Record<string, string> = { "user-agent": this.userAgent, "accept-encoding": "gzip, deflate, br" };
        for (const [name, value] of headers) {
          const sent = substituteSecrets(value, secrets, "raw");
          if (!LATIN1.test(sent)) {
            throw new CapabilityError(
              "CS_CAP_BAD_REQUEST",
              `fetch: the value of header ${name} has characters HTTP headers cannot carry (outside Latin-1), once its secrets are in`,
            );
          }
          sentHeaders[name] = sent;
        }
        const sentBody = body === undefined ? undefined : substituteSecrets(body, secrets, bodyEncoding);
        if (sentBody !== undefined && byteLength(sentBody) > grant.maxRequestBytes) {
          throw new CapabilityError(
            "CS_CAP_FETCH_REQUEST_TOO_LARGE",
            `fetch: the body with its secrets is ${byteLength(sentBody)} bytes, over scripts.${script}.fetch.maxRequestBytes (${grant.maxRequestBytes})`,
          );
        }
        const { agent, request } = await this.connection();
        const response = await request(sentUrl, {
          dispatcher: agent,
          method: method as Dispatcher.HttpMethod,
          headers: sentHeaders,
          body: sentBody,
          signal,
        });
        const location = response.headers.location;
        if (REDIRECTS.has(response.statusCode) && typeof location === "string") {
          discard(response.body);
          const next = this.redirectTarget(url, origin, location, hop, context);
          if (next.origin.key !== origin.key) {
            headers = new Map([...headers].filter(([name]) => !CREDENTIAL_HEADERS.has(name) && !secretHeaders.has(name)));
          }
          if (response.statusCode === 303 || ((response.statusCode === 301 || response.statusCode === 302) && method === "POST")) {
            if (method !== "HEAD") method = "GET";
            body = undefined;
            bodyEncoding = "raw";
            headers.delete("content-type");
          }
          url = next.url;
          origin = next.origin;
          continue;
        }
        // A HEAD answer's Content-Length is the GET's: nothing to read or to count.
        const responseBody = method === "HEAD" ? (await response.body.dump(), Buffer.alloc(0)) : await readCapped(response, origin, context);
        const answerHeaders: Record<string, string> = {};
        for (const [name, value] of Object.entries(response.headers)) {
          if (value === undefined) continue;
          answerHeaders[name] = maskSecretValues(Array.isArray(value) ? value.join(", ") : value, secrets);
        }
        return {
          ok: response.statusCode >= 200 && response.statusCode < 300,
          status: response.statusCode,
          statusText: STATUS_CODES[response.statusCode] ?? "",
          url: hop === 0 ? url.href : maskSecretValues(url.href, secrets),
          headers: answerHeaders,
          body: maskSecretValues(new TextDecoder().decode(responseBody), secrets),
        };
      }
    } catch (error) {
      throw asCapabilityError(error, { origin, context, timeout });
    }
  }

  /** The next hop of a redirect, only within the allow list and at most MAX_REDIRECTS times. */
  private redirectTarget(from: URL, fromOrigin: Origin, location: string, hop: number, context: FetchContext): { url: URL; origin: Origin } {
    const { script, grant, secrets } = context;
    const shownLocation = maskSecretValues(location, secrets).slice(0, 300);
    if (hop + 1 > MAX_REDIRECTS) {
      throw new CapabilityError("CS_CAP_FETCH_REDIRECT", `fetch: more than ${MAX_REDIRECTS} redirects, the last from ${fromOrigin.key} to ${shownLocation}`);
    }
    let url: URL;
    try {
      url = new URL(location, from);
    } catch {
      throw new CapabilityError("CS_CAP_FETCH_REDIRECT", `fetch: ${fromOrigin.key} redirected to '${shownLocation}', which is not a URL`);
    }
    const origin = originOfUrl(url);
    if (!origin.ok) throw new CapabilityError("CS_CAP_FETCH_REDIRECT", `fetch: ${fromOrigin.key} redirected to ${shownLocation}: ${origin.problem}`);
    if (!grant.origins.has(origin.origin.key)) {
      throw new CapabilityError(
        "CS_CAP_FETCH_REDIRECT",
        `fetch: ${fromOrigin.key} redirected to ${origin.origin.key}, which is not allowed for ${script}: add ${origin.origin.key} to scripts.${script}.fetch.allow to follow it`,
      );
    }
    return { url: withOriginHost(url, origin.origin), origin: origin.origin };
  }

  async close(): Promise<void> {
    if (this.undici) await (await this.undici).agent.close();
  }
}

/** The body, decoded (gzip, deflate, br), cut at maxResponseBytes while it arrives. */
async function readCapped(response: Dispatcher.ResponseData, origin: Origin, context: FetchContext): Promise<Buffer> {
  const limit = context.grant.maxResponseBytes;
  const tooLarge = () =>
    new CapabilityError(
      "CS_CAP_FETCH_RESPONSE_TOO_LARGE",
      `fetch: the response of ${origin.key} is over scripts.${context.script}.fetch.maxResponseBytes (${limit} bytes)`,
    );
  const encoding = String(response.headers["content-encoding"] ?? "identity")
    .trim()
    .toLowerCase();
  const declared = Number(response.headers["content-length"]);
  if (encoding === "identity" && Number.isFinite(declared) && declared > limit) {
    discard(response.body);
    throw tooLarge();
  }
  const decoder = decoderFor(encoding);
  let source: Readable = response.body;
  if (decoder) {
    response.body.on("error", (error) => decoder.destroy(error));
    source = response.body.pipe(decoder);
  }
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > limit) throw tooLarge();
      chunks.push(chunk);
    }
  } finally {
    if (total > limit || !response.body.readableEnded) {
      discard(response.body);
      if (decoder) discard(decoder);
    }
  }
  return Buffer.concat(chunks, total);
}

/** Drops a body not read to its end (undici then reports an abort, which nobody else listens to). */
function discard(stream: Readable): void {
  stream.on("error", () => {});
  stream.destroy();
}

function decoderFor(encoding: string): zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined {
  switch (encoding) {
    case "identity":
    case "":
      return undefined;
    case "gzip":
    case "x-gzip":
      return zlib.createGunzip();
    case "deflate":
      return zlib.createInflate();
    case "br":
      return zlib.createBrotliDecompress();
    default:
      throw new CapabilityError("CS_CAP_FETCH_NETWORK", `fetch: the response is encoded as ${encoding.slice(0, 40)}, which callscript does not decode`);
  }
}

function causes(error: unknown): unknown[] {
  const found: unknown[] = [];
  for (let current = error; current !== undefined && current !== null && found.length < 5; current = (current as { cause?: unknown }).cause) {
    found.push(current);
  }
  return found;
}

const TLS_CODE = /^(CERT_|ERR_TLS_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|ERR_SSL_)/;

/** A failure of a fetch as the script may see it (never the underlying message, which may hold a URL with a secret). */
function asCapabilityError(error: unknown, at: { origin: Origin; context: FetchContext; timeout: AbortSignal }): CapabilityError {
  if (isCapabilityError(error)) return error;
  const { origin, context } = at;
  const { script, grant, secrets } = context;
  const chain = causes(error);
  const detail = chain
    .map((item) =>
      item instanceof Error
        ? `${item.name}${(item as NodeJS.ErrnoException).code ? ` ${(item as NodeJS.ErrnoException).code}` : ""}: ${maskSecretValues(item.message, secrets)}`
        : String(item),
    )
    .join(" <- ");
  if (context.signal.aborted) return new CapabilityError("CS_CAP_ABORTED", `fetch: the invocation ended before ${origin.key} answered`, detail);
  if (at.timeout.aborted) {
    return new CapabilityError(
      "CS_CAP_FETCH_TIMEOUT",
      `fetch: ${origin.key} did not answer within ${grant.timeoutMs} ms (scripts.${script}.fetch.timeoutMs)`,
      detail,
    );
  }
  const capability = chain.find(isCapabilityError);
  if (capability) return capability;
  const blocked = chain.find((item): item is BlockedAddressError => item instanceof BlockedAddressError);
  if (blocked) {
    const literal = originOfUrl(new URL(`${origin.scheme}://${isIP(blocked.address) === 6 ? `[${blocked.address}]` : blocked.address}:${origin.port}`));
    return new CapabilityError(
      "CS_CAP_FETCH_ADDRESS_BLOCKED",
      `fetch: ${blocked.hostname} resolves to ${blocked.address}, a ${blocked.range} address, which a host name in scripts.${script}.fetch.allow may not reach; if that server is meant, allow its address instead (${literal.ok ? literal.origin.key : blocked.address})`,
      detail,
    );
  }
  const code = chain.map((item) => (item as NodeJS.ErrnoException).code).find((item): item is string => typeof item === "string");
  let what: string;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN" || code === "EAI_NONAME") what = `${origin.host} was not found (DNS)`;
  else if (code === "ECONNREFUSED") what = `${origin.key} refused the connection`;
  else if (code === "ECONNRESET" || code === "UND_ERR_SOCKET" || code === "EPIPE") what = `${origin.key} closed the connection`;
  else if (code === "UND_ERR_CONNECT_TIMEOUT" || code === "ETIMEDOUT") what = `${origin.key} could not be reached (connect timeout)`;
  else if (code !== undefined && TLS_CODE.test(code)) what = `${origin.key}: its TLS certificate is not accepted (${code})`;
  else if (code === "UND_ERR_HEADERS_OVERFLOW") what = `${origin.key} sent headers over 16 KiB`;
  else what = `${origin.key}: network error${code ? ` (${code})` : ""}`;
  return new CapabilityError("CS_CAP_FETCH_NETWORK", `fetch: ${what}`, detail);
}
