import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { packageRoot } from "../../runtime/paths.js";
import { listening, serve, type Served } from "../server/serve-process.js";

/**
 * Several `callscript serve` instances behind Debian's nginx running deploy/nginx.conf, all on
 * loopback: what test/deploy/cluster.test.ts and bench/cluster.mjs start. Only the instance and
 * listen lines of the file are rewritten; every other directive (retries, keepalive, body size,
 * error page) is the one that ships.
 */

export const NGINX = "/usr/sbin/nginx";
export const nginxAvailable = existsSync(NGINX);

/** A loopback port nothing listens on now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** deploy/nginx.conf with its upstream servers and listen line pointed at loopback ports. */
export function nginxConfFor(instancePorts: readonly number[], listenPort: number): string {
  const conf = readFileSync(path.join(packageRoot, "deploy", "nginx.conf"), "utf8");
  const instances = /( *)# INSTANCES BEGIN\n[\s\S]*?# INSTANCES END\n/;
  if (!instances.test(conf) || !/# LISTEN\n\s*listen \d+;/.test(conf)) throw new Error("deploy/nginx.conf lost its INSTANCES or LISTEN markers");
  return conf
    .replace(instances, (_all, indent: string) => instancePorts.map((port) => `${indent}server 127.0.0.1:${port} max_fails=2 fail_timeout=5s;\n`).join(""))
    .replace(/# LISTEN\n(\s*)listen \d+;/, (_all, indent: string) => `# LISTEN\n${indent}listen 127.0.0.1:${listenPort};`)
    .replace(/worker_processes auto;/, "worker_processes 1;");
}

export interface Nginx {
  address: string;
  stop(): Promise<void>;
}

/** nginx in the foreground with its own prefix (pid, logs, temp files) in a fresh folder. */
export async function startNginx(instancePorts: readonly number[]): Promise<Nginx> {
  const prefix = mkdtempSync(path.join(tmpdir(), "callscript-nginx-"));
  mkdirSync(path.join(prefix, "logs"));
  const port = await freePort();
  const conf = path.join(prefix, "nginx.conf");
  writeFileSync(conf, nginxConfFor(instancePorts, port));
  const checked = spawnSync(NGINX, ["-t", "-p", prefix, "-c", conf, "-g", `pid ${prefix}/nginx.pid; error_log ${prefix}/logs/error.log;`], { encoding: "utf8" });
  if (checked.status !== 0) throw new Error(`nginx -t refused the config: ${checked.stderr}`);
  const child = spawn(NGINX, ["-p", prefix, "-c", conf, "-g", `daemon off; pid ${prefix}/nginx.pid; error_log ${prefix}/logs/error.log;`], { stdio: "ignore" });
  const address = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 200; i++) {
    if (await connects(port)) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    address,
    async stop() {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGQUIT");
      await exited;
    },
  };
}

function connects(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** One instance: `serve` on a fixed port, so that nginx's upstream finds it again after a restart. */
export interface Instance {
  port: number;
  served: Served;
  address: string;
}

export async function startInstance(port: number, configFile: string, env: Record<string, string> = {}): Promise<Instance> {
  const served = serve(["--config", configFile, "--port", String(port)], env);
  const address = await listening(served);
  return { port, served, address };
}

/** `/readyz` of an instance answers 200. */
export async function ready(address: string): Promise<boolean> {
  try {
    return (await fetch(`${address}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

export type { ChildProcess };
