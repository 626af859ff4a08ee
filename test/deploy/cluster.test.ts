import { cpSync, readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { scriptsFolder, writeConfigFile } from "../helpers/scripts.js";
import { redisAvailable, startRedisServer, type RedisServer } from "../helpers/redis-server.js";
import { scriptsRepo } from "../helpers/scripts-git.js";
import { drive, percentile, type Sample, type Target } from "../load/driver.js";
import { freePort, nginxAvailable, ready, startInstance, startNginx, versionsOf, type Instance, type Nginx } from "./cluster.js";

/**
 * Three instances behind deploy/nginx.conf (Debian's nginx, started here), load on several hooks,
 * one instance killed with SIGKILL and started again: every request gets an HTTP answer, every 200
 * is the answer a single instance gives, and every other answer is a clear refusal in callscript's
 * error shape. Bounded in time: the load stops once the restarted instance has answered, at most
 * 60 s.
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
    // The load runs until the restarted instance has answered for a while (nginx lets it back in
    // up to fail_timeout, 5 s, after its last failure, and a restart on a busy box takes seconds),
    // at most 60 s: no fixed duration that a slow machine could outlast.
    const stop = new AbortController();
    const loading = drive({ address: nginx.address, targets, durationMs: 60_000, requestTimeoutMs: 15_000, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    const victim = instances[1]!;
    const killedAt = performance.now();
    victim.served.child.kill("SIGKILL");
    await victim.served.exit;
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const restarted = await startInstance(victim.port, config);
    const restartedAt = performance.now();
    expect(await ready(restarted.address)).toBe(true);
    const answersOfRestarted = () => restarted.served.lines.filter((line) => line.msg === "hook answered").length;
    while (answersOfRestarted() < 20 && performance.now() - restartedAt < 45_000) await new Promise((resolve) => setTimeout(resolve, 100));
    stop.abort();
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
    const afterRestart = answersOfRestarted();
    console.log(
      `[cluster] ${JSON.stringify({
        sent: result.sent,
        statuses: Object.fromEntries(statuses),
        refusedAroundTheKill: refused.map((sample) => Math.round(sample.at - killedAt)),
        p99Ms: Math.round(
          percentile(
            result.samples.filter((s) => s.status === 200).map((s) => s.ms),
            99,
          ),
        ),
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
    await Promise.all(
      [...instances.filter((instance) => instance !== victim), restarted].map(async (instance) => {
        instance.served.child.kill("SIGTERM");
        expect((await instance.served.exit).code).toBe(0);
      }),
    );
  }, 120_000);
});

/**
 * Scripts of a rollout: on process_registration_params s1..s3 (r3 replaces s3 with s4), on
 * process_final_params t1, t2; each answers its own field (S1, T2…) with its release's marker, s1
 * and t1 through a helper. An answer whose fields are not all of one release ran a mix.
 */
const ROLLOUT_HOOKS = [
  { hook: "process_registration_params", file: "process_registration_params.incoming.json", prefix: "S" },
  { hook: "process_final_params", file: "process_final_params.missed-trunk-3432723033.json", prefix: "T" },
] as const;
const ROLLOUT = [
  { name: "r1", scripts: ["s1", "s2", "s3", "t1", "t2"] },
  { name: "r2", scripts: ["s1", "s2", "s3", "t1", "t2"] },
  { name: "r3", scripts: ["s1", "s2", "s4", "t1", "t2"] },
];

function rolloutScript(name: string, release: string): string {
  const hook = name.startsWith("s") ? ROLLOUT_HOOKS[0].hook : ROLLOUT_HOOKS[1].hook;
  const viaHelper = name === "s1" || name === "t1";
  return `import { defineScript } from "callscript";
${viaHelper ? `import { RELEASE } from "./lib/release";` : ""}
export default defineScript({
  hooks: { ${hook}() { return { ${name.toUpperCase()}: ${viaHelper ? "RELEASE" : JSON.stringify(release)} }; } },
});
`;
}

/** The commit that turns release `from` (or nothing) into `to`. */
function rolloutFiles(to: (typeof ROLLOUT)[number], from?: (typeof ROLLOUT)[number]): Record<string, string | null> {
  const files: Record<string, string | null> = { "lib/release.ts": `export const RELEASE = ${JSON.stringify(to.name)};\n` };
  for (const name of to.scripts) files[`${name}.ts`] = rolloutScript(name, to.name);
  for (const name of from?.scripts ?? []) if (!to.scripts.includes(name)) files[`${name}.ts`] = null;
  return files;
}

/** The release a 200 answer is wholly of, or what is wrong with it. */
function rolloutReleaseOf(sample: Sample): string {
  if (sample.status !== 200) return `HTTP ${sample.status ?? sample.error}: ${sample.text}`;
  const prefix = ROLLOUT_HOOKS.find((target) => target.hook === sample.hook)!.prefix;
  const body = sample.body as { state?: string; data?: Record<string, unknown> };
  if (body.state !== "success") return `error answer: ${sample.text}`;
  const fields = Object.fromEntries(Object.entries(body.data ?? {}).filter(([key]) => new RegExp(`^${prefix}\\d$`).test(key)));
  const whole = ROLLOUT.find((release) => {
    const want = release.scripts.filter((name) => name.toUpperCase().startsWith(prefix)).map((name) => [name.toUpperCase(), release.name]);
    return JSON.stringify(fields) === JSON.stringify(Object.fromEntries(want));
  });
  return whole ? whole.name : `mixed: ${JSON.stringify(fields)}`;
}

describe.skipIf(!nginxAvailable)("a rollout across three instances behind nginx", () => {
  it("the pull script flips the shared link under load: every answer is of one release, and every instance's /scripts shows the new versions within 15 s", async () => {
    const repo = await scriptsRepo(rolloutFiles(ROLLOUT[0]!) as Record<string, string>);
    // One host, one checkout shared by the three instances (as the timer keeps it); each watches it.
    const config = writeConfigFile({ scriptsDir: repo.scriptsDir, typecheck: "off", watch: true });
    const ports = [await freePort(), await freePort(), await freePort()];
    const instances: Instance[] = await Promise.all(ports.map((port) => startInstance(port, config)));
    nginx = await startNginx(ports);
    for (const instance of instances) expect(await ready(instance.address)).toBe(true);

    const targets: Target[] = ROLLOUT_HOOKS.map(({ hook, file }) => ({ hook, body: payload(file), connections: 2 }));
    const stop = new AbortController();
    const loading = drive({ address: nginx.address, targets, durationMs: 120_000, requestTimeoutMs: 15_000, signal: stop.signal });
    await new Promise((resolve) => setTimeout(resolve, 1_000));

    const rollouts: { release: string; instancesMs: number[] }[] = [];
    /** When every instance showed the last release. */
    let allShownAt = 0;
    for (let i = 1; i < ROLLOUT.length; i++) {
      const [from, to] = [ROLLOUT[i - 1]!, ROLLOUT[i]!];
      const before = await Promise.all(instances.map((instance) => versionsOf(instance.address)));
      repo.commit(rolloutFiles(to, from), to.name);
      await repo.pull();
      const flippedAt = performance.now();
      // Each instance: its /scripts lists the new release's scripts, every one at a new version.
      const instancesMs = await Promise.all(
        instances.map(async (instance, n) => {
          for (;;) {
            const now = await versionsOf(instance.address);
            const names = Object.keys(now).sort();
            if (JSON.stringify(names) === JSON.stringify([...to.scripts].sort()) && names.every((name) => now[name] && now[name] !== before[n]![name])) {
              return performance.now() - flippedAt;
            }
            if (performance.now() - flippedAt > 30_000) throw new Error(`instance ${instance.address} still shows ${JSON.stringify(now)}`);
            await new Promise((resolve) => setTimeout(resolve, 20));
          }
        }),
      );
      rollouts.push({ release: to.name, instancesMs: instancesMs.map(Math.round) });
      allShownAt = performance.now();
      const after = await Promise.all(instances.map((instance) => versionsOf(instance.address)));
      // The same versions everywhere: one checkout, compiled the same way by each instance.
      expect(after[1]).toEqual(after[0]);
      expect(after[2]).toEqual(after[0]);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    stop.abort();
    const result = await loading;

    const byRelease = new Map<string, number>();
    for (const sample of result.samples) {
      const release = rolloutReleaseOf(sample);
      byRelease.set(release, (byRelease.get(release) ?? 0) + 1);
    }
    console.log(`[cluster rollout] ${JSON.stringify({ sent: result.sent, answers: Object.fromEntries(byRelease), rollouts })}`);
    expect([...byRelease.keys()].filter((release) => !/^r\d$/.test(release))).toEqual([]);
    // Requests that started once every instance showed the last release were answered by it.
    const late = result.samples.filter((sample) => sample.at > allShownAt);
    expect(late.length).toBeGreaterThan(0);
    expect(late.filter((sample) => rolloutReleaseOf(sample) !== ROLLOUT.at(-1)!.name)).toEqual([]);
    for (const rollout of rollouts) for (const ms of rollout.instancesMs) expect(ms).toBeLessThan(15_000);
    await Promise.all(
      instances.map(async (instance) => {
        instance.served.child.kill("SIGTERM");
        expect((await instance.served.exit).code).toBe(0);
      }),
    );
  }, 120_000);
});

const withRedis = nginxAvailable && redisAvailable("test/deploy/cluster.test.ts (a kv counter through three instances)");

describe.skipIf(!withRedis)("kv on Redis shared by three instances behind nginx", () => {
  let redis: RedisServer | undefined;
  afterEach(async () => {
    await redis?.stop();
    redis = undefined;
  });

  it("a counter incremented on every call through all three instances gives unique consecutive numbers", async () => {
    redis = await startRedisServer();
    const dir = scriptsFolder({
      "counter.ts": `import { defineScript } from "callscript";
export default defineScript({
  hooks: {
    async process_final_params(_input, { kv }) {
      return { N: await kv.incr("n") };
    },
  },
});
`,
    });
    const config = writeConfigFile({ scriptsDir: dir, typecheck: "off", watch: false, kv: { url: redis.url } });
    const ports = [await freePort(), await freePort(), await freePort()];
    const instances: Instance[] = await Promise.all(ports.map((port) => startInstance(port, config)));
    nginx = await startNginx(ports);
    const hook = "process_final_params";
    const result = await drive({
      address: nginx.address,
      targets: [{ hook, body: payload("process_final_params.missed-trunk-3432723033.json"), connections: 6 }],
      durationMs: 5_000,
      requestTimeoutMs: 15_000,
    });

    const numbers: number[] = [];
    const wrong: string[] = [];
    for (const sample of result.samples) {
      const body = sample.body as { state?: string; data?: { N?: unknown } } | undefined;
      if (sample.status === 200 && body?.state === "success" && Number.isInteger(body.data?.N)) numbers.push(body.data!.N as number);
      else wrong.push(`HTTP ${sample.status ?? sample.error}: ${sample.text}`);
    }
    const byInstance = instances.map((instance) => instance.served.lines.filter((line) => line.msg === "hook answered").length);
    console.log(`[cluster kv] ${JSON.stringify({ answers: numbers.length, byInstance, max: Math.max(...numbers) })}`);
    expect(wrong).toEqual([]);
    expect(numbers.length).toBeGreaterThan(0);
    // Every number once, none missing: 1, 2, …, the number of calls.
    expect([...numbers].sort((a, b) => a - b)).toEqual(numbers.map((_n, i) => i + 1));
    // All three instances took part (nginx spreads a closed loop of 6 connections over them).
    for (const count of byInstance) expect(count).toBeGreaterThan(0);
    await Promise.all(
      instances.map(async (instance) => {
        instance.served.child.kill("SIGTERM");
        expect((await instance.served.exit).code).toBe(0);
      }),
    );
  }, 60_000);
});
