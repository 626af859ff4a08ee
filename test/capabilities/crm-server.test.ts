import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { placeholderOf } from "../../runtime/capabilities/secrets.js";
import { CRM_ERRORS, parsePhpParams, startCrmServer, type CrmContact, type CrmServer } from "../helpers/crm-server.js";
import { makeHost, type HostUnderTest } from "./fetch-fixtures.js";

/**
 * The stand-in Bitrix24 portal, reached as a script reaches it (ctx.fetch through the host, the
 * webhook code as a secret): the shapes its documentation gives, errors included.
 */

const CODE = "k9r4webhook0code";
const contacts: CrmContact[] = Array.from({ length: 120 }, (_, i) => ({
  ID: String(i + 1),
  NAME: `Client ${i + 1}`,
  LAST_NAME: "Petrov",
  ASSIGNED_BY_ID: i === 6 ? "5" : "1",
  TYPE_ID: i < 100 ? "CLIENT" : "PARTNER",
  PHONE: [{ ID: String(1000 + i), VALUE_TYPE: "WORK", VALUE: i === 6 ? "+79001234567" : `+7900000${String(i).padStart(4, "0")}`, TYPE_ID: "PHONE" }],
}));

let crm: CrmServer;
let caps: HostUnderTest;
const method = (name: string) => `${crm.origin}/rest/1/${placeholderOf("BITRIX_WEBHOOK")}/${name}.json`;
const post = async (name: string, body: unknown) => {
  const answer = (await caps.call("fetch", {
    url: method(name),
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  })) as { status: number; body: string };
  return { status: answer.status, json: JSON.parse(answer.body) as Record<string, unknown> };
};

beforeAll(async () => {
  crm = await startCrmServer({
    webhookCode: CODE,
    contacts,
    users: [
      { ID: "1", ACTIVE: true, NAME: "Admin", UF_PHONE_INNER: "100" },
      { ID: "5", ACTIVE: true, NAME: "Maria", LAST_NAME: "Ivanova", UF_PHONE_INNER: "101", EMAIL: "maria@example.com" },
      { ID: "6", ACTIVE: false, NAME: "Gone", UF_PHONE_INNER: "102" },
    ],
  });
  caps = makeHost({
    scripts: { "vip-client": { fetch: { allow: [crm.origin], timeoutMs: 300, maxCalls: 100 }, secrets: ["BITRIX_WEBHOOK"] } },
    secrets: { BITRIX_WEBHOOK: CODE },
  });
});
afterAll(async () => {
  await caps.close();
  await crm.close();
});

describe("the stand-in Bitrix24 portal", () => {
  it("finds a contact by phone (exact match), with the fields of select and its multi-value PHONE", async () => {
    const { status, json } = await post("crm.contact.list", { filter: { PHONE: "+79001234567" }, select: ["ID", "NAME", "ASSIGNED_BY_ID", "PHONE"] });
    expect(status).toBe(200);
    expect(json).toMatchObject({
      result: [{ ID: "7", NAME: "Client 7", ASSIGNED_BY_ID: "5", PHONE: [{ ID: "1006", VALUE_TYPE: "WORK", VALUE: "+79001234567", TYPE_ID: "PHONE" }] }],
      total: 1,
      time: { start: expect.any(Number), finish: expect.any(Number), duration: expect.any(Number), operating: 0 },
    });
    expect(json.next).toBeUndefined();
    expect(Object.keys((json.result as object[])[0]!)).toEqual(["ID", "NAME", "ASSIGNED_BY_ID", "PHONE"]);
    expect((await post("crm.contact.list", { filter: { PHONE: "79001234567" } })).json).toMatchObject({ result: [], total: 0 });
    // Without select: the plain fields, not the multi-value ones.
    expect(Object.keys(((await post("crm.contact.list", { filter: { PHONE: "+79001234567" } })).json.result as object[])[0]!)).not.toContain("PHONE");
  });

  it("pages by 50 with next and total", async () => {
    const pages: number[] = [];
    let start: number | undefined = 0;
    while (start !== undefined) {
      const { json } = await post("crm.contact.list", { select: ["ID"], start });
      expect(json.total).toBe(120);
      pages.push((json.result as object[]).length);
      start = json.next as number | undefined;
    }
    expect(pages).toEqual([50, 50, 20]);
    expect((await post("crm.contact.list", { filter: { TYPE_ID: "PARTNER" }, select: ["ID"] })).json).toMatchObject({ total: 20 });
  });

  it("reads parameters from a form body and the query string, PHP-style", async () => {
    const form = (await caps.call("fetch", {
      url: method("crm.contact.list"),
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "filter[PHONE]=%2B79001234567&select[]=ID&select[]=ASSIGNED_BY_ID",
    })) as { body: string };
    expect(JSON.parse(form.body).result).toEqual([{ ID: "7", ASSIGNED_BY_ID: "5" }]);
    const query = (await caps.call("fetch", { url: `${method("user.get")}?ID=5` })) as { body: string };
    expect(JSON.parse(query.body)).toMatchObject({ result: [{ ID: "5", NAME: "Maria", UF_PHONE_INNER: "101" }], total: 1 });
    expect(parsePhpParams(new URLSearchParams("a[b][c]=1&a[b][d]=2&l[]=x&l[]=y&plain=z"))).toEqual({ a: { b: { c: "1", d: "2" } }, l: ["x", "y"], plain: "z" });
  });

  it("finds users by ID or by filter (the internal extension)", async () => {
    expect((await post("user.get", { ID: "5" })).json).toMatchObject({ result: [{ ID: "5", NAME: "Maria" }], total: 1 });
    expect((await post("user.get", { filter: { UF_PHONE_INNER: "102", ACTIVE: true } })).json).toMatchObject({ result: [], total: 0 });
    expect((await post("user.get", { filter: { ACTIVE: true } })).json).toMatchObject({ total: 2 });
    expect((await post("crm.duplicate.findbycomm", { entity_type: "CONTACT", type: "PHONE", values: ["+79001234567"] })).json).toMatchObject({
      result: { CONTACT: [7] },
    });
  });

  it("answers errors as the portal does: wrong webhook, unknown method, a rate limit, a failure on purpose", async () => {
    const wrong = (await caps.call("fetch", { url: `${crm.origin}/rest/1/wrongcode/crm.contact.list.json` })) as { status: number; body: string };
    expect([wrong.status, JSON.parse(wrong.body)]).toEqual([401, { error: "INVALID_CREDENTIALS", error_description: "Invalid request credentials" }]);
    const unknown = await post("crm.nothing.list", {});
    expect([unknown.status, unknown.json]).toEqual([404, { error: "ERROR_METHOD_NOT_FOUND", error_description: "Method not found!" }]);
    crm.failNext(CRM_ERRORS.queryLimitExceeded, 2);
    expect((await post("user.get", { ID: "5" })).json).toEqual({ error: "QUERY_LIMIT_EXCEEDED", error_description: "Too many requests" });
    expect((await post("user.get", { ID: "5" })).status).toBe(503);
    expect((await post("user.get", { ID: "5" })).status).toBe(200);
    expect(crm.requests.filter((request) => !request.authorized).map((request) => request.method)).toEqual(["crm.contact.list"]);
  });

  it("refuses past its leaky bucket: a burst, then QUERY_LIMIT_EXCEEDED (503)", async () => {
    const limited = await startCrmServer({ webhookCode: CODE, rateLimit: { burst: 3, perSecond: 0.001 }, users: [{ ID: "1", ACTIVE: true, NAME: "A" }] });
    const host = makeHost({ scripts: { s: { fetch: { allow: [limited.origin], maxCalls: 10 }, secrets: ["W"] } }, secrets: { W: CODE } });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++)
        statuses.push(((await host.call("fetch", { url: `${limited.origin}/rest/1/${placeholderOf("W")}/user.get.json` })) as { status: number }).status);
      expect(statuses).toEqual([200, 200, 200, 503, 503]);
    } finally {
      await host.close();
      await limited.close();
    }
  });

  it("answers slowly when asked, and the script's timeout ends the wait", async () => {
    crm.setDelay(3_000);
    try {
      expect(await caps.refused("fetch", { url: method("user.get") })).toMatchObject({
        code: "CS_CAP_FETCH_TIMEOUT",
        message: `fetch: ${crm.origin} did not answer within 300 ms (scripts.vip-client.fetch.timeoutMs)`,
      });
    } finally {
      crm.setDelay(0);
    }
  });
});
