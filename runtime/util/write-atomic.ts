import { renameSync, rmSync, writeFileSync } from "node:fs";
import { rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { threadId } from "node:worker_threads";

/**
 * Write `text` to `file` so that a reader (a person, `callscript test`, the watcher) sees the old
 * content or the new, never half a file: to a hidden temporary name in the same folder, then
 * renamed over it. The temporary name is this write's own, and is removed when the write fails.
 *
 * Not the write-file-atomic package: it registers signal-exit handlers on the process's signals,
 * which serve.ts's shutdown owns (SIGTERM, SIGINT, SIGHUP); a rename is all these files need.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const temporary = temporaryOf(file);
  try {
    await writeFile(temporary, text);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

/** writeFileAtomic for code that cannot wait (the caches: the type check's, in its worker; the bundles). `mode` of a new file, before the umask. */
export function writeFileAtomicSync(file: string, text: string | Uint8Array, mode?: number): void {
  const temporary = temporaryOf(file);
  try {
    writeFileSync(temporary, text, mode === undefined ? undefined : { mode });
    renameSync(temporary, file);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** Unique to each write: the process, the thread (the type check runs in a worker) and a count. */
let written = 0;
const temporaryOf = (file: string) => path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${threadId}.${++written}.tmp`);
