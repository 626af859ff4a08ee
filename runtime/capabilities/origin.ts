import ipaddr from "ipaddr.js";

/**
 * Origins (scheme, host, port) compared after one normalisation, so that a host written another
 * way cannot pass for an allowed one, nor an allowed one be refused. The WHATWG URL parser does
 * most of it (what Node's fetch and undici use too): lower case, IDN to punycode, IPv4 in any
 * notation (`2130706433`, `0x7f.1`, `0177.0.0.1`, `127.1`) to dotted decimal, IPv6 compressed,
 * default ports dropped. On top of it: a trailing dot is dropped (`crm.example.` is
 * `crm.example`), an IPv4-mapped IPv6 address is its IPv4 address (`[::ffff:127.0.0.1]` is
 * `127.0.0.1`), and user:password@ is refused outright rather than ignored.
 */

export type Scheme = "http" | "https";

export interface Origin {
  scheme: Scheme;
  /** A lower-case name in ASCII without a trailing dot, a dotted IPv4 address, or an IPv6 address without brackets. */
  host: string;
  hostKind: "name" | "ipv4" | "ipv6";
  port: number;
  /** `https://crm.example`, `http://127.0.0.1:9000`, `http://[::1]:8080`: the form messages show and lists compare. */
  key: string;
}

const DEFAULT_PORT: Record<Scheme, number> = { http: 80, https: 443 };
const NAME = /^[a-z0-9_](?:[a-z0-9_-]{0,62})(?:\.[a-z0-9_](?:[a-z0-9_-]{0,62}))*$/;

export type OriginResult = { ok: true; origin: Origin } | { ok: false; problem: string };

/** The host of a parsed URL, normalised; a problem when it is not a host we can compare. */
function hostOf(url: URL): { host: string; hostKind: Origin["hostKind"] } | string {
  let host = url.hostname;
  if (host.startsWith("[") && host.endsWith("]")) {
    const address = ipaddr.IPv6.parse(host.slice(1, -1));
    if (address.isIPv4MappedAddress()) return { host: address.toIPv4Address().toString(), hostKind: "ipv4" };
    return { host: address.toString(), hostKind: "ipv6" };
  }
  if (ipaddr.IPv4.isValidFourPartDecimal(host)) return { host, hostKind: "ipv4" };
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (!NAME.test(host) || host.length > 253) return `'${url.hostname}' is not a host name callscript can check`;
  return { host, hostKind: "name" };
}

export function originKey(scheme: Scheme, host: string, hostKind: Origin["hostKind"], port: number): string {
  const shown = hostKind === "ipv6" ? `[${host}]` : host;
  return port === DEFAULT_PORT[scheme] ? `${scheme}://${shown}` : `${scheme}://${shown}:${port}`;
}

/** The origin of a URL already parsed; a problem for a scheme other than http(s) or user:password@. */
export function originOfUrl(url: URL): OriginResult {
  const scheme = url.protocol.slice(0, -1);
  if (scheme !== "http" && scheme !== "https") return { ok: false, problem: `only http and https are supported, not ${url.protocol}` };
  if (url.username !== "" || url.password !== "") {
    return { ok: false, problem: "a URL with user:password@ is refused (put credentials in a header, with ctx.secret())" };
  }
  const host = hostOf(url);
  if (typeof host === "string") return { ok: false, problem: host };
  const port = url.port === "" ? DEFAULT_PORT[scheme] : Number(url.port);
  return { ok: true, origin: { scheme, ...host, port, key: originKey(scheme, host.host, host.hostKind, port) } };
}

/** An absolute http(s) URL and its origin. */
export function parseUrl(text: string): { ok: true; url: URL; origin: Origin } | { ok: false; problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, problem: "is not an absolute URL" };
  }
  const origin = originOfUrl(url);
  return origin.ok ? { ok: true, url: withOriginHost(url, origin.origin), origin: origin.origin } : origin;
}

/** The URL with its host as the origin has it (`crm.example.` → `crm.example`, `[::ffff:7f00:1]` → `127.0.0.1`): what is resolved and sent is what was compared. */
export function withOriginHost(url: URL, origin: Origin): URL {
  const host = origin.hostKind === "ipv6" ? `[${origin.host}]` : origin.host;
  if (url.hostname !== host) url.hostname = host;
  return url;
}

/**
 * An entry of `fetch.allow`: scheme://host[:port] and nothing else (a path of "/" is tolerated,
 * as editors and browsers write origins with one).
 */
export function parseAllowEntry(text: string): OriginResult {
  if (/[*?#]/.test(text)) {
    return { ok: false, problem: `'${text}' must be an origin, scheme://host[:port]: wildcards, queries and fragments are not allowed` };
  }
  const parsed = parseUrl(text);
  if (!parsed.ok)
    return {
      ok: false,
      problem: `'${text}' ${parsed.problem.startsWith("is ") ? parsed.problem : `is refused: ${parsed.problem}`}; write scheme://host[:port], e.g. https://crm.example`,
    };
  const { url, origin } = parsed;
  if (url.pathname !== "/" || url.search !== "" || url.hash !== "") {
    return { ok: false, problem: `'${text}' must be an origin without a path: write ${origin.key}` };
  }
  if (origin.hostKind === "name" && (origin.host === "localhost" || origin.host.endsWith(".localhost"))) {
    return {
      ok: false,
      problem: `'${text}': localhost is a loopback name, which a name in fetch.allow may not reach; write the address itself, e.g. ${originKey(origin.scheme, "127.0.0.1", "ipv4", origin.port)}`,
    };
  }
  return { ok: true, origin };
}
