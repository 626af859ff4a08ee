import { existsSync, readdirSync, realpathSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { packageRoot } from "../paths.js";
import { initFolder, payloadsDir } from "../runner/init.js";
import { bold, dim, displayPath, green } from "./format.js";

interface InitOptions {
  force?: boolean;
}

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("Create a scripts folder: tsconfig for completion, a script, its cases and a recorded call")
    .argument("[dir]", "the folder (created if missing)", ".")
    .option("--force", "overwrite files that are already there")
    .action((dir: string, options: InitOptions) => {
      const files = initFolder(dir, { force: options.force ?? false });
      const shown = displayPath(path.resolve(dir));
      const width = Math.max(...files.map((entry) => entry.file.length));
      const script = path.join(shown, files.find((entry) => entry.file.endsWith(".ts") && !entry.file.endsWith(".d.ts"))!.file);
      const payload = path.join(shown, files.find((entry) => entry.file.startsWith("payloads/"))!.file);
      const copied = files.filter((entry) => entry.file.startsWith("payloads/")).length;
      const bundled = readdirSync(payloadsDir).filter((name) => name.endsWith(".json")).length;
      const cli = commandPrefix();
      console.log(
        [
          `${green("created")} ${bold(shown)}`,
          ...files.map((entry) => `  ${entry.file.padEnd(width)}  ${dim(entry.what)}`),
          "",
          `${copied} of the ${bundled} recorded calls that come with callscript are in payloads/; the rest: ${displayPath(payloadsDir)}`,
          "",
          "next",
          `  ${cli} test ${shown}      ${dim("run the cases")}`,
          `  ${cli} check ${shown}     ${dim("type-check against the SDK, compile and load")}`,
          `  ${cli} run ${script} --hook need_registration --input ${payload}`,
          `  ${cli} serve --scripts ${shown}     ${dim("answer the connector (the list is empty: every call is registered as usual)")}`,
        ].join("\n"),
      );
    });
}

/**
 * How the user runs callscript from here, as typed: `npx callscript` in a project whose
 * node_modules/.bin has this callscript (npm puts a dependency's bin there, not on the PATH);
 * `node <path>/bin/callscript.js` from a checkout of callscript itself; `callscript` otherwise
 * (a global install).
 */
function commandPrefix(cwd = process.cwd()): string {
  const ownBin = realpathOrSelf(path.join(packageRoot, "bin", "callscript.js"));
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    const bin = path.join(dir, "node_modules", ".bin", "callscript");
    if (existsSync(bin) && realpathOrSelf(bin) === ownBin) return "npx callscript";
    if (path.dirname(dir) === dir) break;
  }
  if (!packageRoot.split(path.sep).includes("node_modules")) return `node ${displayPath(path.join(packageRoot, "bin", "callscript.js"), cwd)}`;
  return "callscript";
}

function realpathOrSelf(file: string): string {
  try {
    return realpathSync(file);
  } catch {
    return file;
  }
}
