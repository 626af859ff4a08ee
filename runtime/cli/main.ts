import { Command, CommanderError } from "commander";
import { readFileSync } from "node:fs";
import path from "node:path";
import { exitCodeOf } from "../errors.js";
import { packageRoot } from "../paths.js";

type Register = (program: Command) => void;

/** Each command's module, loaded only when asked for: `serve` then starts without the runner's, the recorder's and the others' code (≈ 40–80 ms of a cold start). */
const commands: Record<string, () => Promise<Register>> = {
  run: async () => (await import("./run.js")).registerRun,
  serve: async () => (await import("./serve.js")).registerServe,
  test: async () => (await import("./test.js")).registerTest,
  check: async () => (await import("./check.js")).registerCheck,
  init: async () => (await import("./init.js")).registerInit,
  record: async () => (await import("./record.js")).registerRecord,
  simulate: async () => (await import("./simulate.js")).registerSimulate,
  replay: async () => (await import("./replay.js")).registerReplay,
  promote: async () => (await import("./promote.js")).registerPromote,
};

/**
 * The command named on the command line alone; every command, in the order help lists them, when
 * none is named or the name is not one (help, a typo that commander answers with the closest name).
 * The program itself takes no option with a value, so the first word not starting with `-` is the command.
 */
async function registersFor(args: readonly string[]): Promise<Register[]> {
  const named = args.find((arg) => !arg.startsWith("-"));
  const load = named !== undefined && Object.hasOwn(commands, named) ? [commands[named]!] : Object.values(commands);
  return Promise.all(load.map((loadRegister) => loadRegister()));
}

const { version } = JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { version: string };

const program = new Command("callscript")
  .description("Sandboxed TypeScript customization scripts for the telephony–CRM connector")
  .version(version)
  .showHelpAfterError()
  .exitOverride();

for (const register of await registersFor(process.argv.slice(2))) register(program);

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
