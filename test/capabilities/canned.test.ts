import { describe, expect, it } from "vitest";
import { z } from "zod";
import { cannedFetchSchema, createCannedCapabilities, type CannedCapabilitiesOptions } from "../../runtime/capabilities/canned.js";
import { placeholderOf } from "../../runtime/capabilities/secrets.js";
import { invocation } from "./fetch-fixtures.js";

/** What callscript run/test give a script: the case's answers, the case's KV, the server's rules. */

function canned(options: Partial<CannedCapabilitiesOptions> = {}) {
  const caps = createCannedCapabilities({ script: "vip-client", ...options });
  const call = async (op: string, payload: unknown, signal?: AbortSignal) =>
    JSON.parse(await caps.handle(op, JSON.stringify(payload), invocation("vip-client", signal))) as Record<string, unknown>;
  const refused = (op: string, payload: unknown, signal?: AbortSignal) =>
    call(op, payload, signal).then(
      () => {
        throw new Error("not refused");
      },
      (error: { code: string; message: string }) => error,
    );
  return { caps, call, refused };
}

const LIST = "https://crm.example/rest/1/x/crm.contact.list.json";

describe("canned fetch", () => {
  it("answers from the case: json or text, status, headers, the contract's shape", async () => {
    const { call } = canned({
      fetch: [
        { url: LIST, method: "POST", status: 200, json: { result: [{ ID: "7", ASSIGNED_BY_ID: "5" }], total: 1 } },
        { url: "https://crm.example/health", text: "ok", headers: { "X-Portal": "a" } },
        { url: "https://crm.example/limit", status: 503, json: { error: "QUERY_LIMIT_EXCEEDED" } },
      ],
    });
    expect(await call("fetch", { url: LIST, method: "POST", body: "{}" })).toEqual({
      ok: true,
      status: 200,
      statusText: "OK",
      url: LIST,
      headers: { "content-type": "application/json" },
      body: '{"result":[{"ID":"7","ASSIGNED_BY_ID":"5"}],"total":1}',
    });
    expect(await call("fetch", { url: "https://CRM.example:443/health" })).toMatchObject({
      status: 200,
      body: "ok",
      headers: { "content-type": "text/plain; charset=utf-8", "x-portal": "a" },
    });
    expect(await call("fetch", { url: "https://crm.example/limit" })).toMatchObject({ ok: false, status: 503, statusText: "Service Unavailable" });
  });

  it("uses each entry once, in list order per method and URL, concurrent calls included", async () => {
    const { caps, call, refused } = canned({
      fetch: [
        { url: "https://crm.example/next", json: 1 },
        { url: "https://crm.example/other", json: "other" },
        { url: "https://crm.example/next", json: 2 },
        { url: "https://crm.example/next", method: "POST", json: "posted" },
        { url: "https://crm.example/unused", json: null },
      ],
    });
    const signal = new AbortController().signal;
    const [first, second] = await Promise.all([
      call("fetch", { url: "https://crm.example/next" }, signal),
      call("fetch", { url: "https://crm.example/next" }, signal),
    ]);
    expect([first!.body, second!.body]).toEqual(["1", "2"]);
    expect((await call("fetch", { url: "https://crm.example/next", method: "POST", body: "x" }, signal)).body).toBe('"posted"');
    const error = await refused("fetch", { url: "https://crm.example/next" }, signal);
    expect(error).toMatchObject({
      code: "CS_CAP_FETCH_NOT_FORESEEN",
      message:
        'fetch: GET https://crm.example/next was not foreseen by the case (its 2 answers are used already: each entry answers one call): add { "url": "https://crm.example/next", "status": 200, "json": … } to its fetch list',
    });
    expect(caps.unused().map((entry) => entry.url)).toEqual(["https://crm.example/other", "https://crm.example/unused"]);
    expect(caps.calls().map((made) => `${made.method} ${made.url} ${made.answeredBy}`)).toEqual([
      "GET https://crm.example/next 0",
      "GET https://crm.example/next 2",
      "POST https://crm.example/next 3",
      "GET https://crm.example/next undefined",
    ]);
  });

  it("fails a fetch the case did not foresee, naming it and what to add", async () => {
    const { refused } = canned({ fetch: [] });
    expect(await refused("fetch", { url: "https://crm.example/rest/user.get.json", method: "POST", body: "{}" })).toEqual(
      expect.objectContaining({
        code: "CS_CAP_FETCH_NOT_FORESEEN",
        message:
          'fetch: POST https://crm.example/rest/user.get.json was not foreseen by the case: add { "url": "https://crm.example/rest/user.get.json", "method": "POST", "status": 200, "json": … } to its fetch list',
      }),
    );
  });

  it("matches the URL as the script wrote it, with its secret placeholders", async () => {
    const url = `https://portal.example/rest/1/${placeholderOf("BITRIX_WEBHOOK")}/crm.contact.list.json`;
    const { caps, call } = canned({ fetch: [{ url, json: { result: [] } }] });
    expect(await call("fetch", { url, headers: { Authorization: `Bearer ${placeholderOf("BITRIX_TOKEN")}` } })).toMatchObject({ status: 200, url });
    expect(caps.calls()[0]!.headers).toEqual({ authorization: `Bearer ${placeholderOf("BITRIX_TOKEN")}` });
  });

  it("with the config's grants, refuses what the server would refuse, with the server's messages", async () => {
    const grants = {
      fetch: { allow: ["https://crm.example"], timeoutMs: 1500, maxCalls: 2, maxResponseBytes: 10, maxRequestBytes: 65536 },
      secrets: ["BITRIX_TOKEN"],
    };
    const { refused, call } = canned({
      grants,
      fetch: [
        { url: "https://crm.example/a", json: 1 },
        { url: "https://crm.example/big", text: "x".repeat(11) },
        { url: "https://other.example/", json: 1 },
      ],
    });
    expect(await refused("fetch", { url: "https://other.example/" })).toMatchObject({
      code: "CS_CAP_FETCH_NOT_ALLOWED",
      message: "fetch: https://other.example is not allowed for vip-client: add https://other.example to scripts.vip-client.fetch.allow",
    });
    expect(await refused("fetch", { url: "https://crm.example/a", headers: { "X-K": placeholderOf("KOMMO_TOKEN") } })).toMatchObject({
      code: "CS_CAP_SECRET_NOT_GRANTED",
    });
    const signal = new AbortController().signal;
    expect(await call("fetch", { url: "https://crm.example/a", headers: { Authorization: placeholderOf("BITRIX_TOKEN") } }, signal)).toMatchObject({
      status: 200,
    });
    expect(await refused("fetch", { url: "https://crm.example/big" }, signal)).toMatchObject({
      code: "CS_CAP_FETCH_RESPONSE_TOO_LARGE",
      message: "fetch: the response of https://crm.example is over scripts.vip-client.fetch.maxResponseBytes (10 bytes)",
    });
    expect(await refused("fetch", { url: "https://crm.example/a" }, signal)).toMatchObject({ code: "CS_CAP_FETCH_TOO_MANY_CALLS" });
    expect(await canned({ grants: { secrets: [] } }).refused("fetch", { url: "https://crm.example/a" })).toMatchObject({ code: "CS_CAP_FETCH_NO_GRANT" });
  });

  it("refuses a malformed list with the entry's path", () => {
    const parsed = z.array(cannedFetchSchema).safeParse([
      { url: "https://a.example/", json: 1, text: "x" },
      { url: "not a url", json: 1 },
      { url: "https://a.example/", status: 42 },
    ]);
    expect(parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`)).toEqual([
      "0: give json or text, not both",
      "1.url: 'not a url' is not an absolute URL",
      "2.status: Too small: expected number to be >=100",
    ]);
  });
});

describe("canned kv", () => {
  it("starts from the case's kv, with the server's semantics and limits, and shows where it ended", async () => {
    const { caps, call, refused } = canned({ kv: { "missed-turn": 4, managers: ["101", "102"] }, kvConfig: { maxKeysPerScript: 3 } });
    expect(await call("kv.incr", { key: "missed-turn" })).toEqual({ value: 5 });
    expect(await call("kv.get", { key: "managers" })).toEqual({ found: true, value: ["101", "102"] });
    await call("kv.set", { key: "last-caller", value: "+79001234567", ttlSeconds: 3600 });
    expect(await refused("kv.set", { key: "fourth", value: 1 })).toMatchObject({ code: "CS_CAP_KV_TOO_MANY_KEYS" });
    expect(await refused("kv.incr", { key: "managers" })).toMatchObject({ code: "CS_CAP_KV_NOT_A_NUMBER" });
    expect(caps.kv()).toEqual({ "missed-turn": 5, managers: ["101", "102"], "last-caller": "+79001234567" });
  });

  it("counts kv operations per invocation like the server", async () => {
    const { refused, call } = canned({ kvConfig: { maxOpsPerInvocation: 2 } });
    const signal = new AbortController().signal;
    await call("kv.incr", { key: "n" }, signal);
    await call("kv.incr", { key: "n" }, signal);
    expect(await refused("kv.incr", { key: "n" }, signal)).toMatchObject({
      message: "kv.incr: more than 2 kv operations in one invocation (kv.maxOpsPerInvocation)",
    });
  });
});
