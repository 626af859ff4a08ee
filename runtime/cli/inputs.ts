import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { scriptNameOf } from "../compile/compile.js";
import { loadConfig, type Config } from "../config.js";
import { unknownScriptNames } from "../config-scripts.js";
import { ConfigError, UsageError } from "../errors.js";
import { isScriptFile } from "../registry/variants.js";

/** A JSON file given on the command line, with a message that says which file and what is wrong. */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${what} ${file} cannot be read: ${code === "ENOENT" ? "no such file" : (code ?? (error as Error).message)}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

export function readJsonObject(file: string, what: string): Record<string, unknown> {
  const value = readJsonFile(file, what);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`${what} ${file} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}

/** Whether a path given on the command line is a folder. */
export function isFolder(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export interface FolderOptions {
  /** The scripts folder (`--scripts`); default: the config's scriptsDir when a config is given, else the current folder. */
  scripts?: string;
  /** The server's config file (`--config`): limits, hook policies, order, settings. */
  config?: string;
}

/** The config `simulate` and `replay` play calls with: the file's, with the scripts folder of the command line. */
export function folderConfig(options: FolderOptions): Config {
  const scriptsDir = options.scripts ?? (options.config === undefined ? "." : undefined);
  const config = loadConfig({
    ...(options.config !== undefined ? { file: options.config } : {}),
    overrides: { scriptsDir, watch: false },
    // Simulated and replayed calls never send a fetch: the secrets' values are not needed.
    secretValues: false,
  });
  if (!isFolder(config.scriptsDir)) throw new UsageError(`The scripts folder ${config.scriptsDir} does not exist (--scripts, or scriptsDir in the config)`);
  checkScriptNames(config, config.scriptsDir, options.config);
  return config;
}

/**
 * Every `scripts.<name>` of the config must name a script of the folder: a misspelt name would run
 * without a word, and its settings would never apply. Exit 2 (a config error), with did-you-mean.
 */
export function checkScriptNames(config: Config, scriptsDir: string, configFile: string | undefined): void {
  let names: string[];
  try {
    names = readdirSync(scriptsDir)
      .map((name) => path.join(scriptsDir, name))
      .filter((file) => isScriptFile(file, scriptsDir))
      .map(scriptNameOf);
  } catch {
    return; // the folder is reported by the command itself
  }
  const problems = unknownScriptNames(config, names, scriptsDir);
  if (problems.length > 0) throw new ConfigError(configFile ?? "the configuration", problems.join("; "));
}
