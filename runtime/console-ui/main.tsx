import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { api, setSessionHandlers, type CallDetail, type SessionInfo } from "./api.js";
import { CallsPage } from "./calls.js";
import { ScriptsPage } from "./scripts.js";
import { TryPage, type TryPrefill } from "./try.js";
import "./styles.css";

type Route = { page: "scripts" } | { page: "calls"; seq?: number } | { page: "try" };

function routeOf(hash: string): Route {
  const [page, id] = hash.replace(/^#\/?/, "").split("/");
  if (page === "calls") return id && /^\d+$/.test(id) ? { page, seq: Number(id) } : { page };
  if (page === "try") return { page };
  return { page: "scripts" };
}

function useRoute(): Route {
  const [route, setRoute] = useState(routeOf(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(routeOf(location.hash));
    window.addEventListener("hashchange", onChange);
    return () => window.removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

function Ended() {
  const next = `/console${location.hash}`;
  return (
    <main class="ended">
      <h1>Your console session has ended</h1>
      <p>It expired, or you logged out, or the server restarted.</p>
      <a class="button primary" href={`/console/login?next=${encodeURIComponent(next)}`}>
        Log in again
      </a>
    </main>
  );
}

function App() {
  const route = useRoute();
  const [session, setSession] = useState<SessionInfo | undefined>();
  const [ended, setEnded] = useState(false);
  const [error, setError] = useState<string | undefined>();
  const [prefill, setPrefill] = useState<TryPrefill | undefined>();
  const [scripts, setScripts] = useState<string[]>([]);

  useEffect(() => {
    setSessionHandlers("", () => setEnded(true));
    api.session().then(
      (info) => {
        setSessionHandlers(info.csrf, () => setEnded(true));
        setSession(info);
      },
      (e: Error) => setError(e.message),
    );
  }, []);
  useEffect(() => {
    if (route.page === "try")
      api.scripts().then(
        (answer) => setScripts(answer.scripts.map((script) => script.name)),
        () => undefined,
      );
  }, [route.page]);

  if (ended) return <Ended />;
  if (error) return <p class="error">{error}</p>;
  if (!session) return <p class="muted">loading…</p>;

  const tryCall = (call: CallDetail) => {
    setPrefill({ hook: call.hook, input: call.input, from: `call at ${new Date(call.at).toLocaleTimeString()}${call.redacted ? " (redacted)" : ""}` });
    location.hash = "#/try";
  };
  const logout = async () => {
    await api.logout().catch(() => undefined);
    location.href = "/console/login";
  };
  const tab = (page: Route["page"], label: string) => (
    <a href={`#/${page}`} class={route.page === page ? "active" : ""} aria-current={route.page === page ? "page" : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <nav class="top">
        <strong>callscript</strong>
        {tab("scripts", "Scripts")}
        {tab("calls", "Calls")}
        {tab("try", "Try")}
        <span class="spacer" />
        <a href="/docs" target="_blank" rel="noreferrer">
          API docs
        </a>
        <span class="muted small">v{session.version}</span>
        {session.login && (
          <button class="link" onClick={() => void logout()}>
            Log out
          </button>
        )}
      </nav>
      <main>
        {route.page === "scripts" && <ScriptsPage />}
        {route.page === "calls" && (
          <CallsPage
            session={session}
            selected={route.seq}
            onSelect={(seq) => (location.hash = seq === undefined ? "#/calls" : `#/calls/${seq}`)}
            onTry={tryCall}
          />
        )}
        {route.page === "try" && <TryPage session={session} prefill={prefill} scripts={scripts} />}
      </main>
    </>
  );
}

render(<App />, document.getElementById("app")!);
