import type { Config } from "./config.js";
import { checkGrants, type ScriptGrants } from "./capabilities/config.js";
import { resolveSecretValues, type ResolvedSecret } from "./capabilities/secrets.js";
import { ConfigError } from "./errors.js";

/**
 * The capability grants of a loaded configuration (docs/capabilities.md): each script's `fetch` and
 * `secrets`, and the secrets' values (the file's `secrets`, then `CALLSCRIPT_SECRET_<NAME>` of the
 * environment). A granted secret without a value is a config error, as a misspelt script name is:
 * `serve` refuses to start with it (exit 2) and a reload with it is refused; a grant that can do
 * nothing is a warning.
 */

export interface ConfigGrants {
  /** The grants of every script the config names (a shadow runs under its script's). */
  scripts: Record<string, ScriptGrants>;
  /** Every secret with a value: never to be logged or shown, only handed to the CapabilityHost. */
  secrets: Map<string, ResolvedSecret>;
  errors: string[];
  warnings: string[];
}

export function scriptGrantsOf(config: Config): Record<string, ScriptGrants> {
  const scripts: Record<string, ScriptGrants> = {};
  for (const [name, entry] of Object.entries(config.scripts)) {
    const grants: ScriptGrants = {};
    if (entry.fetch) grants.fetch = entry.fetch;
    if (entry.secrets) grants.secrets = entry.secrets;
    scripts[name] = grants;
  }
  return scripts;
}

export function configGrants(config: Config, env: NodeJS.ProcessEnv = process.env): ConfigGrants {
  const scripts = scriptGrantsOf(config);
  const secrets = resolveSecretValues(config.secrets, env);
  const { errors, warnings } = checkGrants(scripts, secrets);
  return { scripts, secrets, errors, warnings };
}

/** The grants, or a ConfigError naming every granted secret without a value. */
export function checkedGrants(config: Config, file: string | undefined, env: NodeJS.ProcessEnv = process.env): ConfigGrants {
  const grants = configGrants(config, env);
  if (grants.errors.length > 0) throw new ConfigError(file ?? "the configuration", grants.errors.join("; "));
  return grants;
}

/** The warnings about one script's grants (for its entry in /scripts): they need no secret values. */
export function grantWarningsOf(config: Config, script: string): string[] {
  const entry = config.scripts[script];
  if (!entry?.secrets?.length) return [];
  return checkGrants({ [script]: { ...(entry.fetch ? { fetch: entry.fetch } : {}), secrets: entry.secrets } }, new Map()).warnings;
}
