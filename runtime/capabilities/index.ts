/**
 * What the rest of callscript uses of the capabilities (the sandbox host, config, dispatch, the
 * runner); the modules behind it are internals.
 */
export type { Capabilities, CapabilityCall, CapabilityOp } from "./types.js";
export { CAPABILITY_OPS, isCapabilityOp } from "./types.js";
export { CapabilityError, isCapabilityError, CAPABILITY_ERROR_CODES, type CapabilityErrorCode } from "./errors.js";
export {
  capabilityConfigKeys,
  scriptCapabilityKeys,
  fetchGrantSchema,
  kvConfigSchema,
  secretsSchema,
  scriptGrantsSchema,
  checkGrants,
  parseKvUrl,
  DEFAULT_KV_URL,
  type FetchGrant,
  type KvConfig,
  type KvLimits,
  type ScriptGrants,
  type GrantProblems,
} from "./config.js";
export { resolveSecretValues, placeholderOf, maskSecretValues, SECRET_NAME, SECRET_ENV_PREFIX, type ResolvedSecret } from "./secrets.js";
export {
  CapabilityHost,
  GrantedCapabilities,
  resolveGrants,
  type CapabilityHostOptions,
  type CapabilityHooks,
  type FetchEvent,
  type KvEvent,
  type FaultEvent,
} from "./capabilities.js";
export {
  createCannedCapabilities,
  createCannedScriptsCapabilities,
  cannedFetchSchema,
  cannedKvSchema,
  type CannedCapabilities,
  type CannedCapabilitiesOptions,
  type CannedScriptsCapabilities,
  type CannedScriptsOptions,
  type CannedFetch,
  type CannedCall,
} from "./canned.js";
export type { LiveFetcherOptions } from "./fetch.js";
export type { Resolver, ResolvedAddress } from "./address.js";
