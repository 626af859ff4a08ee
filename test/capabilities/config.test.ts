import path from "node:path";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { capabilityConfigKeys, kvConfigSchema, parseKvUrl, scriptCapabilityKeys } from "../../runtime/capabilities/config.js";
import { parseAllowEntry, parseUrl } from "../../runtime/capabilities/origin.js";

/** The grants as runtime/config.ts will hold them (part B spreads these keys into its schema). */
const configLike = z.strictObject({
  ...capabilityConfigKeys,
  scripts: z.record(z.string(), z.strictObject({ enabled: z.boolean().optional(), ...scriptCapabilityKeys })).default({}),
});

/** `path: message` per issue, as runtime/config.ts formats them. */
function problems(input: unknown): string[] {
  const parsed = configLike.safeParse(input);
  return parsed.success ? [] : parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
}

describe("fetch.allow", () => {
  it("takes origins and fills in the defaults", () => {
    const config = configLike.parse({
      scripts: { "vip-client": { fetch: { allow: ["https://crm.example", "http://127.0.0.1:9000"] }, secrets: ["BITRIX_TOKEN"] } },
      secrets: { BITRIX_TOKEN: "t" },
    });
    expect(config.scripts["vip-client"]).toEqual({
      fetch: { allow: ["https://crm.example", "http://127.0.0.1:9000"], timeoutMs: 1500, maxCalls: 5, maxResponseBytes: 1048576, maxRequestBytes: 65536 },
      secrets: ["BITRIX_TOKEN"],
    });
    expect(config.kv).toEqual({
      url: "sqlite:callscript-kv.sqlite",
      maxKeyBytes: 256,
      maxValueBytes: 65536,
      maxOpsPerInvocation: 20,
      maxKeysPerScript: 1000,
      timeoutMs: 1000,
      sweepSeconds: 60,
    });
  });

  it("refuses anything but scheme://host[:port], saying which key and what to write", () => {
    const allow = [
      "https://crm.example/rest",
      "crm.example",
      "ftp://crm.example",
      "https://user:pw@crm.example",
      "https://*.example",
      "http://localhost:9000",
      "https://crm.example?x=1",
      "https://crm.example:99999",
    ];
    expect(problems({ scripts: { "vip-client": { fetch: { allow } } } })).toEqual([
      "scripts.vip-client.fetch.allow.0: 'https://crm.example/rest' must be an origin without a path: write https://crm.example",
      "scripts.vip-client.fetch.allow.1: 'crm.example' is not an absolute URL; write scheme://host[:port], e.g. https://crm.example",
      "scripts.vip-client.fetch.allow.2: 'ftp://crm.example' is refused: only http and https are supported, not ftp:; write scheme://host[:port], e.g. https://crm.example",
      "scripts.vip-client.fetch.allow.3: 'https://user:pw@crm.example' is refused: a URL with user:password@ is refused (put credentials in a header, with ctx.secret()); write scheme://host[:port], e.g. https://crm.example",
      "scripts.vip-client.fetch.allow.4: 'https://*.example' must be an origin, scheme://host[:port]: wildcards, queries and fragments are not allowed",
      "scripts.vip-client.fetch.allow.5: 'http://localhost:9000': localhost is a loopback name, which a name in fetch.allow may not reach; write the address itself, e.g. http://127.0.0.1:9000",
      "scripts.vip-client.fetch.allow.6: 'https://crm.example?x=1' must be an origin, scheme://host[:port]: wildcards, queries and fragments are not allowed",
      "scripts.vip-client.fetch.allow.7: 'https://crm.example:99999' is not an absolute URL; write scheme://host[:port], e.g. https://crm.example",
    ]);
    expect(problems({ scripts: { s: { fetch: {} } } })).toEqual(["scripts.s.fetch.allow: Invalid input: expected array, received undefined"]);
    expect(problems({ scripts: { s: { fetch: { allow: [], maxCalls: 0, timeoutMs: 1.5, hosts: [] } } } }).sort()).toEqual([
      "scripts.s.fetch.maxCalls: Too small: expected number to be >0",
      "scripts.s.fetch.timeoutMs: Invalid input: expected int, received number",
      'scripts.s.fetch: Unrecognized key: "hosts"',
    ]);
  });

  it("normalises origins one way: case, default port, IDN, trailing dot, IPv4 notations, IPv6", () => {
    const key = (text: string) => {
      const parsed = parseAllowEntry(text);
      return parsed.ok ? parsed.origin.key : parsed.problem;
    };
    expect(key("HTTPS://CRM.Example:443/")).toBe("https://crm.example");
    expect(key("https://crm.example.")).toBe("https://crm.example");
    expect(key("https://ВИП.рф")).toBe("https://xn--b1amv.xn--p1ai");
    expect(key("http://2130706433:9000")).toBe("http://127.0.0.1:9000");
    expect(key("http://0x7f.1")).toBe("http://127.0.0.1");
    expect(key("http://[::ffff:127.0.0.1]:8080")).toBe("http://127.0.0.1:8080");
    expect(key("http://[0:0:0:0:0:0:0:1]:80")).toBe("http://[::1]");
    expect(key("http://crm.example:0080")).toBe("http://crm.example");
    const url = parseUrl("http://CRM.example.:8080/a/../b?x=%41");
    expect(url.ok && url.url.href).toBe("http://crm.example:8080/b?x=%41");
  });
});

describe("secrets and kv", () => {
  it("refuse bad names, empty values and unknown stores, naming the key", () => {
    const rule =
      "a secret's name is upper-case letters and digits in words joined by single _, starting with a letter, at most 64 characters (e.g. BITRIX_TOKEN)";
    expect(problems({ secrets: { bitrix: "x", EMPTY: "" }, scripts: { s: { secrets: ["TOKEN_"] } } }).sort()).toEqual([
      `scripts.s.secrets.0: ${rule}`,
      "secrets.EMPTY: a secret's value must not be empty",
      `secrets.bitrix: ${rule}`,
    ]);
    expect(problems({ kv: { url: "mysql://db/kv" } })).toEqual(["kv.url: must be sqlite:<file> or redis://host:port/db, not mysql:"]);
    expect(problems({ kv: { url: "sqlite:" } })).toEqual(["kv.url: sqlite: needs a file name, e.g. sqlite:callscript-kv.sqlite"]);
    expect(problems({ kv: { url: "redis://127.0.0.1:6379/zero" } })).toEqual([
      "kv.url: a redis URL ends with the database number, if any: redis://host:port/0",
    ]);
    expect(problems({ kv: { maxKeysPerScript: 0 } })).toEqual(["kv.maxKeysPerScript: Too small: expected number to be >0"]);
  });

  it("puts a relative SQLite file beside the config, and never shows a Redis password", () => {
    expect(parseKvUrl("sqlite:callscript-kv.sqlite", "/etc/callscript")).toEqual({
      ok: true,
      location: { kind: "sqlite", file: path.resolve("/etc/callscript/callscript-kv.sqlite") },
    });
    expect(parseKvUrl("sqlite:/var/lib/callscript/kv.sqlite", "/etc/callscript")).toEqual({
      ok: true,
      location: { kind: "sqlite", file: "/var/lib/callscript/kv.sqlite" },
    });
    expect(parseKvUrl("redis://:hunter2@10.0.0.5:6379/2", "/etc")).toEqual({
      ok: true,
      location: { kind: "redis", url: "redis://:hunter2@10.0.0.5:6379/2", shown: "redis://****@10.0.0.5:6379/2" },
    });
    expect(JSON.stringify(parseKvUrl("mysql://u:hunter2@db/x", "/"))).not.toContain("hunter2");
  });

  it("have a JSON Schema (for editors and /openapi.json), exact on input and output", () => {
    for (const io of ["input", "output"] as const) {
      const schema = z.toJSONSchema(configLike, { io, unrepresentable: "throw" }) as { properties: Record<string, unknown> };
      expect(Object.keys(schema.properties).sort()).toEqual(["kv", "scripts", "secrets"]);
    }
    expect(kvConfigSchema.parse({ url: "redis://127.0.0.1:6379/0" }).url).toBe("redis://127.0.0.1:6379/0");
  });
});
