import { z } from "zod";
import { limitsSchema } from "../sandbox/limits.js";
import { hookFailure, sourceLocation } from "../schema/envelope.js";
import { hookNames, type HookName } from "../schema/hooks.js";
import { loadStage } from "../registry/states.js";

/**
 * What the console's API sends and takes: one definition for the server (it parses requests with
 * these) and the page (it imports the types).
 */

const hookName = z.enum(hookNames as [HookName, ...HookName[]]);

export const sessionInfo = z.object({
  /** Whether the server has a token (then the console needs a login). */
  login: z.boolean(),
  csrf: z.string(),
  /** When the session ends, ms since the epoch; null without a token. */
  expiresAt: z.number().nullable(),
  hooks: z.array(z.string()),
  calls: z.object({ capacity: z.number().int(), maxBytes: z.number().int(), perSecond: z.number().int() }),
  redact: z.boolean(),
  saveCases: z.boolean(),
  version: z.string(),
});
export type SessionInfo = z.output<typeof sessionInfo>;

// ---- scripts ------------------------------------------------------------------------------------

/** A line of a script's source around an error, for a code frame. */
export const frameLine = z.object({ line: z.number().int(), text: z.string() });
export type FrameLine = z.output<typeof frameLine>;

/** One point of a script's latency chart: an interval of the sampler. */
export const latencyPoint = z.object({
  at: z.number().describe("End of the interval, ms since the epoch"),
  calls: z.number().int(),
  meanMs: z.number().nullable(),
});
export type LatencyPoint = z.output<typeof latencyPoint>;

/**
 * A script as GET /scripts reports it (whatever fields that has; settings with secrets masked),
 * with what only the console adds: the code frame of its last error and its latency series.
 */
export const consoleScript = z
  .object({
    name: z.string(),
    file: z.string(),
    state: z.string(),
    frame: z.array(frameLine).optional(),
    latency: z.array(latencyPoint),
  })
  .catchall(z.unknown());
export type ConsoleScript = z.output<typeof consoleScript>;

export const consoleScripts = z.object({
  ready: z.boolean(),
  scripts: z.array(consoleScript),
  /** Seconds per latency point. */
  latencyIntervalSeconds: z.number(),
});
export type ConsoleScripts = z.output<typeof consoleScripts>;

// ---- calls --------------------------------------------------------------------------------------

export const callSummary = z.object({
  seq: z.number().int(),
  id: z.string(),
  hook: z.string(),
  at: z.number(),
  ms: z.number(),
  status: z.number().int(),
  outcome: z.string(),
  scripts: z.array(z.string()),
});
export type CallSummary = z.output<typeof callSummary>;

export const logLine = z.object({ level: z.string(), message: z.string(), atMs: z.number() });

/** One script's part in a call (or a Try run): what it returned, logged and used. */
export const invocationView = z.object({
  script: z.string(),
  version: z.string(),
  outcome: z.string().describe("data, none, cancel, or a failure reason"),
  data: z.record(z.string(), z.unknown()).optional(),
  failure: hookFailure.optional(),
  logs: z.object({ lines: z.array(logLine), dropped: z.number().int(), bytes: z.number().int() }),
  stats: z.object({
    wallMs: z.number(),
    cpuMs: z.number(),
    queuedMs: z.number(),
    outputBytes: z.number(),
    logBytes: z.number(),
    heapUsedBytes: z.number().optional(),
  }),
});
export type InvocationView = z.output<typeof invocationView>;

export const callDetail = callSummary.extend({
  input: z.unknown(),
  answer: z.unknown(),
  invocations: z.array(invocationView),
  redacted: z.boolean(),
});
export type CallDetail = z.output<typeof callDetail>;

export const callsPage = z.object({
  calls: z.array(callSummary),
  /** The newest call's seq: the next poll asks for the calls after it. */
  lastSeq: z.number().int(),
  kept: z.number().int(),
  bytes: z.number().int(),
  /** Successful calls not kept since the start, for being over console.callsPerSecond. */
  notKept: z.number().int(),
  /** Whether the server keeps calls at all (console.calls > 0). */
  enabled: z.boolean(),
});
export type CallsPage = z.output<typeof callsPage>;

export const callsQuery = z.object({
  hook: z.string().max(100).optional(),
  outcome: z.string().max(100).optional(),
  phone: z.string().max(40).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

// ---- try ----------------------------------------------------------------------------------------

/** Script names as files of the scripts folder have them: no path, no leading dot. */
export const scriptName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$/, "a script name: letters, digits, _ . - (the file name without .ts)");

export const tryRequest = z.object({
  hook: hookName,
  input: z.record(z.string(), z.unknown()).describe("The hook input, as the connector POSTs it"),
  /** live: the hook's serving scripts; draft: `source` as the script `script`. */
  mode: z.enum(["live", "draft"]),
  script: scriptName.optional(),
  source: z
    .string()
    .max(512 * 1024)
    .optional(),
  /** With a draft: the hook's other live scripts run too, in order (else the draft alone, as `callscript run`). */
  pipeline: z.boolean().default(false),
});
export type TryRequest = z.input<typeof tryRequest>;

export const diagnosticView = z.object({
  message: z.string(),
  location: sourceLocation.optional(),
  lineText: z.string().optional(),
});

export const tryResult = z.object({
  /** What the connector would get. */
  answer: z.unknown(),
  invocations: z.array(invocationView),
  scripts: z.array(z.object({ name: z.string(), version: z.string(), limits: limitsSchema, hooks: z.array(z.string()) })),
  /** The script did not compile or load: nothing ran. */
  stage: loadStage.optional(),
  diagnostics: z.array(diagnosticView).optional(),
  /** The draft has no handler for the hook. */
  unhandled: z.string().optional(),
  ms: z.number(),
});
export type TryResult = z.output<typeof tryResult>;

export const payloadEntry = z.object({
  source: z.enum(["payloads", "record"]),
  file: z.string(),
  hook: z.string(),
});
export type PayloadEntry = z.output<typeof payloadEntry>;

export const saveCaseRequest = z.object({
  /** The script whose cases file gets the case; absent: the folder's pipeline.cases.json. */
  script: scriptName.optional(),
  name: z.string().min(1).max(200),
  hook: hookName,
  input: z.record(z.string(), z.unknown()),
  expect: z.union([
    z.strictObject({ data: z.record(z.string(), z.unknown()) }),
    z.strictObject({ cancel: z.literal(true) }),
    z.strictObject({ error: z.string() }),
  ]),
});
