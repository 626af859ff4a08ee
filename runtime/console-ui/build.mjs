// The console's page (runtime/console-ui) bundled for the browser into dist/console: one ES module
// with Preact, the CodeMirror editor in a chunk of its own (loaded by the Try page), and the CSS.
// No CDN: the server serves these files, so the console works offline. Part of `npm run build`.
import { rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const outdir = path.resolve(here, "..", "..", "dist", "console");

rmSync(outdir, { recursive: true, force: true });
const result = await esbuild.build({
  entryPoints: { console: path.join(here, "main.tsx") },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "browser",
  target: ["es2022", "chrome110", "firefox110", "safari16"],
  jsx: "automatic",
  jsxImportSource: "preact",
  minify: true,
  sourcemap: false,
  legalComments: "none",
  chunkNames: "[name]-[hash]",
  metafile: true,
  logLevel: "warning",
});
const bytes = Object.values(result.metafile.outputs).reduce((sum, output) => sum + output.bytes, 0);
console.log(`console bundle: ${Object.keys(result.metafile.outputs).length} files, ${Math.round(bytes / 1024)} KB in ${path.relative(process.cwd(), outdir)}`);
