import createError from "@fastify/error";

/**
 * Every error the host raises, with a stable code, in one place (as fastify does). Failures of a
 * script during an invocation are not exceptions: they are answers (see schema/envelope.ts).
 */

export const UnknownHookError = createError(
  "CS_ERR_UNKNOWN_HOOK",
  "Unknown hook '%s'. Known hooks: %s",
  404,
);

export const InvalidInputError = createError(
  "CS_ERR_INVALID_INPUT",
  "The input of hook '%s' is invalid: %s",
  400,
);

export const CompileError = createError("CS_ERR_COMPILE", "%s", 422);

export const ScriptLoadError = createError(
  "CS_ERR_SCRIPT_LOAD",
  "Script '%s' does not load: %s",
  422,
);

export const ConfigError = createError("CS_ERR_CONFIG", "Invalid configuration in %s: %s", 500);

export const UsageError = createError("CS_ERR_USAGE", "%s", 400);

export const UnauthorizedError = createError("CS_ERR_UNAUTHORIZED", "Missing or invalid bearer token", 401);

export const IsolatedVmMissingError = createError(
  "CS_ERR_ISOLATED_VM",
  "No usable isolated-vm for Node %s: %s",
  500,
);
