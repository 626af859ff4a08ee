import { createHash } from "node:crypto";
import path from "node:path";
import { preludeEntry } from "../paths.js";
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
  runtime ??= bundleRuntime().catch((error: unknown) => {
    runtime = undefined;
    throw error;
  });
  return runtime;
}

async function bundleRuntime(): Promise<GuestRuntime> {
  const prelude = preludeEntry();
  const result = await build({
    stdin: {
      contents:
        `import { bindScript } from ${JSON.stringify(prelude)};\n` +
        `Object.defineProperty(globalThis, ${JSON.stringify(RUNTIME_GLOBAL)}, { value: Object.freeze({ bindScript }) });\n`,
      loader: "ts",
      resolveDir: path.dirname(prelude),
    },
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
    logLevel: "silent",
  });
  const text = result.outputFiles![0]!.text;
  const code = text.endsWith("\n") ? text : `${text}\n`;
  const lines = code.split("\n").length - 1;
  return { code, lines, version: createHash("sha256").update(code).digest("hex").slice(0, 12) };
}
