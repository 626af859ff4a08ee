import { execFile, execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll } from "vitest";
import { packageRoot } from "../../runtime/paths.js";

/**
 * Scripts kept in git and rolled out as a host does it: a repository the admins push to, and
 * deploy/callscript-scripts-pull.sh (the file that ships, run with sh) fetching it into a bare
 * clone, checking each new commit out beside the old ones and flipping the link `current` to it.
 * callscript serves `<root>/current/scripts`. Removed after the test file.
 */

const run = promisify(execFile);
const made: string[] = [];
afterAll(() => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: "callscript test",
  GIT_AUTHOR_EMAIL: "test@callscript.invalid",
  GIT_COMMITTER_NAME: "callscript test",
  GIT_COMMITTER_EMAIL: "test@callscript.invalid",
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
};

export const PULL_SCRIPT = path.join(packageRoot, "deploy", "callscript-scripts-pull.sh");

export function git(dir: string, ...args: string[]): string {
  return execFileSync("git", ["-C", dir, ...args], { encoding: "utf8", env: GIT_ENV }).trim();
}

/** git without blocking the event loop (a registry in this process keeps serving meanwhile). */
export async function gitAsync(dir: string, ...args: string[]): Promise<string> {
  return (await run("git", ["-C", dir, ...args], { encoding: "utf8", env: GIT_ENV })).stdout.trim();
}

export interface ScriptsRepo {
  /** The repository the admins push to (a work tree; the scripts are in its `scripts/` folder). */
  source: string;
  /** CALLSCRIPT_GIT_ROOT of the pull script: repo/, releases/, current. */
  root: string;
  /** What scriptsDir is set to: `<root>/current/scripts`. */
  scriptsDir: string;
  /** Commit files under scripts/ (`null` deletes one); returns the commit. */
  commit(files: Record<string, string | null>, message?: string): string;
  /** Run deploy/callscript-scripts-pull.sh as the timer does; resolves with what it printed. */
  pull(): Promise<string>;
}

/** A repository with `files` in its first commit, pulled once: `current` leads to that commit. */
export async function scriptsRepo(files: Record<string, string>): Promise<ScriptsRepo> {
  const base = mkdtempSync(path.join(tmpdir(), "callscript-git-"));
  made.push(base);
  const source = path.join(base, "source");
  const root = path.join(base, "host");
  mkdirSync(source);
  mkdirSync(root);
  git(source, "init", "--quiet", "--initial-branch=main");
  const repo: ScriptsRepo = {
    source,
    root,
    scriptsDir: path.join(root, "current", "scripts"),
    commit(changes, message = "scripts") {
      for (const [name, text] of Object.entries(changes)) {
        const file = path.join(source, "scripts", name);
        if (text === null) unlinkSync(file);
        else {
          mkdirSync(path.dirname(file), { recursive: true });
          writeFileSync(file, text);
        }
      }
      git(source, "add", "--all");
      git(source, "commit", "--quiet", "--message", message);
      return git(source, "rev-parse", "HEAD");
    },
    async pull() {
      const { stdout } = await run("sh", [PULL_SCRIPT], { encoding: "utf8", env: { ...GIT_ENV, CALLSCRIPT_GIT_ROOT: root, CALLSCRIPT_GIT_BRANCH: "main" } });
      return stdout.trim();
    },
  };
  repo.commit(files, "first");
  git(root, "clone", "--quiet", "--bare", source, path.join(root, "repo"));
  await repo.pull();
  return repo;
}
