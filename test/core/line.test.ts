import { describe, expect, it } from "vitest";
import { InvocationLine } from "../../runtime/sandbox/line.js";

describe("the line of invocations handed to one isolate", () => {
  it("the first turn is the head at once; the next becomes head when every earlier one has settled", () => {
    const line = new InvocationLine();
    const heads: number[] = [];
    const [a, b, c] = [line.take(), line.take(), line.take()];
    for (const turn of [a, b, c]) turn.whenHead(() => heads.push(turn.number));
    expect(heads).toEqual([1]);
    // Settled out of order (it can be, when the head is still finishing): the head stays.
    line.settle(b);
    expect(heads).toEqual([1]);
    expect(c.isHead).toBe(false);
    line.settle(a);
    // b had settled: the head moves past it, to c, and c's callbacks run once.
    expect(heads).toEqual([1, 3]);
    expect(c.isHead).toBe(true);
    line.settle(c);
    const d = line.take();
    expect(d.isHead).toBe(true);
    expect(heads).toEqual([1, 3]);
  });

  it("knows whether anything was handed over after a turn", () => {
    const line = new InvocationLine();
    const a = line.take();
    expect(line.isLast(a)).toBe(true);
    const b = line.take();
    expect(line.isLast(a)).toBe(false);
    expect(line.isLast(b)).toBe(true);
  });

  it("runs a callback given once the turn is already head at once, and each callback once", () => {
    const line = new InvocationLine();
    const a = line.take();
    const b = line.take();
    let calls = 0;
    b.whenHead(() => calls++);
    b.whenHead(() => calls++);
    line.settle(a);
    b.becomeHead();
    expect(calls).toBe(2);
    b.whenHead(() => calls++);
    expect(calls).toBe(3);
  });

  it("counts the text of a stretch, handed over and answered, until nothing is left in the line", () => {
    const line = new InvocationLine();
    const a = line.take(600);
    const b = line.take(300);
    line.answered(100);
    expect(line.stretchOver(1000)).toBe(true);
    expect(line.stretchOver(1001)).toBe(false);
    line.settle(a);
    // b is still in the isolate: the stretch goes on.
    expect(line.stretchOver(1000)).toBe(true);
    line.settle(b);
    // Empty: the isolate's thread is out of work, and the count starts again.
    expect(line.idle).toBe(true);
    expect(line.stretchOver(0)).toBe(false);
    line.answered(5000);
    expect(line.stretchOver(1)).toBe(false);
    line.take(10);
    expect(line.stretchOver(10)).toBe(true);
  });
});
