#!/usr/bin/env -S node --no-node-snapshot
// isolated-vm needs Node's startup snapshot off (Node 20+). The shebang asks for it; when this
// file is started some other way (`node bin/callscript.js`), it starts itself again with the flag
// and passes signals on, so that SIGTERM still drains and SIGHUP still reloads.
import { spawn } from "node:child_process";
import module from "node:module";
import os from "node:os";
import { statSync } from "node:fs";
import { fileURLToPath } from "node:url";

/**
 * The command line bundled into one module (runtime/cli/bundle.mjs, part of `npm run build`), which
 * starts sooner than its modules one by one; those when the bundle is missing or older than them
 * (tsc run alone after a change), so that what runs is always what was last compiled.
 */
function commandLine() {
  const modules = new URL("../dist/runtime/cli/main.js", import.meta.url);
  const bundle = new URL("../dist/runtime/callscript.js", import.meta.url);
  try {
    return statSync(bundle).mtimeMs >= statSync(modules).mtimeMs ? bundle.href : modules.href;
  } catch {
    return modules.href;
  }
}

if (!process.execArgv.includes("--no-node-snapshot")) {
  const child = spawn(process.execPath, ["--no-node-snapshot", ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  for (const signal of ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR2"]) {
    process.on(signal, () => child.kill(signal));
  }
  child.on("error", (error) => {
    console.error(`callscript: could not start Node: ${error.message}`);
    process.exit(1);
  });
  child.on("exit", (code, signal) => {
    process.exitCode = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1);
  });
} else {
  try {
    // Before the command line loads, so that its compiled code is kept (Node 22.1+; see cache-dir.ts).
    const { keepCompiledCode } = await import("../dist/runtime/compile/cache-dir.js");
    keepCompiledCode(module.enableCompileCache);
    await import(commandLine());
  } catch (error) {
    // Only a module this file imports (dist/ not built), not a package missing under one of them.
    if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes(`imported from ${fileURLToPath(import.meta.url)}`)) {
      console.error("callscript: the runtime is not built; run `npm run build` in the callscript folder first.");
      process.exit(1);
    }
    throw error;
  }
}
