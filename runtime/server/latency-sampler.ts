import type { Histogram, Registry } from "prom-client";
import type { LatencyPoint } from "./console-schemas.js";

const SCRIPT_SECONDS = "callscript_script_duration_seconds";

/**
 * Each script's mean invocation time per interval, for the console's charts: read from the
 * histogram /metrics already keeps (its sum and count, per interval), so the hook route pays
 * nothing for it. The last `points` intervals are kept per script.
 */
export class LatencySampler {
  private readonly series = new Map<string, LatencyPoint[]>();
  private readonly last = new Map<string, { sum: number; count: number }>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly metrics: Registry,
    readonly intervalMs = 5_000,
    private readonly points = 60,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => void this.sample(), this.intervalMs).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  of(script: string): LatencyPoint[] {
    return this.series.get(script) ?? [];
  }

  /** One interval: each script's calls and mean time since the last sample. */
  async sample(now = Date.now()): Promise<void> {
    const histogram = this.metrics.getSingleMetric(SCRIPT_SECONDS) as Histogram | undefined;
    if (!histogram) return;
    const totals = new Map<string, { sum: number; count: number }>();
    for (const value of (await histogram.get()).values) {
      const script = value.labels.script;
      if (typeof script !== "string") continue;
      const name = (value as { metricName?: string }).metricName;
      const total = totals.get(script) ?? { sum: 0, count: 0 };
      if (name === `${SCRIPT_SECONDS}_sum`) total.sum += value.value;
      else if (name === `${SCRIPT_SECONDS}_count`) total.count += value.value;
      else continue;
      totals.set(script, total);
    }
    for (const [script, total] of totals) {
      const before = this.last.get(script) ?? { sum: 0, count: 0 };
      this.last.set(script, total);
      const calls = Math.max(0, total.count - before.count);
      const meanMs = calls > 0 ? Math.round(((total.sum - before.sum) / calls) * 1e6) / 1e3 : null;
      const series = this.series.get(script) ?? [];
      series.push({ at: now, calls, meanMs });
      if (series.length > this.points) series.splice(0, series.length - this.points);
      this.series.set(script, series);
    }
  }
}
