import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Builds dist/ once for the suites that spawn bin/callscript.js as a user would.
    globalSetup: ["test/global-setup.ts"],
    // isolated-vm needs its own process (not a worker thread) and Node 20+ without the startup snapshot.
    pool: "forks",
    execArgv: ["--no-node-snapshot"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
