import path from "node:path";
import type { FolderProblem } from "../runner/served-folder.js";
import { displayPath, red } from "./format.js";

/** Scripts of the folder that do not load, each with where and why: the server would run without them. */
export function folderProblemLines(problems: readonly FolderProblem[], scriptsDir: string): string[] {
  return problems.map(({ script, problem }) => {
    // A compile message starts with its own file:line:col, relative to the scripts folder.
    const [first = ""] = problem.message.split("\n");
    const { location } = problem;
    const prefix = location ? `${location.file}:${location.line}:${location.column}: ` : "";
    const where = location ? `${displayPath(path.resolve(scriptsDir, location.file))}:${location.line}:${location.column}: ` : "";
    const message = prefix && first.startsWith(prefix) ? first.slice(prefix.length) : first;
    return `${red(`${script} does not ${problem.stage}`)}: ${where}${message} — the server would run every hook without it`;
  });
}
