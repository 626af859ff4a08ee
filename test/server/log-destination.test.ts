import { spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { logDestination, type LogDestination } from "../../runtime/server/log-destination.js";
import { repoRoot } from "../helpers/build.js";

const dirs: string[] = [];
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
});
