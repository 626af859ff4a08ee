/**
 * What scripts import as `callscript`. Bundled into each script by esbuild: pure code only, no
 * Node APIs; the types come from the runtime's zod schemas (type-only imports, erased).
 */
export { defineScript, cancel } from "./define.js";
export type {
  Cancel,
  HookContext,
  HookHandler,
  HookHandlers,
  HookResult,
  ScriptDefinition,
  ScriptLimits,
  ScriptLogger,
} from "./define.js";
export type { HookInput } from "./define.js";
export type { Known } from "./known.js";
export type { ChannelState, ChannelType } from "../runtime/schema/call-full.js";
export type { HookData, HookName } from "../runtime/schema/hooks.js";
import type * as schema from "../runtime/schema/call-full.js";
import type { Known } from "./known.js";
/** The call data, with its declared fields (see Known). */
export type CallFull = Known<schema.CallFull>;
export type Channel = Known<schema.Channel>;
export type Conversation = Known<schema.Conversation>;
export type Entity = Known<schema.Entity>;
export type NumberData = Known<schema.NumberData>;
export type Registration = Known<schema.Registration>;
export type User = Known<schema.User>;
export * from "./phone.js";
export * from "./call.js";
export * from "./time.js";
