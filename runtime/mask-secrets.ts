/**
 * Values that look like credentials, masked wherever the configuration is shown (GET /scripts,
 * logs of a config reload): a value that came from the environment (`${NAME}`), a key named like
 * one (`token`, `webhookUrl`, `api_key`, `clientSecret`), or a value shaped like one (a URL with a
 * password or a Bitrix24 webhook code, a JWT, a long random token). A URL keeps its scheme and
 * host, so that an admin still sees which CRM a setting points at.
 */

export const MASK = "****";

const SECRET_WORDS = new Set([
  "token",
  "tokens",
  "secret",
  "secrets",
  "password",
  "passwd",
  "pwd",
  "passphrase",
  "credential",
  "credentials",
  "webhook",
  "auth",
  "authorization",
  "cookie",
  "apikey",
  "dsn",
]);
const SECRET_PAIRS: [string, string][] = [
  ["api", "key"],
  ["access", "key"],
  ["private", "key"],
  ["secret", "key"],
  ["client", "secret"],
  ["signing", "key"],
];

/** `webhookUrl` → webhook, url; `api_key` → api, key; `X-Auth-Token` → x, auth, token. */
function wordsOf(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((word) => word.toLowerCase());
}

/** A key whose value is a credential by its name. */
export function isSecretKey(key: string): boolean {
  const words = wordsOf(key);
  return words.some((word) => SECRET_WORDS.has(word)) || SECRET_PAIRS.some(([a, b]) => words.includes(a) && words.includes(b));
}

const URL_WITH_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/\s:@]+:[^/\s@]+@/i;
const BITRIX_WEBHOOK = /\/rest\/\d+\/[A-Za-z0-9]{6,}/;
const CREDENTIAL_QUERY = /[?&](?:token|access_token|api_key|apikey|key|secret|password|sig|signature|auth)=/i;
const JWT = /^eyJ[\w-]+\.[\w-]+\.[\w-]*$/;
const RANDOM_TOKEN = /^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_\-+/=.]{24,}$/;

/** A string shaped like a credential, whatever its key. */
export function looksSecret(value: string): boolean {
  return URL_WITH_PASSWORD.test(value) || BITRIX_WEBHOOK.test(value) || CREDENTIAL_QUERY.test(value) || JWT.test(value) || RANDOM_TOKEN.test(value);
}

/** A masked string: `https://example.bitrix24.ru/****` for a URL, `****` otherwise. */
function maskString(value: string): string {
  try {
    const url = new URL(value);
    if (url.host) return `${url.protocol}//${url.host}/${MASK}`;
  } catch {
    // not a URL
  }
  return MASK;
}

export interface MaskOptions {
  /** The key the value is held under: a secret-looking name masks the whole value. */
  key?: string;
  /** The whole value is a secret (it came from the environment). */
  secret?: boolean;
  /** Paths inside the value (as key lists) that are secrets. */
  secretPaths?: readonly (readonly string[])[];
}

/** A copy of `value` with every secret-looking string or number replaced by a mask; the rest as it was. */
export function maskSecrets(value: unknown, options: MaskOptions = {}): unknown {
  const secretPaths = options.secretPaths ?? [];
  const walk = (node: unknown, key: string | undefined, at: readonly string[], secret: boolean): unknown => {
    const isSecret =
      secret || (key !== undefined && isSecretKey(key)) || secretPaths.some((p) => p.length === at.length && p.every((part, i) => part === at[i]));
    if (typeof node === "string") return isSecret || looksSecret(node) ? maskString(node) : node;
    if (typeof node === "number") return isSecret ? MASK : node;
    if (Array.isArray(node)) return node.map((item, index) => walk(item, undefined, [...at, String(index)], isSecret));
    if (node !== null && typeof node === "object") {
      const out: Record<string, unknown> = {};
      for (const [name, item] of Object.entries(node)) out[name] = walk(item, name, [...at, name], isSecret);
      return out;
    }
    return node;
  };
  return walk(value, options.key, [], options.secret ?? false);
}
