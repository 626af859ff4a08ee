import { useState } from "preact/hooks";
import type { ScriptProblem } from "../registry/states.js";
import { api, type ConsoleScript, type ConsoleScripts } from "./api.js";
import { Badge, bytes, Json, ms, Section, Sparkline, usePoll } from "./common.js";

/** Fields the page lays out itself; any other field GET /scripts has is shown as it is. */
const SHOWN = new Set([
  "name",
  "file",
  "state",
  "version",
  "previousVersion",
  "loadedAt",
  "hooks",
  "order",
  "limits",
  "warnings",
  "lastError",
  "bootError",
  "queueDepth",
  "invocations",
  "outcomes",
  "frame",
  "latency",
  "settings",
]);

function CodeFrame({ script, problem }: { script: ConsoleScript; problem: ScriptProblem }) {
  const frame = script.frame ?? [];
  const where = problem.location;
  return (
    <div class="problem" role="alert">
      <div>
        <Badge value={problem.stage === "compile" ? "compile error" : "load error"} />{" "}
        {where && (
          <code class="location">
            {where.file}:{where.line}:{where.column}
          </code>
        )}{" "}
        <span class="muted small">{new Date(problem.at).toLocaleString()}</span>
      </div>
      <pre class="message">{problem.message}</pre>
      {frame.length > 0 && (
        <pre class="frame">
          {frame.map((line) => (
            <div class={line.line === where?.line ? "hit" : ""}>
              <span class="gutter">{String(line.line).padStart(4)} │ </span>
              {line.text}
              {line.line === where?.line && (
                <div>
                  <span class="gutter">{"     │ "}</span>
                  {" ".repeat(Math.max(0, (where?.column ?? 1) - 1))}^
                </div>
              )}
            </div>
          ))}
        </pre>
      )}
    </div>
  );
}

function Limits({ limits }: { limits: Record<string, number> | null }) {
  if (!limits) return <span class="muted">—</span>;
  return (
    <span class="kv">
      <span>time {ms(limits.timeoutMs ?? 0)}</span>
      <span>heap {limits.memoryMb} MB</span>
      <span>output {bytes(limits.outputBytes ?? 0)}</span>
      <span>log {bytes(limits.logBytes ?? 0)}</span>
    </span>
  );
}

function ScriptCard({ script, intervalSeconds }: { script: ConsoleScript; intervalSeconds: number }) {
  const s = script as ConsoleScript & Record<string, any>;
  const extra = Object.entries(s).filter(([key]) => !SHOWN.has(key));
  const outcomes = Object.entries((s.outcomes ?? {}) as Record<string, number>);
  return (
    <article class="script" data-script={s.name}>
      <header>
        <h3>{s.name}</h3>
        <Badge value={s.state} />
        <span class="muted small">
          {s.file}
          {s.version ? ` · version ${s.version}` : ""}
          {s.previousVersion ? ` (before: ${s.previousVersion})` : ""}
          {s.loadedAt ? ` · loaded ${new Date(s.loadedAt).toLocaleString()}` : ""}
        </span>
      </header>
      <dl class="grid">
        <dt>hooks</dt>
        <dd>{(s.hooks as string[] | undefined)?.join(", ") || "—"}</dd>
        <dt>order</dt>
        <dd>{s.order ?? "—"}</dd>
        <dt>limits</dt>
        <dd>
          <Limits limits={s.limits} />
        </dd>
        <dt>calls</dt>
        <dd class="kv">
          <span>{s.invocations ?? 0} invocations</span>
          {outcomes.map(([outcome, count]) => (
            <span>
              <Badge value={outcome} /> {count}
            </span>
          ))}
          <span>queue {s.queueDepth ?? 0}</span>
        </dd>
        <dt>latency</dt>
        <dd>
          <Sparkline points={s.latency} intervalSeconds={intervalSeconds} />
        </dd>
        {s.settings !== undefined && (
          <>
            <dt>settings</dt>
            <dd>
              <Json value={s.settings} label="settings in force" />
            </dd>
          </>
        )}
        {extra.map(([key, value]) => (
          <>
            <dt>{key}</dt>
            <dd>{typeof value === "object" && value !== null ? <Json value={value} /> : String(value)}</dd>
          </>
        ))}
      </dl>
      {(s.warnings as string[] | undefined)?.map((warning) => (
        <p class="warning">{warning}</p>
      ))}
      {s.lastError && <CodeFrame script={s} problem={s.lastError as ScriptProblem} />}
      {typeof s.bootError === "string" && (
        <p class="problem" role="alert">
          <Badge value="isolate not up" /> its calls fail until it boots: {s.bootError}
        </p>
      )}
    </article>
  );
}

export function ScriptsPage() {
  const [data, setData] = useState<ConsoleScripts | undefined>();
  const [error, setError] = useState<string | undefined>();
  usePoll(
    async () => {
      try {
        setData(await api.scripts());
        setError(undefined);
      } catch (e) {
        setError((e as Error).message);
      }
    },
    3000,
    [],
  );
  return (
    <Section title="Scripts" actions={data && <span class={`badge ${data.ready ? "good" : "bad"}`}>{data.ready ? "ready" : "not ready"}</span>}>
      {error && <p class="error">{error}</p>}
      {!data && !error && <p class="muted">loading…</p>}
      {data && data.scripts.length === 0 && <p class="muted">No scripts in the scripts folder: every hook answers its defaults.</p>}
      {data?.scripts.map((script) => (
        <ScriptCard key={script.name} script={script} intervalSeconds={data.latencyIntervalSeconds} />
      ))}
    </Section>
  );
}
