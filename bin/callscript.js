#!/usr/bin/env node
// isolated-vm needs Node's startup snapshot off (Node 20+); users should not have to know that.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

if (!process.execArgv.includes("--no-node-snapshot")) {
  const child = spawnSync(process.execPath, ["--no-node-snapshot", ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: "inherit",
  });
  if (child.error) {
    console.error(`callscript: could not start Node: ${child.error.message}`);
    process.exit(1);
  }
  if (child.signal) process.kill(process.pid, child.signal);
  process.exit(child.status ?? 1);
}

try {
  await import("../dist/runtime/cli/main.js");
} catch (error) {
  if (error?.code === "ERR_MODULE_NOT_FOUND" && String(error.message).includes("dist/runtime/cli/main.js")) {
    console.error("callscript: the runtime is not built; run `npm run build` in the callscript folder first.");
    process.exit(1);
  }
  throw error;
}
