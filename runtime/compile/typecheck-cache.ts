import { createHash } from "node:crypto";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { codeRoot } from "../paths.js";
import { cacheDir } from "./cache-dir.js";
import { writeFileAtomicSync } from "../util/write-atomic.js";
import { tsFilesOf, type TypeProblem } from "./typecheck.js";

/**
 * The type check's results kept on disk between runs of the server, so that a restart (a crash
 * under systemd, a deploy of the same scripts) does not load the compiler again to find what it
 * found before: loading it and checking a folder from nothing costs a cold start 1.5–2.5 s. A
 * result is used only for the very folder it was found in: the key covers the content of every
 * source file of the folder (a type-only helper or a .d.ts can change a script's types without
 * changing its bundle), the SDK's types, the compiler's version and the check's options. Any
 * change, and every result is found again by the compiler. Type checking is not a security
 * boundary (the sandbox is), so a cache that cannot be written or read is only slower.
 */

let toolchain: string | undefined;
/** The SDK's types and the compiler's version: a new callscript or TypeScript invalidates every result. */
function toolchainKey(): string {
  if (toolchain) return toolchain;
  const hash = createHash("sha256");
  const sdk = path.join(codeRoot, "sdk");
  for (const file of tsFilesOf(sdk)) hash.update(file).update("\0").update(readFileSync(file)).update("\0");
  try {
    const version = (createRequire(import.meta.url)("typescript/package.json") as { version: string }).version;
    hash.update(version);
  } catch {
    hash.update("typescript?");
  }
  toolchain = hash.digest("hex");
  return toolchain;
}

/**
 * A folder's key, reused within one turn of the event loop: a start type-checks every script in
 * one burst (one lookup each), and a change on disk cannot be acted on before the next turn.
 */
const recentKeys = new Map<string, string>();

/** Each source file of the folder with its size and modification time: cheap, and changes with any save. */
export function folderStamp(dir: string): string {
  return tsFilesOf(path.resolve(dir))
    .map((file) => {
      try {
        const stats = statSync(file);
        return `${file}:${stats.mtimeMs}:${stats.size}`;
      } catch {
        return `${file}:gone`;
      }
    })
    .join("\n");
}

/**
 * The content of every source file of the folder, with the toolchain: equal keys, equal results.
 * Computed once per turn of the event loop (see recentKeys); `exact` always reads the files.
 */
export function folderKey(dir: string, options: { exact?: boolean } = {}): string {
  const root = path.resolve(dir);
  const recent = recentKeys.get(root);
  if (recent !== undefined && !options.exact) return recent;
  const key = contentKey(root, tsFilesOf(root));
  if (!recentKeys.has(root)) setImmediate(() => recentKeys.delete(root));
  recentKeys.set(root, key);
  return key;
}

function contentKey(root: string, files: readonly string[]): string {
  const hash = createHash("sha256").update(toolchainKey()).update("\0");
  for (const file of files) {
    hash.update(path.relative(root, file)).update("\0");
    try {
      hash.update(readFileSync(file));
    } catch {
      hash.update("gone");
    }
    hash.update("\0");
  }
  return hash.digest("hex");
}

interface Stored {
  key: string;
  /** Problems by file, relative to the folder; every file checked has an entry. */
  results: Record<string, (Omit<TypeProblem, "file"> & { file: string })[]>;
}

const fileOf = (dir: string) => path.join(cacheDir(), `${createHash("sha256").update(path.resolve(dir)).digest("hex").slice(0, 16)}.json`);

export class TypeCheckCache {
  /** The stored results of each folder, when their key is the folder's current one. */
  private readonly loaded = new Map<string, Stored>();

  /** The results for `files` when every one was found for the folder as it is now, else undefined. */
  lookup(dir: string, files: readonly string[]): TypeProblem[] | undefined {
    const root = path.resolve(dir);
    let stored = this.loaded.get(root);
    if (!stored) {
      try {
        stored = JSON.parse(readFileSync(fileOf(root), "utf8")) as Stored;
      } catch {
        return undefined;
      }
      this.loaded.set(root, stored);
    }
    if (stored.key !== folderKey(root)) return undefined;
    const problems: TypeProblem[] = [];
    for (const file of files) {
      const found = stored.results[path.relative(root, file)];
      if (!found) return undefined;
      problems.push(...found.map((problem) => ({ ...problem, file: path.resolve(root, problem.file) })));
    }
    return problems;
  }

  /** Keep the results of `files`, found for the folder with key `key`. */
  store(dir: string, key: string, files: readonly string[], problems: readonly TypeProblem[]): void {
    const root = path.resolve(dir);
    let stored = this.loaded.get(root);
    if (!stored || stored.key !== key) stored = { key, results: {} };
    for (const file of files) stored.results[path.relative(root, file)] = [];
    for (const problem of problems) {
      const relative = path.relative(root, problem.file);
      (stored.results[relative] ??= []).push({ ...problem, file: relative });
    }
    this.loaded.set(root, stored);
    try {
      const target = fileOf(root);
      mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      writeFileAtomicSync(target, JSON.stringify(stored));
    } catch {
      // Only slower next time.
    }
  }
}
