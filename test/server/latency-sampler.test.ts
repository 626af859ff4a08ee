import { Histogram, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { LatencySampler } from "../../runtime/server/latency-sampler.js";

describe("latency sampler", () => {
  it("gives each script its calls and mean time per interval, from the histogram /metrics keeps", async () => {
    const registry = new Registry();
    const histogram = new Histogram({
      name: "callscript_script_duration_seconds",
      help: "h",
      labelNames: ["hook", "script"],
      buckets: [0.001, 0.01],
      registers: [registry],
    });
    const sampler = new LatencySampler(registry, 5_000, 3);
    histogram.observe({ hook: "need_registration", script: "a" }, 0.002);
    histogram.observe({ hook: "need_registration", script: "a" }, 0.004);
    histogram.observe({ hook: "process_client_phone", script: "b" }, 0.001);
    await sampler.sample(1_000);
    expect(sampler.of("a")).toEqual([{ at: 1_000, calls: 2, meanMs: 3 }]);
    expect(sampler.of("b")).toEqual([{ at: 1_000, calls: 1, meanMs: 1 }]);
    histogram.observe({ hook: "process_client_phone", script: "a" }, 0.01);
    await sampler.sample(2_000);
    await sampler.sample(3_000);
    await sampler.sample(4_000);
    expect(sampler.of("a")).toEqual([
      { at: 2_000, calls: 1, meanMs: 10 },
      { at: 3_000, calls: 0, meanMs: null },
      { at: 4_000, calls: 0, meanMs: null },
    ]);
    expect(sampler.of("none")).toEqual([]);
  });
});
