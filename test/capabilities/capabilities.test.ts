import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CapabilityHost } from "../../runtime/capabilities/capabilities.js";
import { kvConfigSchema, scriptGrantsSchema } from "../../runtime/capabilities/config.js";
import { isCapabilityError } from "../../runtime/capabilities/errors.js";
import { resolveSecretValues } from "../../runtime/capabilities/secrets.js";
import { json, startHttpServer, type TestServer } from "../helpers/http-server.js";
import { invocation, makeHost } from "./fetch-fixtures.js";

/** The host as the server holds it: routing by op and script, budgets, events, the store's lifecycle, reloads. */

let server: TestServer;
beforeAll(async () => {
  server = await startHttpServer((request, response) => json(response, request.url.startsWith("/missing") ? 404 : 200, { url: request.url }));
});
afterAll(() => server.close());

describe("CapabilityHost", () => {
  it("refuses an op outside the contract with a CapabilityError", async () => {
    const caps = makeHost({ scripts: { s: {} } });
    try {
      const error = await caps.refused("fs.read", { path: "/etc/passwd" });
      expect(isCapabilityError(error)).toBe(true);
      expect(error).toMatchObject({ code: "CS_CAP_UNKNOWN_OP", message: "'fs.read' is not a capability (fetch, kv.get, kv.set, kv.delete, kv.incr)" });
    } finally {
      await caps.close();
    }
  });

  it("reports every fetch (origin, method, status or code, ms) and every kv op (op, outcome, ms) to its hooks", async () => {
    const caps = makeHost({ scripts: { s: { fetch: { allow: [server.origin] } } }, kv: { maxValueBytes: 10 } });
    try {
      await caps.call("fetch", { url: `${server.origin}/missing?phone=+79001234567` });
      await caps.refused("fetch", { url: "https://elsewhere.example/" });
      await caps.call("kv.set", { key: "k", value: 1 });
      await caps.refused("kv.set", { key: "k", value: "far too long" });
      await caps.call("kv.get", { key: "k" });
      expect(caps.fetchEvents.map(({ ms, ...event }) => (expect(ms).toBeGreaterThanOrEqual(0), event))).toEqual([
        { script: "s", hook: "process_final_params", requestId: "req-1", origin: server.origin, method: "GET", status: 404, code: undefined, dropped: [] },
        {
          script: "s",
          hook: "process_final_params",
          requestId: "req-1",
          origin: undefined,
          method: undefined,
          status: undefined,
          code: "CS_CAP_FETCH_NOT_ALLOWED",
          dropped: [],
        },
      ]);
      expect(caps.kvEvents.map(({ op, outcome }) => `${op} ${outcome}`)).toEqual(["kv.set ok", "kv.set CS_CAP_KV_VALUE", "kv.get ok"]);
      expect(caps.faults).toEqual([]);
    } finally {
      await caps.close();
    }
  });

  it("opens the store on the first kv op, not before, and names the file when it cannot", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), "callscript-host-"));
    const readOnly = path.join(dir, "a-file");
    const make = (url: string) =>
      new CapabilityHost({
        scripts: {},
        secrets: new Map(),
        kv: kvConfigSchema.parse({ url }),
        baseDir: dir,
        hooks: { onFault: (event) => faults.push(event.detail) },
      });
    const faults: string[] = [];
    try {
      const lazy = make("sqlite:kv.sqlite");
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(existsSync(path.join(dir, "kv.sqlite"))).toBe(false);
      expect(await lazy.handle("kv.incr", JSON.stringify({ key: "n" }), invocation("s"))).toBe('{"value":1}');
      expect(existsSync(path.join(dir, "kv.sqlite"))).toBe(true);
      await lazy.close();

      // Root may write anywhere; a file under a regular file cannot be made by anyone.
      const blocked = make(`sqlite:${path.join(readOnly, "kv.sqlite")}`);
      writeFileSync(readOnly, "not a folder");
      const error = await blocked.handle("kv.get", JSON.stringify({ key: "k" }), invocation("s")).catch((caught: unknown) => caught);
      expect(error).toMatchObject({ code: "CS_CAP_KV_UNAVAILABLE", message: "kv.get: the store is unavailable (the server log says why)" });
      expect(faults).toHaveLength(1);
      expect(faults[0]).toMatch(new RegExp(`^cannot open the kv store sqlite:${readOnly}/kv.sqlite: .*`));
      await blocked.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes new grants on a config reload", async () => {
    const caps = makeHost({ scripts: { s: {} } });
    try {
      expect((await caps.refused("fetch", { url: `${server.origin}/` })).code).toBe("CS_CAP_FETCH_NO_GRANT");
      expect(caps.host.hasFetchGrant("s")).toBe(false);
      caps.host.updateGrants({ s: scriptGrantsSchema.parse({ fetch: { allow: [server.origin] }, secrets: ["T"] }) }, resolveSecretValues({ T: "v" }, {}));
      expect(caps.host.hasFetchGrant("s")).toBe(true);
      expect(await caps.call("fetch", { url: `${server.origin}/after-reload` })).toMatchObject({ status: 200 });
    } finally {
      await caps.close();
    }
  });

  it("refuses every op of an invocation that has ended", async () => {
    const caps = makeHost({ scripts: { s: { fetch: { allow: [server.origin] } } } });
    const controller = new AbortController();
    controller.abort();
    try {
      for (const [op, payload] of [
        ["fetch", { url: `${server.origin}/` }],
        ["kv.get", { key: "k" }],
      ] as const) {
        expect(await caps.refused(op, payload, { signal: controller.signal })).toMatchObject({
          code: "CS_CAP_ABORTED",
          message: `${op}: the invocation has ended`,
        });
      }
      expect(server.received.filter((request) => request.url === "/")).toEqual([]);
    } finally {
      await caps.close();
    }
  });
});
