import { write, writeSync } from "node:fs";
import sonicBoom, { type SonicBoom, type SonicBoomOpts } from "sonic-boom";

// A CommonJS module: its class is a property of what it exports (ESM sees no named export).
const { SonicBoom: SonicBoomStream } = sonicBoom;

/** A full pipe is retried this many times, 100 ms apart, before its lines are given up. */
const MAX_WRITE_RETRIES = 10;
/** Lines waiting for a stalled reader beyond this are dropped (sonic-boom's `drop` event) rather than held. */
export const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

/** Lines are handed to the stream once this many characters have gathered… */
const BATCH_CHARS = 4096;
/** …or this long after the first of them: no line waits longer to be written. */
const BATCH_MS = 25;

/** pino writes one line per record, each ending in a newline. */
function linesIn(text: string): number {
  let lines = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
  return lines;
}

/** Writes text to fd at once, waiting 100 ms after each EAGAIN (a full pipe) up to MAX_WRITE_RETRIES times. */
function writeNow(fd: number, text: string): void {
  const bytes = Buffer.from(text, "utf8");
  const pause = new Int32Array(new SharedArrayBuffer(4));
  let retries = 0;
  for (let offset = 0; offset < bytes.length;) {
    try {
      offset += writeSync(fd, bytes, offset);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EAGAIN" || ++retries > MAX_WRITE_RETRIES) throw error;
      Atomics.wait(pause, 0, 0, 100);
    }
  }
}

/** A drop episode ends at the first write this long after its last dropped line. */
const CAUGHT_UP_AFTER_MS = 1_000;

export interface LogDestination {
  stream: SonicBoom;
  /** Set once the reader went away (EPIPE) or stalled past the retries: later lines are dropped. */
  readonly broken: Error | undefined;
  /** Lines dropped because the destination was broken or its buffer full (/metrics: callscript_log_lines_dropped_total). */
  readonly droppedLines: number;
}

export interface LogDestinationOptions {
  /** Where the destination says that it drops lines, and when it stops: stderr by default (a journal reads it too). */
  report?: (message: string) => void;
}

/** Asynchronous: a blocking stderr whose reader stalls would otherwise hold the main thread. */
const toStderr = (message: string): void => write(2, `callscript: ${message}\n`, () => undefined);

/**
 * The server's log stream: pino's JSON lines to stdout, written asynchronously, and never a reason
 * for the process not to end. pino's default destination (sonic-boom 4) flushes what is pending
 * at exit with a loop that retries a failed write every 100 ms for ever when the failure is not
 * EAGAIN: with stdout a pipe whose reader had gone (the process that started the server exited),
 * two lines pending at exit (`shutting down`, then the exit) hung the process in that loop, its
 * main thread in Atomics.wait. sonic-boom 5 throws from flushSync on such errors and bounds EAGAIN
 * retries; here a broken destination also stops taking lines, and the flush at exit is one bounded
 * attempt whose failure is ignored.
 */
export function logDestination(fd = 1, { report = toStderr }: LogDestinationOptions = {}): LogDestination {
  // maxWriteRetries is in sonic-boom 5 but not yet in its bundled types.
  const options: SonicBoomOpts & { maxWriteRetries: number } = { fd, sync: false, maxLength: MAX_BUFFERED_BYTES, maxWriteRetries: MAX_WRITE_RETRIES };
  const stream = new SonicBoomStream(options);
  const state = { broken: undefined as Error | undefined, droppedLines: 0 };
  // A reader that does not keep up (a stalled journal, a full pipe nobody reads) costs lines, never
  // the server's memory: sonic-boom drops what would pass MAX_BUFFERED_BYTES. Said when it starts
  // and, with the count, once lines are written again.
  let dropping: { droppedBefore: number; lastAt: number } | undefined;
  stream.on("drop", (text: string) => {
    if (dropping === undefined) {
      dropping = { droppedBefore: state.droppedLines, lastAt: 0 };
      report(
        `the log's reader is not keeping up (${MAX_BUFFERED_BYTES / 1024 / 1024} MB of lines wait): ` +
          "lines are dropped until it catches up (counted in callscript_log_lines_dropped_total)",
      );
    }
    state.droppedLines += linesIn(text);
    dropping.lastAt = performance.now();
  });
  stream.on("write", () => {
    if (dropping === undefined || performance.now() - dropping.lastAt < CAUGHT_UP_AFTER_MS) return;
    report(`the log's reader caught up; ${state.droppedLines - dropping.droppedBefore} lines were dropped meanwhile`);
    dropping = undefined;
  });

  // Lines go to sonic-boom in batches: once BATCH_CHARS have gathered, or BATCH_MS after the first
  // of them. Each sonic-boom write is a task on libuv's thread pool whose completion wakes the
  // event loop, and a fast reader (a journal, /dev/null) finishes it before the next line comes,
  // so at log level info, where every hook request writes a line, the server paid that round trip
  // for every request: 20 µs of the process's CPU per line against 6 in batches
  // (bench/log-lines.mjs); in the server at 16 connections, a saving inside the rounds' spread
  // (docs/benchmarks.md, "Log lines in batches").
  const sendToStream = stream.write.bind(stream);
  let batch = "";
  let batchTimer: NodeJS.Timeout | undefined;
  const takeBatch = (): string => {
    if (batchTimer !== undefined) {
      clearTimeout(batchTimer);
      batchTimer = undefined;
    }
    const text = batch;
    batch = "";
    return text;
  };
  // The batches the stream holds, until its writes have taken their bytes: when the destination
  // breaks, their lines are lost too, and counted.
  const unwritten: { bytes: number; lines: number }[] = [];
  stream.on("write", (bytes: number) => {
    while (bytes > 0 && unwritten.length > 0) {
      const oldest = unwritten[0]!;
      const taken = Math.min(bytes, oldest.bytes);
      oldest.bytes -= taken;
      bytes -= taken;
      if (oldest.bytes === 0) unwritten.shift();
    }
  });
  const handOver = (): void => {
    const text = takeBatch();
    if (text === "") return;
    if (!state.broken) {
      try {
        const droppedBefore = state.droppedLines;
        sendToStream(text);
        // Unless the stream dropped it (a stalled reader, counted by the drop listener).
        if (state.droppedLines === droppedBefore) unwritten.push({ bytes: Buffer.byteLength(text), lines: linesIn(text) });
        return;
      } catch {
        // A destroyed stream throws; outside the call that logged, that would end the server.
      }
    }
    state.droppedLines += linesIn(text);
  };
  stream.write = (line: string): boolean => {
    if (state.broken) {
      state.droppedLines += linesIn(line);
      return true;
    }
    batch += line;
    if (batch.length >= BATCH_CHARS) handOver();
    // Unref'd: a batch never keeps the process alive; the flush at exit writes it.
    else batchTimer ??= setTimeout(handOver, BATCH_MS).unref();
    return true;
  };
  // pino's flush (before an abort, shutdown.ts; after the serving line) and the flush at exit include the batch.
  const flushStream = stream.flush.bind(stream);
  const flushStreamSync = stream.flushSync.bind(stream);
  stream.flush = (callback?: (error?: Error) => unknown) => {
    handOver();
    flushStream(callback);
  };
  // Not through handOver: a write to the stream starts an asynchronous write when none is in
  // flight, which sonic-boom's flushSync then leaves alone, so the batch would wait on libuv's
  // thread pool, and at exit nothing waits for that (a process ending on its own lost its last
  // line so, on a busy machine). The batch follows what the stream holds.
  stream.flushSync = () => {
    const text = takeBatch();
    try {
      flushStreamSync();
      unwritten.length = 0;
      if (text !== "") writeNow(fd, text);
    } catch (error) {
      state.droppedLines += linesIn(text);
      throw error;
    }
  };

  stream.on("error", (error: Error) => {
    if (state.broken) return;
    state.broken = error;
    for (const batch of unwritten.splice(0)) state.droppedLines += batch.lines;
    // Nothing more reaches the reader: lines are counted and dropped instead of piling up, and
    // neither a flush nor the exit waits on it. stderr may still have a reader (a journal).
    stream.flushSync = () => handOver();
    stream.flush = (callback?: (error?: Error) => unknown) => {
      handOver();
      callback?.();
    };
    report(`the log destination failed (${(error as NodeJS.ErrnoException).code ?? error.message}); later log lines are dropped`);
  });
  process.once("exit", () => {
    try {
      stream.flushSync();
    } catch {
      // The reader went away: the lines are lost, the exit is not held up.
    }
  });
  return {
    stream,
    get broken() {
      return state.broken;
    },
    get droppedLines() {
      return state.droppedLines;
    },
  };
}
