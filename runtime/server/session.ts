import { randomBytes } from "node:crypto";
import type { FastifyRequest } from "fastify";

/** The cookie that carries a console session: HttpOnly, SameSite=Strict, path / (so /docs sees it too). */
export const SESSION_COOKIE = "callscript_session";
/** The header a console write must carry, equal to the session's CSRF token. */
export const CSRF_HEADER = "x-callscript-csrf";

/** Sessions kept at once; past it the oldest goes (a login loop cannot grow memory). */
const MAX_SESSIONS = 256;

export interface Session {
  id: string;
  csrf: string;
  createdAt: number;
  expiresAt: number;
}

export type SessionCheck = { ok: true; session: Session } | { ok: false; reason: "none" | "expired" };

const COOKIE = new RegExp(`(?:^|;\\s*)${SESSION_COOKIE}=([A-Za-z0-9_-]{20,100})(?:;|$)`);

/** The session id a request's Cookie header carries, if any. Only this one cookie is read. */
export function sessionIdOf(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== "string") return undefined;
  return COOKIE.exec(header)?.[1];
}

/**
 * Console logins, in memory: a login with the server's token gets a random id (the cookie) and a
 * CSRF token (sent by the page on every write). A session ends at its expiry, on logout, or when
 * the process restarts; nothing of it is written anywhere.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>();

  constructor(
    private readonly ttlMs: number,
    /** The clock, replaceable in tests to expire a session without waiting. */
    readonly now: () => number = Date.now,
  ) {}

  create(): Session {
    const now = this.now();
    this.sweep(now);
    if (this.sessions.size >= MAX_SESSIONS) {
      const oldest = this.sessions.keys().next().value;
      if (oldest !== undefined) this.sessions.delete(oldest);
    }
    const session: Session = {
      id: randomBytes(32).toString("base64url"),
      csrf: randomBytes(24).toString("base64url"),
      createdAt: now,
      expiresAt: now + this.ttlMs,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  check(request: FastifyRequest): SessionCheck {
    const id = sessionIdOf(request);
    if (id === undefined) return { ok: false, reason: "none" };
    const session = this.sessions.get(id);
    if (!session) return { ok: false, reason: "none" };
    if (session.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return { ok: false, reason: "expired" };
    }
    return { ok: true, session };
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Seconds a new session lives, for the cookie's Max-Age. */
  get ttlSeconds(): number {
    return Math.floor(this.ttlMs / 1000);
  }

  private sweep(now: number): void {
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.sessions.delete(id);
  }
}
