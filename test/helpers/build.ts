import { execSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binPath = path.join(repoRoot, "bin", "callscript.js");

/**
 * Make sure `dist/` is built for tests that spawn `bin/callscript.js`. When a vitest globalSetup
 * (test/global-setup.ts) is wired into vitest.config.ts it has already built; when the file exists
 * but is not wired, it is run here; otherwise `npm run build` runs once.
 */
export async function ensureBuilt(): Promise<void> {
  const setup = path.join(repoRoot, "test", "global-setup.ts");
  if (existsSync(setup)) {
    const vitestConfig = readFileSync(path.join(repoRoot, "vitest.config.ts"), "utf8");
    if (vitestConfig.includes("global-setup")) return;
    const module = (await import(pathToFileURL(setup).href)) as { default?: () => unknown; setup?: () => unknown };
    const run = module.setup ?? module.default;
    if (typeof run === "function") {
      await run();
      return;
    }
  }
  execSync("npm run build", { cwd: repoRoot, stdio: "pipe" });
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/callscript.js ...args`, as a user would run it (no colours: not a terminal). */
export function callscript(args: string[], cwd = repoRoot): CliResult {
  const child = spawnSync(process.execPath, [binPath, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1" },
    timeout: 60_000,
  });
  if (child.error) throw child.error;
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}
