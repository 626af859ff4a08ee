import type { FastifyReply, FastifyRequest } from "fastify";
import { shared } from "./plugin.js";

/**
 * While the server closes, every answer says `Connection: close`. Node's server.close() only ends
 * the connections idle at that moment; one whose request is still running would stay open
 * (kept alive) after its answer, and the close — and so the graceful shutdown — would wait for
 * the client to hang up. With this, the requests in flight get their answers and their
 * connections end right after.
 */
export const drainConnections = shared("callscript-drain", async (app) => {
  let closing = false;
  let inFlight = 0;
  let settled: (() => void) | undefined;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async () => {
    inFlight++;
  });
  app.addHook("onResponse", async () => {
    inFlight--;
    if (inFlight === 0) settled?.();
  });
  // The server's close can complete before the last onResponse hooks (and their log lines) ran.
  app.addHook("onClose", async () => {
    // Bounded: a request whose client went away may never reach onResponse.
    if (inFlight > 0)
      await new Promise<void>((resolve) => {
        settled = resolve;
        setTimeout(resolve, 1_000).unref();
      });
    await new Promise((resolve) => setImmediate(resolve));
  });
  app.addHook("onSend", async (_request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (closing) reply.header("connection", "close");
    return payload;
  });
});
