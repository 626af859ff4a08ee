/**
 * What scripts import as `callscript`. Bundled into each script by esbuild: pure code only, no
 * Node APIs. The types are written out from the runtime's zod schemas (hook-types.generated.ts,
 * checked against them at build time), so that scripts type-check without zod's types.
 */
export { defineScript, cancel } from "./define.js";
export type { Cancel, HookContext, HookHandler, HookHandlers, HookResult, ScriptDefinition, ScriptLimits, ScriptLogger } from "./define.js";
export type { HookData, HookInput } from "./define.js";
export type { CapabilityError, FetchInit, FetchResponse, KvValue, ScriptCapabilities, ScriptKv } from "./capabilities.js";
export type { Known } from "./known.js";
/** The call data (`call_full`) and its parts, with their declared fields; every hook's input and data. */
export type * from "./hook-types.generated.js";
export * from "./phone.js";
export * from "./call.js";
export * from "./time.js";
