import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { gzipSync } from "node:zlib";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { resolveFetchGrant } from "../../runtime/capabilities/fetch-request.js";
import { parseUrl } from "../../runtime/capabilities/origin.js";
import { makeHost, STAND_IN_PUBLIC, standInPublic, tableResolver, type HostUnderTest } from "../capabilities/fetch-fixtures.js";
import { json, startHttpServer, type TestServer } from "../helpers/http-server.js";

/**
 * Attacks on ctx.fetch (SSRF): hosts written another way, user:password@ tricks, redirects out of
 * the allow list, names that resolve to internal addresses (and DNS rebinding), huge and slow
 * answers, a fetch storm. Every refused request is shown never to have reached a server; nothing
 * here connects anywhere but loopback (addresses outside it are refused before any connection).
 */

let internal: TestServer;
const hosts: HostUnderTest[] = [];
function host(...args: Parameters<typeof makeHost>): HostUnderTest {
  const made = makeHost(...args);
  hosts.push(made);
  return made;
}
afterEach(async () => {
  for (const made of hosts.splice(0)) await made.close();
  internal.received.length = 0;
});

/** The "internal service" every attack aims at: it must never receive anything. */
beforeAll(async () => {
  internal = await startHttpServer((_, response) => json(response, 200, { secret: "internal data" }));
});
afterAll(() => internal.close());

describe("origins written another way", () => {
  it("an allowed name is not reached by any spelling of a loopback address", async () => {
    const caps = host({ scripts: { s: { fetch: { allow: ["https://crm.example"] } } }, fetch: { resolve: tableResolver({}) } });
    const port = internal.port;
    const spellings = [
      `http://127.0.0.1:${port}/`,
      `http://2130706433:${port}/`,
      `http://0x7f.1:${port}/`,
      `http://0x7f000001:${port}/`,
      `http://0177.0.0.1:${port}/`,
      `http://127.1:${port}/`,
      `http://127.0.0.1.:${port}/`,
      `http://[::ffff:127.0.0.1]:${port}/`,
      `http://[::ffff:7f00:1]:${port}/`,
      `http://[::1]:${port}/`,
      `http://[0:0:0:0:0:0:0:1]:${port}/`,
      `http://0:${port}/`,
      `http://localhost:${port}/`,
      `http://①②⑦.0.0.1:${port}/`,
      `https://crm.example:${port}/`,
      `http://crm.example/`,
      `https://crm.example.evil.example/`,
      `https://evil.example/crm.example`,
      `https://evil.example\\@crm.example/`,
    ];
    for (const url of spellings) {
      const error = await caps.refused("fetch", { url });
      expect(error.code, url).toBe("CS_CAP_FETCH_NOT_ALLOWED");
      expect(error.message, url).toMatch(/^fetch: \S+ is not allowed for s: add \S+ to scripts\.s\.fetch\.allow$/);
    }
    expect(internal.received).toEqual([]);
  });

  it("an allowed IP is the same host however it is written, and only on its scheme and port", async () => {
    const caps = host({ scripts: { s: { fetch: { allow: [`http://127.0.0.1:${internal.port}`] } } } });
    const port = internal.port;
    for (const url of [
      `http://2130706433:${port}/a`,
      `http://0x7f.1:${port}/b`,
      `http://0177.0.0.1:${port}/c`,
      `http://[::ffff:127.0.0.1]:${port}/d`,
      `HTTP://127.0.0.1.:${port}/e`,
    ]) {
      expect(await caps.call("fetch", { url }), url).toMatchObject({ status: 200 });
    }
    expect(internal.received.map((request) => request.url)).toEqual(["/a", "/b", "/c", "/d", "/e"]);
    // localhost resolves to the allowed address, but a name is not the address: only the literal was allowed.
    for (const url of [
      `https://127.0.0.1:${port}/`,
      `http://127.0.0.1:${port + 1}/`,
      `http://127.0.0.2:${port}/`,
      `http://[::1]:${port}/`,
      `http://localhost:${port}/`,
    ]) {
      expect((await caps.refused("fetch", { url })).code, url).toBe("CS_CAP_FETCH_NOT_ALLOWED");
    }
    expect(internal.received).toHaveLength(5);
  });

  it("refuses user:password@ in any form, before anything is resolved", async () => {
    const resolve = tableResolver({});
    const caps = host({ scripts: { s: { fetch: { allow: ["https://crm.example", `http://127.0.0.1:${internal.port}`] } } }, fetch: { resolve } });
    for (const url of [
      `http://crm.example@127.0.0.1:${internal.port}/`,
      `http://user:pass@127.0.0.1:${internal.port}/`,
      "https://127.0.0.1@crm.example/",
      `https://crm.example%2F@127.0.0.1:${internal.port}/`,
    ]) {
      expect(await caps.refused("fetch", { url }), url).toMatchObject({
        code: "CS_CAP_FETCH_NOT_ALLOWED",
        message: "fetch: a URL with user:password@ is refused (put credentials in a header, with ctx.secret())",
      });
    }
    expect(resolve.asked).toEqual([]);
    expect(internal.received).toEqual([]);
  });

  it("treats a trailing dot, upper case and an IDN as the name they spell", async () => {
    const site = await startHttpServer((request, response) => json(response, 200, { host: request.headers.host }), STAND_IN_PUBLIC);
    try {
      const resolve = tableResolver({ "crm.example": STAND_IN_PUBLIC, "xn--b1amv.xn--p1ai": STAND_IN_PUBLIC });
      const caps = host({
        scripts: { s: { fetch: { allow: [`http://crm.example:${site.port}`, `http://вип.рф:${site.port}`] } } },
        fetch: { resolve, isAllowedAddress: standInPublic },
      });
      for (const url of [
        `http://crm.example.:${site.port}/`,
        `http://CRM.Example:${site.port}/`,
        `http://xn--b1amv.xn--p1ai:${site.port}/`,
        `http://ВИП.РФ:${site.port}/`,
      ]) {
        expect(await caps.call("fetch", { url }), url).toMatchObject({ status: 200 });
      }
      expect(resolve.asked.every((name) => name === "crm.example" || name === "xn--b1amv.xn--p1ai")).toBe(true);
    } finally {
      await site.close();
    }
  });
});

describe("names that resolve where they must not", () => {
  const internalAddresses = [
    ["127.0.0.1", "loopback"],
    ["169.254.169.254", "link-local"],
    ["10.1.2.3", "private"],
    ["192.168.0.10", "private"],
    ["172.16.5.4", "private"],
    ["100.64.0.1", "carrier-grade NAT"],
    ["0.0.0.0", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["::1", "loopback"],
    ["::", "unspecified"],
    ["fe80::1", "link-local"],
    ["fd00::1", "unique-local"],
    ["::ffff:10.0.0.1", "private"],
    ["64:ff9b::a00:1", "NAT64"],
    ["2002:a00:1::", "6to4"],
  ] as const;

  it.each(internalAddresses)("refuses a name that resolves to %s (%s), naming the rule and the way to allow it", async (address, range) => {
    const resolve = tableResolver({ "crm.example": address });
    const caps = host({ scripts: { "vip-client": { fetch: { allow: ["https://crm.example"] } } }, fetch: { resolve } });
    const error = await caps.refused("fetch", { url: "https://crm.example/rest/1/x/crm.contact.list.json" });
    const literal = parseUrl(`https://${address.includes(":") ? `[${address}]` : address}`);
    if (!literal.ok) throw new Error(literal.problem);
    expect(error).toMatchObject({
      code: "CS_CAP_FETCH_ADDRESS_BLOCKED",
      message: `fetch: crm.example resolves to ${address}, a ${range} address, which a host name in scripts.vip-client.fetch.allow may not reach; if that server is meant, allow its address instead (${literal.origin.key})`,
    });
  });

  it("refuses a name whose answers mix a public and an internal address", async () => {
    const caps = host({
      scripts: { s: { fetch: { allow: [`http://crm.example:${internal.port}`] } } },
      fetch: { resolve: tableResolver({ "crm.example": [STAND_IN_PUBLIC, "127.0.0.1"] }), isAllowedAddress: standInPublic },
    });
    expect((await caps.refused("fetch", { url: `http://crm.example:${internal.port}/` })).code).toBe("CS_CAP_FETCH_ADDRESS_BLOCKED");
    expect(internal.received).toEqual([]);
  });

  it("refuses the system resolver's own loopback name (a name written in a grant by hand, past the config's check)", async () => {
    const caps = host({ scripts: { s: { fetch: { allow: ["https://crm.example"] } } } });
    // The config refuses `localhost` in fetch.allow; a name that /etc/hosts maps to loopback is refused when it resolves.
    const grants = (caps.host as unknown as { grants: Map<string, { fetch: ReturnType<typeof resolveFetchGrant> }> }).grants;
    const parsed = parseUrl(`http://localhost:${internal.port}`);
    if (!parsed.ok) throw new Error(parsed.problem);
    const grant = grants.get("s")!.fetch;
    grants.set("s", { ...grants.get("s")!, fetch: { ...grant, origins: new Map([[parsed.origin.key, parsed.origin]]) } });
    const error = await caps.refused("fetch", { url: `http://localhost:${internal.port}/` });
    expect(error).toMatchObject({ code: "CS_CAP_FETCH_ADDRESS_BLOCKED" });
    expect(error.message).toMatch(/^fetch: localhost resolves to (127\.0\.0\.1|::1), a loopback address/);
    expect(internal.received).toEqual([]);
  });

  it("connects to the address it checked: a DNS that rebinds to loopback on the next question gets nothing through", async () => {
    // The "public" site and the internal service on the same port, 127.0.0.2 standing for a public address.
    const site = await startHttpServer((_, response) => json(response, 200, { site: "public" }, { connection: "close" }), STAND_IN_PUBLIC);
    const inside = await new Promise<{ server: Server; hits: string[] }>((resolve, reject) => {
      const hits: string[] = [];
      const server = createServer((request, response) => {
        hits.push(request.url ?? "");
        response.end("internal");
      });
      server.once("error", reject);
      server.listen(site.port, "127.0.0.1", () => resolve({ server, hits }));
    });
    try {
      let question = 0;
      const resolve = tableResolver({ "rebind.example": () => (++question === 1 ? STAND_IN_PUBLIC : "127.0.0.1") });
      const caps = host({ scripts: { s: { fetch: { allow: [`http://rebind.example:${site.port}`] } } }, fetch: { resolve, isAllowedAddress: standInPublic } });
      const first = (await caps.call("fetch", { url: `http://rebind.example:${site.port}/first` })) as { body: string };
      expect(JSON.parse(first.body)).toEqual({ site: "public" });
      const second = await caps.refused("fetch", { url: `http://rebind.example:${site.port}/second` });
      expect(second).toMatchObject({ code: "CS_CAP_FETCH_ADDRESS_BLOCKED" });
      expect(second.message).toMatch(/^fetch: rebind\.example resolves to 127\.0\.0\.1, a loopback address/);
      // One question per connection: the check and the connection used the same answer.
      expect(resolve.asked).toEqual(["rebind.example", "rebind.example"]);
      expect(site.received.map((request) => request.url)).toEqual(["/first"]);
      expect(inside.hits).toEqual([]);
    } finally {
      await site.close();
      inside.server.closeAllConnections();
      await new Promise((resolve) => inside.server.close(resolve));
    }
  });
});

describe("redirects", () => {
  let redirector: TestServer;
  beforeAll(async () => {
    redirector = await startHttpServer((request, response) => {
      const to = new URL(request.url, "http://x").searchParams.get("to") ?? "/";
      response.writeHead(302, { location: to });
      response.end();
    });
  });
  afterAll(() => redirector.close());

  it.each([
    ["the internal service", () => `http://127.0.0.1:${internal.port}/admin`, () => `http://127.0.0.1:${internal.port}`],
    ["the cloud metadata service", () => "http://169.254.169.254/latest/meta-data/", () => "http://169.254.169.254"],
    ["the same host on another port", () => `http://127.0.0.1:${internal.port}/`, () => `http://127.0.0.1:${internal.port}`],
    ["https of another host", () => "https://evil.example/steal", () => "https://evil.example"],
    ["a userinfo trick", () => `http://${"crm.example"}@127.0.0.1:${internal.port}/`, () => undefined],
  ])("refuses a redirect to %s, naming the key that would allow it", async (_, to, origin) => {
    const caps = host({ scripts: { "vip-client": { fetch: { allow: [redirector.origin] } } }, fetch: { resolve: tableResolver({}) } });
    const error = await caps.refused("fetch", { url: `${redirector.origin}/?to=${encodeURIComponent(to())}` });
    expect(error.code).toBe("CS_CAP_FETCH_REDIRECT");
    if (origin()) {
      expect(error.message).toBe(
        `fetch: ${redirector.origin} redirected to ${origin()}, which is not allowed for vip-client: add ${origin()} to scripts.vip-client.fetch.allow to follow it`,
      );
    } else {
      expect(error.message).toContain("user:password@ is refused");
    }
    expect(internal.received).toEqual([]);
  });

  it("refuses a redirect to an allowed name that resolves inside", async () => {
    const caps = host({
      scripts: { s: { fetch: { allow: [redirector.origin, "http://crm.example"] } } },
      fetch: { resolve: tableResolver({ "crm.example": "10.0.0.8" }) },
    });
    const error = await caps.refused("fetch", { url: `${redirector.origin}/?to=${encodeURIComponent("http://crm.example/")}` });
    expect(error.code).toBe("CS_CAP_FETCH_ADDRESS_BLOCKED");
  });
});

describe("huge and slow answers", () => {
  let flood: Server;
  let floodOrigin: string;
  const finished: string[] = [];
  beforeAll(async () => {
    flood = createServer((request, response) => {
      const url = request.url ?? "/";
      response.on("close", () => finished.push(url));
      if (url === "/endless") {
        // 64 KiB at a time, for ever: only a cap applied while reading ends it.
        response.writeHead(200, { "content-type": "text/plain" });
        const chunk = Buffer.alloc(64 * 1024, "a");
        const pump = () => {
          while (response.write(chunk)) if (response.destroyed) return;
          response.once("drain", pump);
        };
        pump();
      } else if (url === "/declared") {
        response.writeHead(200, { "content-length": String(512 * 1024 * 1024) });
        response.write("a");
      } else if (url === "/bomb") {
        response.writeHead(200, { "content-encoding": "gzip" });
        response.end(gzipSync(Buffer.alloc(64 * 1024 * 1024)));
      } else if (url === "/drip") {
        response.writeHead(200, { "content-type": "text/plain" });
        const timer = setInterval(() => response.write("."), 20);
        response.on("close", () => clearInterval(timer));
      }
    });
    await new Promise<void>((resolve) => flood.listen(0, "127.0.0.1", resolve));
    floodOrigin = `http://127.0.0.1:${(flood.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    flood.closeAllConnections();
    await new Promise((resolve) => flood.close(resolve));
  });

  it.each(["/endless", "/declared", "/bomb"])("cuts %s at fetch.maxResponseBytes while it arrives", async (path) => {
    const caps = host({ scripts: { "vip-client": { fetch: { allow: [floodOrigin], maxResponseBytes: 256 * 1024, timeoutMs: 30_000 } } } });
    expect(await caps.refused("fetch", { url: `${floodOrigin}${path}` })).toMatchObject({
      code: "CS_CAP_FETCH_RESPONSE_TOO_LARGE",
      message: `fetch: the response of ${floodOrigin} is over scripts.vip-client.fetch.maxResponseBytes (262144 bytes)`,
    });
    // The connection was dropped, not read to the end.
    await expect.poll(() => finished.includes(path), { timeout: 10_000 }).toBe(true);
  });

  it("ends a body that drips for ever at fetch.timeoutMs", async () => {
    const caps = host({ scripts: { s: { fetch: { allow: [floodOrigin], timeoutMs: 300 } } } });
    expect(await caps.refused("fetch", { url: `${floodOrigin}/drip` })).toMatchObject({ code: "CS_CAP_FETCH_TIMEOUT" });
    await expect.poll(() => finished.includes("/drip"), { timeout: 10_000 }).toBe(true);
  });
});

describe("a fetch storm", () => {
  it("lets fetch.maxCalls calls of one invocation through and refuses the rest before they leave", async () => {
    const caps = host({ scripts: { storm: { fetch: { allow: [internal.origin], maxCalls: 5 } } } });
    const signal = new AbortController().signal;
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => caps.call("fetch", { url: `${internal.origin}/${i}` }, { signal })));
    const refused = results.filter((result): result is PromiseRejectedResult => result.status === "rejected");
    expect(results.filter((result) => result.status === "fulfilled")).toHaveLength(5);
    expect(refused).toHaveLength(195);
    expect(new Set(refused.map((result) => (result.reason as { message: string }).message))).toEqual(
      new Set(["fetch: more than 5 fetches in one invocation (scripts.storm.fetch.maxCalls)"]),
    );
    expect(internal.received).toHaveLength(5);
  });
});
