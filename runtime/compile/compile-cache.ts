import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import * as esbuild from "esbuild";
import { z } from "zod";
import { ownModule, sdkDir } from "../paths.js";
import { writeFileAtomicSync } from "../util/write-atomic.js";
import { cacheDir, ownedAlone } from "./cache-dir.js";

/**
 * Bundles kept on disk between runs of the server, so that a restart with the same scripts (a
 * crash under systemd, a deploy that changed only the config) does not bundle them all again:
 * esbuild spent 0.65–0.8 s of a 500-script cold start of 2.45 s on this machine (docs/benchmarks.md).
 *
 * A bundle is used again only when nothing it was made from changed:
 * - every file esbuild read for it (the script, its helpers, the SDK), by content;
 * - the names of the files of the scripts folder that an import could resolve to: a file added or
 *   removed there (`lib/numbers.ts` beside `lib/numbers/index.ts`) can change what an unchanged
 *   import means, so any such change sets every bundle of the folder aside;
 * - the toolchain: esbuild's version, this module and the compiler's source, the prelude.
 * Otherwise the script is bundled as before. Only bundles that compiled are kept: a failure is
 * always found again, with its message. A cache that cannot be read or written is only slower.
 */

/** One script's bundle as it was made, and what it was made from. */
export interface KeptBundle {
  code: string;
  sourceMap: string;
  /** Files of the scripts folder in the bundle, relative to the folder (CompiledScript.inputs). */
  inputs: string[];
  /** Every file esbuild read for it, absolute. */
  read: string[];
}

/** A byte range [start, end) in the bytes after the store's first line. */
const range = z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).refine(([start, end]) => start <= end, "start after end");

/**
 * The store's first line: what the bundles were made with and from, and where each bundle's code
 * and source map lie in the bytes after that line. Code and maps are kept as they are, not as JSON
 * strings: 500 bundles read in a few milliseconds instead of 47 (JSON.parse of 2.2 MB of escaped text).
 */
const headerSchema = z.object({
  format: z.literal(2),
  toolchain: z.string(),
  listing: z.string(),
  /** SHA-256 of the content of every file any bundle was made from, by absolute path. */
  hashes: z.record(z.string(), z.string()),
  /** By the script's path relative to the folder. */
  bundles: z.record(z.string(), z.object({ inputs: z.array(z.string()), read: z.array(z.string()), code: range, sourceMap: range })),
});
type Header = z.output<typeof headerSchema>;

/** File names an import in the folder could resolve to (esbuild's resolveExtensions, and package.json). */
const RESOLVABLE = /\.(m?ts|m?js|json)$/;

let toolchain: string | undefined;
/** What every bundle depends on besides its own files: esbuild, how this process bundles, the prelude. */
function toolchainKey(preludeVersion: string): string {
  toolchain ??= (() => {
    const hash = createHash("sha256").update(esbuild.version).update("\0");
    // By their place in the package, not beside this module: the command line runs them bundled
    // into one file (runtime/cli/bundle.mjs), made from these very files.
    for (const module of ["runtime/compile/compile", "runtime/compile/import-rules", "runtime/compile/compile-cache"]) {
      try {
        hash.update(readFileSync(ownModule(module)));
      } catch {
        hash.update(`${module}?`);
      }
      hash.update("\0");
    }
    return hash.digest("hex");
  })();
  return createHash("sha256").update(toolchain).update(preludeVersion).digest("hex");
}

/**
 * The names of the folder's resolvable files (and the content of its package.json files), with
 * the content hash of each, and of the SDK's files, as they are before anything is bundled.
 */
function folderSnapshot(root: string): { listing: string; hashes: Map<string, string | undefined> } {
  const listing = createHash("sha256");
  const hashes = new Map<string, string | undefined>();
  const walk = (dir: string, listed: boolean) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      if (entry.name === ".git" || entry.name === "node_modules") continue;
      const file = path.join(dir, entry.name);
      if (entry.isDirectory()) {
        if (listed) listing.update(`${path.relative(root, file)}/\0`);
        walk(file, listed);
      } else if (RESOLVABLE.test(entry.name)) {
        const hash = contentHash(file);
        hashes.set(file, hash);
        if (!listed) continue;
        listing.update(`${path.relative(root, file)}\0`);
        if (entry.name === "package.json") listing.update(hash ?? "gone").update("\0");
      }
    }
  };
  walk(root, true);
  walk(sdkDir, false);
  return { listing: listing.digest("hex"), hashes };
}

function contentHash(file: string): string | undefined {
  try {
    return createHash("sha256").update(readFileSync(file)).digest("hex");
  } catch {
    return undefined;
  }
}

const storeOf = (root: string): string => path.join(cacheDir(), `bundles-${createHash("sha256").update(root).digest("hex").slice(0, 16)}.json`);

/**
 * The bundles of one folder kept by an earlier run, as they can be used now. Made once per batch
 * compile (a cold start, a reload of every script): the folder's listing and the files' hashes are
 * read once for all its scripts.
 */
export class BundleCache {
  /** Content hashes of the folder's and the SDK's files, read before anything was bundled. */
  private readonly hashes: Map<string, string | undefined>;
  private readonly kept = new Map<string, KeptBundle & { hashes: Record<string, string> }>();
  private readonly fresh = new Map<string, KeptBundle & { hashes: Record<string, string> }>();
  private readonly toolchain: string;
  private readonly listing: string;
  /** Whether the store on disk already says what save() would write. */
  private unchanged = true;

  /** `report`: what keeps the store from being used or written (the registry logs it). */
  constructor(
    private readonly root: string,
    preludeVersion: string,
    private readonly report?: (problem: string) => void,
  ) {
    this.toolchain = toolchainKey(preludeVersion);
    ({ listing: this.listing, hashes: this.hashes } = folderSnapshot(root));
    this.read();
  }

  private read(): void {
    const store = storeOf(this.root);
    let bytes: Buffer;
    try {
      // Its code runs in the sandbox as the scripts' own: only a store this user alone could have written.
      if (!ownedAlone(store)) {
        this.report?.(`the bundles kept in ${store} are not used: that file or its folder can be written by another user`);
        throw new Error("not this user's alone");
      }
      bytes = readFileSync(store);
    } catch {
      this.unchanged = false;
      return;
    }
    try {
      const newline = bytes.indexOf(10);
      const header = headerSchema.parse(JSON.parse(bytes.toString("utf8", 0, newline)));
      if (header.toolchain !== this.toolchain || header.listing !== this.listing) throw new Error("another toolchain or folder");
      const size = bytes.length - newline - 1;
      const text = ([start, end]: [number, number]) => {
        if (end > size) throw new Error("a bundle past the store's end");
        return bytes.toString("utf8", newline + 1 + start, newline + 1 + end);
      };
      for (const [script, bundle] of Object.entries(header.bundles)) {
        const hashes = Object.fromEntries(bundle.read.map((file) => [file, header.hashes[file] ?? ""]));
        this.kept.set(script, { code: text(bundle.code), sourceMap: text(bundle.sourceMap), inputs: bundle.inputs, read: bundle.read, hashes });
      }
    } catch {
      // Kept by another callscript or for another folder listing (every bundle is made again), or
      // not a store of ours at all; the next save replaces it.
      this.kept.clear();
      this.unchanged = false;
    }
  }

  /** The kept bundle of `file` (absolute) when every file it was made from is as it was. */
  lookup(file: string): KeptBundle | undefined {
    const script = path.relative(this.root, file);
    const kept = this.kept.get(script);
    if (!kept) return undefined;
    for (const input of kept.read) {
      if (this.hashes.get(input) !== kept.hashes[input]) return undefined;
    }
    this.fresh.set(script, kept);
    return kept;
  }

  /**
   * Keep the bundle of `file` just made from `read` (every file esbuild read for it), when each of
   * them is now as it was before the build: one saved meanwhile may have been read either way.
   * `afterBuild`: the hashes taken since this bundle's build ended, shared by the bundles of one
   * esbuild run, so that the SDK's files are read again once a run, not once a script.
   */
  keep(file: string, bundle: Omit<KeptBundle, "read">, read: readonly string[], afterBuild: Map<string, string | undefined>): void {
    this.unchanged = false;
    const hashes: Record<string, string> = {};
    for (const input of read) {
      const before = this.hashes.get(input);
      if (!afterBuild.has(input)) afterBuild.set(input, contentHash(input));
      if (before === undefined || afterBuild.get(input) !== before) return;
      hashes[input] = before;
    }
    this.fresh.set(path.relative(this.root, file), { ...bundle, read: [...read], hashes });
  }

  /** Write what this batch used and made, in place of what was kept: a script no longer there is dropped. */
  save(): void {
    if (this.unchanged && this.fresh.size === this.kept.size) return;
    const header: Header = { format: 2, toolchain: this.toolchain, listing: this.listing, hashes: {}, bundles: {} };
    const parts: Buffer[] = [];
    let at = 0;
    const place = (text: string): [number, number] => {
      const part = Buffer.from(text, "utf8");
      parts.push(part);
      at += part.length;
      return [at - part.length, at];
    };
    for (const [script, bundle] of this.fresh) {
      Object.assign(header.hashes, bundle.hashes);
      header.bundles[script] = { inputs: bundle.inputs, read: bundle.read, code: place(bundle.code), sourceMap: place(bundle.sourceMap) };
    }
    try {
      const target = storeOf(this.root);
      mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      writeFileAtomicSync(target, Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`, "utf8"), ...parts]), 0o600);
    } catch (error) {
      this.report?.(`the bundles could not be kept in ${cacheDir()} (${(error as Error).message}): the next start bundles every script again`);
    }
  }
}
