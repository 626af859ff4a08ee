import { vi } from "vitest";

/**
 * Poll `predicate` until it gives a truthy value, and return it; fail with `what` (and the last
 * value seen) after `timeoutMs`. The one polling helper of the tests (vitest's vi.waitFor underneath).
 */
export async function waitFor<T>(predicate: () => T | Promise<T>, what: string, timeoutMs = 10_000, intervalMs = 5): Promise<NonNullable<T>> {
  return vi.waitFor(
    async () => {
      const value = await predicate();
      if (!value) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(value)})`);
      return value as NonNullable<T>;
    },
    { timeout: timeoutMs, interval: intervalMs },
  );
}
