import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { InjectOptions } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../runtime/config.js";
import { CallsBuffer, estimateBytes } from "../../runtime/server/calls-buffer.js";
import type { CallDetail, CallsPage, ConsoleScripts, SessionInfo, TryResult } from "../../runtime/server/console-schemas.js";
import { CSRF_HEADER, SESSION_COOKIE } from "../../runtime/server/session.js";
import { bearer, payload, startServer, type TestServer } from "./helpers.js";

const TOKEN = "console-token-0123456789abcdef";
const UNAUTHORIZED = { statusCode: 401, code: "CS_ERR_UNAUTHORIZED", error: "Unauthorized", message: "Missing or invalid bearer token" };

const blacklist = `import { defineScript, participants } from "callscript";
export default defineScript({
  settings: { extensions: ["101", "102"], apiToken: "s3cr3t-value" },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      const blocked = participants(call_full).filter((ext) => settings.extensions.includes(ext));
      log.info("client " + call_full.channel.from.original + " blocked: " + blocked.join(","));
      if (blocked.length === 0) return undefined;
      return { result: false };
    },
  },
});
`;

/** A clock the test moves: sessions expire without waiting. */
let now = Date.now();

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ "blacklist.ts": blacklist }, { token: TOKEN, console: { saveCases: true, calls: 50 } }, { consoleClock: () => now, docs: true });
});
afterAll(async () => server?.close());

const inject = (options: InjectOptions) => server.app.inject(options);

async function login(token = TOKEN, next?: string) {
  return inject({
    method: "POST",
    url: "/console/login",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    payload: new URLSearchParams({ token, ...(next ? { next } : {}) }).toString(),
  });
}

async function session(): Promise<{ cookie: string; csrf: string }> {
  const res = await login();
  expect(res.statusCode).toBe(303);
  const setCookie = String(res.headers["set-cookie"]);
  const cookie = setCookie.split(";")[0]!;
  const info = (await inject({ url: "/console/api/session", headers: { cookie } })).json() as SessionInfo;
  return { cookie, csrf: info.csrf };
}

describe("console login and session", () => {
  it("nothing of the console answers without the token or a session; the login form does", async () => {
    for (const url of [
      "/console",
      "/console/api/session",
      "/console/api/scripts",
      "/console/api/calls",
      "/console/api/calls/1",
      "/console/assets/console.js",
    ]) {
      const res = await inject({ url });
      expect([url, res.statusCode, res.json()]).toEqual([url, 401, UNAUTHORIZED]);
    }
    for (const url of ["/console/api/try", "/console/api/cases", "/console/api/logout"]) {
      const res = await inject({ method: "POST", url, payload: "{}" });
      expect([url, res.statusCode]).toEqual([url, 401]);
    }
    const form = await inject({ url: "/console/login" });
    expect(form.statusCode).toBe(200);
    expect(form.body).toContain('name="token"');
    expect(form.body).not.toContain("console.js");
  });

  it("a browser asking for a page without a session is sent to the login form, and back after it", async () => {
    const res = await inject({ url: "/docs", headers: { accept: "text/html,application/xhtml+xml" } });
    expect(res.statusCode).toBe(303);
    expect(res.headers.location).toBe("/console/login?next=%2Fdocs");
    const wrong = await login("not-the-token-at-all-0000", "/docs");
    expect(wrong.statusCode).toBe(401);
    expect(wrong.body).toContain("That is not the server&#39;s token.");
    expect(wrong.headers["set-cookie"]).toBeUndefined();
    const right = await login(TOKEN, "/docs");
    expect(right.statusCode).toBe(303);
    expect(right.headers.location).toBe("/docs");
    const setCookie = String(right.headers["set-cookie"]);
    expect(setCookie).toMatch(new RegExp(`^${SESSION_COOKIE}=[\\w-]{40,};`));
    expect(setCookie).toContain("HttpOnly");
    expect(setCookie).toContain("SameSite=Strict");
    expect(setCookie).toContain("Path=/");
    expect(setCookie).toContain("Max-Age=3600");
    const cookie = setCookie.split(";")[0]!;
    // /docs and the OpenAPI document open in the browser with the session.
    expect((await inject({ url: "/docs", headers: { cookie } })).statusCode).toBe(200);
    expect((await inject({ url: "/openapi.json", headers: { cookie } })).statusCode).toBe(200);
  });

  it("a login never sends the browser to another site", async () => {
    for (const next of ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"]) {
      const res = await login(TOKEN, next);
      expect([next, res.headers.location]).toEqual([next, "/console"]);
    }
  });

  it("a session opens the console and the docs, never the connector's routes or the operator's", async () => {
    const { cookie } = await session();
    expect((await inject({ url: "/console/api/scripts", headers: { cookie } })).statusCode).toBe(200);
    for (const url of ["/scripts", "/metrics"]) {
      expect([url, (await inject({ url, headers: { cookie } })).statusCode]).toEqual([url, 401]);
    }
    const hook = await server.post("need_registration", payload("need_registration.incoming-missed"), { cookie });
    expect(hook.statusCode).toBe(401);
    // The bearer token works as before, beside the session.
    expect((await inject({ url: "/console/api/scripts", headers: bearer(TOKEN) })).statusCode).toBe(200);
  });

  it("writes need the session's CSRF token, and the console's own origin", async () => {
    const { cookie, csrf } = await session();
    const body = { hook: "need_registration", mode: "live", input: payload("need_registration.incoming-missed") };
    const post = (headers: Record<string, string>) => inject({ method: "POST", url: "/console/api/try", payload: body, headers: { cookie, ...headers } });
    expect((await post({})).json().code).toBe("CS_ERR_CSRF");
    expect((await post({ [CSRF_HEADER]: "x".repeat(32) })).statusCode).toBe(403);
    expect((await post({ [CSRF_HEADER]: csrf, origin: "https://evil.example" })).statusCode).toBe(403);
    expect((await post({ [CSRF_HEADER]: csrf })).statusCode).toBe(200);
    expect((await post({ [CSRF_HEADER]: csrf, origin: "http://localhost:80" })).statusCode).toBe(200);
    expect((await post({ [CSRF_HEADER]: csrf, origin: "null" })).statusCode).toBe(403);
    // Behind a proxy that ends TLS the page is https and the server sees http.
    expect((await post({ [CSRF_HEADER]: csrf, origin: "https://pbx.example", host: "pbx.example" })).statusCode).toBe(200);
    // A login form may say Origin: null; a login from another site's page is refused.
    const form = (origin: string) =>
      inject({ method: "POST", url: "/console/login", headers: { origin, "content-type": "application/x-www-form-urlencoded" }, payload: `token=${TOKEN}` });
    expect((await form("null")).statusCode).toBe(303);
    expect((await form("https://evil.example")).statusCode).toBe(403);
  });

  it("a session expires: then the console answers 401 again and the login form shows", async () => {
    const { cookie } = await session();
    expect((await inject({ url: "/console/api/session", headers: { cookie } })).statusCode).toBe(200);
    now += 61 * 60_000;
    try {
      expect((await inject({ url: "/console/api/session", headers: { cookie } })).statusCode).toBe(401);
      expect((await inject({ url: "/console", headers: { cookie, accept: "text/html" } })).headers.location).toBe("/console/login?next=%2Fconsole");
    } finally {
      now = Date.now();
    }
  });

  it("logout ends the session", async () => {
    const { cookie, csrf } = await session();
    const out = await inject({ method: "POST", url: "/console/api/logout", headers: { cookie, [CSRF_HEADER]: csrf }, payload: "{}" });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers["set-cookie"])).toContain(`${SESSION_COOKIE}=;`);
    expect((await inject({ url: "/console/api/session", headers: { cookie } })).statusCode).toBe(401);
  });

  it("console pages carry a CSP that allows no script but its own", async () => {
    const { cookie } = await session();
    const res = await inject({ url: "/console", headers: { cookie } });
    expect(res.headers["content-security-policy"]).toContain("script-src 'self'");
    expect(res.headers["x-frame-options"]).toBe("DENY");
  });
});

describe("console data", () => {
  it("Scripts: the same states as GET /scripts, settings' secrets masked, latency series", async () => {
    const { cookie } = await session();
    const scripts = (await inject({ url: "/console/api/scripts", headers: { cookie } })).json() as ConsoleScripts;
    const report = (await inject({ url: "/scripts", headers: bearer(TOKEN) })).json() as { scripts: Record<string, unknown>[] };
    const console = scripts.scripts[0]!;
    for (const [key, value] of Object.entries(report.scripts[0]!)) if (key !== "settings") expect([key, console[key]]).toEqual([key, value]);
    expect(JSON.stringify(scripts)).not.toContain("s3cr3t-value");
    expect(Array.isArray(console.latency)).toBe(true);
  });

  it("Calls: each hook request with its input, answer, each script's data and log lines; phones redacted", async () => {
    const { cookie } = await session();
    const input = payload("need_registration.incoming-missed");
    const before = ((await inject({ url: "/console/api/calls", headers: { cookie } })).json() as CallsPage).lastSeq;
    const answered = await server.post("need_registration", input, bearer(TOKEN));
    expect(answered.json()).toEqual({ state: "success", data: { result: false } });
    await server.post("need_registration", { call_full: { channel: "nope" } }, bearer(TOKEN));
    // Without the token: refused, and not kept.
    expect((await server.post("need_registration", input)).statusCode).toBe(401);

    const page = (await inject({ url: `/console/api/calls?after=${before}`, headers: { cookie } })).json() as CallsPage;
    expect(page.calls.map((call) => [call.hook, call.outcome, call.status, call.scripts])).toEqual([
      ["need_registration", "CS_ERR_INVALID_INPUT", 400, []],
      ["need_registration", "success", 200, ["blacklist"]],
    ]);
    const detail = (await inject({ url: `/console/api/calls/${page.calls[1]!.seq}`, headers: { cookie } })).json() as CallDetail;
    expect(detail.answer).toEqual({ state: "success", data: { result: false } });
    expect(detail.invocations[0]).toMatchObject({ script: "blacklist", outcome: "data", data: { result: false } });
    expect(detail.invocations[0]!.logs.lines[0]!.message).toMatch(/^client .* blocked: 102$/);
    expect(detail.redacted).toBe(true);
    // The client's number is nowhere in what the page gets: not in the input, not in the log line.
    const client = (input as { call_full: { channel: { from: { base: string } } } }).call_full.channel.from.base;
    expect(client).toMatch(/^\d{7,}$/);
    expect(JSON.stringify(detail)).not.toContain(client);

    // The phone filter finds the call by the real number, and by the number as shown.
    const byPhone = (await inject({ url: `/console/api/calls?phone=${client}`, headers: { cookie } })).json() as CallsPage;
    expect(byPhone.calls.map((call) => call.seq)).toContain(page.calls[1]!.seq);
    const none = (await inject({ url: "/console/api/calls?phone=5550000000000", headers: { cookie } })).json() as CallsPage;
    expect(none.calls).toEqual([]);
    const byOutcome = (await inject({ url: "/console/api/calls?outcome=CS_ERR_INVALID_INPUT", headers: { cookie } })).json() as CallsPage;
    expect(byOutcome.calls.every((call) => call.outcome === "CS_ERR_INVALID_INPUT")).toBe(true);
  });

  it("Try: the live version, and a draft, in sandboxes of their own; the live script is not touched", async () => {
    const { cookie, csrf } = await session();
    const headers = { cookie, [CSRF_HEADER]: csrf };
    const input = payload("need_registration.incoming-missed");
    const invocationsBefore = server.registry.states()[0]!.invocations;
    const live = (
      await inject({ method: "POST", url: "/console/api/try", headers, payload: { hook: "need_registration", mode: "live", input } })
    ).json() as TryResult;
    expect(live.answer).toEqual({ state: "success", data: { result: false } });
    expect(live.invocations[0]!.stats.heapUsedBytes).toBeGreaterThan(0);

    const draft = blacklist.replace("return { result: false };", 'log.warn("draft ran"); return { result: false, };');
    const ran = (
      await inject({
        method: "POST",
        url: "/console/api/try",
        headers,
        payload: { hook: "need_registration", mode: "draft", script: "blacklist", source: draft, input },
      })
    ).json() as TryResult;
    expect(ran.answer).toEqual({ state: "success", data: { result: false } });
    expect(ran.invocations[0]!.logs.lines.map((line) => line.message)).toContain("draft ran");
    expect(ran.scripts[0]!.version).not.toBe(server.registry.states()[0]!.version);

    const broken = (
      await inject({
        method: "POST",
        url: "/console/api/try",
        headers,
        payload: {
          hook: "need_registration",
          mode: "draft",
          script: "blacklist",
          source: blacklist.replace("if (blocked.length === 0)", "if (blocked.lenght.x === 0)"),
          input,
        },
      })
    ).json() as TryResult;
    expect(broken.answer).toMatchObject({ state: "error", error: { reason: "exception", script: "blacklist", location: { file: "blacklist.ts", line: 8 } } });

    const syntax = (
      await inject({
        method: "POST",
        url: "/console/api/try",
        headers,
        payload: {
          hook: "need_registration",
          mode: "draft",
          script: "blacklist",
          source: blacklist.replace("return { result: false };", "return { result: false ;"),
          input,
        },
      })
    ).json() as TryResult;
    expect(syntax.stage).toBe("compile");
    expect(syntax.diagnostics?.[0]?.location).toMatchObject({ file: "blacklist.ts", line: 9 });

    const unhandled = (
      await inject({
        method: "POST",
        url: "/console/api/try",
        headers,
        payload: {
          hook: "process_client_phone",
          mode: "draft",
          script: "blacklist",
          source: blacklist,
          input: payload("process_client_phone.incoming-8-format"),
        },
      })
    ).json() as TryResult;
    expect(unhandled.unhandled).toMatch(/blacklist has no handler for process_client_phone; it handles: need_registration/);

    // A draft of a new script, with the hook's live scripts: both run, in order, and no file is made.
    const newcomer = `import { defineScript } from "callscript";
export default defineScript({ order: 10, hooks: { need_registration(_input, { data, log }) { log.info("after: " + JSON.stringify(data)); return undefined; } } });
`;
    const both = (
      await inject({
        method: "POST",
        url: "/console/api/try",
        headers,
        payload: { hook: "need_registration", mode: "draft", script: "newcomer", source: newcomer, pipeline: true, input },
      })
    ).json() as TryResult;
    expect(both.scripts.map((entry) => entry.name)).toEqual(["blacklist", "newcomer"]);
    expect(both.answer).toEqual({ state: "success", data: { result: false } });
    expect(both.invocations[1]!.logs.lines[0]!.message).toBe('after: {"result":false}');
    expect(existsSync(path.join(server.dir, "newcomer.ts"))).toBe(false);

    // Nothing of this reached the live script: its counters and version are as they were.
    expect(server.registry.states()[0]!.invocations).toBe(invocationsBefore);
    expect(readFileSync(path.join(server.dir, "blacklist.ts"), "utf8")).toBe(blacklist);
  });

  it("save as case: appends to the script's cases file, which `callscript test` reads", async () => {
    const { cookie, csrf } = await session();
    const headers = { cookie, [CSRF_HEADER]: csrf };
    const input = payload("need_registration.incoming-missed");
    const save = (name: string) =>
      inject({
        method: "POST",
        url: "/console/api/cases",
        headers,
        payload: { script: "blacklist", name, hook: "need_registration", input, expect: { data: { result: false } } },
      });
    const first = await save("missed call to 102");
    expect(first.json()).toEqual({ file: "blacklist.cases.json", cases: 1 });
    expect((await save("missed call to 102")).statusCode).toBe(409);
    const file = path.join(server.dir, "blacklist.cases.json");
    const written = JSON.parse(readFileSync(file, "utf8")) as { cases: { name: string }[] };
    expect(written.cases.map((entry) => entry.name)).toEqual(["missed call to 102"]);
  });
});

describe("console config", () => {
  it("saving cases is off by default; console.calls 0 keeps no call; console.enabled false serves no console", async () => {
    const quiet = await startServer({ "blacklist.ts": blacklist }, { console: { calls: 0 } });
    try {
      const info = (await quiet.app.inject({ url: "/console/api/session" })).json() as SessionInfo;
      expect(info).toMatchObject({ login: false, saveCases: false, calls: { capacity: 0 } });
      await quiet.post("need_registration", payload("need_registration.incoming-missed"));
      expect((await quiet.app.inject({ url: "/console/api/calls" })).json()).toEqual({ calls: [], lastSeq: 0, kept: 0, bytes: 0, notKept: 0, enabled: false });
      const saved = await quiet.app.inject({
        method: "POST",
        url: "/console/api/cases",
        headers: { [CSRF_HEADER]: info.csrf },
        payload: { name: "x", hook: "need_registration", input: {}, expect: { data: {} } },
      });
      expect(saved.json().code).toBe("CS_ERR_CASES_READ_ONLY");
      expect(existsSync(path.join(quiet.dir, "pipeline.cases.json"))).toBe(false);
    } finally {
      await quiet.close();
    }
    const off = await startServer({}, { console: { enabled: false } });
    try {
      expect((await off.app.inject({ url: "/console/api/session" })).statusCode).toBe(404);
    } finally {
      await off.close();
    }
  });

  it("console.callsPerSecond: successful calls past it are not kept, and counted (page, metric); failed and refused ones always are", async () => {
    // The console's clock stands still: no call is kept for the time the requests took.
    const sampled = await startServer({ "blacklist.ts": blacklist }, { console: { callsPerSecond: 2 } }, { consoleClock: () => 1_000 });
    try {
      const info = (await sampled.app.inject({ url: "/console/api/session" })).json() as SessionInfo;
      expect(info.calls).toEqual({ capacity: 200, maxBytes: 16 * 1024 * 1024, perSecond: 2 });
      // Six in the same instant: two kept, four not; the refused body in between is kept all the same.
      for (let i = 0; i < 3; i++) expect((await sampled.post("need_registration", payload("need_registration.incoming-missed"))).statusCode).toBe(200);
      expect((await sampled.post("need_registration", "{ not json")).statusCode).toBe(400);
      for (let i = 0; i < 3; i++) expect((await sampled.post("need_registration", payload("need_registration.incoming-missed"))).statusCode).toBe(200);
      const page = (await sampled.app.inject({ url: "/console/api/calls" })).json() as CallsPage;
      expect(page.calls.map((call) => call.outcome)).toEqual(["CS_ERR_INVALID_JSON", "success", "success"]);
      expect(page).toMatchObject({ kept: 3, notKept: 4 });
      const metrics = (await sampled.app.inject({ url: "/metrics" })).body;
      expect(metrics).toMatch(/^callscript_console_calls_not_kept_total 4$/m);
    } finally {
      await sampled.close();
    }
  });

  it("without a token, a page reaching the server by another name (DNS rebinding) is refused", async () => {
    const open = await startServer({});
    try {
      expect((await open.app.inject({ url: "/console/api/session", headers: { host: "127.0.0.1:8787" } })).statusCode).toBe(200);
      expect((await open.app.inject({ url: "/console/api/session", headers: { host: "evil.example" } })).statusCode).toBe(403);
    } finally {
      await open.close();
    }
  });

  it("the config's console section has its defaults", () => {
    expect(configSchema.parse({}).console).toEqual({
      enabled: true,
      calls: 200,
      callsMaxBytes: 16 * 1024 * 1024,
      callsPerSecond: 50,
      redact: true,
      sessionMinutes: 60,
      saveCases: false,
    });
  });
});

describe("calls buffer", () => {
  const call = (id: string) => ({
    id,
    hook: "need_registration",
    at: 0,
    ms: 1,
    status: 200,
    outcome: "success",
    scripts: [],
    input: {},
    answer: null,
    invocations: [],
  });

  it("keeps the last N calls within the byte bound, oldest out first", () => {
    const buffer = new CallsBuffer(3, 1000);
    for (const id of ["a", "b", "c", "d"]) buffer.add(call(id), 100);
    expect([...buffer.newestFirst()].map((entry) => entry.id)).toEqual(["d", "c", "b"]);
    buffer.add(call("big"), 900);
    expect([...buffer.newestFirst()].map((entry) => entry.id)).toEqual(["big", "d"]);
    expect(buffer.bytes).toBe(1000);
    buffer.add(call("huge"), 5000);
    expect([...buffer.newestFirst()].map((entry) => [entry.id, entry.seq])).toEqual([["huge", 6]]);
    expect(buffer.lastSeq).toBe(6);
  });

  it("keeps at most perSecond successful calls a second, a second's worth at once; the others are counted", () => {
    let now = 0;
    const buffer = new CallsBuffer(100, 1_000_000, 10, () => now);
    const admitted = (count: number) => Array.from({ length: count }, () => buffer.admit(false)).filter(Boolean).length;
    expect(admitted(15)).toBe(10);
    expect(buffer.notKept).toBe(5);
    // Failed calls are kept whatever the rate, and take nothing from it.
    expect(buffer.admit(true)).toBe(true);
    now += 100;
    expect(admitted(3)).toBe(1);
    now += 10_000;
    expect(admitted(20)).toBe(10);
    expect(buffer.notKept).toBe(5 + 2 + 10);
    expect(() => new CallsBuffer(10, 1000, 0)).toThrow(/perSecond must be positive/);
  });

  it("estimates a call's size from the body and what the sandbox measured", () => {
    const stats = { wallMs: 1, cpuMs: 1, queuedMs: 0, outputBytes: 100, logBytes: 50 };
    const invocation = { script: "s", version: "v", outcome: { kind: "none" as const }, logs: { lines: [], bytes: 50, dropped: 0, droppedBytes: 0 }, stats };
    expect(estimateBytes(1000, [invocation])).toBe(256 + 2000 + 160 + 200 + 50);
  });
});
