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

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export const ms = (n: number) => (n < 1 ? `${n.toFixed(2)} ms` : n < 100 ? `${n.toFixed(1)} ms` : `${Math.round(n)} ms`);

/** Points a chart spans (the server keeps as many): the newest at the right edge. */
const SLOTS = 60;

/** A small SVG chart of a script's mean time per interval (line and dots) over its calls (bars). */
export function Sparkline({ points, intervalSeconds }: { points: LatencyPoint[]; intervalSeconds: number }) {
  const width = 240;
  const height = 40;
  const span = `${Math.round((SLOTS * intervalSeconds) / 60)} min`;
  if (points.every((point) => point.calls === 0)) return <span class="muted small">no calls in the last {span}</span>;
  const shown = points.slice(-SLOTS);
  const offset = SLOTS - shown.length;
  const maxMs = Math.max(...shown.map((point) => point.meanMs ?? 0), 0.001);
  const maxCalls = Math.max(...shown.map((point) => point.calls), 1);
  const step = width / (SLOTS - 1);
  const x = (i: number) => Math.min(width - 2, Math.max(2, (offset + i) * step));
  const y = (value: number) => height - 4 - (value / maxMs) * (height - 10);
  const dots = shown.flatMap((point, i) => (point.meanMs === null ? [] : [{ x: x(i), y: y(point.meanMs) }]));
  const last = [...shown].reverse().find((point) => point.meanMs !== null);
  return (
    <span class="sparkline" title={`mean time per ${intervalSeconds} s over the last ${span}; bars: calls`}>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-label="latency chart">
        <line x1="0" x2={width} y1={height - 0.5} y2={height - 0.5} class="axis" />
        {shown.map((point, i) => {
          const h = (point.calls / maxCalls) * 12;
          return <rect x={x(i) - 1.5} y={height - h} width={3} height={h} class="bar" />;
        })}
        <polyline points={dots.map((dot) => `${dot.x.toFixed(1)},${dot.y.toFixed(1)}`).join(" ")} class="line" />
        {dots.map((dot) => (
          <circle cx={dot.x} cy={dot.y} r="1.8" class="dot" />
        ))}
      </svg>
      <span class="small">{last?.meanMs != null ? `${ms(last.meanMs)} mean now · peak ${ms(maxMs)} · ${span}` : ""}</span>
    </span>
  );
}
