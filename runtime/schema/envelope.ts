import { z } from "zod";

/** Why an answer is an error. The connector falls back to its default behaviour on any of them. */
export const failureReason = z
  .enum([
    "timeout", // a script ran past its time limit
    "memory", // a script's isolate ran out of heap
    "exception", // a script threw or rejected
    "invalid_output", // a script returned something that is not valid data for the hook
    "overloaded", // the script's queue was full; retry later
    "compile", // the script does not compile or does not load
    "deadline", // the hook's scripts together ran past the request deadline
    "no_data", // the data would be empty without a cancel(), which the connector reads as a cancel
  ])
  .describe("Why the scripts could not produce data");

export const sourceLocation = z.object({
  file: z.string().describe("Path relative to the scripts folder"),
  line: z.number().int(),
  column: z.number().int(),
});
export type SourceLocation = z.output<typeof sourceLocation>;

export const hookFailure = z.object({
  reason: failureReason,
  script: z.string().nullable().describe("The script that failed, or null for the whole request"),
  message: z.string(),
  location: sourceLocation.optional().describe("Where in the script's .ts source, when known"),
  stack: z.string().optional().describe("The stack, mapped to the .ts sources"),
});
export type HookFailure = z.output<typeof hookFailure>;

/** A script that `failurePolicy: skip` stepped over: the answer names it, so that it is not a quiet change. */
export const skippedScript = hookFailure.omit({ stack: true });

export const successAnswer = z.object({
  state: z.literal("success"),
  data: z.record(z.string(), z.unknown()).describe("The hook's data with the scripts' changes; {} only when a script cancelled the request"),
  skipped: z
    .array(skippedScript)
    .optional()
    .describe("With failurePolicy skip: the scripts that failed (or have no version to serve) and changed nothing; absent when none"),
});

export const errorAnswer = z.object({
  state: z.literal("error"),
  error: hookFailure,
});

export const hookAnswer = z.discriminatedUnion("state", [successAnswer, errorAnswer]);
export type HookAnswer = z.output<typeof hookAnswer>;
