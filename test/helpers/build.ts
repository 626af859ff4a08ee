import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root. */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const binPath = path.join(repoRoot, "bin", "callscript.js");

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `node bin/callscript.js ...args`, as a user would run it (no colours: not a terminal). */
export function callscript(args: string[], cwd = repoRoot, env: NodeJS.ProcessEnv = {}): CliResult {
  const child = spawnSync(process.execPath, [binPath, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, NO_COLOR: "1", ...env },
    timeout: 60_000,
  });
  if (child.error) throw child.error;
  return { status: child.status, stdout: child.stdout, stderr: child.stderr };
}
