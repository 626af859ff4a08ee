import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { busiestThreadMs, threadCpuTimes } from "../../runtime/sandbox/thread-cpu.js";

/** Spins the calling thread until the process has used `ms` more of CPU time. */
function spin(ms: number): void {
  const start = process.cpuUsage();
  for (;;) {
    const used = process.cpuUsage(start);
    if ((used.user + used.system) / 1000 >= ms) return;
  }
}

describe("each thread's CPU time (Linux /proc)", () => {
  it("reads every thread of the process, this one included", () => {
    const times = threadCpuTimes();
    expect(times).toBeDefined();
    expect(times!.get(String(process.pid))).toBeGreaterThan(0);
  });

  it("the busiest thread's time is bounded by the process's, and sees a thread that spun", () => {
    const before = threadCpuTimes()!;
    const usage = process.cpuUsage();
    spin(60);
    const after = threadCpuTimes()!;
    const used = process.cpuUsage(usage);
    const busiest = busiestThreadMs(before, after);
    // schedstat and getrusage count the same time in different units; a few ms of slack for the rounding.
    expect(busiest).toBeLessThanOrEqual((used.user + used.system) / 1000 + 5);
    expect(busiest).toBeGreaterThan(0);
  });

  it("a thread started after the first reading counts whole", async () => {
    const before = threadCpuTimes()!;
    const worker = new Worker(
      `const start = process.cpuUsage(); for (;;) { const u = process.cpuUsage(start); if ((u.user + u.system) / 1000 >= 40) break; }
       require("node:worker_threads").parentPort.postMessage("done");
       setTimeout(() => {}, 60_000);`,
      { eval: true },
    );
    await new Promise((resolve) => worker.once("message", resolve));
    const after = threadCpuTimes()!;
    const fresh = [...after.keys()].filter((tid) => !before.has(tid));
    expect(fresh.length).toBeGreaterThan(0);
    expect(busiestThreadMs(before, after)).toBeGreaterThanOrEqual(Math.max(...fresh.map((tid) => after.get(tid)!)));
    await worker.terminate();
  });
});
