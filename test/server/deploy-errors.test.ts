import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { brokenScript, scriptsFolder, writeConfigFile } from "../helpers/scripts.js";
import { LEVEL, sample } from "./helpers.js";
import { listening, serve } from "./serve-process.js";
import { waitFor } from "../helpers/wait.js";

/**
 * Issue 13, through a real `callscript serve` as an admin meets it: a script that does not compile
 * at start, or that has type errors against the SDK, is an error the connector, /readyz, /scripts,
 * the log and the metrics all show; never a pipeline that quietly runs without it.
 */

const missedCall = readFileSync(path.join(packageRoot, "examples", "payloads", "need_registration.incoming-missed.json"), "utf8");
const clientPhone = readFileSync(path.join(packageRoot, "examples", "payloads", "process_client_phone.incoming-8-format.json"), "utf8");

const phone = `import { defineScript } from "callscript";
export default defineScript({ hooks: { process_client_phone({ phone }) { return { phone: "+" + phone }; } } });
`;
const veto = `import { defineScript } from "callscript";
export default defineScript({ hooks: { need_registration({ call_full }) { return call_full.channel.to.base === "102" ? { result: false } : undefined; } } });
`;
/** A syntax error on line 3: esbuild refuses it. */
const { broken, fixed } = brokenScript("need_registration", "return { result: false };");
const registration = (userId: number, channel = "channel") => `import { defineScript } from "callscript";
export default defineScript({
  hooks: {
    process_registration_params({ call_full }) {
      return { USER_ID: ${userId}, SHOW: call_full.${channel}.type === "incoming" ? 1 : 0 };
    },
  },
});
`;
const registrationInput = () => JSON.stringify({ ...JSON.parse(missedCall), USER_ID: 0 });

async function post(address: string, hook: string, body: string) {
  const response = await fetch(`${address}/hooks/${hook}`, { method: "POST", body, headers: { "content-type": "application/json" } });
  return { status: response.status, body: (await response.json()) as Record<string, any> };
}
const json = async (address: string, route: string) => {
  const response = await fetch(`${address}${route}`);
  return { status: response.status, body: (await response.json()) as Record<string, any> };
};
const scriptState = async (address: string, name: string) => ((await json(address, "/scripts")).body.scripts as any[]).find((state) => state.name === name);

describe("startup equals reload", () => {
  it("a script that does not compile at start: failed, its hook answers the compile error, /readyz 503 naming it, until it is fixed", async () => {
    const dir = scriptsFolder({ "phone.ts": phone, "veto.ts": veto, "broken.ts": broken });
    const served = serve(["--scripts", dir, "--port", "0"]);
    const address = await listening(served);

    const ready = await json(address, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({
      code: "CS_ERR_NOT_READY",
      message: "Not ready: 1 enabled script has no version to serve: broken (GET /scripts says why)",
      issues: [{ path: "broken.ts", message: expect.stringMatching(/^compile: broken\.ts:\d+:\d+: /) }],
    });

    const answer = await post(address, "need_registration", missedCall);
    expect(answer.status).toBe(200);
    expect(answer.body.state).toBe("error");
    expect(answer.body.error).toMatchObject({
      reason: "compile",
      script: "broken",
      location: { file: "broken.ts", line: expect.any(Number), column: expect.any(Number) },
    });
    expect(answer.body.error.message).toContain("broken has no version to serve: it failed to compile: broken.ts:");
    // The other hooks are not affected.
    expect((await post(address, "process_client_phone", clientPhone)).body).toEqual({ state: "success", data: { phone: "+89001234567" } });

    expect(await scriptState(address, "broken")).toMatchObject({
      state: "failed",
      version: null,
      hooks: ["need_registration"],
      lastError: { stage: "compile" },
    });

    // The probes above are answers, not errors: no error line for them in the log.
    expect(served.lines.filter((line) => line.level >= LEVEL.error && String(line.url ?? "").startsWith("/readyz"))).toEqual([]);
    // Lines reach stdout in batches (log-destination.ts): waited for, not looked up.
    expect(
      await served.line((line) => line.msg.startsWith("script failed to compile; need_registration answers this error"), "the compile failure's line"),
    ).toMatchObject({
      level: LEVEL.error,
      script: "broken",
    });

    writeFileSync(path.join(dir, "broken.ts"), fixed);
    await waitFor(async () => (await json(address, "/readyz")).status === 200, "/readyz 200 once broken.ts is fixed");
    expect((await post(address, "need_registration", missedCall)).body).toEqual({ state: "success", data: { result: false } });
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });

  it("with failurePolicy skip, the others run and the answer names the script skipped", async () => {
    const dir = scriptsFolder({ "veto.ts": veto, "broken.ts": broken });
    const config = writeConfigFile({ scriptsDir: dir, hooks: { need_registration: { failurePolicy: "skip" } } });
    const served = serve(["--config", config, "--port", "0", "--no-watch"]);
    const address = await listening(served);
    const answer = await post(address, "need_registration", missedCall);
    expect(answer.body).toEqual({
      state: "success",
      data: { result: false },
      skipped: [
        {
          reason: "compile",
          script: "broken",
          message: expect.stringContaining("broken has no version to serve"),
          location: { file: "broken.ts", line: expect.any(Number), column: expect.any(Number) },
        },
      ],
    });
    const line = await served.line((entry) => entry.msg === "hook answered" && entry.hook === "need_registration", "the hook's log line");
    expect(line).toMatchObject({ outcome: "success", skipped: [{ script: "broken", reason: "compile" }] });
    served.child.kill("SIGTERM");
    await served.exit;
  });
});

describe("type errors gate a deploy (typecheck: block, the default)", () => {
  it("at start a script with a type error is failed; a save with one stays stale, the working version answers, and it shows in the log, /scripts and the metrics", async () => {
    const dir = scriptsFolder({
      "reg.ts": registration(1),
      "typo.ts": registration(9, "chanel").replace(/process_registration_params/g, "process_final_params"),
    });
    const served = serve(["--scripts", dir, "--port", "0"]);
    const address = await listening(served);

    // Start: typo.ts never served; its hook answers the type error.
    expect(await scriptState(address, "typo")).toMatchObject({
      state: "failed",
      hooks: ["process_final_params"],
      lastError: {
        stage: "typecheck",
        location: { file: "typo.ts", line: 5, column: 44 },
        errors: [
          { file: "typo.ts", line: 5, column: 44, code: "TS2551", message: "Property 'chanel' does not exist on type 'CallFull'. Did you mean 'channel'?" },
        ],
      },
    });
    const final = await post(address, "process_final_params", JSON.stringify({ ...JSON.parse(missedCall), CALL_ID: "c" }));
    expect(final.body.error).toMatchObject({ reason: "compile", script: "typo", location: { file: "typo.ts", line: 5, column: 44 } });
    expect((await json(address, "/readyz")).status).toBe(503);

    // A save with a type error keeps the working version.
    expect((await post(address, "process_registration_params", registrationInput())).body.data).toMatchObject({ USER_ID: 1, SHOW: 1 });
    const working = (await scriptState(address, "reg")).version;
    writeFileSync(path.join(dir, "reg.ts"), registration(2, "chanel"));
    await waitFor(async () => (await scriptState(address, "reg")).state === "stale", "reg to be stale");
    const stale = await scriptState(address, "reg");
    expect(stale).toMatchObject({ version: working, lastError: { stage: "typecheck", errors: [{ file: "reg.ts", line: 5, column: 44, code: "TS2551" }] } });
    expect(stale.lastError.message).toBe(
      "a type error against the SDK (typecheck: block): reg.ts:5:44 TS2551 Property 'chanel' does not exist on type 'CallFull'. Did you mean 'channel'?",
    );
    expect((await post(address, "process_registration_params", registrationInput())).body.data).toMatchObject({ USER_ID: 1 });
    const logged = await served.line((line) => line.script === "reg" && line.stage === "typecheck", "the type error's line");
    expect(logged).toMatchObject({ level: LEVEL.error, location: { file: "reg.ts", line: 5, column: 44 } });
    expect(String(logged!.msg)).toContain(`version ${working} keeps serving`);
    const metrics = await (await fetch(`${address}/metrics`)).text();
    expect(sample(metrics, "callscript_script_load_failures_total", { script: "reg", stage: "typecheck" })).toBe(1);
    expect(sample(metrics, "callscript_script_type_errors", { script: "reg" })).toBe(1);

    // Fixed: the new version answers, and the gauge says 0.
    writeFileSync(path.join(dir, "reg.ts"), registration(3));
    await waitFor(
      async () => (await post(address, "process_registration_params", registrationInput())).body.data?.USER_ID === 3,
      "the fixed version to answer",
    );
    expect(await scriptState(address, "reg")).toMatchObject({ state: "active", lastError: null });
    expect(sample(await (await fetch(`${address}/metrics`)).text(), "callscript_script_type_errors", { script: "reg" })).toBe(0);
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });

  it("typecheck: warn serves the version and reports its type errors; off does not check", async () => {
    const dir = scriptsFolder({ "reg.ts": registration(2, "chanel") });
    const warn = serve(["--config", writeConfigFile({ scriptsDir: dir, typecheck: "warn" }), "--port", "0", "--no-watch"]);
    const address = await listening(warn);
    const state = await scriptState(address, "reg");
    expect(state).toMatchObject({ state: "active", lastError: null });
    expect(state.warnings).toEqual(["type error: reg.ts:5:44 TS2551 Property 'chanel' does not exist on type 'CallFull'. Did you mean 'channel'?"]);
    expect((await warn.line((line) => line.level === LEVEL.warn && line.script === "reg", "the type error's warning")).msg).toContain(
      "type error (typecheck: warn, so this version serves)",
    );
    // It runs as written: the typo is a TypeError at run time, an error answer, not a quiet change.
    expect((await post(address, "process_registration_params", registrationInput())).body.error).toMatchObject({ reason: "exception", script: "reg" });
    warn.child.kill("SIGTERM");
    await warn.exit;

    const off = serve(["--config", writeConfigFile({ scriptsDir: dir, typecheck: "off" }), "--port", "0", "--no-watch"]);
    const offAddress = await listening(off);
    expect(await scriptState(offAddress, "reg")).toMatchObject({ state: "active", warnings: [] });
    expect(sample(await (await fetch(`${offAddress}/metrics`)).text(), "callscript_script_type_errors", { script: "reg" })).toBeUndefined();
    off.child.kill("SIGTERM");
    await off.exit;
  });

  it("a global the sandbox lacks is refused with what it offers instead, from the type check and at run time", async () => {
    const fetching = `import { defineScript } from "callscript";
export default defineScript({ hooks: { process_client_phone({ phone }) { void fetch("https://crm.example/" + phone); return undefined; } } });
`;
    const dir = scriptsFolder({ "lookup.ts": fetching });
    const blocked = serve(["--scripts", dir, "--port", "0", "--no-watch"]);
    const address = await listening(blocked);
    const state = await scriptState(address, "lookup");
    expect(state.lastError.errors[0]).toMatchObject({
      code: "TS2304",
      message:
        "Cannot find name 'fetch': the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config.",
    });
    blocked.child.kill("SIGTERM");
    await blocked.exit;

    const off = serve(["--config", writeConfigFile({ scriptsDir: dir, typecheck: "off" }), "--port", "0", "--no-watch"]);
    const offAddress = await listening(off);
    const answer = await post(offAddress, "process_client_phone", clientPhone);
    expect(answer.body.error).toMatchObject({ reason: "exception", script: "lookup" });
    expect(answer.body.error.message).toBe(
      "ReferenceError: fetch is not defined (fetch: the sandbox has no network of its own; what a script may reach is granted to it by the host, per script, in the server's config)",
    );
    off.child.kill("SIGTERM");
    await off.exit;
  });
});
