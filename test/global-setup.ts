import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Build `dist/` once before the suites that spawn `bin/callscript.js` as a user would: tsc's output,
 * the command line bundled from it, and the console's page, which the browser suite opens. tsc
 * emits even when a file has a type error; then the suites still run on what was emitted and the
 * error is shown here (`npm run typecheck` is the gate for types), so that one unfinished file
 * elsewhere does not hide every CLI result.
 */
export function setup(): void {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
  // The console's page (dist/console), for the suites that open it in a browser.
  const page = spawnSync(process.execPath, [path.join(root, "runtime", "console-ui", "build.mjs")], { cwd: root, encoding: "utf8" });
  if (page.status !== 0) console.warn(`the console's bundle did not build:\n${page.stdout}${page.stderr}`);
  const built = spawnSync(process.execPath, [tsc, "-p", "tsconfig.build.json"], { cwd: root, encoding: "utf8" });
  // The command line in one module (bin/callscript.js runs it when it is not older than tsc's output).
  const bundled = spawnSync(process.execPath, [path.join(root, "runtime", "cli", "bundle.mjs")], { cwd: root, encoding: "utf8" });
  if (bundled.status !== 0) throw new Error(`the command line's bundle did not build:\n${bundled.stdout}${bundled.stderr}`);
  if (built.status === 0) return;
  const output = `${built.stdout}${built.stderr}`.trim();
  if (!existsSync(path.join(root, "dist", "runtime", "cli", "main.js"))) {
    throw new Error(`npm run build failed, nothing to run:\n${output}`);
  }
  console.warn(`npm run build reported errors (the suites run on what it emitted):\n${output}`);
}

export default setup;
