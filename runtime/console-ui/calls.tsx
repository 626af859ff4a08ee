import { useEffect, useRef, useState } from "preact/hooks";
import { api, type CallDetail, type CallSummary, type SessionInfo } from "./api.js";
import { Badge, bytes, Json, ms, Section, time, usePoll } from "./common.js";
import { Invocations } from "./invocations.js";

/** Calls kept on the page: the server keeps its own bound; this one keeps the DOM small. */
const SHOWN = 200;

interface Filter {
  hook: string;
  outcome: string;
  phone: string;
}

function Detail({ seq, onTry }: { seq: number; onTry: (call: CallDetail) => void }) {
  const [call, setCall] = useState<CallDetail | undefined>();
  const [error, setError] = useState<string | undefined>();
  useEffect(() => {
    setCall(undefined);
    api.call(seq).then(setCall, (e: Error) => setError(e.message));
  }, [seq]);
  if (error) return <p class="error">{error}</p>;
  if (!call) return <p class="muted">loading…</p>;
  return (
    <div class="detail" aria-label="call detail">
      <header>
        <h3>
          {call.hook} <Badge value={call.outcome} />
        </h3>
        <span class="muted small">
          {new Date(call.at).toLocaleString()} · {ms(call.ms)} · HTTP {call.status} · request {call.id}
          {call.redacted ? " · client numbers, names and e-mails replaced (console.redact)" : ""}
        </span>
        <button onClick={() => onTry(call)} disabled={typeof call.input !== "object" || call.input === null}>
          Try this input
        </button>
      </header>
      <h4>Answer</h4>
      <Json value={call.answer} label="answer" />
      <h4>Scripts</h4>
      <Invocations invocations={call.invocations} />
      <details>
        <summary>Input</summary>
        <Json value={call.input} label="input" />
      </details>
    </div>
  );
}

export function CallsPage({
  session,
  selected,
  onSelect,
  onTry,
}: {
  session: SessionInfo;
  selected?: number;
  onSelect: (seq?: number) => void;
  onTry: (call: CallDetail) => void;
}) {
  const [filter, setFilter] = useState<Filter>({ hook: "", outcome: "", phone: "" });
  const [calls, setCalls] = useState<CallSummary[]>([]);
  const [state, setState] = useState<{ kept: number; bytes: number; notKept: number; enabled: boolean } | undefined>();
  const lastSeq = useRef(0);
  const filterKey = useRef("");
  filterKey.current = `${filter.hook}|${filter.outcome}|${filter.phone}`;
  // A new filter starts the list afresh; polls then only ask for what came after.
  useEffect(() => {
    lastSeq.current = 0;
    setCalls([]);
  }, [filter.hook, filter.outcome, filter.phone]);
  usePoll(
    async () => {
      const fresh = lastSeq.current === 0;
      const asked = filterKey.current;
      const page = await api.calls({ ...filter, after: fresh ? undefined : lastSeq.current });
      // An answer to the filter before this one: the next poll asks again.
      if (asked !== filterKey.current) return;
      setState({ kept: page.kept, bytes: page.bytes, notKept: page.notKept, enabled: page.enabled });
      if (fresh || page.calls.length > 0) setCalls((old) => [...page.calls, ...(fresh ? [] : old)].slice(0, SHOWN));
      lastSeq.current = page.lastSeq;
    },
    2000,
    [filter.hook, filter.outcome, filter.phone],
  );
  const outcomes = [
    "success",
    "cancel",
    "timeout",
    "memory",
    "exception",
    "invalid_output",
    "overloaded",
    "compile",
    "deadline",
    "no_data",
    "CS_ERR_INVALID_INPUT",
    "CS_ERR_INVALID_JSON",
  ];
  return (
    <Section
      title="Calls"
      actions={
        state && (
          <span class="muted small">
            {state.enabled
              ? `${state.kept} kept in memory (${bytes(state.bytes)}; at most ${session.calls.capacity}, ${bytes(session.calls.maxBytes)})` +
                (state.notKept > 0
                  ? `; ${state.notKept} successful calls not kept since the start, over ${session.calls.perSecond} a second (console.callsPerSecond)`
                  : "")
              : "off (console.calls is 0)"}
          </span>
        )
      }
    >
      <form class="filters" onSubmit={(e) => e.preventDefault()}>
        <label>
          hook{" "}
          <select value={filter.hook} onChange={(e) => setFilter({ ...filter, hook: e.currentTarget.value })} name="hook">
            <option value="">all</option>
            {session.hooks.map((hook) => (
              <option>{hook}</option>
            ))}
          </select>
        </label>
        <label>
          outcome{" "}
          <select value={filter.outcome} onChange={(e) => setFilter({ ...filter, outcome: e.currentTarget.value })} name="outcome">
            <option value="">all</option>
            {outcomes.map((outcome) => (
              <option>{outcome}</option>
            ))}
          </select>
        </label>
        <label>
          phone <input name="phone" value={filter.phone} placeholder="digits" onInput={(e) => setFilter({ ...filter, phone: e.currentTarget.value })} />
        </label>
      </form>
      {state && !state.enabled && <p class="muted">The server keeps no calls: set console.calls above 0 in the config to see them here.</p>}
      <div class={selected !== undefined ? "split" : ""}>
        <table class="calls">
          <thead>
            <tr>
              <th>time</th>
              <th>hook</th>
              <th>scripts</th>
              <th>outcome</th>
              <th class="num">ms</th>
            </tr>
          </thead>
          <tbody>
            {calls.length === 0 && (
              <tr>
                <td colSpan={5} class="muted">
                  No calls yet{filter.hook || filter.outcome || filter.phone ? " that match" : ""}.
                </td>
              </tr>
            )}
            {calls.map((call) => (
              <tr key={call.seq} class={call.seq === selected ? "selected" : ""} onClick={() => onSelect(call.seq)} data-seq={call.seq}>
                <td>{time(call.at)}</td>
                <td>{call.hook}</td>
                <td>{call.scripts.join(", ") || <span class="muted">—</span>}</td>
                <td>
                  <Badge value={call.outcome} />
                </td>
                <td class="num">{ms(call.ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {selected !== undefined && <Detail seq={selected} onTry={onTry} />}
      </div>
    </Section>
  );
}
