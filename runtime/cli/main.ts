import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import path from "node:path";
import { exitCodeOf } from "../errors.js";
import { packageRoot } from "../paths.js";
import { registerCheck } from "./check.js";
import { registerInit } from "./init.js";
import { registerPromote } from "./promote.js";
import { registerRecord } from "./record.js";
import { registerReplay } from "./replay.js";
import { registerRun } from "./run.js";
import { registerServe } from "./serve.js";
import { registerSimulate } from "./simulate.js";
import { registerTest } from "./test.js";

const { version } = JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string };

const program = new Command("callscript")
  .description("Sandboxed TypeScript customization scripts for the telephony–CRM connector")
  .version(version)
  .showHelpAfterError()
  .exitOverride();

registerRun(program);
registerServe(program);
registerTest(program);
registerCheck(program);
registerInit(program);
registerRecord(program);
registerSimulate(program);
registerReplay(program);
registerPromote(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    process.exitCode = error.exitCode === 0 ? 0 : 2;
  } else {
    const coded = error as { code?: string; message?: string };
    console.error(`callscript: ${coded.message ?? String(error)}`);
    process.exitCode = exitCodeOf(error);
  }
}
