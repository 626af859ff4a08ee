import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import path from "node:path";
import { packageRoot } from "../paths.js";
import { registerRun } from "./run.js";

const { version } = JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string };

const program = new Command("callscript")
  .description("Sandboxed TypeScript customization scripts for the telephony–CRM connector")
  .version(version)
  .showHelpAfterError()
  .exitOverride();

registerRun(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    const coded = error as { code?: string; message?: string };
    console.error(`callscript: ${coded.message ?? String(error)}`);
    process.exitCode = coded.code === "CS_ERR_USAGE" || coded.code === "CS_ERR_UNKNOWN_HOOK" || coded.code === "CS_ERR_INVALID_INPUT" || coded.code === "CS_ERR_CONFIG" ? 2 : 1;
  }
}
