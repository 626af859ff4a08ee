import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../../runtime/paths.js";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../runtime/config.js";
import { checkedGrants, configGrants, grantWarningsOf } from "../../runtime/config-capabilities.js";
import { scriptsFolder } from "../helpers/scripts.js";

/**
 * Issue 15: the capability keys of the config file (secrets, kv at the top; fetch and secrets per
 * script), read as the server reads them: strict names, `${VAR}` values, paths beside the file, and
 * every granted secret with a value.
 */

function configFile(name: string, text: string): string {
  const dir = scriptsFolder({ [name]: text });
  return path.join(dir, name);
}

function configError(load: () => unknown): { message: string; code: string } {
  try {
    load();
  } catch (error) {
    return error as { message: string; code: string };
  }
  throw new Error("the configuration loaded, but it should not have");
}

const YAML = [
  "secrets:",
  "  BITRIX_WEBHOOK: ${BITRIX_WEBHOOK}",
  "kv:",
  "  url: sqlite:state/kv.sqlite",
  "  maxOpsPerInvocation: 10",
  "scripts:",
  "  vip-client:",
  "    fetch: { allow: ['https://stroymarket.bitrix24.ru', 'http://127.0.0.1:9000'], maxCalls: 2 }",
  "    secrets: [BITRIX_WEBHOOK]",
  "    settings: { vipTypes: [VIP] }",
  "",
].join("\n");

describe("the capability keys", () => {
  it("reads secrets, kv and each script's fetch and secrets, with the defaults filled in", () => {
    const file = configFile("callscript.yaml", YAML);
    const config = loadConfig({ file, env: { BITRIX_WEBHOOK: "k3y5ecr3tc0de" } });
    expect(config.secrets).toEqual({ BITRIX_WEBHOOK: "k3y5ecr3tc0de" });
    expect(config.scripts["vip-client"]).toEqual({
      enabled: true,
      settings: { vipTypes: ["VIP"] },
      fetch: {
        allow: ["https://stroymarket.bitrix24.ru", "http://127.0.0.1:9000"],
        timeoutMs: 1500,
        maxCalls: 2,
        maxResponseBytes: 1048576,
        maxRequestBytes: 65536,
      },
      secrets: ["BITRIX_WEBHOOK"],
    });
    // The SQLite file is beside the config file, as scriptsDir is.
    expect(config.kv).toMatchObject({ url: `sqlite:${path.join(path.dirname(file), "state", "kv.sqlite")}`, maxOpsPerInvocation: 10, maxKeysPerScript: 1000 });
  });

  it("without them: no secrets, the SQLite file callscript-kv.sqlite beside the config file (or the working folder)", () => {
    const file = configFile("callscript.json", "{}");
    expect(loadConfig({ file, env: {} })).toMatchObject({ secrets: {}, kv: { url: `sqlite:${path.join(path.dirname(file), "callscript-kv.sqlite")}` } });
    expect(loadConfig({ env: {} }).kv.url).toBe(`sqlite:${path.join(process.cwd(), "callscript-kv.sqlite")}`);
    const redis = configFile("c.yaml", "kv: { url: 'redis://127.0.0.1:6379/2' }\n");
    expect(loadConfig({ file: redis, env: {} }).kv.url).toBe("redis://127.0.0.1:6379/2");
  });

  const mistakes: [string, string, string][] = [
    [
      "a misspelt key of a grant",
      "scripts:\n  vip-client:\n    fetch: { alow: ['https://crm.example'] }\n",
      'scripts.vip-client.fetch: Unrecognized key: "alow"',
    ],
    [
      "an allow entry with a path",
      "scripts:\n  vip-client:\n    fetch: { allow: ['https://crm.example/rest'] }\n",
      "scripts.vip-client.fetch.allow.0: 'https://crm.example/rest' must be an origin without a path: write https://crm.example",
    ],
    [
      "localhost",
      "scripts:\n  vip-client:\n    fetch: { allow: ['http://localhost:9000'] }\n",
      "scripts.vip-client.fetch.allow.0: 'http://localhost:9000': localhost is a loopback name",
    ],
    ["a secret's name in lower case", "secrets: { bitrix: x }\n", "secrets.bitrix: a secret's name is upper-case letters and digits"],
    [
      "a granted secret's name in lower case",
      "scripts:\n  vip-client:\n    secrets: [token]\n",
      "scripts.vip-client.secrets.0: a secret's name is upper-case letters",
    ],
    ["a kv url of another kind", "kv: { url: 'mysql://db/kv' }\n", "kv.url: must be sqlite:<file> or redis://host:port/db, not mysql:"],
    ["a misspelt kv key", "kv: { maxOps: 5 }\n", 'kv: Unrecognized key: "maxOps"'],
    ["an empty secret", "secrets: { TOKEN: '' }\n", "secrets.TOKEN: a secret's value must not be empty"],
  ];
  for (const [what, text, message] of mistakes) {
    it(`${what} is refused, named by its key`, () => {
      const file = configFile("c.yaml", text);
      const error = configError(() => loadConfig({ file, env: {} }));
      expect(error.code).toBe("CS_ERR_CONFIG");
      expect(error.message).toContain(message);
    });
  }

  it("a secret's ${VARIABLE} that is not set is refused, naming it; a command that sends no fetch leaves that secret out instead", () => {
    const file = configFile("callscript.yaml", YAML);
    expect(configError(() => loadConfig({ file, env: {} })).message).toContain("secrets.BITRIX_WEBHOOK: ${BITRIX_WEBHOOK} is not set in the environment");
    const lenient = loadConfig({ file, env: {}, secretValues: false });
    expect(lenient.secrets).toEqual({});
    expect(lenient.scripts["vip-client"]!.secrets).toEqual(["BITRIX_WEBHOOK"]);
    // Only unset variables of secrets: any other mistake still counts.
    const elsewhere = configFile("c.yaml", `${YAML}logLevel: \${LEVEL}\n`);
    expect(configError(() => loadConfig({ file: elsewhere, env: {}, secretValues: false })).message).toContain("logLevel: ${LEVEL} is not set");
  });
});

describe("the grants cross-checked", () => {
  it("a granted secret needs a value: from the file, or CALLSCRIPT_SECRET_<NAME>, which wins", () => {
    const file = configFile("callscript.yaml", YAML);
    const config = loadConfig({ file, env: {}, secretValues: false });
    const error = configError(() => checkedGrants(config, file, {}));
    expect(error.code).toBe("CS_ERR_CONFIG");
    expect(error.message).toBe(
      `Invalid configuration in ${file}: scripts.vip-client.secrets.0: secret BITRIX_WEBHOOK has no value: set secrets.BITRIX_WEBHOOK in the config file or CALLSCRIPT_SECRET_BITRIX_WEBHOOK in the environment`,
    );
    const fromEnv = checkedGrants(config, file, { CALLSCRIPT_SECRET_BITRIX_WEBHOOK: "fr0menv" });
    expect(fromEnv.secrets.get("BITRIX_WEBHOOK")).toEqual({ value: "fr0menv", from: "CALLSCRIPT_SECRET_BITRIX_WEBHOOK" });
    const both = checkedGrants(loadConfig({ file, env: { BITRIX_WEBHOOK: "fr0mfile" } }), file, { CALLSCRIPT_SECRET_BITRIX_WEBHOOK: "fr0menv" });
    expect(both.secrets.get("BITRIX_WEBHOOK")!.value).toBe("fr0menv");
    expect(both.scripts).toEqual({ "vip-client": { fetch: config.scripts["vip-client"]!.fetch, secrets: ["BITRIX_WEBHOOK"] } });
  });

  it("a secret granted to a script that may fetch nowhere is a warning, shown with the script", () => {
    const file = configFile("c.yaml", "secrets: { TOKEN: abc }\nscripts:\n  lonely:\n    secrets: [TOKEN]\n  quiet: { order: 1 }\n");
    const config = loadConfig({ file, env: {} });
    const grants = configGrants(config, {});
    expect(grants.errors).toEqual([]);
    expect(grants.warnings).toEqual(["scripts.lonely.secrets: granted, but the script has no scripts.lonely.fetch.allow, so its secrets can never be used"]);
    expect(grantWarningsOf(config, "lonely")).toEqual(grants.warnings);
    expect(grantWarningsOf(config, "quiet")).toEqual([]);
    expect(grants.scripts).toEqual({ lonely: { secrets: ["TOKEN"] }, quiet: {} });
  });
});

describe("deploy/callscript.yaml", () => {
  it("its commented fetch, secrets and kv example, uncommented, is a valid config: the grants, the secret from the environment, the store under /var/lib/callscript", () => {
    const lines = readFileSync(path.join(packageRoot, "deploy", "callscript.yaml"), "utf8").split("\n");
    const from = lines.findIndex((line) => line.startsWith("#  crm-lookup:"));
    const to = lines.findIndex((line) => line.startsWith("# record:"));
    expect(from).toBeGreaterThan(0);
    const uncommented = lines.map((line, index) =>
      index < from || index >= to ? line : line.startsWith("#  ") ? line.slice(1) : line.startsWith("# ") ? line.slice(2) : line,
    );
    const dir = scriptsFolder({});
    const file = path.join(dir, "callscript.yaml");
    writeFileSync(file, uncommented.join("\n"));
    const config = loadConfig({ file, env: { BITRIX_WEBHOOK: "k3y5ecr3tc0de" } });
    expect(config.kv.url).toBe("sqlite:/var/lib/callscript/kv.sqlite");
    const grants = checkedGrants(config, file, {});
    expect(grants.scripts["crm-lookup"]).toMatchObject({ fetch: { allow: ["https://stroymarket.bitrix24.ru"], maxCalls: 2 }, secrets: ["BITRIX_WEBHOOK"] });
    expect(grants.secrets.get("BITRIX_WEBHOOK")!.value).toBe("k3y5ecr3tc0de");
    expect(readFileSync(path.join(packageRoot, "deploy", "callscript.service"), "utf8")).toMatch(/^StateDirectory=callscript$/m);
  });
});
