import path from "node:path";
import { z } from "zod";
import { sourceOf, sourcesOf, type Config } from "./config.js";
import { describeSource, type ValueSource } from "./config-sources.js";
import { maskSecrets } from "./mask-secrets.js";
import { closest } from "./util/closest.js";

/**
 * The config's `scripts.<name>` checked against the scripts folder and against what each script
 * declares, as strictly as a hook's input: a misspelt script name or settings key would otherwise
 * start without a word, and the settings (black lists, user ids) would never apply.
 */

const scriptsKey = (name: string) => `scripts.${name}`;

/** `scripts.block-client: there is no script block-client.ts in /etc/scripts (did you mean 'block-clients'?)`, one per bad name. */
export function unknownScriptNames(config: Config, scriptNames: readonly string[], scriptsDir = config.scriptsDir): string[] {
  const known = new Set(scriptNames);
  return Object.keys(config.scripts)
    .filter((name) => !known.has(name))
    .map((name) => {
      const suggestion = closest(name, scriptNames);
      const hint = suggestion
        ? ` (did you mean '${suggestion}'?)`
        : scriptNames.length > 0
          ? ` (its scripts: ${scriptNames.join(", ")})`
          : " (it has no scripts)";
      return `${scriptsKey(name)}: there is no script ${name}.ts in ${scriptsDir}${hint}${fromWhere(sourceOf(config, ["scripts", name]))}`;
    });
}

/** `(in /etc/callscript.yaml)`, `(from ${X} in ...)`: where a value was set. */
function fromWhere(source: ValueSource): string {
  switch (source.kind) {
    case "default":
      return "";
    case "file":
      return ` (in ${source.file})`;
    default:
      return ` (from ${describeSource(source)})`;
  }
}

type Kind = "array" | "object" | "string" | "number" | "boolean" | "null";
const kindOf = (value: unknown): Kind =>
  value === null ? "null" : Array.isArray(value) ? "array" : (typeof value as Kind) === "object" ? "object" : (typeof value as Kind);

/**
 * What is wrong with the settings the config gives a script, against the settings the script
 * declares (its `defineScript({ settings })`): keys it does not declare (with the nearest one it
 * does), and values of another kind than the declared default (a string where it declares a list).
 */
export function settingsProblems(
  config: Config,
  name: string,
  declared: Record<string, unknown> | undefined,
  override?: { settings: Record<string, unknown>; from: string },
): string[] {
  const settings = override ? override.settings : config.scripts[name]?.settings;
  if (!settings) return [];
  const declaredKeys = Object.keys(declared ?? {});
  const problems: string[] = [];
  for (const [key, value] of Object.entries(settings)) {
    const at = override ? `settings.${key}` : `${scriptsKey(name)}.settings.${key}`;
    const where = override ? ` (in ${override.from})` : fromWhere(sourceOf(config, at));
    if (!Object.hasOwn(declared ?? {}, key)) {
      const suggestion = closest(key, declaredKeys);
      const declares = declaredKeys.length > 0 ? `it declares ${declaredKeys.join(", ")}` : "it declares no settings";
      problems.push(`${at}: ${name} has no setting '${key}'${suggestion ? ` (did you mean '${suggestion}'?)` : ""}; ${declares}${where}`);
      continue;
    }
    const expected = kindOf(declared![key]);
    const actual = kindOf(value);
    if (expected !== "null" && actual !== expected) {
      problems.push(`${at}: expected ${article(expected)} as ${name} declares, got ${article(actual)}${where}`);
    }
  }
  return problems;
}

const article = (kind: Kind) => (kind === "array" || kind === "object" ? `an ${kind}` : kind === "null" ? "null" : `a ${kind}`);

/** One setting in force: its value (secrets masked) and where it came from. */
export const settingInForce = z.object({
  value: z.unknown().describe("The value the script runs with; secret-looking values masked"),
  from: z.string().describe("Where it came from: the script's default, the config file, an environment variable"),
});
export type SettingInForce = z.output<typeof settingInForce>;

/**
 * The settings a script runs with, key by key, with where each came from (`NAME.ts`, the config
 * file, an environment variable through `${NAME}`), secret-looking values masked: what /scripts shows.
 */
export function settingsInForce(config: Config, name: string, file: string, declared: Record<string, unknown> | undefined): Record<string, SettingInForce> {
  const configured = config.scripts[name]?.settings ?? {};
  const interpolated = sourcesOf(config)?.interpolatedPaths() ?? [];
  /** Paths inside a setting's value that were filled in from the environment. */
  const secretPathsOf = (key: string) => {
    const prefix = `${scriptsKey(name)}.settings.${key}.`;
    return interpolated.filter((at) => at.startsWith(prefix)).map((at) => at.slice(prefix.length).split("."));
  };
  const out: Record<string, SettingInForce> = {};
  for (const [key, value] of Object.entries(declared ?? {})) {
    if (!Object.hasOwn(configured, key)) out[key] = { value: maskSecrets(value, { key }), from: `${path.basename(file)} (its default)` };
  }
  for (const [key, value] of Object.entries(configured)) {
    const at = `${scriptsKey(name)}.settings.${key}`;
    let source = sourceOf(config, at);
    const fromEnv = source.kind === "interpolated" || source.kind === "env";
    const secretPaths = secretPathsOf(key);
    if (!fromEnv && secretPaths.length > 0 && source.kind === "file") {
      // Parts of the value came from the environment: name the variables, not only the file.
      const vars = secretPaths.flatMap((parts) => {
        const inner = sourceOf(config, `${at}.${parts.join(".")}`);
        return inner.kind === "interpolated" ? inner.vars : [];
      });
      source = { kind: "interpolated", file: source.file, vars: [...new Set(vars)] };
    }
    out[key] = {
      value: maskSecrets(value, { key, secret: fromEnv, secretPaths }),
      from: source.kind === "default" ? "the configuration" : describeSource(source),
    };
  }
  return out;
}
