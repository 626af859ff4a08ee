// The command line as one module, dist/runtime/callscript.js, which bin/callscript.js starts: Node
// 20 loads each ES module on its own (resolve, read, compile, link) and every CommonJS package of
// them twice (cjs-module-lexer reads it for its exports, then it runs): the bundle holds 125 modules
// of ours and 530 of its packages. Bundled, a server with one script was ready in 655
// against 848 ms (docs/benchmarks.md, "Cold start: the command line in one module"). Bundled from
// tsc's output, so it runs exactly the code the tests import; part of `npm run build`. The bundle
// sits in dist/runtime/ beside paths.js, so that the package's folders are found from it as from
// the modules it holds.
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
  // Packages left as installed, each for a reason: a native addon (isolated-vm's lines); a binary found
  // beside its package (esbuild); files read beside their modules at run time (the API docs'
  // page and its package.json: @fastify/swagger, @fastify/swagger-ui); loaded only by the type
  // checker's worker (typescript, 9 MB) or by a script's first fetch or a Redis store (undici,
  // @redis/client). yaml and the SQLite driver are loaded through createRequire, outside the bundle.
  // pino's transports would look for their worker files beside pino: the log goes to a stream of
  // ours (server/log-destination.ts), never through a transport.
  external: ["isolated-vm-5", "isolated-vm-6", "isolated-vm-7", "esbuild", "typescript", "@fastify/swagger", "@fastify/swagger-ui", "undici", "@redis/client"],
  // CommonJS packages in an ES module call require() for Node's own modules.
  banner: { js: 'import { createRequire as __callscriptRequire } from "node:module"; const require = __callscriptRequire(import.meta.url);' },
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
