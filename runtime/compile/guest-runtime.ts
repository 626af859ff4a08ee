import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { codeRoot, preludeEntry } from "../paths.js";
import { build } from "./esbuild-service.js";

/** Where a script's bundle finds the prelude's bindScript: a frozen, non-writable global. */
export const RUNTIME_GLOBAL = "__callscript_runtime";

/**
 * The guest prelude, bundled once per process and run in every context ahead of the script's own
 * bundle (first, so that it captures the intrinsics before any script code runs; see
 * runtime/sandbox/script-context.ts). Kept once on the host rather than inside every script's bundle: 9 KB of code
 * and 7 KB of source map less per loaded script, and half the output for esbuild to write.
 */
export interface GuestRuntime {
  /** The bundle, ending with a newline. */
  code: string;
  /** Lines of `code`: a script's bundle starts on the line after them. */
  lines: number;
  /** Content hash, part of every script's version. */
  version: string;
}

let runtime: Promise<GuestRuntime> | undefined;

export function guestRuntime(): Promise<GuestRuntime> {
  runtime ??= (async () => prebuiltPrelude(codeRoot) ?? fromCode((await bundlePrelude()).code))().catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

/**
 * The prelude as `npm run build` bundled it (runtime/cli/bundle.mjs), beside the modules it was
 * made from: a start then reaches esbuild only for the scripts (a restart whose bundles were all
 * kept, not at all). Used only while every one of those modules still has the content it had
 * then; otherwise (tsc run alone after a change, an unbuilt checkout) the prelude is bundled now.
 */
export const PREBUILT_PRELUDE = "runtime/sandbox/guest/prelude.bundle.json";

interface PrebuiltPrelude {
  code: string;
  /** Each module it was made from, relative to codeRoot, with its content's sha256. */
  inputs: Record<string, string>;
}

const sha256 = (content: string | Buffer) => createHash("sha256").update(content).digest("hex");

/** PREBUILT_PRELUDE under `root` when every module it names has the content it was made from; else undefined. */
export function prebuiltPrelude(root: string): GuestRuntime | undefined {
  try {
    const stored = JSON.parse(readFileSync(path.join(root, PREBUILT_PRELUDE), "utf8")) as Partial<PrebuiltPrelude>;
    if (typeof stored.code !== "string" || typeof stored.inputs !== "object" || stored.inputs === null) return undefined;
    const inputs = Object.entries(stored.inputs);
    if (inputs.length === 0) return undefined;
    for (const [file, hash] of inputs) if (sha256(readFileSync(path.join(root, file))) !== hash) return undefined;
    return fromCode(stored.code);
  } catch {
    return undefined;
  }
}

/** The prelude bundled now, with the modules it was made from (what `npm run build` keeps as PREBUILT_PRELUDE). */
export async function bundlePrelude(): Promise<PrebuiltPrelude> {
  const prelude = preludeEntry();
  const result = await build({
    stdin: {
      contents:
        `import { bindScript } from ${JSON.stringify(prelude)};\n` +
        `Object.defineProperty(globalThis, ${JSON.stringify(RUNTIME_GLOBAL)}, { value: Object.freeze({ bindScript }) });\n`,
      loader: "ts",
      resolveDir: path.dirname(prelude),
    },
    absWorkingDir: codeRoot,
    bundle: true,
    write: false,
    format: "iife",
    platform: "neutral",
    target: "es2022",
    // As the scripts' bundles (compile.ts): strict for the whole source text (the directive opens
    // it), ASCII so that V8 keeps it one byte a character, whitespace minified, names kept.
    banner: { js: '"use strict";' },
    charset: "ascii",
    legalComments: "none",
    minifyWhitespace: true,
    metafile: true,
    logLevel: "silent",
  });
  const inputs: Record<string, string> = {};
  for (const input of Object.keys(result.metafile!.inputs)) {
    if (input.startsWith("<")) continue;
    inputs[input] = sha256(readFileSync(path.join(codeRoot, input)));
  }
  return { code: result.outputFiles![0]!.text, inputs };
}

function fromCode(text: string): GuestRuntime {
  const code = text.endsWith("\n") ? text : `${text}\n`;
  const lines = code.split("\n").length - 1;
  return { code, lines, version: sha256(code).slice(0, 12) };
}
