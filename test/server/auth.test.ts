import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../../runtime/config.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { buildServer } from "../../runtime/server/app.js";
import { assertSafeBinding, bearerCheck, isLoopback } from "../../runtime/server/auth.js";
import { script } from "../helpers/scripts.js";
import { bearer, recordInput, startServer, type TestServer } from "./helpers.js";

const TOKEN = "a-long-enough-token-0123456789";
const UNAUTHORIZED = { statusCode: 401, code: "CS_ERR_UNAUTHORIZED", error: "Unauthorized", message: "Missing or invalid bearer token" };

let server: TestServer;
beforeAll(async () => {
  server = await startServer({ "recordings.ts": script("process_record_file_path", `return { path: "/r" + input.path };`) }, { token: TOKEN }, { docs: true });
});
afterAll(async () => server?.close());

const hook = (headers: Record<string, string>) => server.post("process_record_file_path", recordInput("/1.wav"), headers);

describe("bearer token", () => {
  it("answers a hook with the right token", async () => {
    const res = await hook(bearer(TOKEN));
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ state: "success", data: { path: "/r/1.wav" } });
    expect((await hook({ authorization: `bearer ${TOKEN}` })).statusCode).toBe(200);
  });

  it("401 with the same body whatever is wrong: missing, wrong, malformed", async () => {
    const attempts: Record<string, string>[] = [
      {},
      bearer("a-long-enough-token-0123456788"),
      bearer(TOKEN.slice(0, -1)),
      bearer(`${TOKEN}x`),
      { authorization: TOKEN },
      { authorization: `Basic ${Buffer.from(`user:${TOKEN}`).toString("base64")}` },
      { authorization: "Bearer" },
      { authorization: "Bearer " },
      { authorization: `Bearer ${TOKEN} extra` },
      { authorization: `Token ${TOKEN}` },
    ];
    for (const headers of attempts) {
      const res = await hook(headers);
      expect([headers, res.statusCode, res.json()]).toEqual([headers, 401, UNAUTHORIZED]);
      expect(res.headers["www-authenticate"]).toBe('Bearer realm="callscript"');
    }
    expect(server.registry.states()[0]?.invocations).toBe(1 + 1);
  });

  it("/healthz and /readyz are open; everything else needs the token, unknown routes included", async () => {
    expect((await server.app.inject({ url: "/healthz" })).statusCode).toBe(200);
    expect((await server.app.inject({ url: "/readyz" })).json()).toEqual({ ready: true, scripts: 1 });
    for (const url of ["/metrics", "/scripts", "/openapi.json", "/docs", "/no-such-route"]) {
      const res = await server.app.inject({ url });
      expect([url, res.statusCode, res.json()]).toEqual([url, 401, UNAUTHORIZED]);
      const allowed = await server.app.inject({ url, headers: bearer(TOKEN) });
      expect([url, allowed.statusCode]).toEqual([url, url === "/no-such-route" ? 404 : 200]);
    }
    const unknownHook = await server.post("nope", "{}");
    expect(unknownHook.statusCode).toBe(401);
  });

  it("logs a refused token as a warning, without the header", async () => {
    const res = await server.app.inject({ url: "/scripts", headers: bearer("not-the-token-but-long-enough") });
    expect(res.statusCode).toBe(401);
    const line = server.logs.find((entry) => entry.msg === "request refused: no valid token" && entry.url === "/scripts");
    expect(line).toMatchObject({ level: 40, status: 401, method: "GET" });
    expect(JSON.stringify(server.logs)).not.toContain("not-the-token-but-long-enough");
    expect(JSON.stringify(server.logs)).not.toContain(TOKEN);
  });
});

describe("bearerCheck", () => {
  it("accepts only the exact token", () => {
    const check = bearerCheck(TOKEN);
    expect(check(`Bearer ${TOKEN}`)).toBe(true);
    expect(check(`Bearer  ${TOKEN} `)).toBe(true);
    expect(check(undefined)).toBe(false);
    expect(check("")).toBe(false);
    expect(check(`Bearer ${TOKEN.toUpperCase()}`)).toBe(false);
    expect(check(`Bearer ${"x".repeat(10_000)}`)).toBe(false);
  });
});

describe("binding", () => {
  it("knows loopback addresses", () => {
    for (const host of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "0:0:0:0:0:0:0:1", "::ffff:127.0.0.1", "localhost", "LOCALHOST"]) {
      expect([host, isLoopback(host)]).toEqual([host, true]);
    }
    for (const host of ["0.0.0.0", "::", "192.168.1.10", "10.0.0.1", "128.0.0.1", "::2", "example.com", "", "::ffff:10.0.0.1"]) {
      expect([host, isLoopback(host)]).toEqual([host, false]);
    }
  });

  it("refuses to build a server that listens beyond loopback without a token", () => {
    const config = configSchema.parse({ host: "0.0.0.0", scriptsDir: "." });
    const registry = new ScriptRegistry(config, { info() {}, warn() {}, error() {}, debug() {} });
    expect(() => buildServer({ config, registry })).toThrow(
      expect.objectContaining({ code: "CS_ERR_INSECURE_BIND", message: expect.stringContaining('Refusing to listen on "0.0.0.0" without a token') }),
    );
    expect(() => assertSafeBinding({ host: "0.0.0.0", token: TOKEN })).not.toThrow();
    expect(() => assertSafeBinding({ host: "127.0.0.1", token: undefined })).not.toThrow();
  });
});
