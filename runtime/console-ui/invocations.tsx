import type { Limits } from "../sandbox/limits.js";
import type { InvocationView } from "./api.js";
import { Badge, bytes, Json, ms } from "./common.js";

function Use({ label, used, limit, format }: { label: string; used: number | undefined; limit?: number; format: (n: number) => string }) {
  if (used === undefined) return null;
  const share = limit ? Math.min(1, used / limit) : undefined;
  return (
    <span class="use" title={limit ? `${Math.round((share ?? 0) * 100)}% of the limit` : ""}>
      {label} {format(used)}
      {limit !== undefined && <span class="muted"> / {format(limit)}</span>}
      {share !== undefined && (
        <span class="meter">
          <span style={{ width: `${Math.max(2, share * 100)}%` }} class={share > 0.8 ? "hot" : ""} />
        </span>
      )}
    </span>
  );
}

/** What each script of a call (or a Try run) did: outcome, data, failure, log lines, limits used. */
export function Invocations({ invocations, limits }: { invocations: InvocationView[]; limits?: Record<string, Limits> }) {
  if (invocations.length === 0) return <p class="muted">No script ran.</p>;
  return (
    <div class="invocations">
      {invocations.map((invocation) => {
        const limit = limits?.[invocation.script];
        const { stats } = invocation;
        return (
          <article class="invocation" data-script={invocation.script}>
            <header>
              <strong>{invocation.script}</strong> <Badge value={invocation.outcome} /> <span class="muted small">version {invocation.version}</span>
            </header>
            <div class="kv limits-used">
              <Use label="time" used={stats.wallMs} limit={limit?.timeoutMs} format={ms} />
              <Use label="cpu" used={stats.cpuMs} format={ms} />
              <Use label="heap" used={stats.heapUsedBytes} limit={limit ? limit.memoryMb * 1024 * 1024 : undefined} format={bytes} />
              <Use label="output" used={stats.outputBytes} limit={limit?.outputBytes} format={bytes} />
              <Use label="log" used={stats.logBytes} limit={limit?.logBytes} format={bytes} />
              {stats.queuedMs > 0.05 && <span class="use">queued {ms(stats.queuedMs)}</span>}
            </div>
            {invocation.data !== undefined && <Json value={invocation.data} label={`${invocation.script} data`} />}
            {invocation.failure && (
              <div class="problem">
                <div>
                  {invocation.failure.location && (
                    <code class="location">
                      {invocation.failure.location.file}:{invocation.failure.location.line}:{invocation.failure.location.column}
                    </code>
                  )}
                </div>
                <pre class="message">{invocation.failure.message}</pre>
                {invocation.failure.stack && <pre class="stack">{invocation.failure.stack}</pre>}
              </div>
            )}
            <div class="logs" aria-label={`${invocation.script} log`}>
              {invocation.logs.lines.length === 0 && <span class="muted small">nothing logged</span>}
              {invocation.logs.lines.map((line) => (
                <div class={`log ${line.level}`}>
                  <span class="muted">{line.atMs.toFixed(1).padStart(6)} ms</span> <span class="level">{line.level}</span> {line.message}
                </div>
              ))}
              {invocation.logs.dropped > 0 && <div class="log warn">… {invocation.logs.dropped} more lines dropped (over the log limit)</div>}
            </div>
          </article>
        );
      })}
    </div>
  );
}
