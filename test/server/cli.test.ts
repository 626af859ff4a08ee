import { existsSync, writeFileSync } from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { busy, script, scriptsFolder } from "../helpers/scripts.js";
import { bearer, recordInput } from "./helpers.js";
import { listening, serve } from "./serve-process.js";
import { waitFor } from "../helpers/wait.js";

/** `callscript serve` as the connector's host runs it: the built CLI in its own process. */
beforeAll(async () => {
  expect(existsSync(path.join(packageRoot, "dist", "runtime", "cli", "serve.js"))).toBe(true);
}, 120_000);

const recordings = script("process_record_file_path", `return { path: "/v1" + input.path };`);

describe("callscript serve", () => {
  it("refuses to listen beyond loopback without a token (exit 2), and starts with CALLSCRIPT_TOKEN", async () => {
    const dir = scriptsFolder({ "recordings.ts": recordings });
    const refused = serve(["--scripts", dir, "--host", "0.0.0.0", "--port", "0"]);
    expect(await refused.exit).toEqual({ code: 2, signal: null });
    expect(refused.stderr()).toContain('callscript: Refusing to listen on "0.0.0.0" without a token');
    expect(refused.stderr()).toContain("CALLSCRIPT_TOKEN");
    expect(refused.lines).toEqual([]);

    const token = "token-from-the-environment-42";
    const served = serve(["--scripts", dir, "--host", "0.0.0.0", "--port", "0", "--no-watch"], { CALLSCRIPT_TOKEN: token });
    const address = (await listening(served)).replace("0.0.0.0", "127.0.0.1");
    expect((await fetch(`${address}/healthz`)).status).toBe(200);
    const body = JSON.stringify(recordInput("/a.wav"));
    expect((await fetch(`${address}/hooks/process_record_file_path`, { method: "POST", body })).status).toBe(401);
    const ok = await fetch(`${address}/hooks/process_record_file_path`, { method: "POST", body, headers: bearer(token) });
    expect(await ok.json()).toEqual({ state: "success", data: { path: "/v1/a.wav" } });
    served.child.kill("SIGTERM");
    expect(await served.exit).toEqual({ code: 0, signal: null });
  });

  it("config errors: a file that does not parse, a field that is wrong (exit 2, naming it)", async () => {
    const dir = scriptsFolder({
      "bad.yaml": "port: 8787\nhooks:\n  need_registration: { failurePolicy: skip\n",
      "wrong.json": JSON.stringify({ port: 8787, logLevel: "loud", hooks: { need_registration: { failurePolicy: "ignore" } } }),
    });
    const yaml = serve(["--config", path.join(dir, "bad.yaml"), "--scripts", dir]);
    expect((await yaml.exit).code).toBe(2);
    expect(yaml.stderr()).toMatch(/^callscript: Invalid configuration in .*bad\.yaml: is not valid YAML/);

    const wrong = serve(["--config", path.join(dir, "wrong.json"), "--scripts", dir]);
    expect((await wrong.exit).code).toBe(2);
    expect(wrong.stderr()).toContain("logLevel: ");
    expect(wrong.stderr()).toContain("hooks.need_registration.failurePolicy: ");

    const port = serve(["--scripts", dir, "--port", "eighty"]);
    expect((await port.exit).code).toBe(2);
    expect(port.stderr()).toContain("port: ");

    const missing = serve(["--scripts", path.join(dir, "no-such-folder")]);
    expect((await missing.exit).code).toBe(2);
    expect(missing.stderr()).toContain("no-such-folder does not exist");
  });

  it("SIGTERM with a request in flight: the request gets its answer, then the process exits 0", async () => {
    const dir = scriptsFolder({
      "slow.ts": script("process_record_file_path", `${busy(1500)} return { path: "/done" + input.path };`, "limits: { timeoutMs: 5000 },"),
    });
    const served = serve(["--scripts", dir, "--port", "0", "--no-watch"]);
    const address = await listening(served);
    const inFlight = fetch(`${address}/hooks/process_record_file_path`, { method: "POST", body: JSON.stringify(recordInput("/x.wav")) }).then(async (res) => ({
      status: res.status,
      body: await res.json(),
    }));
    await waitFor(async () => {
      const scripts = (await (await fetch(`${address}/scripts`)).json()) as { scripts: { queueDepth: number }[] };
      return scripts.scripts[0]?.queueDepth === 1;
    }, "the slow request to be running");
    served.child.kill("SIGTERM");
    expect(await inFlight).toEqual({ status: 200, body: { state: "success", data: { path: "/done/x.wav" } } });
    expect(await served.exit).toEqual({ code: 0, signal: null });
    const messages = served.lines.map((line) => line.msg);
    const shutting = messages.indexOf("shutting down: finishing the requests in flight");
    expect(shutting).toBeGreaterThan(-1);
    expect(messages.indexOf("hook answered", shutting)).toBeGreaterThan(shutting);
    expect(messages.indexOf("stopped", shutting)).toBeGreaterThan(messages.indexOf("hook answered", shutting));
  });

  it("SIGHUP reloads every script without a watcher", async () => {
    const dir = scriptsFolder({ "recordings.ts": recordings });
    const served = serve(["--scripts", dir, "--port", "0", "--no-watch"]);
    const address = await listening(served);
    const call = async () =>
      (
        (await (await fetch(`${address}/hooks/process_record_file_path`, { method: "POST", body: JSON.stringify(recordInput("/h.wav")) })).json()) as {
          data: { path: string };
        }
      ).data.path;
    expect(await call()).toBe("/v1/h.wav");
    expect(served.lines.find((line) => line.msg === "watching scripts for changes")).toBeUndefined();
    writeFileSync(path.join(dir, "recordings.ts"), recordings.replace("/v1", "/v2"));
    expect(await call()).toBe("/v1/h.wav");
    served.child.kill("SIGHUP");
    await served.line((line) => typeof line.msg === "string" && line.msg.startsWith("reloaded: 1 loaded"), "the reload");
    expect(await call()).toBe("/v2/h.wav");
    served.child.kill("SIGINT");
    expect(await served.exit).toEqual({ code: 0, signal: null });
  });
});
