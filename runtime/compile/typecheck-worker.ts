import { parentPort } from "node:worker_threads";
import { InProcessTypeChecking } from "./typecheck.js";

/**
 * The server's type checker, in a worker thread: checking a script takes tens to hundreds of
 * milliseconds of CPU, which on the main thread would hold every hook request back for as long.
 * Requests are `{ id, dir, files }`; answers `{ id, problems }` or `{ id, error }`.
 */

interface CheckRequest {
  id: number;
  dir: string;
  files: string[];
}

const checking = new InProcessTypeChecking();
const port = parentPort!;

port.on("message", (request: CheckRequest) => {
  checking.check(request.dir, request.files).then(
    (problems) => port.postMessage({ id: request.id, problems }),
    (error: unknown) => port.postMessage({ id: request.id, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  );
});
