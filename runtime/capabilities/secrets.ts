import { SECRET_PLACEHOLDER_PREFIX as PREFIX, SECRET_PLACEHOLDER_SUFFIX as SUFFIX } from "./placeholder.js";
/**
 * Secrets never enter the sandbox. `ctx.secret("NAME")` returns the placeholder
 * `__callscript_secret_NAME__` (computed in the guest); the host puts the value in its place only
 * in the URL, header values and body of a fetch to an allowed origin, and only for secrets granted
 * to that script; whatever comes back (URL, headers, body) or goes to a log or an error has every
 * granted value masked back to its placeholder.
 */

export const SECRET_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
/** Something shaped like a placeholder (a name in it for the message): what is left once the granted ones are taken out. */
const LEFTOVER = /__callscript_secret_([A-Z][A-Z0-9_]*?)__(?![A-Z0-9])/;

/** The environment variable that sets secret NAME (over `secrets.NAME` in the file). */
export const SECRET_ENV_PREFIX = "CALLSCRIPT_SECRET_";

export function placeholderOf(name: string): string {
  return `${PREFIX}${name}${SUFFIX}`;
}

/** Values by name (only those granted to one script, where a fetch uses them). */
export type SecretValues = ReadonlyMap<string, string>;

export interface ResolvedSecret {
  value: string;
  /** `secrets.NAME` (the config file) or `CALLSCRIPT_SECRET_NAME` (the environment). */
  from: string;
}

/**
 * Every secret with a value: `secrets` of the config (where `${ENV}` was already filled in), then
 * `CALLSCRIPT_SECRET_<NAME>` of the environment, which wins (as the environment wins over the file
 * for every other key). An empty variable counts as unset.
 */
export function resolveSecretValues(fromConfig: Readonly<Record<string, string>>, env: NodeJS.ProcessEnv): Map<string, ResolvedSecret> {
  const values = new Map<string, ResolvedSecret>();
  for (const [name, value] of Object.entries(fromConfig)) values.set(name, { value, from: `secrets.${name}` });
  for (const [variable, value] of Object.entries(env)) {
    if (!variable.startsWith(SECRET_ENV_PREFIX) || value === undefined || value === "") continue;
    const name = variable.slice(SECRET_ENV_PREFIX.length);
    if (SECRET_NAME.test(name)) values.set(name, { value, from: variable });
  }
  return values;
}

/** Names of placeholders in `text`: granted ones exactly, and the rest as far as they can be told apart. */
export function placeholdersIn(text: string, granted: Iterable<string>): { granted: string[]; other: string[] } {
  if (!text.includes(PREFIX)) return { granted: [], other: [] };
  const found: string[] = [];
  let rest = text;
  // Longest first: the placeholder of A is a prefix of the placeholder of A_.
  for (const name of [...granted].sort((a, b) => b.length - a.length)) {
    const placeholder = placeholderOf(name);
    if (rest.includes(placeholder)) {
      found.push(name);
      rest = rest.split(placeholder).join("\u0000");
    }
  }
  const other = new Set<string>();
  for (let match = LEFTOVER.exec(rest); match; match = LEFTOVER.exec(rest)) {
    other.add(match[1]!);
    rest = rest.slice(match.index + match[0].length);
  }
  if (other.size === 0 && rest.includes(PREFIX)) other.add("(malformed)");
  return { granted: found, other: [...other] };
}

/** How a value is written where its placeholder stands. */
export type SecretEncoding = "raw" | "url" | "json";

function encoded(value: string, encoding: SecretEncoding): string {
  if (encoding === "url") return encodeURIComponent(value);
  if (encoding === "json") return JSON.stringify(value).slice(1, -1);
  return value;
}

/** `text` with the placeholder of each secret of `values` replaced by its value, encoded for where it stands. */
export function substituteSecrets(text: string, values: SecretValues, encoding: SecretEncoding): string {
  if (!text.includes(PREFIX)) return text;
  let out = text;
  for (const [name, value] of [...values].sort(([a], [b]) => b.length - a.length)) {
    out = out.split(placeholderOf(name)).join(encoded(value, encoding));
  }
  return out;
}

/**
 * The ways a server is likely to send a value back: as is, percent-encoded (by encodeURIComponent,
 * by a form, or by a URL parser, which encodes less), JSON-escaped once or twice (JSON in JSON),
 * and base64 (an echoed Basic credential). A server that transforms a value otherwise (hashes it,
 * encodes part of it) is not recognised: secrets only ever go to origins the admin allowed.
 */
export function valueForms(value: string): string[] {
  const json = JSON.stringify(value).slice(1, -1);
  const parsed = (make: () => string) => {
    try {
      return make();
    } catch {
      return "";
    }
  };
  const forms = new Set([
    value,
    encodeURIComponent(value),
    new URLSearchParams({ v: value }).toString().slice(2),
    parsed(() => new URL(`http://x/?${value}`).search.slice(1)),
    parsed(() => new URL(`http://x/${value}`).pathname.slice(1)),
    json,
    JSON.stringify(json).slice(1, -1),
    Buffer.from(value, "utf8").toString("base64"),
  ]);
  return [...forms].filter((form) => form !== "");
}

/**
 * `text` with each value of `values`, in any of its valueForms, replaced by its placeholder: what
 * a server echoes, an error or a log line never shows a value.
 */
export function maskSecretValues(text: string, values: SecretValues): string {
  if (values.size === 0 || text === "") return text;
  const forms: [string, string][] = [];
  for (const [name, value] of values) {
    if (value === "") continue;
    for (const form of valueForms(value)) forms.push([form, placeholderOf(name)]);
  }
  // Longest first, so that a value that contains another is masked whole.
  forms.sort(([a], [b]) => b.length - a.length);
  let out = text;
  for (const [form, placeholder] of forms) if (out.includes(form)) out = out.split(form).join(placeholder);
  return out;
}
