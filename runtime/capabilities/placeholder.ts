/**
 * What ctx.secret(NAME) returns, `__callscript_secret_NAME__`: computed in the guest (the sandbox's
 * prelude bundles these two constants), replaced by the value only on the host (secrets.ts).
 */
export const SECRET_PLACEHOLDER_PREFIX = "__callscript_secret_";
export const SECRET_PLACEHOLDER_SUFFIX = "__";
