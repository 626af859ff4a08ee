import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CapabilityHost } from "../../runtime/capabilities/capabilities.js";
import { kvConfigSchema, scriptGrantsSchema } from "../../runtime/capabilities/config.js";
import { resolveSecretValues } from "../../runtime/capabilities/secrets.js";
import type { Capabilities, CapabilityCall } from "../../runtime/capabilities/types.js";
import { configSchema } from "../../runtime/config.js";
import { shadowCapabilities } from "../../runtime/registry/shadow-capabilities.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { buildServer, type CallscriptServer } from "../../runtime/server/app.js";
import { storeLog } from "../../runtime/server/capability-events.js";
import { startCrmServer, type CrmServer } from "../helpers/crm-server.js";
import { redisAvailable, startRedisServer } from "../helpers/redis-server.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { LEVEL, payload, postHook, sample, type LogLine } from "./helpers.js";
import { readFileSync } from "node:fs";
import { packageRoot } from "../../runtime/paths.js";

/**
 * Issue 15: the server's capabilities, as the sandbox uses them (one `handle` per request of a
 * script): one CapabilityHost of the config, its metrics and log lines, Redis trouble in the log,
 * and shadows read-only. Against the stand-in Bitrix24 portal, a real SQLite file and a real
 * redis-server.
 */

const SECRET = "x7k2abc9def0ghij";
let crm: CrmServer;
let dir: string;
beforeAll(async () => {
  crm = await startCrmServer({
    webhookCode: SECRET,
    contacts: [{ ID: "245", NAME: "Сергей", TYPE_ID: "VIP", ASSIGNED_BY_ID: "7", PHONE: [{ VALUE: "+79001234567", VALUE_TYPE: "WORK" }] }],
  });
  dir = mkdtempSync(path.join(tmpdir(), "callscript-server-caps-"));
});
afterAll(async () => {
  await crm.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Served {
  app: CallscriptServer;
  host: CapabilityHost;
  logs: LogLine[];
  close(): Promise<void>;
}

/** A server whose capabilities are a CapabilityHost of `scripts` grants, as `serve` makes it; its log at debug, kept. */
async function serverWith(
  scripts: Record<string, unknown>,
  kvUrl = `sqlite:${path.join(dir, `kv-${Math.random().toString(36).slice(2)}.sqlite`)}`,
  files: Record<string, string> = {},
  settings: Record<string, Record<string, unknown>> = {},
): Promise<Served> {
  const config = configSchema.parse({
    watch: false,
    scriptsDir: scriptsFolder(files),
    logLevel: "debug",
    scripts: Object.fromEntries(Object.entries(settings).map(([name, values]) => [name, { settings: values }])),
  });
  const logs: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const registry = new ScriptRegistry(config, logger);
  let host: CapabilityHost | undefined;
  const grants = Object.fromEntries(Object.entries(scripts).map(([name, grant]) => [name, scriptGrantsSchema.parse(grant)]));
  const app = buildServer({
    config,
    registry,
    logger,
    docs: false,
    processMetrics: false,
    capabilities: (hooks) =>
      (host = new CapabilityHost({
        scripts: grants,
        secrets: resolveSecretValues({ BITRIX_WEBHOOK: SECRET }, {}),
        kv: kvConfigSchema.parse({ url: kvUrl, timeoutMs: 300 }),
        baseDir: dir,
        hooks,
        ...storeLog(logger),
      })),
  });
  await registry.loadAll();
  await app.ready();
  return {
    app,
    host: host!,
    logs,
    async close() {
      await app.close();
      await registry.close();
      await host!.close();
    },
  };
}

function call(script: string, hook = "process_registration_params"): CapabilityCall {
  return { script, version: "v1", hook, requestId: "req-42", signal: new AbortController().signal };
}

async function handle(capabilities: Capabilities, op: string, payload: unknown, at: CapabilityCall): Promise<unknown> {
  return JSON.parse(await capabilities.handle(op, JSON.stringify(payload), at)) as unknown;
}

async function refusal(capabilities: Capabilities, op: string, payload: unknown, at: CapabilityCall): Promise<{ code: string; message: string }> {
  return capabilities.handle(op, JSON.stringify(payload), at).then(
    () => {
      throw new Error(`${op} was not refused`);
    },
    (error: { code: string; message: string }) => error,
  );
}

const contactList = () => ({
  url: `${crm.origin}/rest/1/__callscript_secret_BITRIX_WEBHOOK__/crm.contact.list.json`,
  method: "POST",
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ filter: { PHONE: "+79001234567" }, select: ["ID", "TYPE_ID", "ASSIGNED_BY_ID"] }),
});

const metrics = async (app: CallscriptServer) => (await app.inject({ method: "GET", url: "/metrics" })).body;

describe("the server's CapabilityHost", () => {
  it("counts every fetch by script, origin and status (or error code), with its time, and logs it at debug without its path", async () => {
    const served = await serverWith({ "vip-client": { fetch: { allow: [crm.origin, "http://127.0.0.1:9"] }, secrets: ["BITRIX_WEBHOOK"] } });
    try {
      const caps = served.app.capabilities!;
      const answer = (await handle(caps, "fetch", contactList(), call("vip-client"))) as { status: number; body: string };
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body).result).toEqual([{ ID: "245", TYPE_ID: "VIP", ASSIGNED_BY_ID: "7" }]);
      expect(crm.requests.at(-1)).toMatchObject({ method: "crm.contact.list", authorized: true });
      expect(await refusal(caps, "fetch", { url: "https://elsewhere.example/x" }, call("vip-client"))).toMatchObject({ code: "CS_CAP_FETCH_NOT_ALLOWED" });
      // Nothing listens on port 9 (discard): the network fails underneath, a fault with its reason.
      expect(await refusal(caps, "fetch", { url: "http://127.0.0.1:9/" }, call("vip-client"))).toMatchObject({ code: "CS_CAP_FETCH_NETWORK" });

      const text = await metrics(served.app);
      expect(sample(text, "callscript_fetch_requests_total", { script: "vip-client", origin: crm.origin, status: "200" })).toBe(1);
      expect(sample(text, "callscript_fetch_requests_total", { script: "vip-client", origin: "none", status: "CS_CAP_FETCH_NOT_ALLOWED" })).toBe(1);
      expect(sample(text, "callscript_fetch_requests_total", { script: "vip-client", origin: "http://127.0.0.1:9", status: "CS_CAP_FETCH_NETWORK" })).toBe(1);
      expect(sample(text, "callscript_fetch_duration_seconds_count", { script: "vip-client", origin: crm.origin })).toBe(1);
      expect(sample(text, "callscript_capability_faults_total", { script: "vip-client", op: "fetch", code: "CS_CAP_FETCH_NETWORK" })).toBe(1);

      const fetchLines = served.logs.filter((line) => String(line.msg).startsWith("fetch "));
      expect(fetchLines.map((line) => [line.level, line.msg])).toEqual([
        [LEVEL.debug, `fetch POST ${crm.origin}: 200`],
        [LEVEL.debug, "fetch (refused): CS_CAP_FETCH_NOT_ALLOWED"],
        [LEVEL.debug, "fetch GET http://127.0.0.1:9: CS_CAP_FETCH_NETWORK"],
      ]);
      expect(fetchLines[0]).toMatchObject({
        script: "vip-client",
        hook: "process_registration_params",
        reqId: "req-42",
        origin: crm.origin,
        method: "POST",
        status: 200,
      });
      const fault = served.logs.find((line) => line.level === LEVEL.error);
      expect(fault).toMatchObject({ script: "vip-client", op: "fetch", code: "CS_CAP_FETCH_NETWORK", reqId: "req-42" });
      expect(String(fault!.msg)).toMatch(/^vip-client's fetch failed underneath \(CS_CAP_FETCH_NETWORK\): /);
      expect(String(fault!.detail)).toContain("127.0.0.1:9");
      // Neither the secret nor the path it stands in reaches a line.
      const all = JSON.stringify(served.logs);
      expect(all).not.toContain(SECRET);
      expect(all).not.toContain("crm.contact.list");
    } finally {
      await served.close();
    }
  });

  it("counts kv operations by script, op and outcome; names the SQLite store in the log when it opens", async () => {
    const file = path.join(dir, "counted.sqlite");
    const served = await serverWith({ "missed-round-robin": {} }, `sqlite:${file}`);
    try {
      const caps = served.app.capabilities!;
      expect(await handle(caps, "kv.incr", { key: "turn" }, call("missed-round-robin", "process_final_params"))).toEqual({ value: 1 });
      expect(await handle(caps, "kv.incr", { key: "turn" }, call("missed-round-robin", "process_final_params"))).toEqual({ value: 2 });
      expect(await refusal(caps, "kv.set", { key: "", value: 1 }, call("missed-round-robin"))).toMatchObject({ code: "CS_CAP_KV_KEY" });
      const text = await metrics(served.app);
      expect(sample(text, "callscript_kv_operations_total", { script: "missed-round-robin", op: "kv.incr", outcome: "ok" })).toBe(2);
      expect(sample(text, "callscript_kv_operations_total", { script: "missed-round-robin", op: "kv.set", outcome: "CS_CAP_KV_KEY" })).toBe(1);
      expect(sample(text, "callscript_kv_duration_seconds_count", { op: "kv.incr" })).toBe(2);
      const opened = served.logs.find((line) => String(line.msg).startsWith("kv store opened"));
      expect(opened).toMatchObject({ level: LEVEL.info });
      // The driver and what it says of itself: "(better-sqlite3 12.x)", "(node:sqlite (Node 24.21.0))".
      expect(String(opened!.msg)).toMatch(
        new RegExp(`^kv store opened: sqlite \\((better-sqlite3|node:sqlite)\\b.*\\) ${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}$`),
      );
      expect(served.logs.filter((line) => line.msg === "kv.incr: ok")).toHaveLength(2);
    } finally {
      await served.close();
    }
  });

  it.runIf(redisAvailable("server capabilities"))("says in the log when Redis goes away and when it is back; kv fails as unavailable meanwhile", async () => {
    const redis = await startRedisServer();
    const served = await serverWith({ s: {} }, redis.url);
    try {
      const caps = served.app.capabilities!;
      expect(await handle(caps, "kv.set", { key: "k", value: "v" }, call("s"))).toEqual({});
      expect(served.logs.find((line) => String(line.msg).startsWith("kv store opened"))!.msg).toBe(`kv store opened: redis ${redis.url}`);
      await redis.stop();
      const down = await refusal(caps, "kv.get", { key: "k" }, call("s"));
      expect(down.code).toBe("CS_CAP_KV_UNAVAILABLE");
      const lost = served.logs.find((line) => String(line.msg).startsWith("kv store unavailable"));
      expect(lost).toMatchObject({ level: LEVEL.error });
      expect(sample(await metrics(served.app), "callscript_capability_faults_total", { script: "s", op: "kv.get", code: "CS_CAP_KV_UNAVAILABLE" })).toBe(1);

      const again = await startRedisServer({ port: redis.port });
      try {
        for (let i = 0; !served.logs.some((line) => String(line.msg).startsWith("kv store available again")); i++) {
          if (i > 200) throw new Error("no 'available again' line within 20 s");
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        // A fresh server: the value did not survive, the store works again.
        expect(await handle(caps, "kv.get", { key: "k" }, call("s"))).toEqual({ found: false });
      } finally {
        await served.close();
        await again.stop();
      }
    } finally {
      await served.close().catch(() => undefined);
    }
  });
});

describe("shadows are read-only", () => {
  it("read the live script's kv and fetch with GET or HEAD under its grant; every write and other method fails, naming why", async () => {
    const served = await serverWith({ "vip-client": { fetch: { allow: [crm.origin] }, secrets: ["BITRIX_WEBHOOK"] } });
    try {
      const host = served.app.capabilities!;
      await handle(host, "kv.set", { key: "last-caller", value: "+79001234567" }, call("vip-client"));
      const shadow = shadowCapabilities(host, "vip-client");
      const asShadow = call("vip-client.shadow");

      expect(await handle(shadow, "kv.get", { key: "last-caller" }, asShadow)).toEqual({ found: true, value: "+79001234567" });
      for (const [op, payload] of [
        ["kv.set", { key: "last-caller", value: "changed" }],
        ["kv.delete", { key: "last-caller" }],
        ["kv.incr", { key: "turn" }],
      ] as const) {
        const error = await refusal(shadow, op, payload, asShadow);
        expect(error).toMatchObject({
          code: "CS_CAP_READ_ONLY",
          message: `${op}: shadows are read-only: vip-client.shadow runs beside vip-client's live calls and may only read (kv.get, fetch with GET or HEAD), so this ${op} was not done`,
        });
      }
      expect(await handle(host, "kv.get", { key: "last-caller" }, call("vip-client"))).toEqual({ found: true, value: "+79001234567" });
      expect(await handle(host, "kv.get", { key: "turn" }, call("vip-client"))).toEqual({ found: false });

      const before = crm.requests.length;
      for (const method of ["POST", "put", "DELETE", "PATCH", "OPTIONS"]) {
        const error = await refusal(shadow, "fetch", { ...contactList(), method }, asShadow);
        expect(error.code).toBe("CS_CAP_READ_ONLY");
        expect(error.message).toContain(`so this ${method.toUpperCase()} was not done`);
      }
      expect(crm.requests.length, "nothing refused was sent").toBe(before);

      // GET and HEAD go out under vip-client's grant and secrets (the shadow's own name has none).
      const url = `${crm.origin}/rest/1/__callscript_secret_BITRIX_WEBHOOK__/crm.contact.list.json?filter[PHONE]=%2B79001234567`;
      const got = (await handle(shadow, "fetch", { url }, asShadow)) as { status: number; body: string };
      expect(got.status).toBe(200);
      expect(JSON.parse(got.body).total).toBe(1);
      expect(((await handle(shadow, "fetch", { url, method: "HEAD" }, asShadow)) as { status: number }).status).toBe(200);
      expect(crm.requests.slice(before).map((request) => [request.httpMethod, request.authorized])).toEqual([
        ["GET", true],
        ["HEAD", true],
      ]);
      // Counted under the live script.
      expect(sample(await metrics(served.app), "callscript_fetch_requests_total", { script: "vip-client", origin: crm.origin, status: "200" })).toBe(2);
    } finally {
      await served.close();
    }
  });
});

/** An example script and the helper it imports, as the scripts folder holds them. */
function example(name: string): Record<string, string> {
  const read = (file: string) => readFileSync(path.join(packageRoot, "examples", file), "utf8");
  return { [`${name}.ts`]: read(`${name}.ts`), "lib/numbers.ts": read("lib/numbers.ts") };
}

async function post(app: CallscriptServer, hook: string, body: unknown) {
  const response = await postHook(app, hook, body);
  return response.json() as { state: string; data: Record<string, unknown> };
}

describe("scripts that reach the CRM, through the hook route", () => {
  it("vip-client: the VIP caller's manager in the portal becomes the responsible user; a CRM over its limit changes nothing", async () => {
    const served = await serverWith({ "vip-client": { fetch: { allow: [crm.origin] }, secrets: ["BITRIX_WEBHOOK"] } }, undefined, example("vip-client"), {
      "vip-client": { portal: crm.origin },
    });
    try {
      const input = payload("process_registration_params.incoming");
      const before = crm.requests.length;
      expect((await post(served.app, "process_registration_params", input)).data).toMatchObject({ USER_ID: "7", PHONE_NUMBER: "+79001234567" });
      const request = crm.requests.at(-1)!;
      expect(request).toMatchObject({
        httpMethod: "POST",
        method: "crm.contact.list",
        authorized: true,
        params: { filter: { PHONE: "+79001234567" }, select: ["ID", "TYPE_ID", "ASSIGNED_BY_ID"] },
      });

      crm.failNext({ status: 503, error: "QUERY_LIMIT_EXCEEDED", description: "Too many requests" });
      expect((await post(served.app, "process_registration_params", input)).data).toMatchObject({ USER_ID: "1" });
      expect(crm.requests.length - before).toBe(2);
      const warned = served.logs.find((line) => line.level === LEVEL.warn && String(line.msg).includes("QUERY_LIMIT_EXCEEDED"));
      expect(warned).toMatchObject({ script: "vip-client" });

      const text = await metrics(served.app);
      expect(sample(text, "callscript_fetch_requests_total", { script: "vip-client", origin: crm.origin, status: "200" })).toBe(1);
      expect(sample(text, "callscript_fetch_requests_total", { script: "vip-client", origin: crm.origin, status: "503" })).toBe(1);
      expect(JSON.stringify(served.logs)).not.toContain(SECRET);
    } finally {
      await served.close();
    }
  });

  it("missed-round-robin on an SQLite file: missed calls go to the group in turn, and the turn survives a restart", async () => {
    const file = path.join(dir, "round-robin.sqlite");
    const missed = payload("process_final_params.missed-moscow");
    const users: unknown[] = [];
    for (const _restart of [1, 2]) {
      const served = await serverWith({ "missed-round-robin": {} }, `sqlite:${file}`, example("missed-round-robin"));
      try {
        for (let i = 0; i < 2; i++) users.push((await post(served.app, "process_final_params", missed)).data.USER_ID);
      } finally {
        await served.close();
      }
    }
    expect(users).toEqual(["3", "4", "7", "3"]);
  });

  it.runIf(redisAvailable("round robin on Redis"))(
    "missed-round-robin on Redis: two instances share one turn, and concurrent calls never get the same one",
    async () => {
      const redis = await startRedisServer();
      const a = await serverWith({ "missed-round-robin": {} }, redis.url, example("missed-round-robin"), {
        "missed-round-robin": { users: ["1", "2", "3", "4", "5", "6"] },
      });
      const b = await serverWith({ "missed-round-robin": {} }, redis.url, example("missed-round-robin"), {
        "missed-round-robin": { users: ["1", "2", "3", "4", "5", "6"] },
      });
      try {
        const missed = payload("process_final_params.missed-moscow");
        const answers = await Promise.all([a, b, a, b, a, b].map((served) => post(served.app, "process_final_params", missed)));
        expect(answers.map((answer) => answer.data.USER_ID).sort()).toEqual(["1", "2", "3", "4", "5", "6"]);
        expect(await handle(a.host, "kv.get", { key: "turn" }, call("missed-round-robin"))).toEqual({ found: true, value: 6 });
      } finally {
        await a.close();
        await b.close();
        await redis.stop();
      }
    },
  );

  it("a shadow's writes fail as read-only and change nothing; its reads see the live script's kv", async () => {
    const live = `import { defineScript } from "callscript";
export default defineScript({ hooks: { async process_final_params(_input, { kv }) { const n = await kv.incr("turn"); return { USER_ID: String(n) }; } } });
`;
    const shadow = `import { defineScript } from "callscript";
export default defineScript({ hooks: { async process_final_params(_input, ctx) {
  const seen = await ctx.kv.get<number>("turn");
  const codes: string[] = [];
  for (const write of [() => ctx.kv.incr("turn"), () => ctx.kv.set("turn", 100), () => ctx.kv.delete("turn"), () => ctx.fetch("${crm.origin}/x", { method: "POST", body: "{}" })]) {
    try { await write(); codes.push("done"); } catch (error) { codes.push((error as { code: string }).code); }
  }
  return { USER_ID: seen + " " + codes.join(",") };
} } });
`;
    const served = await serverWith({ "round-robin": { fetch: { allow: [crm.origin] } } }, undefined, {
      "round-robin.ts": live,
      "round-robin.shadow.ts": shadow,
    });
    try {
      const before = crm.requests.length;
      expect((await post(served.app, "process_final_params", payload("process_final_params.missed-moscow"))).data.USER_ID).toBe("1");
      let state: { calls: number; lastDifference: { shadow: { data: { USER_ID: string } } } | null } | undefined;
      for (let i = 0; i < 500 && !(state && state.calls > 0); i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        const scripts = (await served.app.inject({ method: "GET", url: "/scripts" })).json() as { scripts: Array<{ name: string; shadow?: typeof state }> };
        state = scripts.scripts.find((script) => script.name === "round-robin")?.shadow;
      }
      expect(state!.lastDifference!.shadow.data.USER_ID).toBe("1 CS_CAP_READ_ONLY,CS_CAP_READ_ONLY,CS_CAP_READ_ONLY,CS_CAP_READ_ONLY");
      expect(await handle(served.host, "kv.get", { key: "turn" }, call("round-robin"))).toEqual({ found: true, value: 1 });
      expect(crm.requests.length).toBe(before);
    } finally {
      await served.close();
    }
  });
});
