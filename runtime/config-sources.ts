/**
 * Where each value of the configuration came from, so that a message can name it (the file, an
 * environment variable, a command-line flag), and `${NAME}` interpolation of the file's values
 * from the environment, so that secrets (a CRM webhook, a token) stay out of the file.
 *
 * Interpolation works on any part of the parsed file: server keys, script settings, and whatever
 * later keys hold credentials (secrets, capability grants). A value that came from the
 * environment this way is treated as a secret wherever it is shown (see mask-secrets.ts).
 */

/** A dotted path into the configuration: `scripts.crm.settings.webhook`, `port`. */
export type ConfigPath = string;

export type ValueSource =
  | { kind: "default" }
  | { kind: "file"; file: string }
  | { kind: "env"; name: string }
  | { kind: "flag"; name: string }
  /** A value of the file with `${NAME}` in it, filled in from the environment. */
  | { kind: "interpolated"; file: string; vars: string[] };

/** The sources of one loaded configuration. */
export class ConfigSources {
  /** Values set by the environment, the command line or interpolation, by path. */
  private readonly byPath = new Map<ConfigPath, ValueSource>();

  constructor(
    /** The config file, when there is one. */
    readonly file: string | undefined,
    /** The parsed file (before defaults), to tell a value of the file from a default. */
    private readonly fromFile: Record<string, unknown>,
  ) {}

  set(path: ConfigPath, source: ValueSource): void {
    this.byPath.set(path, source);
  }

  /** The source of the value at `path`: the nearest path set by an override, else the file or the default. */
  of(path: ConfigPath | readonly PropertyKey[]): ValueSource {
    const parts = typeof path === "string" ? path.split(".") : path.map(String);
    for (let length = parts.length; length > 0; length--) {
      const found = this.byPath.get(parts.slice(0, length).join("."));
      if (found) return found;
    }
    if (this.file !== undefined && has(this.fromFile, parts)) return { kind: "file", file: this.file };
    return { kind: "default" };
  }

  /** Paths whose value came from the environment through `${NAME}`: secrets until shown otherwise. */
  interpolatedPaths(): ConfigPath[] {
    return [...this.byPath].filter(([, source]) => source.kind === "interpolated").map(([path]) => path);
  }
}

function has(value: unknown, parts: readonly string[]): boolean {
  let current = value;
  for (const part of parts) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, part)) return false;
    current = (current as Record<string, unknown>)[part];
  }
  return true;
}

/** `the environment variable CALLSCRIPT_PORT`, `--port`, `${BITRIX_WEBHOOK} in /etc/callscript.yaml`. */
export function describeSource(source: ValueSource): string {
  switch (source.kind) {
    case "default":
      return "the default";
    case "file":
      return source.file;
    case "env":
      return `the environment variable ${source.name}`;
    case "flag":
      return `the command line (${source.name})`;
    case "interpolated":
      return `${source.vars.map((name) => `\${${name}}`).join(", ")} in ${source.file}`;
  }
}

/** `${NAME}` or `${NAME:-default}`; `$${` is a literal `${`. */
const PLACEHOLDER = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
/** A `${` that is not a well-formed placeholder, to name it rather than pass it on. */
const MALFORMED = /\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})/;

export interface InterpolationProblem {
  path: ConfigPath;
  message: string;
}

/**
 * Every string of `value` with `${NAME}` replaced by the environment's NAME (`${NAME:-fallback}`
 * when it may be unset or empty). Values stay strings: `port: ${PORT}` is the string "8080",
 * which the schema then refuses, naming the variable (use CALLSCRIPT_PORT for the port).
 * Returns the new value and, per path, the variables it used; an unset variable is a problem.
 */
export function interpolateEnv(value: unknown, env: NodeJS.ProcessEnv): { value: unknown; used: Map<ConfigPath, string[]>; problems: InterpolationProblem[] } {
  const used = new Map<ConfigPath, string[]>();
  const problems: InterpolationProblem[] = [];
  const walk = (node: unknown, at: string[]): unknown => {
    if (typeof node === "string") {
      if (!node.includes("${")) return node;
      const path = at.join(".");
      if (MALFORMED.test(node.replace(/\$\$\{/g, ""))) {
        problems.push({ path, message: "has a '${' that is not a placeholder: write ${NAME} (NAME: letters, digits, _), or $${ for a literal ${" });
        return node;
      }
      const vars: string[] = [];
      const replaced = node.replace(PLACEHOLDER, (match, name: string | undefined, fallback: string | undefined) => {
        if (name === undefined) return "${";
        vars.push(name);
        const given = env[name];
        if (given !== undefined && given !== "") return given;
        if (fallback !== undefined) return fallback;
        problems.push({ path, message: `\${${name}} is not set in the environment (write \${${name}:-fallback} for a value to use when it is not)` });
        return match;
      });
      if (vars.length > 0) used.set(path, vars);
      return replaced;
    }
    if (Array.isArray(node)) return node.map((item, index) => walk(item, [...at, String(index)]));
    if (node !== null && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(node)) out[key] = walk(item, [...at, key]);
      return out;
    }
    return node;
  };
  return { value: walk(value, []), used, problems };
}
