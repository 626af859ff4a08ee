import { z } from "zod";

/** Per-script limits. A script asks for some in defineScript; the server's maxima bound them. */
export const limitsSchema = z.strictObject({
  timeoutMs: z
    .number()
    .int()
    .positive()
    .describe(
      "CPU time of one invocation, ms (one that waits for a promise that never settles is ended once this has passed and its isolate has run nothing for max(200 ms, this))",
    ),
  memoryMb: z.number().int().min(8).describe("Heap of the script's isolate, MB (isolated-vm's minimum is 8)"),
  outputBytes: z.number().int().positive().describe("Returned data as JSON, bytes"),
  logBytes: z.number().int().nonnegative().describe("Log volume of one invocation, bytes"),
});
export type Limits = z.output<typeof limitsSchema>;
export const partialLimitsSchema = limitsSchema.partial();
export type PartialLimits = z.output<typeof partialLimitsSchema>;

export const BUILTIN_DEFAULT_LIMITS: Limits = {
  timeoutMs: 250,
  memoryMb: 32,
  outputBytes: 64 * 1024,
  logBytes: 8 * 1024,
};

export const BUILTIN_MAX_LIMITS: Limits = {
  timeoutMs: 5_000,
  memoryMb: 256,
  outputBytes: 1024 * 1024,
  logBytes: 256 * 1024,
};

export interface ResolvedLimits {
  limits: Limits;
  /** What was asked for beyond the maxima, and clamped; shown with the script's state. */
  warnings: string[];
}

/** The limits a script runs with: its own request over the defaults, clamped to the maxima. */
export function resolveLimits(requested: PartialLimits | undefined, defaults: Limits, max: Limits): ResolvedLimits {
  const limits: Limits = { ...defaults };
  const warnings: string[] = [];
  for (const key of Object.keys(limits) as (keyof Limits)[]) {
    const wanted = requested?.[key] ?? defaults[key];
    if (wanted > max[key]) {
      warnings.push(`limits.${key} ${wanted} is over the server's maximum ${max[key]}; using ${max[key]}`);
      limits[key] = max[key];
    } else {
      limits[key] = wanted;
    }
  }
  return { limits, warnings };
}
