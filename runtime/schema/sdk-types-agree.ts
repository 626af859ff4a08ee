/**
 * The build fails here when a type of sdk/hook-types.generated.ts differs from the one zod infers
 * from the schemas (with `call_full` reduced to its declared fields, as sdk/known.ts does): the
 * generated file was not regenerated after a schema changed (npm run generate). Types only.
 */
import type * as generated from "../../sdk/hook-types.generated.js";
import type { Known } from "../../sdk/known.js";
import type * as callFull from "./call-full.js";
import type { HookData, HookInput, HookName } from "./hooks.js";

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
/** `true` only when every member of the record is `true`. */
type All<T extends Record<string, boolean>> = false extends T[keyof T] ? false : true;

/** A hook's input as the SDK has always typed it: call_full with its declared fields only. */
type SdkInput<H extends HookName> = { [K in keyof HookInput<H>]: K extends "call_full" ? Known<HookInput<H>[K]> : HookInput<H>[K] };

type Agreement = {
  names: Same<generated.HookName, HookName>;
  inputs: All<{ [H in HookName]: Same<generated.HookInputs[H], SdkInput<H>> }>;
  data: All<{ [H in HookName]: Same<generated.HookDatas[H], HookData<H>> }>;
  callFull: Same<generated.CallFull, Known<callFull.CallFull>>;
  channel: Same<generated.Channel, Known<callFull.Channel>>;
  channelState: Same<generated.ChannelState, callFull.ChannelState>;
  channelType: Same<generated.ChannelType, callFull.ChannelType>;
  numberData: Same<generated.NumberData, Known<callFull.NumberData>>;
  user: Same<generated.User, Known<callFull.User>>;
  conversation: Same<generated.Conversation, Known<callFull.Conversation>>;
  entity: Same<generated.Entity, Known<callFull.Entity>>;
  registration: Same<generated.Registration, Known<callFull.Registration>>;
};

export const sdkTypesAgree: Agreement = {
  names: true,
  inputs: true,
  data: true,
  callFull: true,
  channel: true,
  channelState: true,
  channelType: true,
  numberData: true,
  user: true,
  conversation: true,
  entity: true,
  registration: true,
};
