import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import ipaddr from "ipaddr.js";

/**
 * Which addresses a host NAME of `fetch.allow` may reach: only global unicast ones. A name that
 * resolves to a loopback, private, link-local (169.254.169.254, the cloud metadata service),
 * unspecified, multicast, carrier-grade NAT, unique-local, reserved or translation (6to4, Teredo,
 * NAT64) address is refused, so that a DNS record, an /etc/hosts line or a rebinding attack cannot
 * turn an allowed name into a way into the local network. An IP address written in `fetch.allow`
 * itself is the admin's explicit choice and is reached whatever its range.
 */

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to its addresses (all of them). Injectable so tests can play a hostile DNS. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

/** The system's resolver (getaddrinfo: /etc/hosts, then DNS), as Node's own http would use. */
export const systemResolver: Resolver = async (hostname) => {
  const found = await lookup(hostname, { all: true, verbatim: true });
  return found.map(({ address, family }) => ({ address, family: family === 6 ? 6 : 4 }));
};

const RANGE_NAMES: Record<string, string> = {
  unspecified: "unspecified",
  broadcast: "broadcast",
  multicast: "multicast",
  linkLocal: "link-local",
  loopback: "loopback",
  carrierGradeNat: "carrier-grade NAT",
  private: "private",
  reserved: "reserved",
  uniqueLocal: "unique-local",
  rfc6145: "IPv4-translated",
  rfc6052: "NAT64",
  "6to4": "6to4",
  teredo: "Teredo",
};

/** The range of an address: "unicast" for a global one, else a name for messages ("loopback", "link-local", …). */
export function addressRange(address: string): string {
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === "ipv6" && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  const range = parsed.range();
  return range === "unicast" ? "unicast" : (RANGE_NAMES[range] ?? range);
}

/** An address a host name in `fetch.allow` may reach. */
export function isPublicAddress(address: string): boolean {
  return isIP(address) !== 0 && addressRange(address) === "unicast";
}
