import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * A stand-in for a Bitrix24 portal's REST API, on a loopback port, for the tests of ctx.fetch and
 * of the examples that look data up. It answers as the portal does (shared/domain/crm-rest.md and
 * apidocs.bitrix24.com): an inbound webhook with its code in the path
 * (`/rest/<user>/<code>/<method>.json`); parameters as JSON, a form or the query string (PHP-style
 * `filter[PHONE]=…`); `{ result, total, next, time }` on success, 50 items a page; errors as
 * `{ error, error_description }` with the portal's statuses: INVALID_CREDENTIALS 401 (wrong
 * webhook), ERROR_METHOD_NOT_FOUND 404, QUERY_LIMIT_EXCEEDED 503 (a leaky bucket: a burst, then a
 * few requests a second). Tests can slow it down and make it fail on purpose.
 */

export interface CrmPhone {
  ID?: string;
  VALUE_TYPE?: string;
  VALUE: string;
  TYPE_ID?: "PHONE";
}

export interface CrmContact {
  ID: string;
  NAME: string;
  LAST_NAME?: string;
  ASSIGNED_BY_ID: string;
  PHONE?: CrmPhone[];
  [field: string]: unknown;
}

export interface CrmUser {
  ID: string;
  ACTIVE: boolean;
  NAME: string;
  LAST_NAME?: string;
  EMAIL?: string;
  UF_PHONE_INNER?: string;
  [field: string]: unknown;
}

export interface CrmServerOptions {
  /** The webhook's user id (default "1") and code (default "x7k2abc9def0ghij"). */
  userId?: string;
  webhookCode?: string;
  contacts?: CrmContact[];
  users?: CrmUser[];
  /** The portal's leaky bucket: `burst` requests at once, then `perSecond`; false: no limit (default). */
  rateLimit?: { burst: number; perSecond: number } | false;
  /** Milliseconds before every answer (default 0). */
  delayMs?: number;
}

export interface CrmRequest {
  httpMethod: string;
  /** The REST method, e.g. crm.contact.list. */
  method: string;
  /** Whether the webhook user and code were right. */
  authorized: boolean;
  params: Record<string, unknown>;
  headers: IncomingMessage["headers"];
}

export interface CrmError {
  status: number;
  error: string;
  description: string;
}

export interface CrmServer {
  /** `http://127.0.0.1:PORT` */
  origin: string;
  /** `http://127.0.0.1:PORT/rest/1/<code>/`: append `crm.contact.list.json`. */
  webhookUrl: string;
  userId: string;
  webhookCode: string;
  requests: CrmRequest[];
  /** Answers after `ms` from now on (0: at once again). */
  setDelay(ms: number): void;
  /** The next `times` requests fail with this error (e.g. QUERY_LIMIT_EXCEEDED). */
  failNext(error: CrmError, times?: number): void;
  close(): Promise<void>;
}

export const CRM_ERRORS = {
  invalidCredentials: { status: 401, error: "INVALID_CREDENTIALS", description: "Invalid request credentials" },
  methodNotFound: { status: 404, error: "ERROR_METHOD_NOT_FOUND", description: "Method not found!" },
  queryLimitExceeded: { status: 503, error: "QUERY_LIMIT_EXCEEDED", description: "Too many requests" },
  overloadLimit: { status: 503, error: "OVERLOAD_LIMIT", description: "REST API is blocked due to overload." },
  internal: { status: 500, error: "INTERNAL_SERVER_ERROR", description: "Internal server error" },
  accessDenied: { status: 403, error: "ACCESS_DENIED", description: "Access denied!" },
} satisfies Record<string, CrmError>;

export const PAGE_SIZE = 50;

/** `filter[PHONE]=1&select[]=ID&select[]=NAME` → `{ filter: { PHONE: "1" }, select: ["ID", "NAME"] }`, as PHP reads it. */
export function parsePhpParams(search: URLSearchParams): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of search) {
    const [head, ...rest] = name.split("[");
    const path = [head!, ...rest.map((part) => part.replace(/\]$/, ""))];
    let node: Record<string, unknown> = out;
    path.forEach((part, index) => {
      const last = index === path.length - 1;
      const key = part === "" ? String(Array.isArray(node) ? node.length : Object.keys(node).length) : part;
      if (last) {
        if (Array.isArray(node)) node.push(value);
        else node[key] = value;
        return;
      }
      const nextIsList = path[index + 1] === "";
      if (node[key] === undefined) node[key] = nextIsList ? [] : {};
      node = node[key] as Record<string, unknown>;
    });
  }
  return out;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function time(startedAt: number) {
  const finish = Date.now() / 1000;
  const start = startedAt / 1000;
  return {
    start,
    finish,
    duration: finish - start,
    processing: finish - start,
    date_start: new Date(startedAt).toISOString().replace(/\.\d+Z$/, "+00:00"),
    date_finish: new Date().toISOString().replace(/\.\d+Z$/, "+00:00"),
    operating_reset_at: Math.floor(finish) + 600,
    operating: 0,
  };
}

/** Fields of an entity as `select` asks: multi-value fields (PHONE, EMAIL) only when named. */
function selected<T extends Record<string, unknown>>(entity: T, select: unknown): Record<string, unknown> {
  const fields = Array.isArray(select) ? select.map(String) : [];
  const multi = new Set(["PHONE", "EMAIL", "WEB", "IM"]);
  const out: Record<string, unknown> = {};
  const all = fields.length === 0 || fields.includes("*");
  for (const [key, value] of Object.entries(entity)) {
    if (fields.includes(key) || (all && !multi.has(key)) || key === "ID") out[key] = value;
  }
  return out;
}

const asRecord = (value: unknown): Record<string, unknown> =>
  value && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : {};

export async function startCrmServer(options: CrmServerOptions = {}): Promise<CrmServer> {
  const userId = options.userId ?? "1";
  const webhookCode = options.webhookCode ?? "x7k2abc9def0ghij";
  const contacts = options.contacts ?? [];
  const users = options.users ?? [];
  const requests: CrmRequest[] = [];
  let delayMs = options.delayMs ?? 0;
  const failures: CrmError[] = [];
  // The leaky bucket: a level that drains at perSecond and may not pass burst.
  let level = 0;
  let drainedAt = Date.now();

  const send = (response: ServerResponse, status: number, body: unknown) => {
    response.writeHead(status, { "content-type": "application/json; charset=utf-8" });
    response.end(JSON.stringify(body));
  };
  const fail = (response: ServerResponse, error: CrmError) => send(response, error.status, { error: error.error, error_description: error.description });

  const methods: Record<string, (params: Record<string, unknown>, startedAt: number) => unknown> = {
    "crm.contact.list": (params, startedAt) => {
      const filter = asRecord(params.filter ?? params.FILTER);
      const phones = filter.PHONE === undefined ? undefined : (Array.isArray(filter.PHONE) ? filter.PHONE : [filter.PHONE]).map(String);
      const matching = contacts.filter((contact) => {
        if (phones && !(contact.PHONE ?? []).some((phone) => phones.includes(phone.VALUE))) return false;
        return Object.entries(filter).every(([key, value]) => key === "PHONE" || String(contact[key]) === String(value));
      });
      const start = Math.max(0, Number(params.start ?? 0) || 0);
      const page = matching.slice(start, start + PAGE_SIZE).map((contact) => selected(contact, params.select ?? params.SELECT));
      const next = start + PAGE_SIZE < matching.length ? { next: start + PAGE_SIZE } : {};
      return { result: page, ...next, total: matching.length, time: time(startedAt) };
    },
    "crm.contact.get": (params, startedAt) => {
      const contact = contacts.find((item) => item.ID === String(params.id ?? params.ID));
      if (!contact) return { status: 400, error: "", description: "Not found" } satisfies CrmError;
      return { result: contact, time: time(startedAt) };
    },
    "user.get": (params, startedAt) => {
      const filter = {
        ...asRecord(params.filter ?? params.FILTER),
        ...Object.fromEntries(Object.entries(params).filter(([key]) => /^[A-Z_]+$/.test(key) && key !== "FILTER")),
      };
      const matching = users.filter((user) => Object.entries(filter).every(([key, value]) => String(user[key]) === String(value)));
      const start = Math.max(0, Number(params.start ?? 0) || 0);
      const next = start + PAGE_SIZE < matching.length ? { next: start + PAGE_SIZE } : {};
      return { result: matching.slice(start, start + PAGE_SIZE), ...next, total: matching.length, time: time(startedAt) };
    },
    "crm.duplicate.findbycomm": (params, startedAt) => {
      const values = (Array.isArray(params.values) ? params.values : []).map(String);
      const ids = contacts.filter((contact) => (contact.PHONE ?? []).some((phone) => values.includes(phone.VALUE))).map((contact) => Number(contact.ID));
      return { result: ids.length > 0 ? { CONTACT: ids } : [], time: time(startedAt) };
    },
  };

  const server: Server = createServer(async (request, response) => {
    const startedAt = Date.now();
    const url = new URL(request.url ?? "/", "http://crm.invalid");
    const body = await readBody(request);
    const match = /^\/rest\/([^/]+)\/([^/]+)\/([a-z0-9_.]+?)(?:\.json)?\/?$/i.exec(url.pathname);
    const method = match?.[3] ?? "";
    const authorized = match?.[1] === userId && match?.[2] === webhookCode;
    let params: Record<string, unknown> = parsePhpParams(url.searchParams);
    const contentType = String(request.headers["content-type"] ?? "");
    try {
      if (body !== "" && contentType.includes("json")) params = { ...params, ...asRecord(JSON.parse(body)) };
      else if (body !== "") params = { ...params, ...parsePhpParams(new URLSearchParams(body)) };
    } catch {
      requests.push({ httpMethod: request.method ?? "", method, authorized, params, headers: request.headers });
      return send(response, 400, { error: "INVALID_REQUEST", error_description: "Invalid JSON" });
    }
    requests.push({ httpMethod: request.method ?? "", method, authorized, params, headers: request.headers });
    if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
    if (response.destroyed) return;

    if (!match || !authorized) return fail(response, CRM_ERRORS.invalidCredentials);
    if (options.rateLimit) {
      const now = Date.now();
      level = Math.max(0, level - ((now - drainedAt) / 1000) * options.rateLimit.perSecond);
      drainedAt = now;
      if (level + 1 > options.rateLimit.burst) return fail(response, CRM_ERRORS.queryLimitExceeded);
      level += 1;
    }
    const failure = failures.shift();
    if (failure) return fail(response, failure);
    const handler = methods[method];
    if (!handler) return fail(response, CRM_ERRORS.methodNotFound);
    const answer = handler(params, startedAt);
    if (answer && typeof answer === "object" && "status" in answer) return fail(response, answer as CrmError);
    send(response, 200, answer);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    origin,
    webhookUrl: `${origin}/rest/${userId}/${webhookCode}/`,
    userId,
    webhookCode,
    requests,
    setDelay: (ms) => {
      delayMs = ms;
    },
    failNext: (error, times = 1) => {
      for (let i = 0; i < times; i++) failures.push(error);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
