import createError from "@fastify/error";

/**
 * Every error the host raises, with a stable code, in one place (as fastify does). Failures of a
 * script during an invocation are not exceptions: they are answers (see schema/envelope.ts).
 */

export const UnknownHookError = createError("CS_ERR_UNKNOWN_HOOK", "Unknown hook '%s'. Known hooks: %s", 404);

export const InvalidInputError = createError("CS_ERR_INVALID_INPUT", "The input of hook '%s' is invalid: %s", 400);

export const ConfigError = createError("CS_ERR_CONFIG", "Invalid configuration in %s: %s", 500);

export const UsageError = createError("CS_ERR_USAGE", "%s", 400);

export const FilesExistError = createError("CS_ERR_FILES_EXIST", "Not overwriting what is already there: %s. Pass --force to overwrite", 409);

export const UnauthorizedError = createError("CS_ERR_UNAUTHORIZED", "Missing or invalid bearer token", 401);

export const IsolatedVmMissingError = createError("CS_ERR_ISOLATED_VM", "No usable isolated-vm for Node %s: %s", 500);

// ---- scripts ---------------------------------------------------------------------------------

/**
 * A script that compiled but does not load: its top level throws, or its definition is wrong. The
 * registry shows it on /scripts and keeps the last good version running; `run`/`check`/`test` print it.
 */
export class ScriptLoadFailure extends Error {
  readonly code = "CS_ERR_SCRIPT_LOAD";

  constructor(
    readonly script: string,
    message: string,
    /** Where in the script's .ts source, when known (the shape of a hook failure's location). */
    readonly location?: { file: string; line: number; column: number },
    readonly mappedStack?: string,
  ) {
    super(message);
    this.name = "ScriptLoadFailure";
  }
}

// ---- HTTP server ---------------------------------------------------------------------------

export const InvalidJsonError = createError("CS_ERR_INVALID_JSON", "The body is not JSON: %s", 400);

export const BodyTooLargeError = createError("CS_ERR_BODY_TOO_LARGE", "The body is over the limit of %s bytes (bodyLimitBytes in the config)", 413);

export const RouteNotFoundError = createError(
  "CS_ERR_NOT_FOUND",
  "No route %s %s. Hooks are called with POST /hooks/<hook>; GET /openapi.json lists every route",
  404,
);

export const NotReadyError = createError("CS_ERR_NOT_READY", "Not ready: %s", 503);

export const InsecureBindError = createError(
  "CS_ERR_INSECURE_BIND",
  "Refusing to listen on %s without a token: it is not a loopback address. Set token (at least 16 characters) in the config file or CALLSCRIPT_TOKEN, or listen on 127.0.0.1",
  500,
);

export const InternalServerError = createError("CS_ERR_INTERNAL", "Internal server error; see the server log for request %s", 500);

// ---- the console -----------------------------------------------------------------------------

export const CsrfError = createError(
  "CS_ERR_CSRF",
  "A console write needs the page's CSRF token in the X-Callscript-Csrf header, from the console's own origin",
  403,
);

export const CasesReadOnlyError = createError(
  "CS_ERR_CASES_READ_ONLY",
  "The console may not write the scripts folder: set console.saveCases to true in the config to save cases from the Try page",
  403,
);

export const CaseExistsError = createError("CS_ERR_CASE_EXISTS", "%s", 409);

export const ConsoleBusyError = createError("CS_ERR_CONSOLE_BUSY", "%s runs of the Try page are already going; try again when one ends", 429);

export const ConsoleNotFoundError = createError("CS_ERR_CONSOLE_NOT_FOUND", "%s", 404);

// ---- exit codes --------------------------------------------------------------------------------

/** Errors that mean the command or the config was wrong: exit 2 (any other failure: exit 1). */
const USAGE_CODES = new Set(["CS_ERR_USAGE", "CS_ERR_UNKNOWN_HOOK", "CS_ERR_INVALID_INPUT", "CS_ERR_CONFIG", "CS_ERR_FILES_EXIST", "CS_ERR_INSECURE_BIND"]);

/** The exit code of a command that ended with `error`: every command maps them the same way. */
export function exitCodeOf(error: unknown): 1 | 2 {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && USAGE_CODES.has(code) ? 2 : 1;
}
