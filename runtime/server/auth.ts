import { createHash, timingSafeEqual } from "node:crypto";
import { isIP } from "node:net";
import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from "fastify";
import type { Config } from "../config.js";
import { InsecureBindError, UnauthorizedError } from "../errors.js";
import { shared } from "./plugin.js";
import type { SessionStore } from "./session.js";

/** The console's login form (console.ts). */
export const LOGIN_PATH = "/console/login";

/**
 * Whether `host` only accepts connections from this machine: 127.0.0.0/8, ::1 (also written in
 * full or IPv4-mapped) and `localhost`. Anything else, the wildcards 0.0.0.0 and :: included, is
 * reachable from the network.
 */
export function isLoopback(host: string): boolean {
  let address = host.trim().toLowerCase();
  if (address.startsWith("[") && address.endsWith("]")) address = address.slice(1, -1);
  if (address === "localhost" || address.endsWith(".localhost")) return true;
  if (address.startsWith("::ffff:") && isIP(address.slice(7)) === 4) address = address.slice(7);
  switch (isIP(address)) {
    case 4:
      return address.split(".")[0] === "127";
    case 6:
      return /^(0{0,4}:){1,7}0{0,3}1$/.test(address) || address === "::1";
    default:
      return false;
  }
}

/** Listening beyond loopback without a token would let anyone on the network drive the scripts. */
export function assertSafeBinding(config: Pick<Config, "host" | "token">): void {
  if (!config.token && !isLoopback(config.host)) throw new InsecureBindError(JSON.stringify(config.host));
}

const digest = (text: string) => createHash("sha256").update(text).digest();

/**
 * A check of `Authorization: Bearer <token>` in constant time: both sides are hashed to 32 bytes
 * first, so neither the length of the token nor the position of the first wrong character shows in
 * the time it takes. A missing or malformed header is compared too (as an empty token).
 */
export function bearerCheck(token: string): (header: string | undefined) => boolean {
  const expected = digest(token);
  return (header) => {
    const match = typeof header === "string" ? /^Bearer +(\S+) *$/i.exec(header) : null;
    const presented = match?.[1] ?? "";
    const equal = timingSafeEqual(digest(presented), expected);
    return equal && match !== null;
  };
}

export interface AuthOptions {
  token?: string | undefined;
  /** Console logins (session.ts): they open the browser's routes, never the connector's. */
  sessions?: SessionStore | undefined;
}

/** What a browser opens with a console session: the console itself, and the API docs (read only). */
function browserRoute(request: FastifyRequest): boolean {
  if (request.routeOptions.config.session === true) return true;
  if (request.method !== "GET" && request.method !== "HEAD") return false;
  const url = request.routeOptions.url ?? "";
  return url === "/openapi.json" || url === "/docs" || url.startsWith("/docs/");
}

/**
 * Every route needs the token when one is set, except those marked `config: { public: true }`
 * (/healthz, /readyz, the console's login). Whatever is wrong with the header, the answer is the
 * same 401. A console session also opens the browser's routes (browserRoute); a page asked for
 * by a browser without one is sent to the login form. Without a token the server only listens on
 * loopback (assertSafeBinding) and every route is open.
 */
export const bearerAuth = shared<AuthOptions>("callscript-auth", async (app, { token, sessions }) => {
  if (!token) return;
  const check = bearerCheck(token);
  app.addHook("onRequest", (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    if (request.routeOptions.config.public === true || check(request.headers.authorization)) {
      done();
      return;
    }
    if (sessions && browserRoute(request)) {
      if (sessions.check(request).ok) {
        done();
        return;
      }
      if (request.method === "GET" && /\btext\/html\b/.test(request.headers.accept ?? "")) {
        reply.redirect(`${LOGIN_PATH}?next=${encodeURIComponent(request.url)}`, 303);
        return;
      }
    }
    reply.header("www-authenticate", 'Bearer realm="callscript"');
    done(new UnauthorizedError());
  });
});
