// @ts-check
// What a log line costs the server's process (every thread: the event loop, libuv's thread pool,
// the kernel), written as a busy server writes them: a stretch of request work (a 100 µs spin),
// then the hook's one info line, a few requests per loop turn. Variants, alternated in rounds:
//
// - shipped: the server's destination (runtime/server/log-destination.ts: lines in batches of up
//   to 4 KB or 25 ms, then sonic-boom, asynchronous);
// - one write per line: sonic-boom as pino's asynchronous destination is usually made, where a
//   line finds no write in flight and starts its own (a fast reader finishes each in time);
// - synchronous writes: sonic-boom with `sync: true` (a write(2) on the event loop per line; what
//   the server avoids, since a stalled reader would hold it);
// - no logger: the work alone, subtracted from the others.
//
// The lines go to /dev/null (as the benches' servers' do) or, with BENCH_LOG_PIPE=1, to a pipe
// drained by a child process (as a journal reads a unit's stdout). CPU is the process's
// (process.cpuUsage: all of its threads), per line, minus the no-logger variant's.
//
// Not part of `npm run bench`: a tool for docs/benchmarks.md ("Log lines in batches").
// Run: npm run build && node bench/log-lines.mjs
// Env: BENCH_ROUNDS (5), BENCH_LOG_LINES (30 000 per variant and round), BENCH_LOG_PER_TURN (2),
//      BENCH_LOG_PIPE=1
import { spawn } from "node:child_process";
import { openSync } from "node:fs";
import { pino } from "pino";
import sonicBoom from "sonic-boom";
import { logDestination } from "../dist/runtime/server/log-destination.js";
import { machine, median, round, table } from "./lib.mjs";

const { SonicBoom } = sonicBoom;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const LINES = Number(process.env.BENCH_LOG_LINES ?? 30_000);
const PER_TURN = Number(process.env.BENCH_LOG_PER_TURN ?? 2);
const WORK_US = 100;

/** A reader that drains a pipe, as journald drains a unit's stdout; its fd for the writer. */
function pipeReader() {
  const reader = spawn(process.execPath, ["-e", "process.stdin.resume()"], { stdio: ["pipe", "ignore", "inherit"] });
  const stdin = /** @type {import("node:stream").Writable & { _handle?: { fd?: number } }} */ (reader.stdin);
  const fd = stdin._handle?.fd;
  if (typeof fd !== "number" || fd < 0) throw new Error("bench/log-lines.mjs: the pipe to the reader has no fd");
  return { fd, reader };
}

const pipe = process.env.BENCH_LOG_PIPE === "1" ? pipeReader() : undefined;
const target = () => pipe?.fd ?? openSync("/dev/null", "w");

/** @type {Record<string, () => import("sonic-boom").SonicBoom | undefined>} */
const variants = {
  "no logger": () => undefined,
  shipped: () => logDestination(target()).stream,
  "one write per line": () => new SonicBoom({ fd: target(), sync: false }),
  "synchronous writes": () => new SonicBoom({ fd: target(), sync: true }),
};

/** @param {number} us */
function spin(us) {
  const end = performance.now() + us / 1000;
  let spins = 0;
  while (performance.now() < end) spins++;
  return spins;
}

/** CPU µs per line of one variant (process.cpuUsage: every thread). @param {string} name */
async function run(name) {
  const stream = variants[name]?.();
  const log = stream ? pino({ level: "info" }, stream).child({ reqId: "req-1" }) : undefined;
  // The hook route's line (hook-route.ts onResponse) at its usual size.
  const fields = { hook: "process_client_phone", status: 200, outcome: "success", scripts: ["client-phone-format"], ms: 1.23 };
  const before = process.cpuUsage();
  for (let line = 0; line < LINES;) {
    for (let k = 0; k < PER_TURN && line < LINES; k++, line++) {
      spin(WORK_US);
      log?.info(fields, "hook answered");
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (stream) await new Promise((resolve) => stream.flush(() => resolve(undefined)));
  const used = process.cpuUsage(before);
  return (used.user + used.system) / LINES;
}

const names = Object.keys(variants);
/** @type {Record<string, number[]>} */
const perLine = Object.fromEntries(names.map((name) => [name, []]));
for (let r = 0; r < ROUNDS; r++) {
  // The order rotates, so that no variant always follows the same one.
  for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) perLine[name]?.push(await run(name));
}
pipe?.reader.kill();

const work = median(perLine["no logger"] ?? []);
console.log(
  `Log lines: CPU of the process per line, ${PER_TURN} lines per loop turn, each after ${WORK_US} µs of work, to ${pipe ? "a pipe drained by a child" : "/dev/null"}; medians of ${ROUNDS} rounds of ${LINES} lines — ${JSON.stringify(machine())}`,
);
console.log(
  table(
    names.map((name) => {
      const rounds = perLine[name] ?? [];
      return {
        variant: name,
        "CPU µs per line, with the work": round(median(rounds)),
        "the line's own": name === "no logger" ? "" : round(median(rounds) - work),
        rounds: rounds.map((value) => round(value)).join(" "),
      };
    }),
    ["variant", "CPU µs per line, with the work", "the line's own", "rounds"],
  ),
);
