import { copyFileSync, existsSync, renameSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { loadConfig } from "../config.js";
import { UsageError } from "../errors.js";
import { loadScriptFile } from "../registry/load-script.js";
import { previousFileOf, shadowFileOf } from "../registry/variants.js";
import { casesFilesOf } from "../runner/cases.js";
import { displayPath, formatFailure, green, red } from "./format.js";
import { isFolder } from "./inputs.js";

interface PromoteOptions {
  scripts?: string;
  config?: string;
}

/** Exit codes: 0 promoted, 1 the shadow does not load (nothing renamed), 2 the command was wrong. */
export function registerPromote(program: Command): void {
  program
    .command("promote")
    .description("Make NAME.shadow.ts the live version of NAME (the version it replaces is kept as NAME.previous.ts)")
    .argument("<name>", "the script's name (NAME for NAME.ts)")
    .option("--scripts <dir>", "the scripts folder (default: the current folder)")
    .option("--config <file>", "the server's config file, for the limits the shadow is loaded with")
    .action(async (name: string, options: PromoteOptions) => {
      process.exitCode = await promote(name, options);
    });
}

/** The live file of NAME: `NAME.ts`, or `NAME.mts` when that is what there is. */
function liveFileOf(dir: string, name: string): string {
  const mts = path.join(dir, `${name}.mts`);
  return existsSync(shadowFileOf(mts)) || existsSync(mts) ? mts : path.join(dir, `${name}.ts`);
}

async function promote(given: string, options: PromoteOptions): Promise<number> {
  const dir = path.resolve(options.scripts ?? ".");
  if (!isFolder(dir)) throw new UsageError(`The scripts folder ${dir} does not exist`);
  const name = path.basename(given).replace(/(\.shadow)?\.m?ts$/, "");
  const live = liveFileOf(dir, name);
  const shadow = shadowFileOf(live);
  if (!existsSync(shadow)) throw new UsageError(`There is no ${path.basename(shadow)} in ${displayPath(dir)} to promote`);

  // The server would keep the old version serving if the new one did not load; refuse it here.
  const config = loadConfig(options.config ? { file: options.config, overrides: { scriptsDir: dir } } : { overrides: { scriptsDir: dir } });
  const loaded = await loadScriptFile(shadow, dir, config);
  if (!loaded.ok) {
    console.error([`${red(`not promoted: ${path.basename(shadow)} does not ${loaded.stage}`)}`, ...formatFailure(loaded.failure, dir)].join("\n"));
    return 1;
  }
  await loaded.script.sandbox.drainAndDispose();

  const moves: string[] = [];
  // NAME.ts is replaced in one rename (an atomic save for the watcher): it never goes missing, so
  // the server swaps the version in as it does for any save, without unloading it in between.
  if (existsSync(live)) {
    copyFileSync(live, previousFileOf(live));
    moves.push(`${path.basename(live)} → ${path.basename(previousFileOf(live))}`);
  }
  renameSync(shadow, live);
  moves.push(`${path.basename(shadow)} → ${path.basename(live)}`);
  // The shadow's own cases become the script's; the replaced version's go with it.
  const shadowCases = casesFilesOf(shadow);
  for (const cases of shadowCases) {
    const target = cases.replace(/\.shadow(\.cases\.)/, "$1");
    if (existsSync(target)) {
      renameSync(target, target.replace(/(\.cases\.)/, ".previous$1"));
      moves.push(`${path.basename(target)} → ${path.basename(target.replace(/(\.cases\.)/, ".previous$1"))}`);
    }
    renameSync(cases, target);
    moves.push(`${path.basename(cases)} → ${path.basename(target)}`);
  }
  console.log(`${green("promoted")} ${name} in ${displayPath(dir)}: ${moves.join(", ")}`);
  return 0;
}
