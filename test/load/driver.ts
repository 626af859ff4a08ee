import http from "node:http";
import { performance } from "node:perf_hooks";

/** One hook request of the load: where it goes and the body it sends. */
export interface Target {
  hook: string;
  body: Buffer;
  /** Connections that send only this request, one after another (a closed loop each). */
  connections: number;
}

/** One request sent: its answer, or why there was none. */
export interface Sample {
  hook: string;
  /** performance.now() when the request started. */
  at: number;
  /** From the request's start to the last byte of its answer (or to its failure). */
  ms: number;
  status?: number;
  retryAfter?: string;
  /** The answer parsed as JSON; undefined when it was not JSON (a contract violation). */
  body?: unknown;
  text?: string;
  /** A socket error or no answer within the request timeout: the request was not answered. */
  error?: string;
}

export interface LoadOptions {
  /** Base URL of the server, e.g. http://127.0.0.1:8787 */
  address: string;
  targets: readonly Target[];
  durationMs: number;
  /** A request with no answer after this is destroyed and counted as unanswered. */
  requestTimeoutMs?: number;
  /** Stop early (e.g. when the server was killed on purpose). */
  signal?: AbortSignal;
}

export interface LoadResult {
  sent: number;
  answered: number;
  samples: Sample[];
  elapsedMs: number;
}

/** POST `body` to `url` over `agent`; rejects on a socket error or after `timeoutMs` without an answer. */
export function post(
  agent: http.Agent,
  url: URL,
  body: Buffer,
  timeoutMs: number,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        agent,
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: "POST",
        headers: { "content-type": "application/json", "content-length": body.length },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, text: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    request.setTimeout(timeoutMs, () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    request.on("error", reject);
    request.end(body);
  });
}

/**
 * Sustained load: each target gets its own connections, each sending its request one after another
 * over a kept-alive connection until `durationMs` has passed (so that a slow hook does not starve
 * the others of load, as it would if connections went round all the hooks). Every request is
 * counted as sent before it starts and as answered only when a whole HTTP answer came back.
 */
export async function drive(options: LoadOptions): Promise<LoadResult> {
  const { targets, durationMs } = options;
  const connections = targets.reduce((sum, target) => sum + target.connections, 0);
  const timeoutMs = options.requestTimeoutMs ?? 10_000;
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const samples: Sample[] = [];
  let sent = 0;
  const started = performance.now();
  const stopAt = started + durationMs;

  async function loop(target: Target): Promise<void> {
    const url = new URL(`/hooks/${target.hook}`, options.address);
    while (performance.now() < stopAt && !options.signal?.aborted) {
      sent++;
      const at = performance.now();
      try {
        const { status, headers, text } = await post(agent, url, target.body, timeoutMs);
        const sample: Sample = { hook: target.hook, at, ms: performance.now() - at, status, text };
        const retryAfter = headers["retry-after"];
        if (typeof retryAfter === "string") sample.retryAfter = retryAfter;
        try {
          sample.body = JSON.parse(text);
        } catch {
          // Left undefined: not JSON, which the contract check reports.
        }
        samples.push(sample);
      } catch (error) {
        samples.push({ hook: target.hook, at, ms: performance.now() - at, error: (error as Error).message });
      }
    }
  }

  try {
    await Promise.all(targets.flatMap((target) => Array.from({ length: target.connections }, () => loop(target))));
  } finally {
    agent.destroy();
  }
  return { sent, answered: samples.filter((sample) => sample.error === undefined).length, samples, elapsedMs: performance.now() - started };
}

/** Nearest-rank percentile of a list of milliseconds. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The answer's outcome: `success`, the failure reason, or how it broke the contract. */
export function outcomeOf(sample: Sample): string {
  if (sample.error !== undefined) return `unanswered (${sample.error})`;
  const body = sample.body as { state?: unknown; data?: unknown; error?: { reason?: unknown } } | undefined;
  if (body?.state === "success") return "success";
  if (body?.state === "error" && typeof body.error?.reason === "string") return body.error.reason;
  return `HTTP ${sample.status} ${String(sample.text).slice(0, 120)}`;
}

/**
 * Why an answer breaks the hook contract, or undefined when it keeps it: 200 with a success
 * envelope whose data is a non-empty object (no script of the load cancels), or with an error
 * envelope that has a reason, a script and a message; or 503 `overloaded` with Retry-After. Never a
 * 500, never empty data, never an answer that is not JSON.
 */
export function contractBreach(sample: Sample): string | undefined {
  if (sample.error !== undefined) return `no answer: ${sample.error}`;
  const body = sample.body as { state?: unknown; data?: unknown; error?: { reason?: unknown; message?: unknown } } | undefined;
  const shown = `${sample.hook} → HTTP ${sample.status} ${String(sample.text).slice(0, 200)}`;
  if (sample.status === 200) {
    if (body?.state === "success") {
      const data = body.data;
      if (data === null || typeof data !== "object" || Array.isArray(data) || Object.keys(data).length === 0) return `empty or missing data: ${shown}`;
      return undefined;
    }
    if (body?.state === "error" && typeof body.error?.reason === "string" && typeof body.error.message === "string" && body.error.reason !== "overloaded")
      return undefined;
    return `not an answer envelope: ${shown}`;
  }
  if (sample.status === 503) {
    if (body?.state === "error" && body.error?.reason === "overloaded" && sample.retryAfter !== undefined) return undefined;
    return `503 that is not an overloaded answer with Retry-After: ${shown}`;
  }
  return `unexpected status: ${shown}`;
}
