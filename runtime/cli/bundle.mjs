// The command line as one module, dist/runtime/callscript.js, which bin/callscript.js starts: Node
// 20 loads each ES module on its own (resolve, read, compile, link), and `serve` reached some 130
// of ours before it could start the scripts' first esbuild run. One file leaves that to one read
// and one compile (docs/benchmarks.md, "Cold start: the command line in one module"). npm packages
// stay outside it, as installed: several find their own files beside them (the API docs' page,
// isolated-vm's addon, TypeScript's libs). Bundled from tsc's output, so it runs exactly the code
// the tests import; part of `npm run build`. The bundle sits in dist/runtime/ beside paths.js, so
// that the package's folders are found from it as from the modules it holds.
//
// Also the guest prelude, bundled as every isolate runs it, with the hash of each module it was
// made from (compile/guest-runtime.ts uses it only while they are unchanged): a start then runs
// esbuild for the scripts alone.
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const runtime = path.join(root, "dist", "runtime");

// The chunks of an earlier build are named by their content: gone, so that none outlives its bundle.
for (const file of readdirSync(runtime)) if (/^callscript(-[A-Z0-9]+)?\.js(\.map)?$/.test(file)) rmSync(path.join(runtime, file));
const result = await esbuild.build({
  entryPoints: { callscript: path.join(runtime, "cli", "main.js") },
  outdir: runtime,
  // What is imported later (the server's modules, each command's, the Redis store) in chunks of
  // their own, with the packages they import: in one file every package would load at start.
  // Beside the bundle, so that paths.js, in whichever file it lands, finds the package the same way.
  splitting: true,
  chunkNames: "callscript-[hash]",
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  packages: "external",
  // The stack of a fault of ours names the module it came from (node --enable-source-maps).
  sourcemap: "linked",
  legalComments: "none",
  metafile: true,
  logLevel: "warning",
});
const modules = Object.keys(result.metafile.inputs).length;
const outputs = Object.entries(result.metafile.outputs).filter(([file]) => file.endsWith(".js"));
const bytes = outputs.reduce((sum, [, output]) => sum + output.bytes, 0);
console.log(
  `command line bundle: ${modules} modules, ${outputs.length} files, ${Math.round(bytes / 1024)} KB in ${path.relative(process.cwd(), runtime)}/callscript*.js`,
);

const { bundlePrelude, PREBUILT_PRELUDE } = await import(path.join(runtime, "compile", "guest-runtime.js"));
const { releaseEsbuild } = await import(path.join(runtime, "compile", "esbuild-service.js"));
const prelude = await bundlePrelude();
releaseEsbuild();
writeFileSync(path.join(root, "dist", PREBUILT_PRELUDE), JSON.stringify(prelude));
console.log(`guest prelude: ${Math.round(prelude.code.length / 1024)} KB from ${Object.keys(prelude.inputs).length} modules in dist/${PREBUILT_PRELUDE}`);
