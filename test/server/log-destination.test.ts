import { spawnSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readFileSync, readSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { configSchema } from "../../runtime/config.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { buildServer } from "../../runtime/server/app.js";
import { logDestination, type LogDestination } from "../../runtime/server/log-destination.js";
import { repoRoot } from "../helpers/build.js";
import { scriptsFolder } from "../helpers/scripts.js";
import { sample } from "./helpers.js";

const dirs: string[] = [];
const linesIn = (text: string) => text.split("\n").length - 1;
const destinations: LogDestination[] = [];
afterEach(() => {
  for (const destination of destinations.splice(0)) destination.stream.destroy();
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A log destination on a fresh file, with every write sonic-boom makes to it (bytes). */
function onFile() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-log-"));
  dirs.push(dir);
  const file = path.join(dir, "server.log");
  const destination = logDestination(openSync(file, "w"));
  destinations.push(destination);
  const writes: number[] = [];
  destination.stream.on("write", (bytes: number) => writes.push(bytes));
  const log = pino({ base: null }, destination.stream);
  const messages = () =>
    readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
  const written = () => new Promise<void>((resolve) => destination.stream.once("write", () => resolve()));
  return { destination, log, writes, messages, written, file };
}

/**
 * A log destination on a FIFO whose reader (non-blocking) is the test's, with what the destination
 * reports (instead of stderr).
 */
function onFifo() {
  const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-log-"));
  dirs.push(dir);
  const fifo = path.join(dir, "stdout");
  expect(spawnSync("mkfifo", [fifo]).status).toBe(0);
  const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(fifo, constants.O_WRONLY);
  const reports: string[] = [];
  const destination = logDestination(writer, { report: (message) => reports.push(message) });
  destinations.push(destination);
  const log = pino({ base: null }, destination.stream);
  return { reader, reports, destination, log };
}

describe("the server's log destination", () => {
  it("hands lines over in batches: a few lines in one write, soon after the first", async () => {
    const { log, writes, messages, written, file } = onFile();
    const done = written();
    log.info("first");
    log.warn("second");
    log.error("third");
    // Nothing is written while the code that logged runs.
    expect(writes).toEqual([]);
    await done;
    expect(messages()).toEqual(["first", "second", "third"]);
    expect(writes).toEqual([readFileSync(file).length]);

    // A line logged later, alone, is written without waiting for another.
    const next = written();
    log.info("fourth");
    await next;
    expect(messages()).toEqual(["first", "second", "third", "fourth"]);
    expect(writes).toHaveLength(2);
  });

  it("hands a batch over as soon as it holds 4 KB, without waiting for its time", async () => {
    const { log, writes, messages, written, file } = onFile();
    const line = "x".repeat(300);
    const first = written();
    for (let i = 0; i < 20; i++) log.info({ i }, line);
    // 20 lines of ≈ 350 bytes: the first 4 KB went to the stream while the code that logged ran.
    await first;
    expect(writes[0]).toBeGreaterThanOrEqual(4096);
    await new Promise<void>((resolve, reject) => log.flush((error) => (error ? reject(error) : resolve())));
    expect(messages()).toHaveLength(20);
    expect(writes.reduce((sum, bytes) => sum + bytes, 0)).toBe(readFileSync(file).length);
  });

  it("includes the batch in a flush (what the server does before an abort and after its serving line)", async () => {
    const { log, messages } = onFile();
    log.fatal("why the process ends");
    await new Promise<void>((resolve, reject) => log.flush((error) => (error ? reject(error) : resolve())));
    expect(messages()).toEqual(["why the process ends"]);
  });

  it("writes the batch of lines pending when the process exits", () => {
    const destinationModule = pathToFileURL(path.join(repoRoot, "dist", "runtime", "server", "log-destination.js")).href;
    const program = `
      import { pino } from "pino";
      import { logDestination } from ${JSON.stringify(destinationModule)};
      const { stream } = logDestination();
      const log = pino({ base: null }, stream);
      // A batch's timer does not hold the process: this one stands for the server's work.
      setInterval(() => undefined, 1000);
      log.info("an earlier line");
      // Once it is written: a write still in flight at exit may land after the flush at exit
      // (sonic-boom's flushSync does not wait for it), with or without lines in batches.
      stream.once("write", () => {
        log.info("a line of the last batch");
        log.error("the last line");
        process.exit(3);
      });
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", program], { cwd: repoRoot, encoding: "utf8", timeout: 30_000 });
    expect(child.status).toBe(3);
    const messages = child.stdout
      .split("\n")
      .filter(Boolean)
      .map((line) => (JSON.parse(line) as { msg: string }).msg);
    expect(messages).toEqual(["an earlier line", "a line of the last batch", "the last line"]);

    // A process that ends on its own, its last line still in a batch: the batch is written.
    const idle = spawnSync(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `import { pino } from "pino"; import { logDestination } from ${JSON.stringify(destinationModule)}; pino(logDestination().stream).info("the only line");`,
      ],
      { cwd: repoRoot, encoding: "utf8", timeout: 30_000 },
    );
    expect(idle.status).toBe(0);
    expect(idle.stdout).toContain('"msg":"the only line"');
  });

  it("writes the batch itself in a flushSync (the flush at exit), not through libuv's thread pool, which an exit does not wait for", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "callscript-log-"));
    dirs.push(dir);
    const file = path.join(dir, "server.log");
    const destinationModule = pathToFileURL(path.join(repoRoot, "dist", "runtime", "server", "log-destination.js")).href;
    // The pool's only thread is busy: a write handed to it now would wait for the hash to finish.
    const program = `
      import { pbkdf2 } from "node:crypto";
      import { openSync, readFileSync } from "node:fs";
      import { pino } from "pino";
      import { logDestination } from ${JSON.stringify(destinationModule)};
      const { stream } = logDestination(openSync(${JSON.stringify(file)}, "w"));
      const log = pino({ base: null }, stream);
      pbkdf2("password", "salt", 1_000_000, 64, "sha512", () => undefined);
      log.info("the last line");
      stream.flushSync();
      console.log(readFileSync(${JSON.stringify(file)}, "utf8").length > 0 ? "written" : "not written");
    `;
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", program], {
      cwd: repoRoot,
      encoding: "utf8",
      timeout: 60_000,
      env: { ...process.env, UV_THREADPOOL_SIZE: "1" },
    });
    expect(child.stderr).toBe("");
    expect(child.stdout).toBe("written\n");
    expect(readFileSync(file, "utf8")).toContain('"msg":"the last line"');
  });

  it("a reader that goes away (EPIPE): said on stderr once; the lines it did not take and every later line are counted as dropped; a flush does not wait", async () => {
    const { reader, reports, destination, log } = onFifo();
    const written = new Promise((resolve) => destination.stream.once("write", resolve));
    log.info("read");
    await written;
    const chunk = Buffer.alloc(4096);
    expect(chunk.toString("utf8", 0, readSync(reader, chunk))).toContain('"msg":"read"');

    // The reader goes; two lines are already on their way.
    closeSync(reader);
    const failed = new Promise((resolve) => destination.stream.once("error", resolve));
    log.info("lost on its way");
    log.info("lost on its way too");
    await failed;
    expect((destination.broken as NodeJS.ErrnoException | undefined)?.code).toBe("EPIPE");
    expect(reports).toEqual(["the log destination failed (EPIPE); later log lines are dropped"]);
    expect(destination.droppedLines).toBe(2);

    for (let line = 0; line < 10; line++) log.info({ line }, "after");
    expect(destination.droppedLines).toBe(12);
    await new Promise<void>((resolve, reject) => log.flush((error) => (error ? reject(error) : resolve())));
    expect(() => destination.stream.flushSync()).not.toThrow();
    expect(reports).toHaveLength(1);
    expect(destination.droppedLines).toBe(12);
  });

  it("a reader that stalls costs lines past 16 MB, never memory: said on stderr when it starts and, with the count, once it catches up; /metrics counts them", async () => {
    // A reader that reads nothing until the test says so; the server's end blocks when the pipe is full.
    const { reader, reports, destination, log } = onFifo();
    const config = configSchema.parse({ watch: false, scriptsDir: scriptsFolder({}) });
    const registry = new ScriptRegistry(config, log);
    const app = buildServer({ config, registry, logger: log, logLines: destination, docs: false, processMetrics: false });
    try {
      await app.ready();
      const padding = "p".repeat(1000);
      const logged = 20_000;
      for (let line = 0; line < logged; line++) log.info({ line, padding }, "busy");
      // About 1 KB a line: the first 16 MB wait for the reader, the rest are dropped.
      expect(destination.droppedLines).toBeGreaterThan(3_000);
      expect(destination.droppedLines).toBeLessThan(5_000);
      expect(reports).toEqual([expect.stringMatching(/^the log's reader is not keeping up \(16 MB of lines wait\): lines are dropped/)]);
      const metrics = await app.inject({ method: "GET", url: "/metrics" });
      expect(sample(metrics.body, "callscript_log_lines_dropped_total")).toBe(destination.droppedLines);

      // The reader comes back: every line kept arrives whole and in order, and the count is said.
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const chunk = Buffer.alloc(1 << 20);
      const read: string[] = [];
      let readLines = 0;
      const kept = logged - destination.droppedLines;
      while (readLines < kept) {
        try {
          const part = chunk.toString("utf8", 0, readSync(reader, chunk));
          read.push(part);
          readLines += linesIn(part);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
          await new Promise((resolve) => setImmediate(resolve));
        }
      }
      const lines = read
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((line) => (JSON.parse(line) as { line: number }).line);
      expect(lines).toEqual(Array.from({ length: kept }, (_, line) => line));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(reports).toHaveLength(2);
      expect(reports[1]).toBe(`the log's reader caught up; ${destination.droppedLines} lines were dropped meanwhile`);
    } finally {
      await app.close();
      await registry.close();
      closeSync(reader);
    }
  });
});
