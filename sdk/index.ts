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
export type {
  CallFull,
  Channel,
  ChannelState,
  ChannelType,
  Conversation,
  Entity,
  NumberData,
  Registration,
  User,
} from "../runtime/schema/call-full.js";
export type { HookData, HookInput, HookName } from "../runtime/schema/hooks.js";
export * from "./phone.js";
export * from "./call.js";
export * from "./time.js";
