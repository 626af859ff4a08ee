import { STATUS_CODES } from "node:http";
import { z } from "zod";
import { kvConfigSchema, type KvConfig, type ScriptGrants } from "./config.js";
import { CapabilityError } from "./errors.js";
import type { Fetcher, FetchContext } from "./fetch.js";
import { byteLength, type FetchAnswer, type PreparedFetch, resolveFetchGrant } from "./fetch-request.js";
import { GrantedCapabilities, type CapabilityHooks, type ResolvedGrants } from "./capabilities.js";
import { MemoryKvBackend } from "./kv/memory.js";
import { KvStore } from "./kv/store.js";
import { parseUrl } from "./origin.js";
import type { Capabilities, CapabilityCall } from "./types.js";

/**
 * Capabilities for the runner's cases (callscript run/test/simulate/replay): fetches answered from
 * the case's list, a KV in memory that starts from the case's `kv`. Everything else is the
 * server's: the same checks of a request against the script's grant (when the runner has a
 * config), the same budgets, limits and error messages.
 *
 * Matching: a request takes the first entry of the list not used yet with the same method and
 * URL (the URL as the script wrote it, with ctx.secret() placeholders, normalised as a URL); each
 * entry answers once, so a script that fetches the same URL twice needs two entries (answered in
 * list order). Calls made concurrently get the same answers as calls made in turn. A request no
 * unused entry matches fails with CS_CAP_FETCH_NOT_FORESEEN naming it.
 */

export const cannedFetchSchema = z
  .strictObject({
    url: z.string().describe("The URL the script fetches, as it writes it (with __callscript_secret_NAME__ where it uses ctx.secret(NAME))"),
    method: z.string().optional().describe("GET when absent"),
    status: z.number().int().min(100).max(599).default(200).describe("The HTTP status of the answer"),
    json: z.unknown().optional().describe("The answer's body as JSON"),
    text: z.string().optional().describe("The answer's body as text"),
    headers: z.record(z.string(), z.string()).optional().describe("The answer's headers"),
  })
  .superRefine((entry, ctx) => {
    if (entry.json !== undefined && entry.text !== undefined) ctx.addIssue({ code: "custom", message: "give json or text, not both" });
    const parsed = parseUrl(entry.url);
    if (!parsed.ok) ctx.addIssue({ code: "custom", path: ["url"], message: `'${entry.url}' ${parsed.problem}` });
  })
  .describe("One answer to one fetch of the script");
export type CannedFetch = z.output<typeof cannedFetchSchema>;
export type CannedFetchInput = z.input<typeof cannedFetchSchema>;

export const cannedKvSchema = z.record(z.string(), z.unknown()).describe("The script's KV at the start of the case: key → JSON value");

/** A request the script made in a canned run, as it made it (placeholders, not values). */
export interface CannedCall {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** Index of the entry that answered it, or undefined when none did. */
  answeredBy: number | undefined;
}

class CannedFetcher implements Fetcher {
  private readonly used: boolean[];
  readonly calls: CannedCall[] = [];
  private readonly keys: string[];

  constructor(private readonly entries: readonly CannedFetch[]) {
    this.used = entries.map(() => false);
    this.keys = entries.map((entry) => {
      const parsed = parseUrl(entry.url);
      if (!parsed.ok) throw new Error(`fetch: '${entry.url}' ${parsed.problem}`);
      return `${(entry.method ?? "GET").toUpperCase()} ${parsed.url.href}`;
    });
  }

  async fetch(prepared: PreparedFetch, context: FetchContext): Promise<FetchAnswer> {
    const key = `${prepared.method} ${prepared.url.href}`;
    const index = this.keys.findIndex((candidate, at) => candidate === key && !this.used[at]);
    this.calls.push({
      method: prepared.method,
      url: prepared.url.href,
      headers: Object.fromEntries(prepared.headers),
      body: prepared.body,
      answeredBy: index < 0 ? undefined : index,
    });
    if (index < 0) {
      const listed = this.keys.filter((candidate) => candidate === key).length;
      const why = listed > 0 ? ` (its ${listed} answer${listed === 1 ? " is" : "s are"} used already: each entry answers one call)` : "";
      throw new CapabilityError(
        "CS_CAP_FETCH_NOT_FORESEEN",
        `fetch: ${key} was not foreseen by the case${why}: add { "url": "${prepared.url.href}"${prepared.method === "GET" ? "" : `, "method": "${prepared.method}"`}, "status": 200, "json": … } to its fetch list`,
      );
    }
    this.used[index] = true;
    const entry = this.entries[index]!;
    const body = entry.json !== undefined ? JSON.stringify(entry.json) : (entry.text ?? "");
    if (byteLength(body) > context.grant.maxResponseBytes) {
      throw new CapabilityError(
        "CS_CAP_FETCH_RESPONSE_TOO_LARGE",
        `fetch: the response of ${prepared.origin.key} is over scripts.${context.script}.fetch.maxResponseBytes (${context.grant.maxResponseBytes} bytes)`,
      );
    }
    const headers: Record<string, string> = {};
    if (entry.json !== undefined) headers["content-type"] = "application/json";
    else if (entry.text !== undefined) headers["content-type"] = "text/plain; charset=utf-8";
    for (const [name, value] of Object.entries(entry.headers ?? {})) headers[name.toLowerCase()] = value;
    return {
      ok: entry.status >= 200 && entry.status < 300,
      status: entry.status,
      statusText: STATUS_CODES[entry.status] ?? "",
      url: prepared.url.href,
      headers,
      body: prepared.method === "HEAD" ? "" : body,
    };
  }

  unused(): CannedFetch[] {
    return this.entries.filter((_, index) => !this.used[index]);
  }

  async close(): Promise<void> {}
}

export interface CannedCapabilitiesOptions {
  /** The script's config name (its KV namespace, and the name in messages). */
  script: string;
  /** The script's grants from the config, when the runner has one: its fetches are checked as the server checks them. Without: any origin, any secret name. */
  grants?: ScriptGrants;
  fetch?: readonly CannedFetchInput[];
  kv?: Readonly<Record<string, unknown>>;
  /** The config's kv limits (the defaults otherwise). */
  kvConfig?: Partial<KvConfig>;
  hooks?: CapabilityHooks;
  now?: () => number;
}

export interface CannedCapabilities extends Capabilities {
  /** Every fetch the script made, in order. */
  calls(): CannedCall[];
  /** Entries of the case no fetch used (a case that foresaw a call the script did not make). */
  unused(): CannedFetch[];
  /** The script's KV now: key → value. */
  kv(): Record<string, unknown>;
}

/** Capabilities for one case of one script. */
export function createCannedCapabilities(options: CannedCapabilitiesOptions): CannedCapabilities {
  const canned = createCannedScriptsCapabilities({
    ...(options.grants !== undefined ? { grants: { [options.script]: options.grants } } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.kv ? { kv: { [options.script]: options.kv } } : {}),
    ...(options.kvConfig ? { kvConfig: options.kvConfig } : {}),
    ...(options.hooks ? { hooks: options.hooks } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  return { handle: canned.handle, calls: canned.calls, unused: canned.unused, kv: () => canned.kv(options.script) };
}

export interface CannedScriptsOptions {
  /**
   * The grants of every script from the config, when the runner has one: each script's fetches
   * are checked as the server checks them, and a script the config gives no grant has none.
   * Without: any origin, any secret name, for every script.
   */
  grants?: Readonly<Record<string, ScriptGrants | undefined>>;
  /** One list for all the scripts: a fetch takes the first unused entry of its method and URL, whichever script makes it. */
  fetch?: readonly CannedFetchInput[];
  /** Each script's KV at the start, by script name. */
  kv?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  kvConfig?: Partial<KvConfig>;
  hooks?: CapabilityHooks;
  now?: () => number;
}

export interface CannedScriptsCapabilities extends Capabilities {
  calls(): CannedCall[];
  unused(): CannedFetch[];
  /** A script's KV now: key → value. */
  kv(script: string): Record<string, unknown>;
}

/**
 * Capabilities for a run of several scripts (a pipeline case, a simulated call): one list of
 * answers, one KV in memory with a namespace per script, each script under its own grants.
 */
export function createCannedScriptsCapabilities(options: CannedScriptsOptions): CannedScriptsCapabilities {
  const entries = z.array(cannedFetchSchema).parse(options.fetch ?? []);
  const kvConfig = kvConfigSchema.parse({ ...options.kvConfig, url: undefined });
  const fetcher = new CannedFetcher(entries);
  const backend = new MemoryKvBackend(options.now);
  for (const [script, values] of Object.entries(options.kv ?? {})) {
    for (const [key, value] of Object.entries(values)) void backend.set(script, key, JSON.stringify(value), undefined, Number.POSITIVE_INFINITY);
  }
  const store = new KvStore(backend, kvConfig);
  // A canned run knows which secrets are granted, not their values: nothing is substituted.
  const resolved = new Map<string, ResolvedGrants>();
  for (const [script, grants] of Object.entries(options.grants ?? {})) {
    resolved.set(script, {
      fetch: grants?.fetch ? resolveFetchGrant(grants.fetch) : undefined,
      secrets: new Map((grants?.secrets ?? []).map((name) => [name, ""])),
    });
  }
  const capabilities = new GrantedCapabilities({
    grantsOf: (script) => resolved.get(script) ?? { fetch: undefined, secrets: new Map() },
    fetcher,
    kv: async () => store,
    kvLimits: kvConfig,
    hooks: options.hooks,
    anyOrigin: options.grants === undefined,
  });
  return {
    handle: (op: string, payloadJson: string, call: CapabilityCall) => capabilities.handle(op, payloadJson, call),
    calls: () => [...fetcher.calls],
    unused: () => fetcher.unused(),
    kv: (script) => backend.snapshot(script),
  };
}
