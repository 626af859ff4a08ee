import type { CapabilityHooks, CapabilityHostOptions } from "../capabilities/capabilities.js";
import type { ServerMetrics } from "./metrics.js";

type LogFn = (fields: object, message: string) => void;
export type CapabilityLog = { debug: LogFn; info: LogFn; warn: LogFn; error: LogFn; level: string };

const debugEnabled = (log: CapabilityLog) => log.level === "debug" || log.level === "trace";
const round = (ms: number) => Math.round(ms * 100) / 100;

/**
 * What the server does with each capability request of a script (CapabilityHost's hooks): a
 * metric always; a log line at debug for every fetch and kv operation (origin, method, status or
 * error code, time: never a path, a header or a body, which may hold a client's number or a
 * secret's placeholder); a line at error for a fault (the network failing underneath, the store
 * down, a bug of ours) with its real reason, secret values already masked by the host.
 * `reqId` is the hook request's id, as in the request's own log line.
 */
export function capabilityHooks(log: CapabilityLog, metrics: ServerMetrics): CapabilityHooks {
  return {
    onFetch(event) {
      metrics.fetch(event);
      if (!debugEnabled(log)) return;
      const fields = {
        script: event.script,
        hook: event.hook,
        reqId: event.requestId,
        origin: event.origin,
        method: event.method,
        ...(event.status !== undefined ? { status: event.status } : {}),
        ...(event.code !== undefined ? { code: event.code } : {}),
        ms: round(event.ms),
        ...(event.dropped.length > 0 ? { droppedHeaders: event.dropped } : {}),
      };
      const what = [event.method, event.origin ?? "(refused)"].filter((part) => part !== undefined).join(" ");
      log.debug(fields, `fetch ${what}: ${event.status ?? event.code}`);
    },
    onKv(event) {
      metrics.kv(event);
      if (!debugEnabled(log)) return;
      log.debug(
        { script: event.script, hook: event.hook, reqId: event.requestId, op: event.op, outcome: event.outcome, ms: round(event.ms) },
        `${event.op}: ${event.outcome}`,
      );
    },
    onFault(event) {
      metrics.fault(event);
      log.error(
        { script: event.script, hook: event.hook, reqId: event.requestId, op: event.op, code: event.code, detail: event.detail },
        `${event.script}'s ${event.op} failed underneath (${event.code}): ${event.detail.split("\n")[0]}`,
      );
    },
  };
}

/** The kv store's life in the log: which one opened, and Redis going away and coming back. */
export function storeLog(log: CapabilityLog): Pick<CapabilityHostOptions, "onStoreEvent" | "onStoreOpened"> {
  return {
    onStoreOpened({ description, ready }) {
      if (ready) log.info({ kv: description }, `kv store opened: ${description}`);
      else log.warn({ kv: description }, `kv store ${description} is not reachable yet: kv operations fail as unavailable until it is (reconnecting)`);
    },
    onStoreEvent({ kind, message }) {
      if (kind === "error") log.error({ kv: message }, `kv store unavailable: ${message}; kv operations fail until it is back (reconnecting)`);
      else log.info({ kv: message }, `kv store available again: ${message}`);
    },
  };
}
