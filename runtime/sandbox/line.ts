/**
 * One invocation's place in its isolate's line (see InvocationLine). Its head callbacks run once
 * every invocation handed over before it has settled: it is then the one running in the isolate,
 * or the one whose answer is on its way.
 */
export class Turn {
  isHead = false;
  settled = false;
  private onHead: (() => void)[] | undefined;

  constructor(readonly number: number) {}

  /** Run `callback` when this turn is the head: now, if it already is. */
  whenHead(callback: () => void): void {
    if (this.isHead) callback();
    else (this.onHead ??= []).push(callback);
  }

  becomeHead(): void {
    if (this.isHead) return;
    this.isHead = true;
    const callbacks = this.onHead;
    this.onHead = undefined;
    if (callbacks) for (const callback of callbacks) callback();
  }
}

/**
 * The invocations handed to one isolate, in the order isolated-vm runs them (first in, first run,
 * one at a time). The host cannot see when one starts inside the isolate; it knows that the head,
 * the first one not settled, is running or done, so a time limit or a CPU reading that starts at
 * the head never starts before the invocation does.
 */
export class InvocationLine {
  private readonly turns: Turn[] = [];
  private onIdle: (() => void)[] | undefined;
  /** Invocations handed over so far, counted: the number of the latest turn. */
  private handedOver = 0;
  /** Characters of text handed over, and answered, since the line was last idle (see stretchOver). */
  private stretchChars = 0;

  /** `chars`: the text the entry carries into the isolate. */
  take(chars = 0): Turn {
    this.stretchChars += chars;
    const turn = new Turn(++this.handedOver);
    this.turns.push(turn);
    if (this.turns.length === 1) turn.becomeHead();
    return turn;
  }

  settle(turn: Turn): void {
    turn.settled = true;
    while (this.turns.length > 0 && this.turns[0]!.settled) this.turns.shift();
    this.turns[0]?.becomeHead();
    if (this.turns.length === 0) this.stretchChars = 0;
    if (this.turns.length === 0 && this.onIdle) {
      const callbacks = this.onIdle;
      this.onIdle = undefined;
      for (const callback of callbacks) callback();
    }
  }

  /** An answer's text, while the stretch it belongs to lasts. */
  answered(chars: number): void {
    if (this.turns.length > 0) this.stretchChars += chars;
  }

  /**
   * More than `budgetChars` of text went into the isolate, or came out of it, since it last ran out
   * of work. isolated-vm runs an isolate's queued tasks in one go, under one V8 handle scope, until
   * none is left, so everything they handed over stays reachable until then: arguments, answers,
   * and long strings outside the heap that count against its memory limit all the same. A host that
   * hands over new entries before the old ones are done keeps that stretch going; one such (16
   * calls of a 60 KB input in flight) had its 32 MB isolate killed "for memory" every 500 to 1 000
   * calls, with 1 MB of heap in use. The next entry waits for the line to empty instead.
   */
  stretchOver(budgetChars: number): boolean {
    return this.turns.length > 0 && this.stretchChars >= budgetChars;
  }

  /** Nothing handed over is unsettled: the isolate runs nothing of the host's. */
  get idle(): boolean {
    return this.turns.length === 0;
  }

  /** Resolves once nothing handed over is unsettled (at once if so now). */
  whenIdle(): Promise<void> {
    if (this.turns.length === 0) return Promise.resolve();
    return new Promise((resolve) => (this.onIdle ??= []).push(resolve));
  }

  /** Nothing was handed over after this turn. */
  isLast(turn: Turn): boolean {
    return turn.number === this.handedOver;
  }
}
