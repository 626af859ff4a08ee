import path from "node:path";
import { z } from "zod";
import { parseAllowEntry } from "./origin.js";
import { SECRET_ENV_PREFIX, SECRET_NAME, type ResolvedSecret } from "./secrets.js";

/**
 * The capability grants of the configuration, as zod schemas for runtime/config.ts:
 * `scriptCapabilityKeys` go into `scripts.<name>`, `capabilityConfigKeys` at the top level.
 *
 * ```yaml
 * secrets: { BITRIX_TOKEN: "${BITRIX_TOKEN}" }      # or CALLSCRIPT_SECRET_BITRIX_TOKEN in the environment
 * kv: { url: "sqlite:callscript-kv.sqlite" }       # the default, beside the config; or redis://127.0.0.1:6379/0
 * scripts:
 *   vip-client:
 *     fetch: { allow: ["https://crm.example"], timeoutMs: 1500, maxCalls: 5 }
 *     secrets: [BITRIX_TOKEN]
 * ```
 * Only refinements (no transforms), so that the JSON Schema of the config stays exact; the host
 * normalises origins itself (origin.ts).
 */

const KIB = 1024;
const MIB = 1024 * KIB;

/**
 * ctx.secret() takes any NAME of SECRET_NAME; a configured one is stricter (words joined by single
 * underscores, none at the end) so that `__callscript_secret_NAME__` in a text reads one way only.
 */
const CONFIG_SECRET_NAME = /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*$/;
const SECRET_NAME_RULE =
  "a secret's name is upper-case letters and digits in words joined by single _, starting with a letter, at most 64 characters (e.g. BITRIX_TOKEN)";

function isConfigSecretName(name: string): boolean {
  return SECRET_NAME.test(name) && CONFIG_SECRET_NAME.test(name);
}

export const secretNameSchema = z.string().refine(isConfigSecretName, SECRET_NAME_RULE);

const allowEntrySchema = z.string().superRefine((text, ctx) => {
  const parsed = parseAllowEntry(text);
  if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.problem });
});

export const fetchGrantSchema = z
  .strictObject({
    allow: z
      .array(allowEntrySchema)
      .describe(
        "Origins the script may fetch, as scheme://host[:port] (https://crm.example, http://127.0.0.1:9000). A host name must resolve to public addresses only; a loopback or private address must be written as the address itself",
      ),
    timeoutMs: z.number().int().positive().max(60_000).default(1_500).describe("Per fetch, redirects included; the hook's deadline bounds it too"),
    maxCalls: z.number().int().positive().max(100).default(5).describe("Fetches per invocation"),
    maxResponseBytes: z
      .number()
      .int()
      .positive()
      .max(64 * MIB)
      .default(MIB)
      .describe("Per response body, counted as it arrives"),
    maxRequestBytes: z
      .number()
      .int()
      .positive()
      .max(16 * MIB)
      .default(64 * KIB)
      .describe("Per request body"),
  })
  .describe("What the script may reach with ctx.fetch; without it, no network");
export type FetchGrant = z.output<typeof fetchGrantSchema>;

/** Keys of `scripts.<name>`. */
export const scriptCapabilityKeys = {
  fetch: fetchGrantSchema.optional(),
  secrets: z.array(secretNameSchema).optional().describe("Names of the secrets whose values ctx.secret(NAME) placeholders stand for in this script's fetches"),
};
export const scriptGrantsSchema = z.strictObject(scriptCapabilityKeys);
export type ScriptGrants = z.output<typeof scriptGrantsSchema>;

/** `sqlite:<file>` (relative to the config file) or `redis[s]://[user:password@]host[:port][/db]`. */
export type KvLocation = { kind: "sqlite"; file: string } | { kind: "redis"; url: string; shown: string };

/** Where a `kv.url` points, or a problem that says what to write. */
export function parseKvUrl(url: string, baseDir: string): { ok: true; location: KvLocation } | { ok: false; problem: string } {
  if (url.startsWith("sqlite:")) {
    const file = url.slice("sqlite:".length).replace(/^\/\/(?=\/)/, "");
    if (file === "" || file === ":memory:") return { ok: false, problem: "sqlite: needs a file name, e.g. sqlite:callscript-kv.sqlite" };
    return { ok: true, location: { kind: "sqlite", file: path.resolve(baseDir, file) } };
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { ok: false, problem: `must be sqlite:<file> or redis://host:port/db (got '${url.replace(/\/\/[^@/]*@/, "//****@")}')` };
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return { ok: false, problem: `must be sqlite:<file> or redis://host:port/db, not ${parsed.protocol}` };
  }
  if (parsed.hostname === "") return { ok: false, problem: "a redis URL needs a host: redis://127.0.0.1:6379/0" };
  if (!/^\/?(\d+)?$/.test(parsed.pathname) || parsed.search !== "" || parsed.hash !== "") {
    return { ok: false, problem: "a redis URL ends with the database number, if any: redis://host:port/0" };
  }
  const shown = `${parsed.protocol}//${parsed.username || parsed.password ? "****@" : ""}${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname}`;
  return { ok: true, location: { kind: "redis", url, shown } };
}

export const DEFAULT_KV_URL = "sqlite:callscript-kv.sqlite";

export const kvConfigSchema = z
  .strictObject({
    url: z
      .string()
      .default(DEFAULT_KV_URL)
      .superRefine((url, ctx) => {
        const parsed = parseKvUrl(url, ".");
        if (!parsed.ok) ctx.addIssue({ code: "custom", message: parsed.problem });
      })
      .describe("sqlite:<file> (relative to the config file; embedded, one instance) or redis://host:port/db (shared by several instances)"),
    maxKeyBytes: z.number().int().positive().max(1_024).default(256).describe("A key's length in UTF-8 bytes"),
    maxValueBytes: z
      .number()
      .int()
      .positive()
      .max(16 * MIB)
      .default(64 * KIB)
      .describe("A value's length as JSON, in UTF-8 bytes"),
    maxOpsPerInvocation: z.number().int().positive().max(10_000).default(20).describe("kv operations per invocation"),
    maxKeysPerScript: z.number().int().positive().max(10_000_000).default(1_000).describe("Live keys per script; a set of a new key past it fails"),
    timeoutMs: z.number().int().positive().max(60_000).default(1_000).describe("Per operation (Redis); the hook's deadline bounds it too"),
    sweepSeconds: z.number().int().positive().max(86_400).default(60).describe("How often expired keys are deleted from the SQLite file"),
  })
  .describe("The key-value store of ctx.kv: one namespace per script");
export type KvConfig = z.output<typeof kvConfigSchema>;
export type KvLimits = Pick<KvConfig, "maxKeyBytes" | "maxValueBytes" | "maxOpsPerInvocation" | "maxKeysPerScript">;

// Names checked by a refinement rather than the record's key schema: zod's message for a bad key
// says only "Invalid key in record".
export const secretsSchema = z
  .record(z.string(), z.string().min(1, "a secret's value must not be empty"))
  .superRefine((secrets, ctx) => {
    for (const name of Object.keys(secrets)) if (!isConfigSecretName(name)) ctx.addIssue({ code: "custom", path: [name], message: SECRET_NAME_RULE });
  })
  .describe(`Secret values by name (use \${ENV} interpolation, or set ${SECRET_ENV_PREFIX}<NAME> in the environment instead)`);

/** Top-level keys. */
export const capabilityConfigKeys = {
  secrets: secretsSchema.default({}),
  kv: kvConfigSchema.default(kvConfigSchema.parse({})),
};

export interface GrantProblems {
  /** Config errors: the configuration must not load. */
  errors: string[];
  /** Grants that can do nothing: shown, but they do not stop the server. */
  warnings: string[];
}

/**
 * Cross-checks of the grants: a granted secret must have a value (from the file or the
 * environment); a secret granted to a script without a fetch grant can never be used.
 */
export function checkGrants(scripts: Readonly<Record<string, ScriptGrants>>, secrets: ReadonlyMap<string, ResolvedSecret>): GrantProblems {
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const [script, grants] of Object.entries(scripts)) {
    (grants.secrets ?? []).forEach((name, index) => {
      if (!secrets.has(name)) {
        errors.push(
          `scripts.${script}.secrets.${index}: secret ${name} has no value: set secrets.${name} in the config file or ${SECRET_ENV_PREFIX}${name} in the environment`,
        );
      }
    });
    if ((grants.secrets ?? []).length > 0 && (grants.fetch?.allow.length ?? 0) === 0) {
      warnings.push(`scripts.${script}.secrets: granted, but the script has no scripts.${script}.fetch.allow, so its secrets can never be used`);
    }
  }
  return { errors, warnings };
}
