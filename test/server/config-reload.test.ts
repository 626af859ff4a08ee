import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { LEVEL } from "./helpers.js";
import { listening, serve } from "./serve-process.js";
import { waitFor } from "../helpers/wait.js";

/**
 * Issue 13: the config is checked as strictly as the hooks, with `${ENV}` values, and reloads
 * without a restart (save or SIGHUP), through a real `callscript serve` as an operator runs it.
 */

const missedCall = readFileSync(path.join(packageRoot, "examples", "payloads", "need_registration.incoming-missed.json"), "utf8");
const clientPhone = readFileSync(path.join(packageRoot, "examples", "payloads", "process_client_phone.incoming-8-format.json"), "utf8");

const blockClients = `import { defineScript } from "callscript";
export default defineScript({
  settings: { extensions: [] as string[], webhook: "" },
  hooks: {
    need_registration({ call_full }, { settings }) {
      return settings.extensions.includes(call_full.channel.to.base) ? { result: false } : undefined;
    },
  },
});
`;
const phone = `import { defineScript } from "callscript";
export default defineScript({ order: 1, hooks: { process_client_phone({ phone }, { settings }) { return { phone: settings.prefix + phone }; } }, settings: { prefix: "+" } });
`;

/** A YAML config file in a folder of its own, pointing at `dir`. */
function yamlConfig(dir: string, body: string): string {
  const file = path.join(scriptsFolder({}), "callscript.yaml");
  writeFileSync(file, `scriptsDir: ${dir}\n${body}`);
  return file;
}

async function post(address: string, hook: string, body: string) {
  const response = await fetch(`${address}/hooks/${hook}`, { method: "POST", body, headers: { "content-type": "application/json" } });
  return (await response.json()) as Record<string, any>;
}
const scripts = async (address: string) => (await (await fetch(`${address}/scripts`)).json()) as Record<string, any>;

describe("the config checked as strictly as the hooks (exit 2)", () => {
  it("a scripts.<name> that names no script file, with did-you-mean", async () => {
    const dir = scriptsFolder({ "block-clients.ts": blockClients });
    const file = yamlConfig(dir, "scripts:\n  block-client:\n    settings: { extensions: ['102'] }\n");
    const served = serve(["--config", file, "--port", "0"]);
    expect((await served.exit).code).toBe(2);
    expect(served.stderr()).toBe(
      `callscript: Invalid configuration in ${file}: scripts.block-client: there is no script block-client.ts in ${dir} (did you mean 'block-clients'?) (in ${file})\n`,
    );
  });

  it("a setting the script does not declare, or of another kind, named with the file it is in", async () => {
    const dir = scriptsFolder({ "block-clients.ts": blockClients });
    const file = yamlConfig(dir, "scripts:\n  block-clients:\n    settings: { extension: ['102'], webhook: 5 }\n");
    const served = serve(["--config", file, "--port", "0"]);
    expect((await served.exit).code).toBe(2);
    expect(served.stderr()).toBe(
      `callscript: Invalid configuration in ${file}: ` +
        `scripts.block-clients.settings.extension: block-clients has no setting 'extension' (did you mean 'extensions'?); it declares extensions, webhook (in ${file}); ` +
        `scripts.block-clients.settings.webhook: expected a string as block-clients declares, got a number (in ${file})\n`,
    );
  });

  it("a ${VARIABLE} that is not set, and a bad value from one, name the variable", async () => {
    const dir = scriptsFolder({ "block-clients.ts": blockClients });
    const file = yamlConfig(dir, "scripts:\n  block-clients:\n    settings: { webhook: '${CRM_WEBHOOK}' }\nlogLevel: ${LEVEL}\n");
    const unset = serve(["--config", file, "--port", "0"], { LEVEL: "info" });
    expect((await unset.exit).code).toBe(2);
    expect(unset.stderr()).toContain("scripts.block-clients.settings.webhook: ${CRM_WEBHOOK} is not set in the environment");
    const bad = serve(["--config", file, "--port", "0"], { LEVEL: "loud", CRM_WEBHOOK: "x" });
    expect((await bad.exit).code).toBe(2);
    expect(bad.stderr()).toContain(
      `logLevel: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent" (from \${LEVEL} in ${file})`,
    );
  });
});

describe("config reload without a restart", () => {
  it("saving the file applies a valid config at once (settings, enabled, limits, hook policy); an invalid one is refused and the old one serves", async () => {
    const dir = scriptsFolder({ "block-clients.ts": blockClients, "phone.ts": phone });
    const webhook = "https://stroymarket.bitrix24.ru/rest/1/k3y5ecr3tc0de/";
    const file = yamlConfig(dir, "scripts:\n  block-clients:\n    settings:\n      extensions: ['102']\n      webhook: ${CRM_WEBHOOK}\n");
    const served = serve(["--config", file, "--port", "0"], { CRM_WEBHOOK: webhook });
    const address = await listening(served);
    expect(await post(address, "need_registration", missedCall)).toEqual({ state: "success", data: { result: false } });

    // /scripts: the settings in force, where each came from, the secret masked.
    let body = await scripts(address);
    expect(body.config).toMatchObject({ file, lastReload: null });
    expect(body.scripts.find((s: { name: string }) => s.name === "block-clients").settings).toEqual({
      extensions: { value: ["102"], from: file },
      webhook: { value: "https://stroymarket.bitrix24.ru/****", from: `\${CRM_WEBHOOK} in ${file}` },
    });
    expect(JSON.stringify(body)).not.toContain("k3y5ecr3tc0de");
    expect(body.scripts.find((s: { name: string }) => s.name === "phone").settings).toEqual({ prefix: { value: "+", from: "phone.ts (its default)" } });

    // A valid change: new settings, a new limit, a hook policy, a script's own prefix.
    writeFileSync(
      file,
      `scriptsDir: ${dir}\nlimits: { defaults: { timeoutMs: 120 } }\nhooks: { need_registration: { failurePolicy: skip } }\n` +
        "scripts:\n  block-clients:\n    settings: { extensions: ['101'], webhook: '${CRM_WEBHOOK}' }\n  phone:\n    settings: { prefix: '00' }\n",
    );
    await waitFor(async () => (await post(address, "need_registration", missedCall)).data?.result === true, "the new black list to apply");
    expect(await post(address, "process_client_phone", clientPhone)).toEqual({ state: "success", data: { phone: "0089001234567" } });
    body = await scripts(address);
    expect(body.config.lastReload).toMatchObject({ ok: true, problems: [], changed: ["limits", "hooks", "scripts"], restartRequired: [] });
    expect(body.scripts.map((s: { limits: { timeoutMs: number } }) => s.limits.timeoutMs)).toEqual([120, 120]);
    // Lines reach stdout in batches (log-destination.ts): waited for, not looked up.
    expect(await served.line((line) => line.msg === "configuration reloaded", "the reload's line")).toMatchObject({
      level: LEVEL.info,
      changed: ["limits", "hooks", "scripts"],
    });

    // Invalid: a misspelt script name. Refused whole, with the reason; the config in force stays.
    const valid = readFileSync(file, "utf8");
    writeFileSync(file, valid.replace("  phone:", "  phones:"));
    await waitFor(async () => (await scripts(address)).config.lastReload?.ok === false, "the refusal");
    body = await scripts(address);
    expect(body.config.lastReload.problems).toEqual([`scripts.phones: there is no script phones.ts in ${dir} (did you mean 'phone'?) (in ${file})`]);
    expect(await post(address, "process_client_phone", clientPhone)).toEqual({ state: "success", data: { phone: "0089001234567" } });
    const refused = await served.line((line) => String(line.msg).startsWith("configuration refused"), "the refusal's log line");
    expect(refused).toMatchObject({ level: LEVEL.error, problems: body.config.lastReload.problems });

    // Invalid YAML, then a setting of the wrong kind: refused too.
    writeFileSync(file, "scripts: [\n");
    await waitFor(async () => /is not valid YAML/.test((await scripts(address)).config.lastReload?.problems?.[0] ?? ""), "the YAML refusal");
    writeFileSync(file, valid.replace("prefix: '00'", "prefix: 0"));
    await waitFor(
      async () => /scripts\.phone\.settings\.prefix: expected a string/.test((await scripts(address)).config.lastReload?.problems?.[0] ?? ""),
      "the settings refusal",
    );
    expect(await post(address, "process_client_phone", clientPhone)).toEqual({ state: "success", data: { phone: "0089001234567" } });

    // Disabled in the config: its hook answers without it. A key read at start (the body limit) says it
    // needs a restart; --port on the command line wins over the file, so the port is no change.
    writeFileSync(file, `${valid.replace("  phone:\n", "  phone:\n    enabled: false\n")}bodyLimitBytes: 2048\n`);
    await waitFor(async () => (await post(address, "process_client_phone", clientPhone)).data?.phone === "89001234567", "phone to be disabled");
    body = await scripts(address);
    expect(body.scripts.find((s: { name: string }) => s.name === "phone")).toMatchObject({ state: "disabled", version: null });
    expect(body.config.lastReload).toMatchObject({ ok: true, restartRequired: ["bodyLimitBytes"] });
    await served.line(
      (line) => line.level === LEVEL.warn && String(line.msg).includes("bodyLimitBytes changed, which takes effect only after a restart"),
      "the restart warning",
    );
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });

  it("SIGHUP re-reads the config (also with --no-watch)", async () => {
    const dir = scriptsFolder({ "block-clients.ts": blockClients });
    const file = yamlConfig(dir, "scripts:\n  block-clients:\n    settings: { extensions: ['102'] }\n");
    const served = serve(["--config", file, "--port", "0", "--no-watch"]);
    const address = await listening(served);
    expect(await post(address, "need_registration", missedCall)).toEqual({ state: "success", data: { result: false } });
    writeFileSync(file, `scriptsDir: ${dir}\nscripts:\n  block-clients:\n    settings: { extensions: [] }\n`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await post(address, "need_registration", missedCall)).toEqual({ state: "success", data: { result: false } });
    served.child.kill("SIGHUP");
    await waitFor(async () => (await post(address, "need_registration", missedCall)).data?.result === true, "SIGHUP to apply the config");
    expect((await scripts(address)).config.lastReload).toMatchObject({ ok: true, changed: ["scripts"] });
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });
});
