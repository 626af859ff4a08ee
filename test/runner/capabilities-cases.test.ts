import { spawn } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { binPath, callscript } from "../helpers/build.js";
import { ANSWERED, folder, lastLine, MISSED, PAYLOADS } from "./fixtures.js";

/**
 * Issue 15: cases give their scripts canned fetch answers and a starting KV, check the KV after,
 * and fail on a fetch they did not foresee; `--config` applies the config's grants as the server
 * does. Through `callscript test` as an admin runs it.
 */

const NR = "need_registration";
const CRM = "https://crm.example/rest/1/__callscript_secret_CRM_WEBHOOK__";

/** Registers a call only when the CRM knows the client; counts the calls it looked up in its kv. */
const LOOKUP = `import { defineScript } from "callscript";
export default defineScript({
  hooks: {
    async need_registration({ call_full }, ctx) {
      const looked = await ctx.kv.incr("lookups");
      try {
        const res = await ctx.fetch("${CRM}/crm.contact.list.json?filter[PHONE]=" + encodeURIComponent(call_full.channel.from.original));
        const { total } = res.json() as { total: number };
        await ctx.kv.set("last", { phone: call_full.channel.from.original, total });
        return { result: total > 0 };
      } catch (error) {
        const e = error as { code: string; message: string };
        ctx.log.warn(looked + " " + e.code + " " + e.message);
        return { result: true };
      }
    },
  },
});
`;
const answerFor = (phone: string, total: number) => ({
  url: `${CRM}/crm.contact.list.json?filter[PHONE]=${encodeURIComponent(phone)}`,
  status: 200,
  json: { result: [], total },
});

describe("cases with canned fetch answers and kv", () => {
  it("answer the script's fetches from the case, start its kv from the case and check it after; nothing reaches the network", () => {
    const dir = folder({
      "lookup.ts": LOOKUP,
      "lookup.cases.json": [
        {
          name: "known client",
          hook: NR,
          inputFile: MISSED,
          fetch: [answerFor("+79124567890", 1)],
          kv: { lookups: 41 },
          expect: { data: { result: true }, kv: { lookups: 42, last: { phone: "+79124567890", total: 1 } } },
        },
        {
          name: "unknown client",
          hook: NR,
          inputFile: ANSWERED,
          fetch: [answerFor("+79001234567", 0)],
          expect: { data: { result: false }, kv: { lookups: 1, last: { phone: "+79001234567", total: 0 } } },
        },
        {
          name: "kv not as expected",
          hook: NR,
          inputFile: ANSWERED,
          fetch: [answerFor("+79001234567", 0)],
          expect: { data: { result: false }, kv: { lookups: 7 } },
        },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.stdout).toMatch(/✓ known client/);
    expect(run.stdout).toMatch(/✓ unknown client/);
    const failure = run.stdout.slice(run.stdout.indexOf("✗ kv not as expected"));
    expect(failure).toContain("kv.lookups\n        expected  7\n        actual    1");
    expect(failure).toContain('kv.last\n        expected  (absent)\n        actual    {"phone":"+79001234567","total":0}');
    expect(lastLine(run.stdout)).toBe("2 passed, 1 failed");
    expect(run.status).toBe(1);
  });

  it("a fetch the case did not foresee fails it, naming the URL and what to add, even when the script catches the error; so does an answer no fetch used", () => {
    const dir = folder({
      "lookup.ts": LOOKUP,
      "lookup.cases.json": [
        { name: "no answer given", hook: NR, inputFile: MISSED, expect: { data: { result: true } } },
        { name: "an answer for another number", hook: NR, inputFile: MISSED, fetch: [answerFor("+70000000000", 1)], expect: { data: { result: true } } },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir, "--json"]);
    expect(run.status).toBe(1);
    const report = JSON.parse(run.stdout) as { files: Array<{ cases: Array<{ status: string; problems?: Array<{ path: string; message: string }> }> }> };
    const [none, other] = report.files[0]!.cases;
    const url = `${CRM}/crm.contact.list.json?filter[PHONE]=%2B79124567890`;
    expect(none).toMatchObject({ status: "failed" });
    expect(none!.problems).toEqual([
      {
        file: path.join(dir, "lookup.cases.json"),
        path: "cases[0].fetch",
        message: `GET ${url} was not foreseen by the case (nothing reaches the network in a case): add { "url": "${url}", "status": 200, "json": … } to its fetch list`,
      },
    ]);
    expect(other!.problems!.map((problem) => problem.path)).toEqual(["cases[1].fetch", "cases[1].fetch[0]"]);
    expect(other!.problems![1]!.message).toBe("no fetch of the script used this answer: remove it, or see why the script did not make that call");
    // The script's own log says what it saw: the refusal with its code.
    const text = callscript(["test", dir]);
    expect(text.stdout).toContain(`warn  1 CS_CAP_FETCH_NOT_FORESEEN fetch: GET ${url} was not foreseen by the case`);
  });

  it("with --config, the config's grants apply as on the server: an origin it does not allow, a secret it does not grant", () => {
    const dir = folder({
      "lookup.ts": LOOKUP,
      "lookup.cases.json": [{ name: "known client", hook: NR, inputFile: MISSED, fetch: [answerFor("+79124567890", 1)], expect: { data: { result: true } } }],
      ...PAYLOADS,
    });
    const config = (scripts: Record<string, unknown>) => {
      const file = path.join(folder({}), "callscript.json");
      writeFileSync(file, JSON.stringify({ scriptsDir: dir, scripts }));
      return file;
    };
    // Granted as the script needs: passes (the secret needs no value here: no fetch is sent).
    const granted = config({ lookup: { fetch: { allow: ["https://crm.example"] }, secrets: ["CRM_WEBHOOK"] } });
    expect(callscript(["test", dir, "--config", granted]).status).toBe(0);

    const elsewhere = callscript(["test", dir, "--config", config({ lookup: { fetch: { allow: ["https://other.example"] }, secrets: ["CRM_WEBHOOK"] } })]);
    expect(elsewhere.status).toBe(1);
    expect(elsewhere.stdout).toContain("CS_CAP_FETCH_NOT_ALLOWED fetch: https://crm.example is not allowed for lookup");
    expect(elsewhere.stdout).toContain("cases[0].fetch[0]: no fetch of the script used this answer");

    const noSecret = callscript(["test", dir, "--config", config({ lookup: { fetch: { allow: ["https://crm.example"] } } })]);
    expect(noSecret.status).toBe(1);
    expect(noSecret.stdout).toContain("CS_CAP_SECRET_NOT_GRANTED fetch: secret CRM_WEBHOOK is not granted to lookup: add it to scripts.lookup.secrets");

    const noFetch = callscript(["test", dir, "--config", config({})]);
    expect(noFetch.stdout).toContain("CS_CAP_FETCH_NO_GRANT fetch: this script has no fetch grant: add scripts.lookup.fetch.allow to the config");
  });

  it("a pipeline case keys kv by script name, and names a script that is not in the pipeline", () => {
    const counter = (key: string) => `import { defineScript } from "callscript";
export default defineScript({ hooks: { async need_registration(_input, { kv }) { await kv.incr("${key}"); return undefined; } } });
`;
    const dir = folder({
      "a-count.ts": counter("n"),
      "b-count.ts": counter("n"),
      "pipeline.cases.json": [
        {
          name: "each script its own kv",
          hook: NR,
          inputFile: MISSED,
          kv: { "a-count": { n: 10 } },
          expect: { data: { result: true }, kv: { "a-count": { n: 11 }, "b-count": { n: 1 } } },
        },
        { name: "a name that is not there", hook: NR, inputFile: MISSED, kv: { "c-count": { n: 1 } }, expect: { data: { result: true } } },
      ],
      ...PAYLOADS,
    });
    const run = callscript(["test", dir]);
    expect(run.stdout).toMatch(/✓ each script its own kv/);
    expect(run.stdout).toContain(
      "cases[1].kv.c-count: no script c-count in this pipeline (its scripts: a-count, b-count): a pipeline case's kv is keyed by script name",
    );
    expect(lastLine(run.stdout)).toBe("1 passed, 1 failed");
  });

  it("a shadow runs its script's cases under its script's name: the same kv and grants", () => {
    const shadow = LOOKUP.replace("return { result: total > 0 };", 'ctx.log.info("shadow"); return { result: total > 0 };');
    const dir = folder({
      "lookup.ts": LOOKUP,
      "lookup.shadow.ts": shadow,
      "lookup.cases.json": [
        {
          name: "known client",
          hook: NR,
          inputFile: MISSED,
          fetch: [answerFor("+79124567890", 1)],
          kv: { lookups: 1 },
          expect: { data: { result: true }, kv: { lookups: 2, last: { phone: "+79124567890", total: 1 } } },
        },
      ],
      ...PAYLOADS,
    });
    const config = path.join(folder({}), "callscript.json");
    writeFileSync(config, JSON.stringify({ scriptsDir: dir, scripts: { lookup: { fetch: { allow: ["https://crm.example"] }, secrets: ["CRM_WEBHOOK"] } } }));
    const run = callscript(["test", dir, "--config", config, "--json"]);
    const report = JSON.parse(run.stdout) as { files: Array<{ script: string; cases: Array<{ status: string }> }> };
    expect(report.files.map((file) => [file.script, file.cases[0]!.status])).toEqual([
      ["lookup", "passed"],
      ["lookup.shadow", "passed"],
    ]);
    expect(run.status).toBe(0);
  });
});

describe("run, simulate and replay", () => {
  it("run answers fetches with nothing (and says --live would), kv in memory; --live fetches for real under the config's grants", async () => {
    const { startCrmServer } = await import("../helpers/crm-server.js");
    const crm = await startCrmServer({
      webhookCode: "k3y5ecr3tc0de",
      contacts: [{ ID: "7", NAME: "Анна", ASSIGNED_BY_ID: "5", PHONE: [{ VALUE: "+79124567890" }] }],
    });
    try {
      const script = LOOKUP.replace(CRM, `${crm.origin}/rest/1/__callscript_secret_CRM_WEBHOOK__`);
      const dir = folder({ "lookup.ts": script, ...PAYLOADS });
      const input = path.join(dir, MISSED);
      const canned = callscript(["run", path.join(dir, "lookup.ts"), "--hook", NR, "--input", input]);
      expect(canned.status).toBe(0);
      expect(canned.stdout).toContain("CS_CAP_FETCH_NOT_FORESEEN");
      expect(canned.stdout).toContain(
        `fetch (canned)\n  GET ${crm.origin}/rest/1/__callscript_secret_CRM_WEBHOOK__/crm.contact.list.json?filter[PHONE]=%2B79124567890: not answered (run reaches no network; --live does)`,
      );
      expect(crm.requests).toHaveLength(0);

      const config = path.join(folder({}), "callscript.yaml");
      writeFileSync(
        config,
        `scriptsDir: ${dir}\nkv: { url: 'sqlite:run.sqlite' }\nscripts:\n  lookup:\n    fetch: { allow: ['${crm.origin}'] }\n    secrets: [CRM_WEBHOOK]\n`,
      );
      // A granted secret without a value: the config is wrong, as for serve.
      const unset = await spawnWithEnv(["run", path.join(dir, "lookup.ts"), "--hook", NR, "--input", input, "--config", config, "--live"], {});
      expect(unset.status).toBe(2);
      expect(unset.stderr).toContain("scripts.lookup.secrets.0: secret CRM_WEBHOOK has no value");

      const live = await spawnWithEnv(["run", path.join(dir, "lookup.ts"), "--hook", NR, "--input", input, "--config", config, "--live"], {
        CALLSCRIPT_SECRET_CRM_WEBHOOK: "k3y5ecr3tc0de",
      });
      expect(live.status, live.stdout + live.stderr).toBe(0);
      expect(live.stdout).toContain('"result": true');
      expect(live.stdout).toMatch(new RegExp(`fetch\\n  GET ${crm.origin.replace(/[.]/g, "\\.")}: 200 \\d+ ms`));
      expect(live.stdout).toContain("kv\n  kv.incr: ok\n  kv.set: ok");
      expect(live.stdout).not.toContain("k3y5ecr3tc0de");
      expect(crm.requests.map((request) => [request.method, request.authorized])).toEqual([["crm.contact.list", true]]);
      // The config's kv store, beside the config file (a second run uses it again).
      const again = await spawnWithEnv(["run", path.join(dir, "lookup.ts"), "--hook", NR, "--input", input, "--config", config, "--live"], {
        CALLSCRIPT_SECRET_CRM_WEBHOOK: "k3y5ecr3tc0de",
      });
      expect(again.status).toBe(0);
      const sqlite = path.join(path.dirname(config), "run.sqlite");
      expect(existsSync(sqlite)).toBe(true);
    } finally {
      await crm.close();
    }
  });

  it("simulate plays a call with no network and one kv for the whole call, and shows the fetches it did not answer", () => {
    const dir = folder({
      "lookup.ts": LOOKUP,
      "call.json": {
        name: "two rings",
        steps: [
          { hook: NR, input: JSON.parse(PAYLOADS[MISSED]) },
          { hook: NR, input: JSON.parse(PAYLOADS[MISSED]) },
        ],
      },
    });
    const run = callscript(["simulate", path.join(dir, "call.json"), "--scripts", dir]);
    expect(run.status).toBe(0);
    const url = `${CRM}/crm.contact.list.json?filter[PHONE]=%2B79124567890`;
    expect(run.stdout.split(`fetch GET ${url} not answered: a simulation reaches no network`)).toHaveLength(3);
    // The counter goes on from one step to the next.
    expect(run.stdout).toContain("warn  1 CS_CAP_FETCH_NOT_FORESEEN");
    expect(run.stdout).toContain("warn  2 CS_CAP_FETCH_NOT_FORESEEN");
  });
});

/**
 * `callscript ...args` with `env`, without blocking this process: the stand-in CRM it fetches from
 * runs here (spawnSync would hold its answers until the run timed out).
 */
function spawnWithEnv(args: string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: { ...process.env, NO_COLOR: "1", ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.once("error", reject);
    child.once("close", (status) => resolve({ status, stdout, stderr }));
  });
}
