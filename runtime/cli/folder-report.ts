import path from "node:path";
import type { FolderProblem } from "../runner/served-folder.js";
import { displayPath, red } from "./format.js";

/** Scripts of the folder that do not load, each with where and why: the server would run without them. */
export function folderProblemLines(problems: readonly FolderProblem[], scriptsDir: string): string[] {
  return problems.map(({ script, problem }) => {
    const where = problem.location
      ? `${displayPath(path.resolve(scriptsDir, problem.location.file))}:${problem.location.line}:${problem.location.column}`
      : script;
    const [first] = problem.message.split("\n");
    return `${red(`${script} does not ${problem.stage}`)} (${where}): ${first} — the server would run every hook without it`;
  });
}
