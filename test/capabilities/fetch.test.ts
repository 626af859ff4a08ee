import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { json, startHttpServer, type TestServer } from "../helpers/http-server.js";
import { makeHost, STAND_IN_PUBLIC, standInPublic, tableResolver, type HostUnderTest } from "./fetch-fixtures.js";

/** ctx.fetch against real servers on loopback: what a script gets, what the server receives. */

let server: TestServer;
let other: TestServer;
const hosts: HostUnderTest[] = [];
function host(...args: Parameters<typeof makeHost>): HostUnderTest {
  const made = makeHost(...args);
  hosts.push(made);
  return made;
}
afterEach(async () => {
  for (const made of hosts.splice(0)) await made.close();
});

beforeAll(async () => {
  server = await startHttpServer((request, response) => {
    const url = new URL(request.url, "http://x");
    switch (url.pathname) {
      case "/echo":
        return json(response, 200, { method: request.method, url: request.url, headers: request.headers, body: request.body }, { "x-answer": "yes" });
      case "/status":
        return json(response, Number(url.searchParams.get("code")), { error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" });
      case "/redirect": {
        response.writeHead(Number(url.searchParams.get("code") ?? 302), { location: url.searchParams.get("to") ?? "/echo" });
        return response.end();
      }
      case "/gzip": {
        response.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        return response.end(gzipSync(JSON.stringify({ packed: "x".repeat(1000) })));
      }
      case "/hang":
        return; // never answers
      default:
        return json(response, 404, { error: "not found" });
    }
  });
  other = await startHttpServer((request, response) =>
    json(response, 200, { other: true, headers: request.headers, method: request.method, body: request.body }),
  );
});
afterAll(async () => {
  await server.close();
  await other.close();
});

const grant = (allow: string[], extra: Record<string, unknown> = {}) => ({ fetch: { allow, ...extra } });

describe("fetch", () => {
  it("answers the contract's shape: ok, status, statusText, url, headers, body", async () => {
    const caps = host({ scripts: { "vip-client": grant([server.origin]) } });
    const answer = (await caps.call("fetch", { url: `${server.origin}/echo?phone=%2B79001234567` })) as Record<string, unknown>;
    expect(answer).toMatchObject({ ok: true, status: 200, statusText: "OK", url: `${server.origin}/echo?phone=%2B79001234567` });
    expect(answer.headers).toMatchObject({ "content-type": "application/json", "x-answer": "yes" });
    const echoed = JSON.parse(answer.body as string);
    expect(echoed).toMatchObject({ method: "GET", url: "/echo?phone=%2B79001234567" });
    expect(echoed.headers["user-agent"]).toBe("callscript");
    expect(caps.fetchEvents).toEqual([
      {
        script: "vip-client",
        hook: "process_final_params",
        requestId: "req-1",
        origin: server.origin,
        method: "GET",
        status: 200,
        code: undefined,
        ms: expect.any(Number),
        dropped: [],
      },
    ]);
  });

  it("sends method, headers and body; drops hop-by-hop headers and Host and says which", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    const answer = (await caps.call("fetch", {
      url: `${server.origin}/echo`,
      method: "post",
      headers: {
        "Content-Type": "application/json",
        "X-Custom": "1",
        Host: "evil.example",
        Connection: "upgrade",
        "Transfer-Encoding": "chunked",
        "User-Agent": "my-script/2",
      },
      body: JSON.stringify({ filter: { PHONE: "+79001234567" } }),
    })) as { body: string };
    const echoed = JSON.parse(answer.body);
    expect(echoed.method).toBe("POST");
    expect(echoed.body).toBe('{"filter":{"PHONE":"+79001234567"}}');
    expect(echoed.headers).toMatchObject({
      "content-type": "application/json",
      "x-custom": "1",
      host: `127.0.0.1:${server.port}`,
      "user-agent": "my-script/2",
    });
    expect(echoed.headers.connection).not.toBe("upgrade");
    expect(caps.fetchEvents[0]!.dropped).toEqual(["host", "connection", "transfer-encoding"]);
  });

  it("gives a non-2xx answer as an answer (ok: false), not an error", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    const answer = (await caps.call("fetch", { url: `${server.origin}/status?code=503` })) as Record<string, unknown>;
    expect(answer).toMatchObject({ ok: false, status: 503, statusText: "Service Unavailable" });
    expect(JSON.parse(answer.body as string)).toEqual({ error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" });
  });

  it("decodes a gzip answer", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    const answer = (await caps.call("fetch", { url: `${server.origin}/gzip` })) as { body: string };
    expect(JSON.parse(answer.body)).toEqual({ packed: "x".repeat(1000) });
  });

  it("answers HEAD without a body", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    expect(await caps.call("fetch", { url: `${server.origin}/echo`, method: "HEAD" })).toMatchObject({ status: 200, body: "" });
  });

  it("refuses malformed requests with what it expects", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    const cases: [unknown, string][] = [
      [{ href: "x" }, "fetch: expects { url: string, method?: string, headers?: Record<string, string>, body?: string }"],
      [{ url: "/relative" }, "fetch: '/relative' is not an absolute URL"],
      [{ url: "ftp://127.0.0.1/" }, "fetch: 'ftp://127.0.0.1/' is refused: only http and https are supported, not ftp:"],
      [{ url: `${server.origin}/echo`, method: "TRACE" }, "fetch: method TRACE is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"],
      [{ url: `${server.origin}/echo`, body: "x" }, "fetch: a GET request has no body"],
      [{ url: `${server.origin}/echo`, headers: { "Bad Name": "x" } }, "fetch: 'Bad Name' is not a header name"],
      [{ url: `${server.origin}/echo`, headers: { "X-A": "1\r\nX-Injected: 1" } }, "fetch: the value of header X-A has a line break"],
      [{ url: `${server.origin}/echo`, headers: { "X-A": "1", "x-a": "2" } }, "fetch: header x-a is given twice"],
    ];
    for (const [payload, message] of cases) {
      expect(await caps.refused("fetch", payload)).toMatchObject({ code: "CS_CAP_BAD_REQUEST", message });
    }
    expect(server.received.filter((request) => request.url === "/relative")).toEqual([]);
  });

  it("without a fetch grant, says which key grants it", async () => {
    const caps = host({ scripts: { "vip-client": { secrets: [] } }, kv: {} });
    expect(await caps.refused("fetch", { url: `${server.origin}/echo` })).toEqual(
      expect.objectContaining({
        code: "CS_CAP_FETCH_NO_GRANT",
        message: "fetch: this script has no fetch grant: add scripts.vip-client.fetch.allow to the config",
      }),
    );
    expect(await caps.refused("fetch", { url: `${server.origin}/echo` }, { script: "not-in-config" })).toMatchObject({
      message: "fetch: this script has no fetch grant: add scripts.not-in-config.fetch.allow to the config",
    });
  });

  it("follows redirects within the allow list: same origin, another allowed origin (without Authorization), 303 to GET, 307 keeps the body", async () => {
    const caps = host({ scripts: { s: grant([server.origin, other.origin]) } });
    const same = (await caps.call("fetch", { url: `${server.origin}/redirect?to=/echo%3Fhop%3D1` })) as { url: string; body: string };
    expect(same.url).toBe(`${server.origin}/echo?hop=1`);
    const cross = (await caps.call("fetch", {
      url: `${server.origin}/redirect?to=${encodeURIComponent(`${other.origin}/landed`)}`,
      headers: { Authorization: "Bearer token", "X-Kept": "1" },
    })) as { url: string; body: string };
    expect(cross.url).toBe(`${other.origin}/landed`);
    const landed = JSON.parse(cross.body);
    expect(landed.headers.authorization).toBeUndefined();
    expect(landed.headers["x-kept"]).toBe("1");
    const seeOther = JSON.parse(
      (
        (await caps.call("fetch", { url: `${server.origin}/redirect?code=303`, method: "POST", body: "form", headers: { "Content-Type": "text/plain" } })) as {
          body: string;
        }
      ).body,
    );
    expect(seeOther).toMatchObject({ method: "GET", body: "" });
    expect(seeOther.headers["content-type"]).toBeUndefined();
    const temporary = JSON.parse(
      ((await caps.call("fetch", { url: `${server.origin}/redirect?code=307`, method: "POST", body: "kept" })) as { body: string }).body,
    );
    expect(temporary).toMatchObject({ method: "POST", body: "kept" });
  });

  it("stops after 5 redirects", async () => {
    const caps = host({ scripts: { s: grant([server.origin]) } });
    let url = "/echo";
    for (let i = 0; i < 6; i++) url = `/redirect?to=${encodeURIComponent(url)}`;
    const error = await caps.refused("fetch", { url: `${server.origin}${url}` });
    expect(error.code).toBe("CS_CAP_FETCH_REDIRECT");
    expect(error.message).toBe(`fetch: more than 5 redirects, the last from ${server.origin} to /echo`);
  });

  it("times out per call (fetch.timeoutMs), naming the key", async () => {
    const caps = host({ scripts: { "vip-client": grant([server.origin], { timeoutMs: 200 }) } });
    expect(await caps.refused("fetch", { url: `${server.origin}/hang` })).toMatchObject({
      code: "CS_CAP_FETCH_TIMEOUT",
      message: `fetch: ${server.origin} did not answer within 200 ms (scripts.vip-client.fetch.timeoutMs)`,
    });
  });

  it("ends with the invocation: CS_CAP_ABORTED when its signal aborts", async () => {
    const caps = host({ scripts: { s: grant([server.origin], { timeoutMs: 60_000 }) } });
    const controller = new AbortController();
    const pending = caps.refused("fetch", { url: `${server.origin}/hang` }, { signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    expect(await pending).toMatchObject({ code: "CS_CAP_ABORTED", message: `fetch: the invocation ended before ${server.origin} answered` });
    expect(await caps.refused("fetch", { url: `${server.origin}/echo` }, { signal: controller.signal })).toMatchObject({ code: "CS_CAP_ABORTED" });
  });

  it("counts fetches per invocation (fetch.maxCalls); a new invocation starts again", async () => {
    const caps = host({ scripts: { "vip-client": grant([server.origin], { maxCalls: 2 }) } });
    const signal = new AbortController().signal;
    await caps.call("fetch", { url: `${server.origin}/echo` }, { signal });
    await caps.call("fetch", { url: `${server.origin}/echo` }, { signal });
    expect(await caps.refused("fetch", { url: `${server.origin}/echo` }, { signal })).toMatchObject({
      code: "CS_CAP_FETCH_TOO_MANY_CALLS",
      message: "fetch: more than 2 fetches in one invocation (scripts.vip-client.fetch.maxCalls)",
    });
    expect(await caps.call("fetch", { url: `${server.origin}/echo` })).toMatchObject({ status: 200 });
  });

  it("bounds the request body (fetch.maxRequestBytes)", async () => {
    const caps = host({ scripts: { s: grant([server.origin], { maxRequestBytes: 10 }) } });
    expect(await caps.refused("fetch", { url: `${server.origin}/echo`, method: "POST", body: "ёёёёёё" })).toMatchObject({
      code: "CS_CAP_FETCH_REQUEST_TOO_LARGE",
      message: "fetch: the body is 12 bytes, over scripts.s.fetch.maxRequestBytes (10)",
    });
  });

  it("says what went wrong on the network, never more", async () => {
    const closed = await startHttpServer(() => {});
    const closedOrigin = closed.origin;
    await closed.close();
    const caps = host({ scripts: { s: grant([closedOrigin, "http://nowhere.example"]) }, fetch: { resolve: tableResolver({}) } });
    expect(await caps.refused("fetch", { url: `${closedOrigin}/` })).toMatchObject({
      code: "CS_CAP_FETCH_NETWORK",
      message: `fetch: ${closedOrigin} refused the connection`,
    });
    expect(await caps.refused("fetch", { url: "http://nowhere.example/" })).toMatchObject({
      code: "CS_CAP_FETCH_NETWORK",
      message: "fetch: nowhere.example was not found (DNS)",
    });
    expect(caps.faults.map((fault) => fault.code)).toEqual(["CS_CAP_FETCH_NETWORK", "CS_CAP_FETCH_NETWORK"]);
    expect(caps.faults[0]!.detail).toContain("ECONNREFUSED");
  });

  it("reaches a host name through the address it resolved, and TLS checks the certificate for the name", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "callscript-tls-"));
    const made = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=crm.test",
        "-addext",
        "subjectAltName=DNS:crm.test",
        "-keyout",
        path.join(dir, "key.pem"),
        "-out",
        path.join(dir, "cert.pem"),
      ],
      { encoding: "utf8" },
    );
    expect(made.status, made.stderr).toBe(0);
    const cert = readFileSync(path.join(dir, "cert.pem"), "utf8");
    const tls = createHttpsServer({ key: readFileSync(path.join(dir, "key.pem")), cert }, (request, response) =>
      json(response, 200, { host: request.headers.host }),
    );
    await new Promise<void>((resolve) => tls.listen(0, STAND_IN_PUBLIC, resolve));
    const { port } = tls.address() as AddressInfo;
    try {
      const resolve = tableResolver({ "crm.test": STAND_IN_PUBLIC, "wrong.test": STAND_IN_PUBLIC });
      const caps = host({
        scripts: { s: grant([`https://crm.test:${port}`, `https://wrong.test:${port}`]) },
        fetch: { resolve, isAllowedAddress: standInPublic, ca: cert },
      });
      const answer = (await caps.call("fetch", { url: `https://crm.test:${port}/` })) as { body: string };
      expect(JSON.parse(answer.body)).toEqual({ host: `crm.test:${port}` });
      expect(resolve.asked).toEqual(["crm.test"]);
      expect(await caps.refused("fetch", { url: `https://wrong.test:${port}/` })).toMatchObject({
        code: "CS_CAP_FETCH_NETWORK",
        message: `fetch: https://wrong.test:${port}: its TLS certificate is not accepted (ERR_TLS_CERT_ALTNAME_INVALID)`,
      });
    } finally {
      tls.closeAllConnections();
      await new Promise((resolve) => tls.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
