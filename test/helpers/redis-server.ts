import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";

/**
 * A real redis-server (Debian's package) on a free loopback port, started and stopped by the test
 * that needs it: nothing saved, nothing left behind. CI installs it (.ci/run); elsewhere a missing
 * redis-server skips the Redis half of a suite with a message, and under CI it fails.
 */

const CANDIDATES = ["/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"];

export const redisServerBinary = CANDIDATES.find((file) => existsSync(file));

/** Whether the Redis suites run here; throws under CI when they cannot. */
export function redisAvailable(suite: string): boolean {
  if (redisServerBinary) return true;
  if (process.env.CI) throw new Error(`${suite}: redis-server is missing: .ci/run installs it (apt-get install redis-server)`);
  console.warn(`${suite}: the Redis half is skipped: redis-server is missing (apt-get install redis-server)`);
  return false;
}

export interface RedisServer {
  url: string;
  port: number;
  /** Stops the server (SIGSTOP) so that it accepts connections and answers nothing: a hung store. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

/** Starts one on a free port, or on `port` (to restart one that a test stopped). */
export async function startRedisServer(options: { port?: number } = {}): Promise<RedisServer> {
  if (!redisServerBinary) throw new Error("redis-server is missing");
  const dir = mkdtempSync(path.join(tmpdir(), "callscript-redis-"));
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const child: ChildProcess = spawn(
      redisServerBinary,
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no", "--loglevel", "warning"],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    let exited = false;
    child.once("exit", () => (exited = true));
    // Ready within 10 s even on a loaded machine; a port taken meanwhile makes it exit: try another.
    for (let i = 0; i < 100 && !exited; i++) {
      if (await ping(port)) {
        return {
          url: `redis://127.0.0.1:${port}/0`,
          port,
          pause: () => child.kill("SIGSTOP"),
          resume: () => child.kill("SIGCONT"),
          stop: async () => {
            if (!exited) {
              child.kill("SIGCONT");
              child.kill("SIGTERM");
              await new Promise((resolve) => child.once("exit", resolve));
            }
            rmSync(dir, { recursive: true, force: true });
          },
        };
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill("SIGKILL");
    if (attempt >= 2) {
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`redis-server did not start on 127.0.0.1:${port}`);
    }
  }
}
