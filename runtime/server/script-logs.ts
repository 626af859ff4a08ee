import type { FastifyBaseLogger } from "fastify";
import type { Invocation } from "../sandbox/sandbox.js";
import type { HookName } from "../schema/hooks.js";
import { LOG_LEVELS, type LogLevel } from "../sandbox/protocol.js";

const LEVELS = new Set<string>(LOG_LEVELS);

/**
 * A script's `console` lines into the server log, each at the script's level and tagged with the
 * request (the logger is the request's), hook, script and version. Lines the script wrote past
 * its log limit were dropped in the sandbox; that is said here, with how many, never silently.
 */
export function logScriptLines(log: FastifyBaseLogger, hook: HookName, invocation: Invocation): void {
  const { lines, dropped, droppedBytes } = invocation.logs;
  if (lines.length === 0 && dropped === 0) return;
  const tags = { hook, script: invocation.script, version: invocation.version };
  for (const line of lines) {
    const level: LogLevel = LEVELS.has(line.level) ? line.level : "info";
    log[level]({ ...tags, source: "script", atMs: line.atMs }, line.message);
  }
  if (dropped > 0) {
    log.warn(
      { ...tags, source: "script", dropped, droppedBytes },
      `… ${dropped} ${dropped === 1 ? "line" : "lines"} dropped (${droppedBytes} bytes): over the script's log limit`,
    );
  }
}
