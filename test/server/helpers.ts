import { readFileSync } from "node:fs";
import path from "node:path";
import type { LightMyRequestResponse } from "fastify";
import { pino } from "pino";
import { configSchema, type Config, type ConfigInput } from "../../runtime/config.js";
import { packageRoot } from "../../runtime/paths.js";
import { ScriptRegistry } from "../../runtime/registry/registry.js";
import { buildServer, type CallscriptServer } from "../../runtime/server/app.js";
import { scriptsFolder } from "../helpers/scripts.js";

export interface LogLine {
  level: number;
  msg: string;
  reqId?: string;
  [key: string]: unknown;
}

/** pino's numeric levels. */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export interface TestServer {
  app: CallscriptServer;
  registry: ScriptRegistry;
  config: Config;
  dir: string;
  /** Every line the server logged, parsed. */
  logs: LogLine[];
  /** POST a hook's body to this server: see postHook. */
  post(hook: string, body: unknown, headers?: Record<string, string | undefined>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

/**
 * POST a hook's body as the connector does: `body` as JSON (a string is sent as it is, to send
 * what is not JSON), with Content-Type application/json unless `headers` give another one or
 * `undefined` for none.
 */
export function postHook(
  app: CallscriptServer,
  hook: string,
  body: unknown,
  headers: Record<string, string | undefined> = {},
): Promise<LightMyRequestResponse> {
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries({ "content-type": "application/json", ...headers })) if (value !== undefined) sent[name] = value;
  return app.inject({
    method: "POST",
    url: `/hooks/${encodeURIComponent(hook)}`,
    payload: typeof body === "string" ? body : JSON.stringify(body),
    headers: sent,
  });
}

export interface TestServerOptions {
  /** Load the scripts before answering (default true). */
  load?: boolean;
  docs?: boolean;
  /** The console sessions' clock. */
  consoleClock?: () => number;
}

/**
 * A server over a fresh scripts folder with `files`, real isolates and a logger whose lines are
 * kept. The config is the schema's defaults with `config` over them.
 */
export async function startServer(files: Record<string, string>, config: Partial<ConfigInput> = {}, options: TestServerOptions = {}): Promise<TestServer> {
  const dir = scriptsFolder(files);
  const parsed = configSchema.parse({ watch: false, ...config, scriptsDir: dir });
  const logs: LogLine[] = [];
  const logger = pino({ level: parsed.logLevel }, { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) });
  const registry = new ScriptRegistry(parsed, logger);
  const app = buildServer({
    config: parsed,
    registry,
    logger,
    docs: options.docs ?? false,
    processMetrics: false,
    ...(options.consoleClock ? { consoleClock: options.consoleClock } : {}),
  });
  if (options.load ?? true) await registry.loadAll();
  await app.ready();
  return {
    app,
    registry,
    config: parsed,
    dir,
    logs,
    post: (hook, body, headers) => postHook(app, hook, body, headers),
    async close() {
      await app.close();
      await registry.close();
    },
  };
}

/** A recorded hook input from examples/payloads. */
export function payload(name: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path.join(packageRoot, "examples", "payloads", `${name}.json`), "utf8")) as Record<string, unknown>;
}

/** A minimal valid input of process_record_file_path (call_full is optional there). */
export const recordInput = (file = "/var/spool/asterisk/monitor/a.wav") => ({ call_id: "1732612345.1234", path: file });

/** A minimal valid input of process_originate_params. */
export const originateInput = () => ({
  params: { caller_id: "101", channel: "PJSIP/101", context: "from-internal", extension: "89001234567", priority: 1 },
});

/** Prometheus text → value of the sample `name{labels}`, labels matched exactly. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line.trim() === "") continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const label of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) found[label[1]!] = label[2]!;
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(found).length || keys.some((key) => found[key] !== labels[key])) continue;
    return Number(match[3]);
  }
  return undefined;
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
