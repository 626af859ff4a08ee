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

  take(): Turn {
    const turn = new Turn(++this.handedOver);
    this.turns.push(turn);
    if (this.turns.length === 1) turn.becomeHead();
    return turn;
  }

  settle(turn: Turn): void {
    turn.settled = true;
    while (this.turns.length > 0 && this.turns[0]!.settled) this.turns.shift();
    this.turns[0]?.becomeHead();
    if (this.turns.length === 0 && this.onIdle) {
      const callbacks = this.onIdle;
      this.onIdle = undefined;
      for (const callback of callbacks) callback();
    }
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
