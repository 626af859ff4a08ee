import { cpSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { scriptsFolder, writeConfigFile } from "../helpers/scripts.js";
import { drive, percentile, type Sample, type Target } from "../load/driver.js";
import { freePort, nginxAvailable, ready, startInstance, startNginx, type Instance, type Nginx } from "./cluster.js";

/**
 * Three instances behind deploy/nginx.conf (Debian's nginx, started here), load on several hooks,
 * one instance killed with SIGKILL and started again: every request gets an HTTP answer, every 200
 * is the answer a single instance gives, and every other answer is a clear refusal in callscript's
 * error shape. Bounded in time: 10 s of load.
 */
if (!nginxAvailable && process.env.CI) throw new Error("nginx is missing: .ci/run installs it (apt-get install nginx-light)");
if (!nginxAvailable) console.warn("test/deploy/cluster.test.ts skipped: /usr/sbin/nginx is missing (apt-get install nginx-light)");

const payload = (name: string) => Buffer.from(JSON.stringify(JSON.parse(readFileSync(path.join(packageRoot, "examples", "payloads", name), "utf8"))));
const HOOKS: { hook: string; file: string }[] = [
  { hook: "need_registration", file: "need_registration.incoming-answered.json" },
  { hook: "process_client_phone", file: "process_client_phone.incoming-8-format.json" },
  { hook: "process_final_params", file: "process_final_params.missed-trunk-3432723033.json" },
];

let nginx: Nginx | undefined;
afterEach(async () => {
  await nginx?.stop();
  nginx = undefined;
});

/** The examples, served by every instance from one folder, as a shared checkout would be. */
function examplesConfig(): string {
  const dir = scriptsFolder({});
  cpSync(path.join(packageRoot, "examples"), dir, { recursive: true, filter: (file) => !file.includes(`${path.sep}calls`) });
  const config = JSON.parse(readFileSync(path.join(packageRoot, "examples", "callscript.config.json"), "utf8")) as Record<string, unknown>;
  // The type gate has its own tests; here three instances starting at once would each load the compiler.
  return writeConfigFile({ ...config, scriptsDir: dir, typecheck: "off", watch: false });
}

async function answerOf(address: string, hook: string, body: Buffer): Promise<unknown> {
  const response = await fetch(`${address}/hooks/${hook}`, { method: "POST", headers: { "content-type": "application/json" }, body });
  expect(response.status).toBe(200);
  return response.json();
}

describe.skipIf(!nginxAvailable)("three instances behind nginx", () => {
  it("a SIGKILLed instance under load: every request answered or refused with a clear status, never a wrong answer; it serves again once restarted", async () => {
    const config = examplesConfig();
    const ports = [await freePort(), await freePort(), await freePort()];
    const instances: Instance[] = await Promise.all(ports.map((port) => startInstance(port, config)));
    nginx = await startNginx(ports);
    const expected = new Map<string, unknown>();
    for (const { hook, file } of HOOKS) expected.set(hook, await answerOf(instances[0]!.address, hook, payload(file)));

    const targets: Target[] = HOOKS.map(({ hook, file }) => ({ hook, body: payload(file), connections: 2 }));
    const loading = drive({ address: nginx.address, targets, durationMs: 10_000, requestTimeoutMs: 15_000 });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const victim = instances[1]!;
    const killedAt = performance.now();
    victim.served.child.kill("SIGKILL");
    await victim.served.exit;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const restarted = await startInstance(victim.port, config);
    const restartedAt = performance.now();
    expect(await ready(restarted.address)).toBe(true);
    const result = await loading;

    const statuses = new Map<number | string, number>();
    const wrong: string[] = [];
    for (const sample of result.samples) {
      const key = sample.status ?? `unanswered: ${sample.error}`;
      statuses.set(key, (statuses.get(key) ?? 0) + 1);
      if (sample.status === 200) {
        if (JSON.stringify(sample.body) !== JSON.stringify(expected.get(sample.hook))) wrong.push(`${sample.hook}: ${sample.text}`);
      } else if (sample.status !== undefined) {
        const body = sample.body as { statusCode?: number; code?: string; message?: string } | undefined;
        // nginx's own refusal (the instance died with the request) in callscript's error shape.
        if (sample.status !== 502 || body?.code !== "CS_ERR_NO_INSTANCE") wrong.push(`HTTP ${sample.status}: ${sample.text}`);
      }
    }
    const unanswered = result.samples.filter((sample: Sample) => sample.status === undefined);
    const refused = result.samples.filter((sample) => sample.status === 502);
    const afterRestart = restarted.served.lines.filter((line) => line.msg === "hook answered").length;
    console.log(
      `[cluster] ${JSON.stringify({
        sent: result.sent,
        statuses: Object.fromEntries(statuses),
        refusedAroundTheKill: refused.map((sample) => Math.round(sample.at - killedAt)),
        p99Ms: Math.round(percentile(result.samples.filter((s) => s.status === 200).map((s) => s.ms), 99)),
        answeredByTheRestartedInstance: afterRestart,
        restartedAfterMs: Math.round(restartedAt - killedAt),
      })}`,
    );
    expect(wrong).toEqual([]);
    expect(unanswered).toEqual([]);
    // Only requests the killed instance held when it died are refused: one per connection at most.
    expect(refused.length).toBeLessThanOrEqual(targets.reduce((sum, target) => sum + target.connections, 0));
    for (const sample of refused) expect(sample.at).toBeLessThan(restartedAt);
    // nginx's passive health check lets the restarted instance back in (fail_timeout 5 s).
    expect(afterRestart).toBeGreaterThan(0);
    await Promise.all([...instances.filter((instance) => instance !== victim), restarted].map(async (instance) => {
      instance.served.child.kill("SIGTERM");
      expect((await instance.served.exit).code).toBe(0);
    }));
  }, 60_000);
});
