import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";
import type { LatencyPoint } from "../server/console-schemas.js";

/**
 * Call `tick` now and every `intervalMs` while the page is visible: one call at a time (the next
 * waits for the last to end), none while the tab is hidden. The live updates of every page.
 */
export function usePoll(tick: () => Promise<unknown>, intervalMs: number, deps: unknown[]): void {
  const latest = useRef(tick);
  latest.current = tick;
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const run = async () => {
      timer = undefined;
      if (stopped) return;
      if (!document.hidden) {
        try {
          await latest.current();
        } catch {
          // The page shows the error it got; polling goes on (a 401 ends the session instead).
        }
      }
      if (!stopped) timer = window.setTimeout(run, intervalMs);
    };
    void run();
    const wake = () => {
      if (!document.hidden && timer !== undefined) {
        window.clearTimeout(timer);
        void run();
      }
    };
    document.addEventListener("visibilitychange", wake);
    return () => {
      stopped = true;
      if (timer !== undefined) window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", wake);
    };
  }, deps);
}

export function Json({ value, label }: { value: unknown; label?: string }) {
  return (
    <pre class="json" aria-label={label}>
      {value === undefined ? "—" : JSON.stringify(value, null, 2)}
    </pre>
  );
}

const GOOD = new Set(["active", "success", "data", "none"]);
const WARN = new Set(["cancel", "stale", "disabled", "overloaded", "deadline"]);

export function Badge({ value }: { value: string }) {
  const tone = GOOD.has(value) ? "good" : WARN.has(value) ? "warn" : "bad";
  return <span class={`badge ${tone}`}>{value}</span>;
}

export function Section({ title, children, actions }: { title: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="panel">
      <header>
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

export const time = (ms: number) => new Date(ms).toLocaleTimeString([], { hour12: false });
export const dateTime = (ms: number) => new Date(ms).toLocaleString([], { hour12: false });

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const ms = (n: number) => (n < 1 ? `${n.toFixed(2)} ms` : n < 100 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);

/** A small SVG chart of a script's mean time per interval (line) over its calls (bars). */
export function Sparkline({ points, intervalSeconds }: { points: LatencyPoint[]; intervalSeconds: number }) {
  const width = 180;
  const height = 36;
  if (points.every((point) => point.calls === 0)) return <span class="muted small">no calls in the last {Math.round((points.length * intervalSeconds) / 60) || 5} min</span>;
  const maxMs = Math.max(...points.map((point) => point.meanMs ?? 0), 0.001);
  const maxCalls = Math.max(...points.map((point) => point.calls), 1);
  const step = width / Math.max(points.length - 1, 1);
  const line = points
    .map((point, i) => (point.meanMs === null ? null : `${(i * step).toFixed(1)},${(height - 2 - ((point.meanMs / maxMs) * (height - 6))).toFixed(1)}`))
    .filter((p): p is string => p !== null);
  const last = [...points].reverse().find((point) => point.meanMs !== null);
  return (
    <span class="sparkline" title={`mean time per ${intervalSeconds} s; bars: calls`}>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label="latency chart">
        {points.map((point, i) => (
          <rect x={i * step - 1} y={height - (point.calls / maxCalls) * 10} width={2} height={(point.calls / maxCalls) * 10} class="bar" />
        ))}
        <polyline points={line.join(" ")} class="line" />
      </svg>
      <span class="small">{last?.meanMs != null ? `${ms(last.meanMs)} mean · max ${ms(maxMs)}` : ""}</span>
    </span>
  );
}
