import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The package's own files, found the same way whether the runtime runs from its TypeScript
 * sources (tests) or from the compiled `dist/` (the CLI, an installed package).
 */
const here = path.dirname(fileURLToPath(import.meta.url));

/** The folder that holds `sdk/` and `runtime/`: the repo root, or `dist/`. */
export const codeRoot = path.resolve(here, "..");

/** The package root (where package.json is). */
export const packageRoot = path.basename(codeRoot) === "dist" ? path.dirname(codeRoot) : codeRoot;

/** A module of ours by its path without extension, as .ts in the sources or .js when compiled. */
export function ownModule(withoutExtension: string): string {
  for (const extension of [".ts", ".js"]) {
    const candidate = path.join(codeRoot, withoutExtension + extension);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`callscript is incomplete: ${withoutExtension} not found under ${codeRoot}`);
}

export const sdkEntry = () => ownModule("sdk/index");
export const sdkDir = path.join(codeRoot, "sdk");
export const preludeEntry = () => ownModule("runtime/sandbox/guest/prelude");

/**
 * A worker thread's compiled file (`runtime/...` without extension): under dist/, also when the
 * runtime runs from its sources (tests), since a worker runs JavaScript only.
 */
export function workerFile(withoutExtension: string): string {
  const candidate = path.join(packageRoot, "dist", withoutExtension + ".js");
  if (existsSync(candidate)) return candidate;
  throw new Error(`callscript is not built: ${candidate} is missing; run npm run build`);
}
