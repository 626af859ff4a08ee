import { useEffect, useRef, useState } from "preact/hooks";
import { api, type CallSummary, type PayloadEntry, type SessionInfo, type TryResult } from "./api.js";
import { Badge, Json, ms, Section, time } from "./common.js";
import type { DraftEditor } from "./editor.js";
import { Invocations } from "./invocations.js";

export interface TryPrefill {
  hook: string;
  input: unknown;
  from: string;
}

const NEW_SCRIPT = `import { defineScript } from "callscript";

export default defineScript({
  hooks: {
    need_registration({ call_full }, { log }) {
      log.info(\`call \${call_full.call_id}\`);
      return undefined; // no change
    },
  },
});
`;

type Mode = "live" | "draft";

/** Where the error of a run is in the draft, if it is in the draft's own file. */
function errorInDraft(result: TryResult, script: string): { line: number; column: number; message: string } | null {
  const file = `${script}.ts`;
  for (const diagnostic of result.diagnostics ?? []) {
    if (diagnostic.location?.file === file) return { ...diagnostic.location, message: diagnostic.message };
  }
  const answer = result.answer as {
    state?: string;
    error?: { script?: string; message: string; location?: { file: string; line: number; column: number } };
  } | null;
  const location = answer?.error?.location;
  if (answer?.state === "error" && location?.file === file && answer.error?.script === script) return { ...location, message: answer.error.message };
  return null;
}

/** What a case saved from this run expects: the answer it got. */
function expectOf(result: TryResult): { data: Record<string, unknown> } | { cancel: true } | { error: string } | undefined {
  const answer = result.answer as { state: string; data?: Record<string, unknown>; error?: { reason: string } } | null;
  if (!answer) return undefined;
  if (answer.state === "error") return { error: answer.error!.reason };
  if (result.invocations.some((invocation) => invocation.outcome === "cancel")) return { cancel: true };
  return { data: answer.data ?? {} };
}

export function TryPage({ session, prefill, scripts }: { session: SessionInfo; prefill?: TryPrefill; scripts: string[] }) {
  const [hook, setHook] = useState(prefill?.hook ?? "need_registration");
  const [inputText, setInputText] = useState(prefill ? JSON.stringify(prefill.input, null, 2) : "");
  const [inputFrom, setInputFrom] = useState(prefill?.from ?? "");
  const [payloads, setPayloads] = useState<PayloadEntry[]>([]);
  const [recent, setRecent] = useState<CallSummary[]>([]);
  const [mode, setMode] = useState<Mode>("live");
  const [script, setScript] = useState("");
  const [pipeline, setPipeline] = useState(false);
  const [result, setResult] = useState<TryResult | undefined>();
  const [error, setError] = useState<string | undefined>();
  const [running, setRunning] = useState(false);
  const [caseName, setCaseName] = useState("");
  const [saved, setSaved] = useState<string | undefined>();
  const editorHost = useRef<HTMLDivElement>(null);
  const editor = useRef<DraftEditor | undefined>(undefined);
  // What the editor, loaded later, must start from: the latest, not what it was when it was asked for.
  const latest = useRef({ script, scripts });
  latest.current = { script, scripts };

  useEffect(() => {
    api.payloads(hook).then(
      (answer) => setPayloads(answer.payloads),
      () => setPayloads([]),
    );
    api.calls({ hook, limit: 20 }).then(
      (page) => setRecent(page.calls),
      () => setRecent([]),
    );
  }, [hook]);

  // The editor (CodeMirror, a chunk of its own) is loaded when a draft is first asked for.
  useEffect(() => {
    if (mode !== "draft" || editor.current || !editorHost.current) return;
    const host = editorHost.current;
    void import("./editor.js").then(({ createEditor }) => {
      if (editor.current) return;
      editor.current = createEditor(host, NEW_SCRIPT, () => setSaved(undefined));
      if (latest.current.script) void loadSource(latest.current.script);
    });
  }, [mode]);
  useEffect(() => () => editor.current?.destroy(), []);

  async function loadSource(name: string) {
    if (!editor.current) return;
    if (!latest.current.scripts.includes(name)) return;
    try {
      editor.current.setText(await api.source(name));
    } catch (e) {
      setError((e as Error).message);
    }
  }

  async function pickPayload(value: string) {
    setError(undefined);
    if (value.startsWith("call:")) {
      const call = await api.call(Number(value.slice(5)));
      setInputText(JSON.stringify(call.input, null, 2));
      setInputFrom(`call at ${time(call.at)}${call.redacted ? " (redacted)" : ""}`);
    } else if (value) {
      const entry = payloads.find((payload) => `${payload.source}/${payload.file}` === value);
      if (!entry) return;
      setInputText(JSON.stringify(await api.payload(entry), null, 2));
      setInputFrom(value);
    }
  }

  async function run() {
    setError(undefined);
    setSaved(undefined);
    let input: unknown;
    try {
      input = JSON.parse(inputText);
    } catch (e) {
      setError(`The input is not JSON: ${(e as Error).message}`);
      return;
    }
    if (input === null || typeof input !== "object" || Array.isArray(input)) {
      setError("The input must be a JSON object (the hook input, as the connector POSTs it)");
      return;
    }
    if (mode === "draft" && !/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(script)) {
      setError("Name the draft: the script's name, the file name without .ts");
      return;
    }
    setRunning(true);
    try {
      const body =
        mode === "draft"
          ? { hook: hook as never, input: input as Record<string, unknown>, mode, script, source: editor.current?.text() ?? "", pipeline }
          : { hook: hook as never, input: input as Record<string, unknown>, mode };
      const ran = await api.run(body);
      setResult(ran);
      if (mode === "draft") editor.current?.markError(errorInDraft(ran, script));
    } catch (e) {
      setResult(undefined);
      setError((e as Error).message);
    } finally {
      setRunning(false);
    }
  }

  async function saveCase() {
    const expect = result && expectOf(result);
    if (!expect) return;
    try {
      const answer = await api.saveCase({
        script: mode === "draft" && !pipeline ? script : undefined,
        name: caseName,
        hook,
        input: JSON.parse(inputText),
        expect,
      });
      setSaved(`saved in ${answer.file} (${answer.cases} cases)`);
    } catch (e) {
      setError((e as Error).message);
    }
  }

  const limits = Object.fromEntries((result?.scripts ?? []).map((entry) => [entry.name, entry.limits]));
  const answer = result?.answer as { state?: string } | null | undefined;
  return (
    <Section title="Try">
      <div class="try-form">
        <label>
          hook{" "}
          <select name="hook" value={hook} onChange={(e) => setHook(e.currentTarget.value)}>
            {session.hooks.map((name) => (
              <option>{name}</option>
            ))}
          </select>
        </label>
        <label>
          input from{" "}
          <select name="payload" value="" onChange={(e) => void pickPayload(e.currentTarget.value)}>
            <option value="">{inputFrom || "pick a recorded payload or a recent call, or paste JSON below"}</option>
            {payloads.length > 0 && (
              <optgroup label="recorded payloads">
                {payloads.map((payload) => (
                  <option value={`${payload.source}/${payload.file}`}>
                    {payload.source}/{payload.file}
                  </option>
                ))}
              </optgroup>
            )}
            {recent.length > 0 && (
              <optgroup label="recent calls">
                {recent.map((call) => (
                  <option value={`call:${call.seq}`}>
                    {time(call.at)} · {call.outcome} · {call.scripts.join(", ") || "no script"}
                  </option>
                ))}
              </optgroup>
            )}
          </select>
        </label>
      </div>
      <textarea
        name="input"
        class="input-json"
        spellcheck={false}
        value={inputText}
        onInput={(e) => setInputText(e.currentTarget.value)}
        placeholder='{ "call_full": { ... } }'
      />
      <div class="try-form">
        <label>
          <input type="radio" name="mode" checked={mode === "live"} onChange={() => setMode("live")} /> the live scripts
        </label>
        <label>
          <input type="radio" name="mode" checked={mode === "draft"} onChange={() => setMode("draft")} /> a draft
        </label>
        {mode === "draft" && (
          <>
            <label>
              as script{" "}
              <input
                name="script"
                list="script-names"
                value={script}
                placeholder="name"
                onChange={(e) => {
                  setScript(e.currentTarget.value);
                  void loadSource(e.currentTarget.value);
                }}
              />
              <datalist id="script-names">
                {scripts.map((name) => (
                  <option value={name} />
                ))}
              </datalist>
            </label>
            <label title="Run the draft in place of the live script of its name, among the hook's other live scripts">
              <input type="checkbox" name="pipeline" checked={pipeline} onChange={(e) => setPipeline(e.currentTarget.checked)} /> with the other live scripts
            </label>
          </>
        )}
        <button class="primary" onClick={() => void run()} disabled={running}>
          {running ? "Running…" : "Run"}
        </button>
      </div>
      <div ref={editorHost} class="editor" hidden={mode !== "draft"} aria-label="draft editor" />
      {mode === "draft" && (
        <p class="muted small">
          The draft runs in a sandbox of its own, compiled as `callscript run` compiles it; the live scripts and their files are not touched.
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {result && (
        <div class="result" aria-label="result">
          <h3>
            Answer {answer?.state && <Badge value={answer.state} />} <span class="muted small">{ms(result.ms)} in all (load, run, dispose)</span>
          </h3>
          {result.unhandled && <p class="error">{result.unhandled}</p>}
          {result.diagnostics && (
            <div class="problem" role="alert">
              <Badge value={`${result.stage} error`} />
              {result.diagnostics.map((diagnostic) => (
                <pre class="message">
                  {diagnostic.location ? `${diagnostic.location.file}:${diagnostic.location.line}:${diagnostic.location.column}: ` : ""}
                  {diagnostic.message}
                </pre>
              ))}
            </div>
          )}
          <Json value={result.answer} label="answer" />
          <h4>Scripts</h4>
          <Invocations invocations={result.invocations} limits={limits} />
          {expectOf(result) && (
            <div class="save-case">
              {session.saveCases ? (
                <>
                  <input name="case-name" placeholder="case name" value={caseName} onInput={(e) => setCaseName(e.currentTarget.value)} />
                  <button onClick={() => void saveCase()} disabled={!caseName}>
                    Save as case
                  </button>{" "}
                  <span class="muted small">
                    into {mode === "draft" && !pipeline ? `${script}.cases.json` : "pipeline.cases.json"}, expecting {JSON.stringify(expectOf(result))}
                  </span>
                  {saved && <span class="good small"> {saved}</span>}
                </>
              ) : (
                <span class="muted small">Saving cases is off: set console.saveCases to true to let the console write the scripts folder.</span>
              )}
            </div>
          )}
        </div>
      )}
    </Section>
  );
}
