import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { startCrmServer } from "../helpers/crm-server.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { LEVEL } from "./helpers.js";
import { listening, serve } from "./serve-process.js";
import { waitFor } from "../helpers/wait.js";

/**
 * Issue 15 through a real `callscript serve`: the capability keys of the config checked at start
 * (exit 2) and on every reload (refused, in the log and /scripts), the grants in /scripts without a
 * secret's value anywhere, kv needing a restart, a clean stop.
 */

const VIP = `import { defineScript } from "callscript";
export default defineScript({ hooks: { process_registration_params() { return undefined; } } });
`;
const SECRET = "x7k2abc9def0ghij";

function yamlConfig(dir: string, body: string): string {
  const file = path.join(scriptsFolder({}), "callscript.yaml");
  writeFileSync(file, `scriptsDir: ${dir}\n${body}`);
  return file;
}

const GRANTS = "scripts:\n  vip-client:\n    fetch: { allow: ['https://stroymarket.bitrix24.ru'] }\n    secrets: [BITRIX_WEBHOOK]\n";

describe("serve with capabilities in the config", () => {
  it("refuses to start (exit 2) when a granted secret has no value, naming both ways to give it one", async () => {
    const dir = scriptsFolder({ "vip-client.ts": VIP });
    const file = yamlConfig(dir, GRANTS);
    const served = serve(["--config", file, "--port", "0"]);
    expect((await served.exit).code).toBe(2);
    expect(served.stderr()).toBe(
      `callscript: Invalid configuration in ${file}: scripts.vip-client.secrets.0: secret BITRIX_WEBHOOK has no value: set secrets.BITRIX_WEBHOOK in the config file or CALLSCRIPT_SECRET_BITRIX_WEBHOOK in the environment\n`,
    );
  });

  it("shows each script's grants in /scripts and the log, never a secret's value; refuses a reload that grants a secret without one; kv takes a restart", async () => {
    const dir = scriptsFolder({ "vip-client.ts": VIP, "other.ts": VIP });
    const file = yamlConfig(dir, `secrets: { BITRIX_WEBHOOK: '\${BITRIX_WEBHOOK}' }\n${GRANTS}`);
    const served = serve(["--config", file, "--port", "0"], { BITRIX_WEBHOOK: SECRET });
    const address = await listening(served);
    const scripts = async () => (await (await fetch(`${address}/scripts`)).json()) as Record<string, any>;

    let body = await scripts();
    const vip = body.scripts.find((script: { name: string }) => script.name === "vip-client");
    expect(vip.capabilities).toEqual({
      fetch: { allow: ["https://stroymarket.bitrix24.ru"], timeoutMs: 1500, maxCalls: 5, maxResponseBytes: 1048576, maxRequestBytes: 65536 },
      secrets: ["BITRIX_WEBHOOK"],
    });
    expect(body.scripts.find((script: { name: string }) => script.name === "other").capabilities).toEqual({ fetch: null, secrets: [] });
    const summary = served.lines.find((line) => line.msg === "capabilities (docs/capabilities.md)");
    expect(summary).toMatchObject({
      level: LEVEL.info,
      kv: `sqlite:${path.join(path.dirname(file), "callscript-kv.sqlite")}`,
      secrets: { BITRIX_WEBHOOK: "secrets.BITRIX_WEBHOOK" },
      fetch: { "vip-client": ["https://stroymarket.bitrix24.ru"] },
    });
    // The store opens on the first kv operation: none yet, no file.
    expect(existsSync(path.join(path.dirname(file), "callscript-kv.sqlite"))).toBe(false);

    // A secret granted to a script without fetch: a warning, in the log and with the script.
    writeFileSync(file, `scriptsDir: ${dir}\nsecrets: { BITRIX_WEBHOOK: '\${BITRIX_WEBHOOK}' }\n${GRANTS}  other:\n    secrets: [BITRIX_WEBHOOK]\n`);
    await waitFor(async () => (await scripts()).config.lastReload?.ok === true, "the reload");
    body = await scripts();
    expect(body.config.lastReload).toMatchObject({ changed: ["scripts"], restartRequired: [] });
    const warning = "scripts.other.secrets: granted, but the script has no scripts.other.fetch.allow, so its secrets can never be used";
    expect(body.scripts.find((script: { name: string }) => script.name === "other").warnings).toEqual([warning]);
    await served.line((line) => line.msg === `configuration: ${warning}` && line.level === LEVEL.warn, "the warning");

    // A secret granted without a value: refused, the config in force stays.
    writeFileSync(
      file,
      `scriptsDir: ${dir}\nsecrets: { BITRIX_WEBHOOK: '\${BITRIX_WEBHOOK}' }\n${GRANTS}    # and one more\n  other:\n    fetch: { allow: ['https://crm.example'] }\n    secrets: [KOMMO_TOKEN]\n`,
    );
    await waitFor(async () => (await scripts()).config.lastReload?.ok === false, "the refusal");
    body = await scripts();
    expect(body.config.lastReload.problems).toEqual([
      `Invalid configuration in ${file}: scripts.other.secrets.0: secret KOMMO_TOKEN has no value: set secrets.KOMMO_TOKEN in the config file or CALLSCRIPT_SECRET_KOMMO_TOKEN in the environment`,
    ]);
    expect(body.scripts.find((script: { name: string }) => script.name === "other").capabilities).toEqual({ fetch: null, secrets: ["BITRIX_WEBHOOK"] });
    await served.line((line) => line.level === LEVEL.error && String(line.msg).startsWith("configuration refused"), "the refusal's log line");

    // kv is read at start: a change applies after a restart, and says so.
    writeFileSync(file, `scriptsDir: ${dir}\nsecrets: { BITRIX_WEBHOOK: '\${BITRIX_WEBHOOK}' }\nkv: { url: 'sqlite:elsewhere.sqlite' }\n${GRANTS}`);
    await waitFor(async () => (await scripts()).config.lastReload?.ok === true, "the kv reload");
    expect((await scripts()).config.lastReload).toMatchObject({ restartRequired: ["kv"] });

    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
    expect(JSON.stringify(served.lines)).not.toContain(SECRET);
    expect(JSON.stringify(body)).not.toContain(SECRET);
    expect(served.stderr()).not.toContain(SECRET);
  });

  it("vip-client against the stand-in portal: the secret from CALLSCRIPT_SECRET_*, the grants of the config, new grants on a reload", async () => {
    const crm = await startCrmServer({
      webhookCode: SECRET,
      contacts: [{ ID: "245", NAME: "Сергей", TYPE_ID: "VIP", ASSIGNED_BY_ID: "7", PHONE: [{ VALUE: "+79001234567" }] }],
    });
    try {
      const read = (file: string) => readFileSync(path.join(packageRoot, "examples", file), "utf8");
      const dir = scriptsFolder({ "vip-client.ts": read("vip-client.ts"), "lib/numbers.ts": read("lib/numbers.ts") });
      const grants = (allow: string) =>
        `scripts:\n  vip-client:\n    fetch: { allow: ['${allow}'] }\n    secrets: [BITRIX_WEBHOOK]\n    settings: { portal: '${crm.origin}' }\n`;
      const file = yamlConfig(dir, grants(crm.origin));
      const served = serve(["--config", file, "--port", "0"], { CALLSCRIPT_SECRET_BITRIX_WEBHOOK: SECRET });
      const address = await listening(served);
      const input = readFileSync(path.join(packageRoot, "examples", "payloads", "process_registration_params.incoming.json"), "utf8");
      const post = async () =>
        (
          (await (
            await fetch(`${address}/hooks/process_registration_params`, { method: "POST", body: input, headers: { "content-type": "application/json" } })
          ).json()) as { data: { USER_ID: string } }
        ).data.USER_ID;
      expect(await post()).toBe("7");
      expect(crm.requests.at(-1)).toMatchObject({ method: "crm.contact.list", authorized: true });
      const metrics = await (await fetch(`${address}/metrics`)).text();
      expect(metrics).toContain(`callscript_fetch_requests_total{script="vip-client",origin="${crm.origin}",status="200"} 1`);

      // The portal taken out of the grant: the lookup is refused, the call registered as usual.
      writeFileSync(file, `scriptsDir: ${dir}\n${grants("https://stroymarket.bitrix24.ru")}`);
      await waitFor(async () => (await post()) === "1", "the new grant to apply");
      await served.line((line) => line.level === LEVEL.warn && String(line.msg).includes("no lookup (CS_CAP_FETCH_NOT_ALLOWED)"), "the script's warning");
      served.child.kill("SIGTERM");
      expect((await served.exit).code).toBe(0);
      expect(JSON.stringify(served.lines)).not.toContain(SECRET);
    } finally {
      await crm.close();
    }
  });
});
