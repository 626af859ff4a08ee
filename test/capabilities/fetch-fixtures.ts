import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { isPublicAddress, type ResolvedAddress, type Resolver } from "../../runtime/capabilities/address.js";
import { CapabilityHost, type FaultEvent, type FetchEvent, type KvEvent } from "../../runtime/capabilities/capabilities.js";
import { kvConfigSchema, scriptGrantsSchema, type KvConfig } from "../../runtime/capabilities/config.js";
import type { LiveFetcherOptions } from "../../runtime/capabilities/fetch.js";
import { resolveSecretValues } from "../../runtime/capabilities/secrets.js";
import type { CapabilityCall } from "../../runtime/capabilities/types.js";

/** A CapabilityHost as the server builds it from its config, with its events recorded. */

export interface HostUnderTest {
  host: CapabilityHost;
  fetchEvents: FetchEvent[];
  kvEvents: KvEvent[];
  faults: FaultEvent[];
  /** One op in its own invocation (or in `signal`'s); resolves to the parsed answer. */
  call(op: string, payload: unknown, options?: { script?: string; signal?: AbortSignal }): Promise<unknown>;
  /** The same, for an op that must be refused: resolves to the error. */
  refused(op: string, payload: unknown, options?: { script?: string; signal?: AbortSignal }): Promise<{ code: string; message: string; detail?: string }>;
  close(): Promise<void>;
}

export interface HostOptions {
  /** `scripts.<name>` grants, as the config file gives them. */
  scripts: Record<string, unknown>;
  secrets?: Record<string, string>;
  env?: NodeJS.ProcessEnv;
  kv?: Partial<KvConfig>;
  fetch?: LiveFetcherOptions;
}

export function invocation(script: string, signal: AbortSignal = new AbortController().signal): CapabilityCall {
  return { script, version: "v1", hook: "process_final_params", requestId: "req-1", signal };
}

export function makeHost(options: HostOptions): HostUnderTest {
  const dir = mkdtempSync(path.join(tmpdir(), "callscript-caps-"));
  const fetchEvents: FetchEvent[] = [];
  const kvEvents: KvEvent[] = [];
  const faults: FaultEvent[] = [];
  const scripts = Object.fromEntries(Object.entries(options.scripts).map(([name, grants]) => [name, scriptGrantsSchema.parse(grants)]));
  const host = new CapabilityHost({
    scripts,
    secrets: resolveSecretValues(options.secrets ?? {}, options.env ?? {}),
    kv: kvConfigSchema.parse({ url: "sqlite:kv.sqlite", ...options.kv }),
    baseDir: dir,
    hooks: { onFetch: (event) => fetchEvents.push(event), onKv: (event) => kvEvents.push(event), onFault: (event) => faults.push(event) },
    fetch: options.fetch,
  });
  const firstScript = Object.keys(options.scripts)[0] ?? "script";
  const call = async (op: string, payload: unknown, at: { script?: string; signal?: AbortSignal } = {}) =>
    JSON.parse(
      await host.handle(op, typeof payload === "string" ? payload : JSON.stringify(payload), invocation(at.script ?? firstScript, at.signal)),
    ) as unknown;
  return {
    host,
    fetchEvents,
    kvEvents,
    faults,
    call,
    refused: async (op, payload, at) => {
      try {
        await call(op, payload, at);
      } catch (error) {
        return error as { code: string; message: string; detail?: string };
      }
      throw new Error(`${op} ${JSON.stringify(payload).slice(0, 200)} was not refused`);
    },
    close: async () => {
      await host.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A DNS that answers from a table (and counts the questions), as a hostile or misconfigured one would. */
export function tableResolver(table: Record<string, string | string[] | (() => string | string[])>): Resolver & { asked: string[] } {
  const asked: string[] = [];
  const resolve = async (hostname: string): Promise<ResolvedAddress[]> => {
    asked.push(hostname);
    const entry = table[hostname];
    if (entry === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" });
    const addresses = typeof entry === "function" ? entry() : entry;
    return (Array.isArray(addresses) ? addresses : [addresses]).map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  return Object.assign(resolve, { asked });
}

/**
 * 127.0.0.2 stands for a public server in these tests (the machine may reach nothing but loopback):
 * the address rule is the real one for every other address.
 */
export const STAND_IN_PUBLIC = "127.0.0.2";
export const standInPublic = (address: string) => address === STAND_IN_PUBLIC || isPublicAddress(address);
