import { z } from "zod";

/**
 * The `call_full` object as the connector sends it. Every object is loose: fields we know are
 * type-checked, fields a newer connector adds pass through untouched to the scripts.
 */

/** `YYYY-MM-DD HH:MM:SS` in the PBX's time zone; `0001-01-01 00:00:00` means "never". */
export const pbxTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/, "expected a time as YYYY-MM-DD HH:MM:SS")
  .describe("PBX local time, YYYY-MM-DD HH:MM:SS; 0001-01-01 00:00:00 means never");

export const ZERO_TIME = "0001-01-01 00:00:00";

/** The connector writes an empty list or map as `null` (or a PHP-style `[]` for a map). */
const emptyAs = (empty: () => unknown) => (value: unknown) => (value === null || (Array.isArray(value) && value.length === 0) ? empty() : value);
const list = <T extends z.ZodType>(item: T) =>
  z.preprocess(
    emptyAs(() => []),
    z.array(item),
  );
const map = () =>
  z.preprocess(
    emptyAs(() => ({})),
    z.record(z.string(), z.unknown()),
  );

export const numberData = z
  .looseObject({
    base: z.string().describe("The number without prefixes"),
    custom: z.string().describe("The number after auto-substitution or customization; empty if none"),
    is_local: z.boolean().describe("Whether the number is internal (an extension)"),
    original: z.string().describe("The number as received from Asterisk"),
    variants: list(z.string()).describe("base, and each configured prefix + base"),
  })
  .describe("A phone number in the forms the connector knows");

export const channelState = z.enum(["ringing", "talking", "ended", "processed"]);
export const channelType = z.enum(["local", "incoming", "outgoing", "unknown"]);

export const channel = z.looseObject({
  answer_time: pbxTime,
  end_time: pbxTime,
  extra: map().describe("Extra fields from the CEL table"),
  from: numberData,
  id: z.string().describe("The channel's uniqueid"),
  is_primary: z.boolean().describe("Whether uniqueid = linkedid"),
  name: z.string().describe("The channel name from the CEL table"),
  start_time: pbxTime,
  state: channelState,
  to: numberData,
  trunk: numberData,
  type: channelType,
  was_answered: z.boolean(),
});

export const user = z.looseObject({
  email: z.string(),
  id: z.string().describe("The user's id in the CRM"),
  name: z.string(),
  phones: list(z.string()),
  position: z.string(),
  raw: map().describe("The user as the CRM returns it"),
});

export const conversation = z.looseObject({
  channel,
  is_parked: z.boolean().describe("Whether the conversation is on hold"),
  user: user.nullable(),
});

export const entityType = z.string().describe("company, contact or lead in Bitrix24");

export const entity = z.looseObject({
  id: z.string(),
  is_new: z.boolean().describe("Whether the entity was created when registering this call"),
  name: z.string(),
  phones: list(numberData),
  raw: map(),
  responsible: user.nullable(),
  responsible_id: z.string(),
  type: entityType,
});

export const registration = z.looseObject({
  activity_id: z.string(),
  created_company_id: z.string(),
  created_contact_id: z.string(),
  created_deal_id: z.string(),
  created_lead_id: z.string(),
  entity_id: z.string(),
  entity_type: z.string(),
  id: z.string().describe("The call's id in Bitrix24"),
  responsible_id: z.string(),
});

const conversations = z.preprocess(
  emptyAs(() => ({})),
  z.record(z.string(), conversation),
);

export const callFull = z.looseObject({
  active_conversation_id: z.string().describe("uniqueid of the current conversation, or empty"),
  channel,
  conversations: conversations.describe("Conversations keyed by their channel uniqueid"),
  deal: z.record(z.string(), z.unknown()).nullable(),
  entity: entity.nullable(),
  is_ivr: z.boolean().describe("Whether a missed call ended in the IVR"),
  record: z.string().describe("Link to the call recording, or empty"),
  registration: registration.nullable().describe("Bitrix24 only; always null for Kommo"),
  result: z.number().int().describe("SIP-like status: 200 answered, 304 missed, ..."),
});

export type NumberData = z.output<typeof numberData>;
export type Channel = z.output<typeof channel>;
export type User = z.output<typeof user>;
export type Conversation = z.output<typeof conversation>;
export type Entity = z.output<typeof entity>;
export type Registration = z.output<typeof registration>;
export type CallFull = z.output<typeof callFull>;
export type ChannelState = z.output<typeof channelState>;
export type ChannelType = z.output<typeof channelType>;
