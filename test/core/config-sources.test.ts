import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, sourceOf } from "../../runtime/config.js";
import { settingsInForce, settingsProblems, unknownScriptNames } from "../../runtime/config-scripts.js";
import { describeSource, interpolateEnv } from "../../runtime/config-sources.js";
import { isSecretKey, looksSecret, maskSecrets } from "../../runtime/mask-secrets.js";
import { scriptsFolder } from "../helpers/scripts.js";

function configFile(name: string, text: string): string {
  return path.join(scriptsFolder({ [name]: text }), name);
}

function configError(load: () => unknown): string {
  try {
    load();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error("the configuration loaded, but it should not have");
}

describe("${ENV} interpolation", () => {
  it("fills in strings anywhere in the file, with a fallback, and $${ as a literal", () => {
    const { value, used, problems } = interpolateEnv({ a: "${A}", nested: { list: ["x-${B}-y", "${C:-fallback}", "$${NOT}"] }, n: 3 }, { A: "one", B: "two" });
    expect(problems).toEqual([]);
    expect(value).toEqual({ a: "one", nested: { list: ["x-two-y", "fallback", "${NOT}"] }, n: 3 });
    expect([...used]).toEqual([
      ["a", ["A"]],
      ["nested.list.0", ["B"]],
      ["nested.list.1", ["C"]],
    ]);
  });

  it("an unset variable, or a ${ that is not a placeholder, is named with its path", () => {
    const { problems } = interpolateEnv({ scripts: { crm: { settings: { url: "${BITRIX_WEBHOOK}", bad: "${1X}" } } } }, {});
    expect(problems).toEqual([
      {
        path: "scripts.crm.settings.url",
        message: "${BITRIX_WEBHOOK} is not set in the environment (write ${BITRIX_WEBHOOK:-fallback} for a value to use when it is not)",
      },
      { path: "scripts.crm.settings.bad", message: "has a '${' that is not a placeholder: write ${NAME} (NAME: letters, digits, _), or $${ for a literal ${" },
    ]);
  });

  it("loadConfig interpolates the file, and names the variable and the file of a value that is wrong", () => {
    const file = configFile("c.yaml", "logLevel: ${LEVEL}\nscripts:\n  crm:\n    settings:\n      webhook: ${HOOK}\n");
    const config = loadConfig({ file, env: { LEVEL: "debug", HOOK: "https://x.bitrix24.ru/rest/1/abcdef123456/" } });
    expect(config.logLevel).toBe("debug");
    expect(config.scripts.crm!.settings).toEqual({ webhook: "https://x.bitrix24.ru/rest/1/abcdef123456/" });
    expect(describeSource(sourceOf(config, "scripts.crm.settings.webhook"))).toBe(`\${HOOK} in ${file}`);
    expect(describeSource(sourceOf(config, "port"))).toBe("the default");

    expect(configError(() => loadConfig({ file, env: { LEVEL: "loud", HOOK: "x" } }))).toBe(
      `Invalid configuration in ${file}: logLevel: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent" (from \${LEVEL} in ${file})`,
    );
    expect(configError(() => loadConfig({ file, env: { LEVEL: "info" } }))).toBe(
      `Invalid configuration in ${file}: scripts.crm.settings.webhook: \${HOOK} is not set in the environment (write \${HOOK:-fallback} for a value to use when it is not)`,
    );
  });

  it("a value from a flag or the environment says so", () => {
    const config = loadConfig({ env: { CALLSCRIPT_LOG_LEVEL: "warn" }, overrides: { port: 9000 } });
    expect(describeSource(sourceOf(config, "logLevel"))).toBe("the environment variable CALLSCRIPT_LOG_LEVEL");
    expect(describeSource(sourceOf(config, "port"))).toBe("the command line (--port)");
    expect(configError(() => loadConfig({ env: {}, overrides: { port: "http" as never } }))).toBe(
      "Invalid configuration in the configuration: port: Invalid input: expected number, received string (from the command line (--port))",
    );
  });
});

describe("scripts.<name> against the folder and the scripts", () => {
  it("a name that is not a script of the folder, with the nearest one", () => {
    const file = configFile("c.json", JSON.stringify({ scripts: { "block-client": {}, zzz: {} } }));
    const config = loadConfig({ file, env: {} });
    expect(unknownScriptNames(config, ["block-clients", "phones"], "/srv/scripts")).toEqual([
      `scripts.block-client: there is no script block-client.ts in /srv/scripts (did you mean 'block-clients'?) (in ${file})`,
      `scripts.zzz: there is no script zzz.ts in /srv/scripts (its scripts: block-clients, phones) (in ${file})`,
    ]);
  });

  it("settings the script does not declare, or of another kind than its default", () => {
    const file = configFile("c.json", JSON.stringify({ scripts: { bl: { settings: { extension: ["1"], mode: 1, free: "x", list: ["1"] } } } }));
    const config = loadConfig({ file, env: {} });
    expect(settingsProblems(config, "bl", { extensions: [], mode: "block", free: null, list: [] })).toEqual([
      `scripts.bl.settings.extension: bl has no setting 'extension' (did you mean 'extensions'?); it declares extensions, mode, free, list (in ${file})`,
      `scripts.bl.settings.mode: expected a string as bl declares, got a number (in ${file})`,
    ]);
    expect(settingsProblems(config, "bl", undefined)[0]).toContain("it declares no settings");
  });

  it("settings in force: each key with where it came from, secrets masked", () => {
    const file = configFile(
      "c.yaml",
      "scripts:\n  crm:\n    settings:\n      webhook: ${HOOK}\n      users: ['5']\n      nested: { url: 'https://crm.example/${PATH_PART}' }\n",
    );
    const config = loadConfig({ file, env: { HOOK: "https://x.bitrix24.ru/rest/1/abcdef123456/", PATH_PART: "p" } });
    const settings = settingsInForce(config, "crm", "/s/crm.ts", {
      webhook: "",
      users: [],
      nested: { url: "" },
      apiToken: "t0k3n-abcdefghijklmnopqrstu",
      day: "mon",
    });
    expect(settings).toEqual({
      webhook: { value: "https://x.bitrix24.ru/****", from: `\${HOOK} in ${file}` },
      users: { value: ["5"], from: file },
      nested: { value: { url: "https://crm.example/****" }, from: `\${PATH_PART} in ${file}` },
      apiToken: { value: "****", from: "crm.ts (its default)" },
      day: { value: "mon", from: "crm.ts (its default)" },
    });
  });
});

describe("masking secrets", () => {
  it("keys named like credentials", () => {
    for (const key of ["token", "apiKey", "api_key", "clientSecret", "webhookUrl", "DB_PASSWORD", "X-Auth-Token", "privateKey"])
      expect(isSecretKey(key), key).toBe(true);
    for (const key of ["extensions", "keys", "monkey", "author", "users", "responsibleByTrunk"]) expect(isSecretKey(key), key).toBe(false);
  });

  it("values shaped like credentials", () => {
    for (const value of [
      "https://u:p@crm.example/x",
      "https://x.bitrix24.ru/rest/1/abcdef123456/",
      "https://crm.example/api?token=abc",
      "eyJhbGciOi.eyJzdWIiOi.sig",
      "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    ]) {
      expect(looksSecret(value), value).toBe(true);
    }
    for (const value of ["89001234567", "+7 (900) 123-45-67", "101", "https://crm.example/records", "from-internal", "2026-11-20 14:03:12"])
      expect(looksSecret(value), value).toBe(false);
  });

  it("masks whole values under a secret key, inside objects and lists, and numbers when told", () => {
    expect(maskSecrets({ a: 1, token: { id: 5, value: "x" }, list: ["101", "https://u:p@h/"] })).toEqual({
      a: 1,
      token: { id: "****", value: "****" },
      list: ["101", "https://h/****"],
    });
    expect(maskSecrets(12345, { secret: true })).toBe("****");
    expect(maskSecrets({ a: { b: "x", c: "y" } }, { secretPaths: [["a", "c"]] })).toEqual({ a: { b: "x", c: "****" } });
  });
});
