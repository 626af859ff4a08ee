import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";
import { afterEach } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import type { LogLine } from "./helpers.js";

/** A `callscript serve` process started as the connector's host runs it: the built CLI in its own process. */
export interface Served {
  child: ChildProcess;
  /** The server's own pid (started with --no-node-snapshot, so bin/callscript.js does not re-exec). */
  pid: number;
  lines: LogLine[];
  stderr: () => string;
  /** Once the process has exited and its stdout and stderr are read to the end. */
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first log line that satisfies `predicate` (already logged or to come). */
  line(predicate: (line: LogLine) => boolean, what: string): Promise<LogLine>;
}

const children: ChildProcess[] = [];

/** SIGKILL every server still running; registered after each test of the file that imports this module. */
export function killServers(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
}
afterEach(killServers);

export interface ServeOptions {
  /**
   * Start it under `ulimit -c 0` (through sh, which then execs node: the pid stays the server's),
   * for a test in which the server aborts on purpose and must not leave a core file behind.
   */
  noCoreDump?: boolean;
  /** Node's own flags, before the CLI's (a profiler's, say). */
  nodeFlags?: string[];
}

/**
 * `node --no-node-snapshot bin/callscript.js serve ...args`, with its stdout read as pino JSON lines.
 * CALLSCRIPT_* variables of the test's environment are cleared so that only `args` and `env` count.
 */
export function serve(args: string[], env: Record<string, string> = {}, options: ServeOptions = {}): Served {
  const node = [process.execPath, "--no-node-snapshot", ...(options.nodeFlags ?? []), path.join(packageRoot, "bin", "callscript.js"), "serve", ...args];
  const [command, ...argv] = options.noCoreDump ? ["/bin/sh", "-c", 'ulimit -c 0; exec "$@"', "sh", ...node] : node;
  const child = spawn(command!, argv, {
    cwd: packageRoot,
    env: { ...process.env, CALLSCRIPT_TOKEN: "", CALLSCRIPT_HOST: "", CALLSCRIPT_PORT: "", NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const lines: LogLine[] = [];
  const waiters: { predicate: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];
  createInterface({ input: child.stdout! }).on("line", (text) => {
    let line: LogLine;
    try {
      line = JSON.parse(text) as LogLine;
    } catch {
      return;
    }
    lines.push(line);
    for (const waiter of [...waiters]) {
      if (waiter.predicate(line)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  // "close", not "exit": the server's last lines are written as it exits (log lines go out in
  // batches), and "exit" can come before they have been read from the pipe.
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on("close", (code, signal) => resolve({ code, signal })));
  return {
    child,
    pid: child.pid ?? -1,
    lines,
    stderr: () => stderr,
    exit,
    line(predicate, what) {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        waiters.push({ predicate, resolve });
        void exit.then(({ code }) => reject(new Error(`the server exited (${code}) before logging ${what}; stderr: ${stderr}`)));
      });
    },
  };
}

/** The server's address once it logs that it serves. */
export const listening = (served: Served) => served.line((line) => line.msg === "callscript serving", "that it serves").then((line) => line.address as string);
