import path from "node:path";
import type { Command } from "commander";
import { initFolder } from "../runner/init.js";
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
      console.log(
        [
          `${green("created")} ${bold(shown)}`,
          ...files.map((entry) => `  ${entry.file.padEnd(width)}  ${dim(entry.what)}`),
          "",
          "next",
          `  callscript test ${shown}      ${dim("run the cases")}`,
          `  callscript check ${shown}     ${dim("type-check against the SDK, compile and load")}`,
          `  callscript run ${script} --hook need_registration --input ${payload}`,
        ].join("\n"),
      );
    });
}
