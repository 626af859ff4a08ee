import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { listening, serve, type ServeOptions, type Served } from "./serve-process.js";

/**
 * Ways an admin measures a server that make node do work of its own as each thread ends: a file
 * per thread, named with the thread's id (0 for the main thread).
 */
const measured: { name: string; env: (dir: string) => Record<string, string>; options: (dir: string) => ServeOptions; file: (threadId: string) => RegExp }[] = [
  {
    name: "coverage (NODE_V8_COVERAGE, as c8 collects it)",
    env: (dir) => ({ NODE_V8_COVERAGE: dir }),
    options: () => ({}),
    file: (threadId) => new RegExp(`^coverage-\\d+-\\d+-${threadId}\\.json$`),
  },
  {
    name: "a CPU profile (node --cpu-prof)",
    env: () => ({}),
    // Many samples: a large profile to write as each thread ends.
    options: (dir) => ({ nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--cpu-prof-interval=20"] }),
    file: (threadId) => new RegExp(`^CPU\\.\\d+\\.\\d+\\.\\d+\\.${threadId}\\.\\d+\\.cpuprofile$`),
  },
];

/** A copy of the examples' scripts: enough of them that their load goes through the probe workers. */
function exampleScripts(): string {
  const examples = path.join(packageRoot, "examples");
  const names = readdirSync(examples).filter((name) => name.endsWith(".ts"));
  return scriptsFolder(Object.fromEntries(names.map((name) => [name, readFileSync(path.join(examples, name), "utf8")])));
}

/** Resolves once a worker thread's file is written (thread id 1 or more), or rejects when the server ends first. */
async function workerFileWritten(served: Served, dir: string, file: RegExp): Promise<void> {
  let ended = false;
  void served.exit.then(() => (ended = true));
  while (!readdirSync(dir).some((name) => file.test(name))) {
    if (ended) {
      const { code, signal } = await served.exit;
      throw new Error(`the server ended (${signal ?? code}) before any worker thread's file was written; stderr: ${served.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("a server measured by node as an admin measures it", () => {
  const body = readFileSync(path.join(packageRoot, "examples", "payloads", "need_registration.incoming-answered.json"), "utf8");

  it.each(measured)(
    "under $name: outlives its load probes' workers, which end once the scripts are loaded, and stops cleanly",
    async ({ env, options, file }) => {
      const scripts = exampleScripts();
      const dir = scriptsFolder({});
      const served = serve(["--scripts", scripts, "--port", "0", "--no-watch"], env(dir), options(dir));
      const address = await listening(served);
      const call = () =>
        fetch(`${address}/hooks/need_registration`, { method: "POST", headers: { "content-type": "application/json" }, body }).then(
          (answer) => answer.arrayBuffer().then(() => answer.status),
          () => 0,
        );

      // Node writes a worker's file as the worker ends, and the probe workers end a moment after the
      // last script loaded (load-probe.ts). The collection that writing triggered ran isolated-vm's
      // weak callbacks after isolated-vm had left the thread, and its assertion aborted the whole
      // process (probe-worker.ts): with coverage every time, with a profile now and then. Requests go
      // on all along, one after another, as a connector sends them.
      const statuses = new Map<number, number>();
      const written = workerFileWritten(served, dir, file("[1-9]\\d*"));
      let waiting = true;
      written.then(
        () => (waiting = false),
        () => (waiting = false),
      );
      while (waiting) {
        const status = await call();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      await written;
      // And while the other probe workers end too.
      for (const until = Date.now() + 1_500; Date.now() < until;) {
        const status = await call();
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
      }
      expect([...statuses.keys()]).toEqual([200]);

      served.child.kill("SIGTERM");
      expect(await served.exit).toEqual({ code: 0, signal: null });
      // The main thread's own file, written last, as the process ended.
      expect(readdirSync(dir).filter((name) => file("0").test(name))).toHaveLength(1);
      expect(served.stderr()).not.toMatch(/Assertion|ExperimentalWarning/);
    },
  );
  it("under coverage: stopped right after it starts serving (its isolates just disposed), it still exits 0 and writes its coverage", async () => {
    const scripts = exampleScripts();
    const dir = scriptsFolder({});
    const served = serve(["--scripts", scripts, "--port", "0", "--no-watch"], { NODE_V8_COVERAGE: dir });
    await listening(served);
    // The stop disposes every isolate; node then writes the main thread's coverage as the process
    // ends. Before shutdown.ts collected the disposed isolates' handles first, that ended the
    // process with SIGABRT (exit 134) instead of 0 (server/shutdown.ts, sandbox/collect-handles.ts).
    served.child.kill("SIGTERM");
    expect(await served.exit).toEqual({ code: 0, signal: null });
    expect(readdirSync(dir).filter((name) => /^coverage-\d+-\d+-0\.json$/.test(name))).toHaveLength(1);
    expect(served.stderr()).not.toMatch(/Assertion|ExperimentalWarning/);
  });
});
