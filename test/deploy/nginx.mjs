// Debian's nginx running deploy/nginx.conf in front of callscript instances on loopback: used by
// test/deploy/cluster.ts (the cluster tests) and bench/cluster.mjs (throughput of 1, 2, 3
// instances). Plain JavaScript so that the benchmark, which runs without a TypeScript loader, can
// import it; types in nginx.d.mts. Only the instance and listen lines of the file are rewritten;
// every other directive (retries, keepalive, body size, error page) is the one that ships.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export const NGINX = "/usr/sbin/nginx";
export const nginxAvailable = existsSync(NGINX);

/** A loopback port nothing listens on now. */
export async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(() => resolve()));
  return port;
}

/** deploy/nginx.conf with its upstream servers and listen line pointed at loopback ports; one worker unless `workers` says (a number, or "auto" as shipped). */
export function nginxConfFor(instancePorts, listenPort, { workers = 1 } = {}) {
  const conf = readFileSync(path.join(packageRoot, "deploy", "nginx.conf"), "utf8");
  const instances = /( *)# INSTANCES BEGIN\n[\s\S]*?# INSTANCES END\n/;
  if (!instances.test(conf) || !/# LISTEN\n\s*listen \d+;/.test(conf)) throw new Error("deploy/nginx.conf lost its INSTANCES or LISTEN markers");
  return conf
    .replace(instances, (_all, indent) => instancePorts.map((port) => `${indent}server 127.0.0.1:${port} max_fails=2 fail_timeout=5s;\n`).join(""))
    .replace(/# LISTEN\n(\s*)listen \d+;/, (_all, indent) => `# LISTEN\n${indent}listen 127.0.0.1:${listenPort};`)
    .replace(/worker_processes auto;/, `worker_processes ${workers};`);
}

function connects(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** nginx in the foreground with its own prefix (pid, logs, temp files) in a fresh folder. */
export async function startNginx(instancePorts, options = {}) {
  const prefix = mkdtempSync(path.join(tmpdir(), "callscript-nginx-"));
  mkdirSync(path.join(prefix, "logs"));
  const port = await freePort();
  const conf = path.join(prefix, "nginx.conf");
  writeFileSync(conf, nginxConfFor(instancePorts, port, options));
  const globals = `pid ${prefix}/nginx.pid; error_log ${prefix}/logs/error.log;`;
  const checked = spawnSync(NGINX, ["-t", "-p", prefix, "-c", conf, "-g", globals], { encoding: "utf8" });
  if (checked.status !== 0) throw new Error(`nginx -t refused the config: ${checked.stderr}`);
  const child = spawn(NGINX, ["-p", prefix, "-c", conf, "-g", `daemon off; ${globals}`], { stdio: "ignore" });
  for (let i = 0; i < 200; i++) {
    if (await connects(port)) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    address: `http://127.0.0.1:${port}`,
    pids() {
      const workers = spawnSync("pgrep", ["-P", String(child.pid)], { encoding: "utf8" })
        .stdout.split("\n")
        .filter(Boolean)
        .map(Number);
      return [child.pid, ...workers];
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGQUIT");
        await exited;
      }
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** CPU time (user + system, all threads) a process has used so far, in ms, from /proc/<pid>/stat. */
export function cpuMsOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/** USER_HZ (100 on every Linux this runs on), asked once. */
const CLOCK_TICKS = (() => {
  const value = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout?.trim());
  return Number.isFinite(value) && value > 0 ? value : 100;
})();
