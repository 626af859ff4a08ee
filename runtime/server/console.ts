import fastifyCookie from "@fastify/cookie";
import fastifyStatic from "@fastify/static";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Counter } from "prom-client";
import type { FastifyPluginAsync, FastifyRequest } from "fastify";
import type { Config } from "../config.js";
import { CasesReadOnlyError, ConsoleBusyError, ConsoleNotFoundError, CsrfError, UsageError } from "../errors.js";
import { packageRoot } from "../paths.js";
import type { ScriptRegistry } from "../registry/registry.js";
import { appendCase, casesFileFor } from "../runner/save-case.js";
import { hookNames, isHookName } from "../schema/hooks.js";
import { bearerCheck, isLoopback, LOGIN_PATH } from "./auth.js";
import { CallsBuffer, type CallRecord } from "./calls-buffer.js";
import {
  callsQuery,
  saveCaseRequest,
  scriptName,
  tryRequest,
  type CallsPage,
  type ConsoleScripts,
  type PayloadEntry,
  type SessionInfo,
} from "./console-schemas.js";
import { tryRun } from "./console-try.js";
import { callDetail, callSummary, codeFrame, digitsOf, redactCall } from "./console-views.js";
import { withIssues } from "./error-handler.js";
import { LatencySampler } from "./latency-sampler.js";
import type { ServerMetrics } from "./metrics.js";
import { packageVersion } from "./openapi.js";
import { scriptsReport } from "./ops-routes.js";
import { CSRF_HEADER, SESSION_COOKIE, SessionStore, sessionIdOf } from "./session.js";
import { issuesOf } from "../schema/hook-input.js";
import type { z } from "zod";

/** The bundle `npm run build` makes from runtime/console-ui (runtime/console-ui/build.mjs). */
export const CONSOLE_ASSETS = path.join(packageRoot, "dist", "console");

/** Try runs at once: each loads fresh isolates, up to their memory limits. */
const MAX_TRY_RUNS = 2;
/** Recorded payloads listed per hook and folder, newest first. */
const MAX_PAYLOADS = 100;

export interface ConsoleParts {
  /** Logins, when the server has a token. */
  sessions?: SessionStore;
  /** The recent calls, unless console.calls is 0. */
  calls?: CallsBuffer;
}

export interface ConsoleOptions extends ConsoleParts {
  config: Config;
  registry: ScriptRegistry;
  metrics: ServerMetrics;
}

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; " +
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  // Same-origin requests keep their Origin header (with no-referrer, a POST says `Origin: null`).
  "referrer-policy": "same-origin",
};

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** Where a login goes next: a path of this server, never another site. */
function localPath(next: unknown): string {
  return typeof next === "string" && /^\/(?![/\\])[\x21-\x7e]*$/.test(next) ? next : "/console";
}

function loginPage(next: string, message?: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>callscript · log in</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;background:#f4f5f7;color:#1d2330;display:grid;place-items:center;min-height:100vh;margin:0}
form{background:#fff;padding:28px 32px;border-radius:10px;box-shadow:0 2px 10px #0001;width:320px}
h1{font-size:18px;margin:0 0 4px}p{margin:0 0 16px;color:#5b6475;font-size:13px}
input{width:100%;box-sizing:border-box;padding:8px 10px;font:inherit;border:1px solid #c9ced8;border-radius:6px;margin-bottom:12px}
button{width:100%;padding:8px;font:inherit;background:#2557d6;color:#fff;border:0;border-radius:6px;cursor:pointer}
.error{color:#b3261e;background:#fdecea;padding:6px 10px;border-radius:6px}
</style></head><body>
<form method="post" action="${LOGIN_PATH}">
<h1>callscript console</h1>
<p>Enter the server's token (the <code>token</code> of its config, or CALLSCRIPT_TOKEN).</p>
${message ? `<p class="error" role="alert">${escapeHtml(message)}</p>` : ""}
<input type="password" name="token" placeholder="token" autocomplete="current-password" autofocus required aria-label="token">
<input type="hidden" name="next" value="${escapeHtml(next)}">
<button type="submit">Log in</button>
</form></body></html>`;
}

function shellPage(assetVersion: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>callscript console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/assets/console.css?v=${assetVersion}">
<script type="module" src="/console/assets/console.js?v=${assetVersion}"></script>
</head><body><div id="app"></div></body></html>`;
}

/**
 * Whether the browser says a request comes from a page of this server (or says nothing: not a
 * browser). The host is compared, not the scheme: behind a proxy that ends TLS the server sees
 * http while the page is https.
 */
function sameOrigin(request: FastifyRequest, allowNull = false): boolean {
  const origin = request.headers.origin;
  if (origin === undefined || (allowNull && origin === "null")) return true;
  try {
    const from = new URL(origin);
    // Parsed with the origin's scheme, so that a default port is written alike on both sides.
    return from.host === new URL(`${from.protocol}//${request.host}`).host;
  } catch {
    return false;
  }
}

function parseOr<T extends z.ZodType>(schema: T, value: unknown): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = issuesOf(parsed.error);
  throw withIssues(new UsageError(issues.map((issue) => `${issue.path}: ${issue.message}`).join("; ")), issues);
}

/** Recorded payloads of a hook: the scripts folder's `payloads/` and the `record` folder. */
function payloadFolders(config: Config, scriptsDir: string): Record<PayloadEntry["source"], string | undefined> {
  return { payloads: path.join(scriptsDir, "payloads"), record: config.record?.dir };
}

function listPayloads(folder: string | undefined, hook: string): string[] {
  if (!folder) return [];
  try {
    return readdirSync(folder)
      .filter((file) => file.startsWith(`${hook}.`) && file.endsWith(".json"))
      .sort()
      .reverse()
      .slice(0, MAX_PAYLOADS);
  } catch {
    return [];
  }
}

/**
 * The admin console at /console: the page and its bundle (static files), and its API under
 * /console/api. Every route here needs the token or a console session (auth.ts), but the login.
 * Writes need the session's CSRF token in a header (a cross-site form cannot send one, and the
 * session cookie is SameSite=Strict besides).
 */
export const adminConsole: FastifyPluginAsync<ConsoleOptions> = async (app, options) => {
  const { config, registry, metrics, sessions, calls } = options;
  const consoleConfig = config.console;
  /** Without a token there is no session: the CSRF token is one per process. */
  const processCsrf = randomBytes(24).toString("base64url");
  const check = config.token ? bearerCheck(config.token) : undefined;
  const sampler = new LatencySampler(metrics.registry);
  sampler.start();
  app.addHook("onClose", async () => sampler.stop());
  // Read at scrape time: the hook route only counts (calls-buffer.ts).
  if (calls)
    new Counter({
      name: "callscript_console_calls_not_kept_total",
      help: "Successful hook requests the console's Calls page did not keep, for being over console.callsPerSecond",
      registers: [metrics.registry],
      collect() {
        this.reset();
        this.inc(calls.notKept);
      },
    });
  let tryRuns = 0;

  // Every route of this plugin (the static files too) opens with a console session.
  app.addHook("onRoute", (route) => {
    route.config = { ...(route.config as object), session: true };
  });
  await app.register(fastifyCookie, { hook: false });
  app.addContentTypeParser("application/x-www-form-urlencoded", { parseAs: "string", bodyLimit: 16 * 1024 }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(typeof body === "string" ? body : body.toString("utf8"))));
  });

  app.addHook("onRequest", async (request, reply) => {
    reply.headers(SECURITY_HEADERS);
    if (request.url.startsWith("/console/api/")) reply.header("cache-control", "no-store");
    // Without a token the server listens on loopback only; a page of another site that reaches it
    // by a name of its own (DNS rebinding) is refused.
    if (!config.token && !isLoopback(request.hostname.replace(/:\d+$/, ""))) throw new CsrfError();
  });

  const csrfOf = (request: FastifyRequest): string | undefined => {
    if (!sessions) return processCsrf;
    const checked = sessions.check(request);
    return checked.ok ? checked.session.csrf : undefined;
  };
  /** A write: the page's CSRF token, and (when the browser says) from this origin. */
  const write = async (request: FastifyRequest) => {
    if (!sameOrigin(request)) throw new CsrfError();
    // A bearer token (a script or curl, not a browser) needs no CSRF token.
    if (check?.(request.headers.authorization)) return;
    const expected = csrfOf(request);
    if (expected === undefined || request.headers[CSRF_HEADER] !== expected) throw new CsrfError();
  };

  // ---- login ------------------------------------------------------------------------------------

  app.get<{ Querystring: { next?: string } }>(LOGIN_PATH, { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const next = localPath(request.query.next);
    if (!sessions || sessions.check(request).ok) return reply.redirect(next, 303);
    return reply.type("text/html; charset=utf-8").send(loginPage(next));
  });

  app.post<{ Body: { token?: unknown; next?: unknown } }>(LOGIN_PATH, { config: { public: true }, schema: { hide: true } }, async (request, reply) => {
    const next = localPath(request.body?.next);
    if (!sessions || !check) return reply.redirect(next, 303);
    // A login form may say `Origin: null` (privacy settings); a wrong login gains nothing anyway.
    if (!sameOrigin(request, true)) throw new CsrfError();
    const token = typeof request.body?.token === "string" ? request.body.token : "";
    if (!check(`Bearer ${token}`)) {
      request.log.warn({ url: LOGIN_PATH }, "console login refused: wrong token");
      return reply.code(401).type("text/html; charset=utf-8").send(loginPage(next, "That is not the server's token."));
    }
    const session = sessions.create();
    reply.setCookie(SESSION_COOKIE, session.id, {
      path: "/",
      httpOnly: true,
      sameSite: "strict",
      secure: request.protocol === "https",
      maxAge: sessions.ttlSeconds,
    });
    request.log.info({ expiresAt: new Date(session.expiresAt).toISOString() }, "console login");
    return reply.redirect(next, 303);
  });

  app.post("/console/api/logout", { schema: { hide: true }, preHandler: write }, async (request, reply) => {
    const id = sessionIdOf(request);
    if (id && sessions) sessions.delete(id);
    reply.clearCookie(SESSION_COOKIE, { path: "/" });
    return { ok: true };
  });

  // ---- the page -------------------------------------------------------------------------------

  const bundle = path.join(CONSOLE_ASSETS, "console.js");
  const assetVersion = existsSync(bundle) ? createHash("sha256").update(readFileSync(bundle)).digest("hex").slice(0, 10) : undefined;
  if (assetVersion) {
    await app.register(fastifyStatic, { root: CONSOLE_ASSETS, prefix: "/console/assets/", decorateReply: false, index: false, cacheControl: false });
  }
  app.get("/console", { schema: { hide: true } }, async (_request, reply) => {
    if (!assetVersion) {
      throw new ConsoleNotFoundError(`The console's bundle is missing (${bundle}): run \`npm run build\` in the callscript folder`);
    }
    return reply.type("text/html; charset=utf-8").header("cache-control", "no-store").send(shellPage(assetVersion));
  });

  // ---- the API --------------------------------------------------------------------------------

  app.get("/console/api/session", { schema: { hide: true } }, async (request): Promise<SessionInfo> => {
    const checked = sessions?.check(request);
    return {
      login: sessions !== undefined,
      csrf: csrfOf(request) ?? "",
      expiresAt: checked?.ok ? checked.session.expiresAt : null,
      hooks: [...hookNames],
      calls: { capacity: calls ? calls.capacity : 0, maxBytes: consoleConfig.callsMaxBytes, perSecond: consoleConfig.callsPerSecond },
      redact: consoleConfig.redact,
      saveCases: consoleConfig.saveCases,
      version: packageVersion(),
    };
  });

  app.get("/console/api/scripts", { schema: { hide: true } }, async (): Promise<ConsoleScripts> => {
    const report = scriptsReport(registry);
    const scripts = report.scripts.map((state) => {
      // Settings in force come masked from the registry (mask-secrets.ts), as GET /scripts shows them.
      const shown = state as typeof state & Record<string, unknown>;
      const location = state.lastError?.location;
      const frame = location ? codeFrame(registry.scriptsDir, location.file, location.line) : undefined;
      return { ...shown, ...(frame ? { frame } : {}), latency: sampler.of(state.name) };
    });
    return { ready: report.ready, scripts, latencyIntervalSeconds: sampler.intervalMs / 1000 };
  });

  app.get<{ Params: { name: string } }>("/console/api/scripts/:name/source", { schema: { hide: true } }, async (request, reply) => {
    const name = parseOr(scriptName, request.params.name);
    const file = registry.fileOf(name);
    if (!file) throw new ConsoleNotFoundError(`No script named ${name}`);
    return reply.type("text/plain; charset=utf-8").send(readFileSync(file, "utf8"));
  });

  /** Digits of each call's input (and of its redacted form), computed once per call on demand. */
  const searchable = new WeakMap<CallRecord, string>();
  const digitsOfCall = (call: CallRecord): string => {
    let digits = searchable.get(call);
    if (digits === undefined) {
      const shown = consoleConfig.redact ? digitsOf(redactCall({ input: call.input, answer: null, invocations: [] }, true).input) : "";
      digits = `${digitsOf(call.input)}|${shown}`;
      searchable.set(call, digits);
    }
    return digits;
  };

  app.get("/console/api/calls", { schema: { hide: true } }, async (request): Promise<CallsPage> => {
    const query = parseOr(callsQuery, request.query);
    if (!calls) return { calls: [], lastSeq: 0, kept: 0, bytes: 0, notKept: 0, enabled: false };
    const phone = query.phone?.replace(/\D/g, "") ?? "";
    const found = [];
    for (const call of calls.newestFirst()) {
      if (query.after !== undefined && call.seq <= query.after) break;
      if (query.hook && call.hook !== query.hook) continue;
      if (query.outcome && call.outcome !== query.outcome) continue;
      if (phone && !digitsOfCall(call).includes(phone)) continue;
      found.push(callSummary(call));
      if (found.length >= query.limit) break;
    }
    return { calls: found, lastSeq: calls.lastSeq, kept: calls.size, bytes: calls.bytes, notKept: calls.notKept, enabled: true };
  });

  app.get<{ Params: { seq: string } }>("/console/api/calls/:seq", { schema: { hide: true } }, async (request) => {
    const seq = Number(request.params.seq);
    const call = calls && Number.isSafeInteger(seq) ? [...calls.newestFirst()].find((entry) => entry.seq === seq) : undefined;
    if (!call)
      throw new ConsoleNotFoundError(
        `Call ${request.params.seq} is not among the recent calls (it may have been dropped: console.calls, console.callsMaxBytes)`,
      );
    return callDetail(call, consoleConfig.redact);
  });

  app.get<{ Querystring: { hook?: string } }>("/console/api/payloads", { schema: { hide: true } }, async (request) => {
    const hook = request.query.hook ?? "";
    if (!isHookName(hook)) throw new UsageError(`hook: one of ${hookNames.join(", ")}`);
    const folders = payloadFolders(config, registry.scriptsDir);
    const entries: PayloadEntry[] = [];
    for (const source of ["payloads", "record"] as const) {
      for (const file of listPayloads(folders[source], hook)) entries.push({ source, file, hook });
    }
    return { payloads: entries };
  });

  app.get<{ Params: { source: string; file: string } }>("/console/api/payloads/:source/:file", { schema: { hide: true } }, async (request) => {
    const { source, file } = request.params;
    const folder = source === "payloads" || source === "record" ? payloadFolders(config, registry.scriptsDir)[source] : undefined;
    const hook = file.split(".")[0] ?? "";
    // Only a name the listing gives: no path, no other folder.
    if (!folder || !isHookName(hook) || !listPayloads(folder, hook).includes(file)) throw new ConsoleNotFoundError(`No recorded payload ${source}/${file}`);
    try {
      return JSON.parse(readFileSync(path.join(folder, file), "utf8")) as unknown;
    } catch (error) {
      throw new UsageError(`${source}/${file} is not valid JSON: ${(error as Error).message}`);
    }
  });

  app.post("/console/api/try", { schema: { hide: true }, preHandler: write }, async (request) => {
    const body = parseOr(tryRequest, request.body);
    if (tryRuns >= MAX_TRY_RUNS) throw new ConsoleBusyError(String(MAX_TRY_RUNS));
    tryRuns++;
    try {
      const result = await tryRun(config, registry, body, `try-${request.id}`);
      request.log.info({ hook: body.hook, mode: body.mode, script: body.script, ms: result.ms }, "console try run");
      return result;
    } finally {
      tryRuns--;
    }
  });

  app.post("/console/api/cases", { schema: { hide: true }, preHandler: write }, async (request) => {
    if (!consoleConfig.saveCases) throw new CasesReadOnlyError();
    const body = parseOr(saveCaseRequest, request.body);
    const file = casesFileFor(registry.scriptsDir, body.script);
    const { script: _, ...entry } = body;
    const saved = await appendCase(file, entry);
    request.log.info({ file: saved.file, case: body.name }, "console saved a case");
    return { file: path.relative(registry.scriptsDir, saved.file), cases: saved.cases };
  });
};

/** Sessions and the calls buffer of a server, per its config: made once, shared by auth, the hook route and the console. */
export function consoleParts(config: Config, clock?: () => number): ConsoleParts {
  if (!config.console.enabled) return {};
  const parts: ConsoleParts = {};
  if (config.token) parts.sessions = new SessionStore(config.console.sessionMinutes * 60_000, clock);
  if (config.console.calls > 0) {
    parts.calls = new CallsBuffer(config.console.calls, config.console.callsMaxBytes, config.console.callsPerSecond, clock);
  }
  return parts;
}
