// Preloaded into the server by test/load (NODE_OPTIONS="--expose-gc --import=<this file>"): on
// SIGUSR2, a full garbage collection, then one JSON line on stdout with the process' memory, so
// that the test compares what is really retained, not garbage V8 has not collected yet. The
// server's own code is unchanged; production runs without it.
process.on("SIGUSR2", () => {
  globalThis.gc?.();
  globalThis.gc?.();
  const { rss, heapUsed, external } = process.memoryUsage();
  process.stdout.write(`${JSON.stringify({ level: 30, msg: "test: collected", rss, heapUsed, external, at: Date.now() })}\n`);
});
