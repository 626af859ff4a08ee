import { describe, expect, it } from "vitest";
import { endsAsWaiting, waitBackstopMs } from "../../runtime/sandbox/time-limit.js";

/**
 * When the host gives up on a call's answer (runtime/sandbox/time-limit.ts). The calls themselves
 * are in sandbox-reasons.test.ts and sandbox-limits.test.ts; this is the rule, at its edges.
 */
describe("a call is ended as waiting for ever", () => {
  const wall = 100;

  it("not before its timeout, however idle its isolate", () => {
    expect(endsAsWaiting(99, 5_000, 0, wall)).toBe(false);
  });

  it("past its timeout, once its isolate ran nothing for as long (200 ms at least)", () => {
    expect(endsAsWaiting(150, 199, 5, wall)).toBe(false);
    expect(endsAsWaiting(250, 200, 5, wall)).toBe(true);
    expect(endsAsWaiting(900, 799, 5, 800)).toBe(false);
    expect(endsAsWaiting(1_600, 800, 5, 800)).toBe(true);
  });

  it("not while idle if its isolate ran to the timeout: isolated-vm stopped it, its answer is on its way", () => {
    expect(endsAsWaiting(1_000, 900, 95, wall)).toBe(false);
    expect(endsAsWaiting(1_548, 774, 774, 774)).toBe(false);
    // It ran 80% of its timeout, then waited: a promise that never settles.
    expect(endsAsWaiting(1_000, 900, 80, wall)).toBe(true);
  });

  it("at the backstop, whatever its isolate did", () => {
    expect(waitBackstopMs(wall)).toBe(1_100);
    expect(endsAsWaiting(1_100, 0, 100, wall)).toBe(true);
    expect(endsAsWaiting(1_099, 0, 100, wall)).toBe(false);
    expect(waitBackstopMs(2_000)).toBe(4_000);
  });
});
