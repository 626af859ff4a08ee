import { performance } from "node:perf_hooks";
import { fetchGrantSchema, parseKvUrl, type KvConfig, type KvLimits, type ScriptGrants } from "./config.js";
import { CapabilityError, isCapabilityError, type CapabilityErrorCode } from "./errors.js";
import { LiveFetcher, type Fetcher, type LiveFetcherOptions } from "./fetch.js";
import { prepareFetch, resolveFetchGrant, type FetchAnswer, type ResolvedFetchGrant } from "./fetch-request.js";
import { openKvBackend } from "./kv/open.js";
import { KvStore, type KvOp } from "./kv/store.js";
import { maskSecretValues, type ResolvedSecret, type SecretValues } from "./secrets.js";
import { isCapabilityOp, type Capabilities, type CapabilityCall } from "./types.js";

/**
 * The Capabilities of the contract: routes each op of an invocation to fetch or kv under the
 * grants of `call.script`, counts the per-invocation budgets (per `call.signal`), and reports every
 * operation to hooks that the server connects to its metrics and log.
 */

export interface FetchEvent {
  script: string;
  hook: string;
  requestId: string;
  /** `https://crm.example` (never a path: it may hold a secret's placeholder, or a client's number). */
  origin: string | undefined;
  method: string | undefined;
  /** The HTTP status, when one came. */
  status: number | undefined;
  /** The refusal or failure, when there was one. */
  code: CapabilityErrorCode | undefined;
  ms: number;
  /** Headers the script gave that were not forwarded (hop-by-hop, Host, …). */
  dropped: string[];
}

export interface KvEvent {
  script: string;
  hook: string;
  requestId: string;
  op: KvOp;
  outcome: "ok" | CapabilityErrorCode;
  ms: number;
}

export interface FaultEvent {
  script: string;
  hook: string;
  requestId: string;
  op: string;
  code: string;
  /** What went wrong underneath, secret values masked: for the server log, not for the script. */
  detail: string;
}

export interface CapabilityHooks {
  onFetch?(event: FetchEvent): void;
  onKv?(event: KvEvent): void;
  /** A failure whose cause is ours or a store's (not the script's), with its real reason. */
  onFault?(event: FaultEvent): void;
}

/** One script's grants, resolved: origins normalised, secret values looked up. */
export interface ResolvedGrants {
  fetch: ResolvedFetchGrant | undefined;
  /** Values of the secrets granted to the script (only those). */
  secrets: SecretValues;
}

const NO_GRANTS: ResolvedGrants = { fetch: undefined, secrets: new Map() };

/** Grants of every script of the config, resolved once per config (re)load. */
export function resolveGrants(
  scripts: Readonly<Record<string, ScriptGrants | undefined>>,
  secrets: ReadonlyMap<string, ResolvedSecret>,
): Map<string, ResolvedGrants> {
  const resolved = new Map<string, ResolvedGrants>();
  for (const [script, grants] of Object.entries(scripts)) {
    if (!grants) continue;
    const values = new Map<string, string>();
    for (const name of grants.secrets ?? []) {
      const secret = secrets.get(name);
      if (secret) values.set(name, secret.value);
    }
    resolved.set(script, { fetch: grants.fetch ? resolveFetchGrant(grants.fetch) : undefined, secrets: values });
  }
  return resolved;
}

interface Budget {
  fetches: number;
  kvOps: number;
}

export interface GrantedCapabilitiesOptions {
  grantsOf: (script: string) => ResolvedGrants;
  fetcher: Fetcher;
  /** The store, opened on first use. */
  kv: () => Promise<KvStore>;
  kvLimits: KvLimits;
  hooks?: CapabilityHooks;
  /** Canned runs without a config: any origin (the case's list is the limit), any secret name. */
  anyOrigin?: boolean;
}

export class GrantedCapabilities implements Capabilities {
  /** Per invocation, by its signal: gone with it. */
  private readonly budgets = new WeakMap<AbortSignal, Budget>();

  constructor(private readonly options: GrantedCapabilitiesOptions) {}

  private budget(signal: AbortSignal): Budget {
    let budget = this.budgets.get(signal);
    if (!budget) this.budgets.set(signal, (budget = { fetches: 0, kvOps: 0 }));
    return budget;
  }

  async handle(op: string, payloadJson: string, call: CapabilityCall): Promise<string> {
    if (!isCapabilityOp(op)) {
      throw new CapabilityError("CS_CAP_UNKNOWN_OP", `'${String(op).slice(0, 40)}' is not a capability (fetch, kv.get, kv.set, kv.delete, kv.incr)`);
    }
    if (call.signal.aborted) throw new CapabilityError("CS_CAP_ABORTED", `${op}: the invocation has ended`);
    return op === "fetch" ? this.fetch(payloadJson, call) : this.kv(op, payloadJson, call);
  }

  private async fetch(payloadJson: string, call: CapabilityCall): Promise<string> {
    const grants = this.options.grantsOf(call.script);
    const started = performance.now();
    let origin: string | undefined;
    let method: string | undefined;
    let dropped: string[] = [];
    const report = (status: number | undefined, code: CapabilityErrorCode | undefined) =>
      this.options.hooks?.onFetch?.({
        script: call.script,
        hook: call.hook,
        requestId: call.requestId,
        origin,
        method,
        status,
        code,
        ms: performance.now() - started,
        dropped,
      });
    try {
      const grant = grants.fetch ?? (this.options.anyOrigin ? DEFAULT_FETCH_GRANT : undefined);
      const budget = this.budget(call.signal);
      const limit = grant?.maxCalls;
      if (limit !== undefined && budget.fetches >= limit) {
        throw new CapabilityError("CS_CAP_FETCH_TOO_MANY_CALLS", `fetch: more than ${limit} fetches in one invocation (scripts.${call.script}.fetch.maxCalls)`);
      }
      budget.fetches++;
      const prepared = prepareFetch(payloadJson, {
        script: call.script,
        grant,
        secrets: this.options.anyOrigin ? [...grants.secrets.keys(), ...secretNamesIn(payloadJson)] : [...grants.secrets.keys()],
        anyOrigin: this.options.anyOrigin,
      });
      origin = prepared.origin.key;
      method = prepared.method;
      dropped = prepared.dropped;
      const answer: FetchAnswer = await this.options.fetcher.fetch(prepared, {
        script: call.script,
        grant: grant!,
        secrets: grants.secrets,
        signal: call.signal,
      });
      report(answer.status, undefined);
      return JSON.stringify(answer);
    } catch (error) {
      const failure = this.failure("fetch", error, call, grants.secrets);
      report(undefined, failure.code);
      throw failure;
    }
  }

  private async kv(op: KvOp, payloadJson: string, call: CapabilityCall): Promise<string> {
    const started = performance.now();
    const report = (outcome: KvEvent["outcome"]) =>
      this.options.hooks?.onKv?.({ script: call.script, hook: call.hook, requestId: call.requestId, op, outcome, ms: performance.now() - started });
    try {
      const budget = this.budget(call.signal);
      const limit = this.options.kvLimits.maxOpsPerInvocation;
      if (budget.kvOps >= limit) {
        throw new CapabilityError("CS_CAP_KV_TOO_MANY_OPS", `${op}: more than ${limit} kv operations in one invocation (kv.maxOpsPerInvocation)`);
      }
      budget.kvOps++;
      let store: KvStore;
      try {
        store = await this.options.kv();
      } catch (error) {
        throw new CapabilityError("CS_CAP_KV_UNAVAILABLE", `${op}: the store is unavailable (the server log says why)`, (error as Error).message);
      }
      const answer = await store.handle(op, payloadJson, call.script, call.signal);
      report("ok");
      return answer;
    } catch (error) {
      const failure = this.failure(op, error, call, NO_GRANTS.secrets);
      report(failure.code);
      throw failure;
    }
  }

  /**
   * A CapabilityError for the script. A fault (a bug of ours, the store unavailable, the network
   * failing underneath) also goes to onFault with its real reason, secret values masked.
   */
  private failure(op: string, error: unknown, call: CapabilityCall, secrets: SecretValues): CapabilityError {
    const failure = isCapabilityError(error)
      ? error
      : new CapabilityError(
          op === "fetch" ? "CS_CAP_FETCH_NETWORK" : "CS_CAP_KV_UNAVAILABLE",
          `${op}: failed inside callscript (the server log says why)`,
          error instanceof Error ? (error.stack ?? error.message) : String(error),
        );
    if (!isCapabilityError(error) || failure.code === "CS_CAP_KV_UNAVAILABLE" || failure.code === "CS_CAP_FETCH_NETWORK") {
      this.options.hooks?.onFault?.({
        script: call.script,
        hook: call.hook,
        requestId: call.requestId,
        op,
        code: failure.code,
        detail: maskSecretValues(failure.detail ?? failure.message, secrets),
      });
    }
    return failure;
  }
}

/** The bounds of a canned run without a config grant: the defaults of fetch. */
const DEFAULT_FETCH_GRANT: ResolvedFetchGrant = resolveFetchGrant(fetchGrantSchema.parse({ allow: [] }));

/** Secret names a canned run without a config accepts: whichever the request names. */
function secretNamesIn(text: string): string[] {
  return [...text.matchAll(/__callscript_secret_([A-Z][A-Z0-9_]*?)__(?![A-Z0-9])/g)].map((match) => match[1]!);
}

export interface CapabilityHostOptions {
  /** `config.scripts`: the capability keys of each script (fetch, secrets). */
  scripts: Readonly<Record<string, ScriptGrants | undefined>>;
  /** resolveSecretValues(config.secrets, process.env). */
  secrets: ReadonlyMap<string, ResolvedSecret>;
  kv: KvConfig;
  /** The folder a relative `sqlite:` file is in: the config file's. */
  baseDir: string;
  hooks?: CapabilityHooks;
  fetch?: LiveFetcherOptions;
  /** Connection trouble of the store (Redis), for the server log. */
  onStoreEvent?: (event: { kind: "error" | "ready"; message: string }) => void;
  /** The store opened (on the first kv operation): which one, e.g. `sqlite (better-sqlite3 12.11.1) /var/lib/callscript/kv.sqlite`; `ready` false for a Redis not reachable yet. */
  onStoreOpened?: (event: { description: string; ready: boolean }) => void;
}

/**
 * The server's capabilities: one network fetcher and one store for every script, the grants of the
 * current config. The store opens on the first kv operation (a config that no script uses kv with
 * creates no file); `openStore()` opens it at once, for a server that wants to fail at startup.
 */
export class CapabilityHost implements Capabilities {
  private grants: Map<string, ResolvedGrants>;
  private readonly fetcher: LiveFetcher;
  private store: Promise<KvStore> | undefined;
  private storeFailedAt = 0;
  private readonly capabilities: GrantedCapabilities;

  constructor(private readonly options: CapabilityHostOptions) {
    const location = parseKvUrl(options.kv.url, options.baseDir);
    if (!location.ok) throw new Error(`kv.url: ${location.problem}`);
    this.grants = resolveGrants(options.scripts, options.secrets);
    this.fetcher = new LiveFetcher(options.fetch);
    this.capabilities = new GrantedCapabilities({
      grantsOf: (script) => this.grants.get(script) ?? NO_GRANTS,
      fetcher: this.fetcher,
      kv: () => this.openStore(),
      kvLimits: options.kv,
      hooks: options.hooks,
    });
  }

  handle(op: string, payloadJson: string, call: CapabilityCall): Promise<string> {
    return this.capabilities.handle(op, payloadJson, call);
  }

  /** New grants after a config reload; invocations already running keep the budgets they have. */
  updateGrants(scripts: Readonly<Record<string, ScriptGrants | undefined>>, secrets: ReadonlyMap<string, ResolvedSecret>): void {
    this.grants = resolveGrants(scripts, secrets);
  }

  /** Whether a script has any grant beyond kv (which every script has). */
  hasFetchGrant(script: string): boolean {
    return this.grants.get(script)?.fetch !== undefined;
  }

  /** The store, opened once; a failed open is retried at most every 5 s. */
  openStore(): Promise<KvStore> {
    if (this.store && !(this.storeFailedAt > 0 && Date.now() - this.storeFailedAt > 5_000)) return this.store;
    const location = parseKvUrl(this.options.kv.url, this.options.baseDir);
    if (!location.ok) return Promise.reject(new Error(location.problem));
    this.storeFailedAt = 0;
    this.store = openKvBackend(location.location, { sweepSeconds: this.options.kv.sweepSeconds, onEvent: this.options.onStoreEvent }).then(
      ({ backend, ready }) => {
        this.options.onStoreOpened?.({ description: backend.description, ready });
        return new KvStore(backend, this.options.kv);
      },
      (error: Error) => {
        this.storeFailedAt = Date.now();
        throw new Error(`cannot open the kv store ${this.options.kv.url.replace(/\/\/[^@/]*@/, "//****@")}: ${error.message}`);
      },
    );
    return this.store;
  }

  async close(): Promise<void> {
    await this.fetcher.close();
    const store = await this.store?.catch(() => undefined);
    await store?.backend.close();
  }
}
