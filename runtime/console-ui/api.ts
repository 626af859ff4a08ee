import type { CallDetail, CallsPage, ConsoleScripts, PayloadEntry, SessionInfo, TryRequest, TryResult } from "../server/console-schemas.js";

export type {
  CallDetail,
  CallsPage,
  CallSummary,
  ConsoleScript,
  ConsoleScripts,
  InvocationView,
  PayloadEntry,
  SessionInfo,
  TryResult,
} from "../server/console-schemas.js";

/** The server's error body (HttpError), as every failed request of the API sends it. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let csrf = "";
/** Called once the session is gone (expired, logged out, server restarted): the app shows the login. */
let onSessionEnded: () => void = () => undefined;

export function setSessionHandlers(token: string, ended: () => void): void {
  csrf = token;
  onSessionEnded = ended;
}

async function request<T>(method: "GET" | "POST", url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (method === "POST") {
    headers["content-type"] = "application/json";
    headers["x-callscript-csrf"] = csrf;
  }
  const response = await fetch(url, { method, headers, credentials: "same-origin", ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await response.text();
  if (response.status === 401) {
    onSessionEnded();
    throw new ApiError(401, "CS_ERR_UNAUTHORIZED", "Your session has ended");
  }
  if (!response.ok) {
    let code = "CS_ERR_HTTP";
    let message = text || response.statusText;
    try {
      const error = JSON.parse(text) as { code?: string; message?: string };
      code = error.code ?? code;
      message = error.message ?? message;
    } catch {
      // Not JSON: the status text says it.
    }
    throw new ApiError(response.status, code, message);
  }
  const type = response.headers.get("content-type") ?? "";
  return (type.includes("application/json") ? JSON.parse(text) : text) as T;
}

export const api = {
  session: () => request<SessionInfo>("GET", "/console/api/session"),
  logout: () => request<{ ok: true }>("POST", "/console/api/logout", {}),
  scripts: () => request<ConsoleScripts>("GET", "/console/api/scripts"),
  source: (name: string) => request<string>("GET", `/console/api/scripts/${encodeURIComponent(name)}/source`),
  calls: (query: Record<string, string | number | undefined>) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== "") params.set(key, String(value));
    return request<CallsPage>("GET", `/console/api/calls?${params}`);
  },
  call: (seq: number) => request<CallDetail>("GET", `/console/api/calls/${seq}`),
  payloads: (hook: string) => request<{ payloads: PayloadEntry[] }>("GET", `/console/api/payloads?hook=${encodeURIComponent(hook)}`),
  payload: (entry: PayloadEntry) => request<unknown>("GET", `/console/api/payloads/${entry.source}/${encodeURIComponent(entry.file)}`),
  run: (body: TryRequest) => request<TryResult>("POST", "/console/api/try", body),
  saveCase: (body: unknown) => request<{ file: string; cases: number }>("POST", "/console/api/cases", body),
};
