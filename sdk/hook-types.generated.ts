// Generated from the zod schemas of runtime/schema/ by runtime/schema/sdk-types.ts (npm run generate):
// do not edit. test/sdk/generated-types.test.ts fails when it falls behind them, and
// runtime/schema/sdk-types-agree.ts fails the build when a type here differs from the one zod infers.

/** Which moment of the call this invocation is for */
export type CallStage = "conversation_requested" | "conversation_accepted" | "conversation_ended" | "call_ended";

export type ChannelState = "ringing" | "talking" | "ended" | "processed";

export type ChannelType = "local" | "incoming" | "outgoing" | "unknown";

/** A phone number in the forms the connector knows */
export interface NumberData {
  /** The number without prefixes */
  base: string;
  /** The number after auto-substitution or customization; empty if none */
  custom: string;
  /** Whether the number is internal (an extension) */
  is_local: boolean;
  /** The number as received from Asterisk */
  original: string;
  /** base, and each configured prefix + base */
  variants: string[];
}

export interface Channel {
  /** PBX local time, YYYY-MM-DD HH:MM:SS; 0001-01-01 00:00:00 means never */
  answer_time: string;
  /** PBX local time, YYYY-MM-DD HH:MM:SS; 0001-01-01 00:00:00 means never */
  end_time: string;
  /** Extra fields from the CEL table */
  extra: Record<string, unknown>;
  from: NumberData;
  /** The channel's uniqueid */
  id: string;
  /** Whether uniqueid = linkedid */
  is_primary: boolean;
  /** The channel name from the CEL table */
  name: string;
  /** PBX local time, YYYY-MM-DD HH:MM:SS; 0001-01-01 00:00:00 means never */
  start_time: string;
  state: ChannelState;
  to: NumberData;
  trunk: NumberData;
  type: ChannelType;
  was_answered: boolean;
}

export interface User {
  email: string;
  /** The user's id in the CRM */
  id: string;
  name: string;
  phones: string[];
  position: string;
  /** The user as the CRM returns it */
  raw: Record<string, unknown>;
}

export interface Conversation {
  channel: Channel;
  /** Whether the conversation is on hold */
  is_parked: boolean;
  user: User | null;
}

export interface Entity {
  id: string;
  /** Whether the entity was created when registering this call */
  is_new: boolean;
  name: string;
  phones: NumberData[];
  raw: Record<string, unknown>;
  responsible: User | null;
  responsible_id: string;
  /** company, contact or lead in Bitrix24 */
  type: string;
}

export interface Registration {
  activity_id: string;
  created_company_id: string;
  created_contact_id: string;
  created_deal_id: string;
  created_lead_id: string;
  entity_id: string;
  entity_type: string;
  /** The call's id in Bitrix24 */
  id: string;
  responsible_id: string;
}

export interface CallFull {
  /** uniqueid of the current conversation, or empty */
  active_conversation_id: string;
  channel: Channel;
  /** Conversations keyed by their channel uniqueid */
  conversations: Record<string, Conversation>;
  deal: Record<string, unknown> | null;
  entity: Entity | null;
  /** Whether a missed call ended in the IVR */
  is_ivr: boolean;
  /** Link to the call recording, or empty */
  record: string;
  /** Bitrix24 only; always null for Kommo */
  registration: Registration | null;
  /** SIP-like status: 200 answered, 304 missed, ... */
  result: number;
}

/** The input of need_registration: Whether this call is registered in the CRM at this stage. */
export interface NeedRegistrationInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of need_registration: its defaults, and what a script may change. */
export interface NeedRegistrationData {
  /** true registers the call */
  result: boolean;
}

/** The input of process_client_phone: The client's number used to search and register in the CRM. */
export interface ProcessClientPhoneInput {
  [key: string]: unknown;
  call_full: CallFull;
  /** The number as the connector would use it */
  phone: string;
  call_stage?: CallStage;
}

/** The data of process_client_phone: its defaults, and what a script may change. */
export interface ProcessClientPhoneData {
  phone: string;
}

/** The input of process_user_phone: The extension used to find the CRM user. */
export interface ProcessUserPhoneInput {
  [key: string]: unknown;
  call_full: CallFull;
  /** The number as the connector would use it */
  phone: string;
  call_stage?: CallStage;
}

/** The data of process_user_phone: its defaults, and what a script may change. */
export interface ProcessUserPhoneData {
  phone: string;
}

/** The input of process_originate_params: Click-to-call: the parameters of the AMI Originate. */
export interface ProcessOriginateParamsInput {
  [key: string]: unknown;
  call_full?: CallFull;
  params: {
    [key: string]: unknown;
    caller_id: string;
    channel: string;
    context: string;
    extension: string;
    priority: string | number;
    /** The CRM's click-to-call request, as received */
    request_data?: unknown;
  };
}

/** The data of process_originate_params: its defaults, and what a script may change. */
export interface ProcessOriginateParamsData {
  caller_id: string;
  channel: string;
  context: string;
  extension: string;
  priority: string | number;
  /** The CRM's click-to-call request, as received */
  request_data?: unknown;
}

/** The input of process_registration_params: The parameters of the call registration in Bitrix24. */
export interface ProcessRegistrationParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
  USER_ID?: string | number;
  USER_PHONE_INNER?: string | number;
  PHONE_NUMBER?: string;
  TYPE?: string | number;
  CRM_CREATE?: string | number | boolean;
  CRM_ENTITY_TYPE?: string;
  CRM_ENTITY_ID?: string | number;
  SHOW?: string | number | boolean;
  LINE_NUMBER?: string | number;
}

/** The data of process_registration_params: its defaults, and what a script may change. */
export interface ProcessRegistrationParamsData {
  [key: string]: unknown;
  USER_ID?: string | number;
  USER_PHONE_INNER?: string | number;
  PHONE_NUMBER?: string;
  TYPE?: string | number;
  CRM_CREATE?: string | number | boolean;
  CRM_ENTITY_TYPE?: string;
  CRM_ENTITY_ID?: string | number;
  SHOW?: string | number | boolean;
  LINE_NUMBER?: string | number;
}

/** The input of process_call_params: The parameters of the call logged in Kommo. */
export interface ProcessCallParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
  call_result?: string;
  call_status?: string | number;
  phone_number?: string;
  direction?: string;
  responsible_user_id?: string | number;
  duration?: number;
  link?: string;
}

/** The data of process_call_params: its defaults, and what a script may change. */
export interface ProcessCallParamsData {
  [key: string]: unknown;
  call_result?: string;
  call_status?: string | number;
  phone_number?: string;
  direction?: string;
  responsible_user_id?: string | number;
  duration?: number;
  link?: string;
}

/** The input of process_final_params: Call end: the parameters that finish the call in Bitrix24 (e.g. USER_ID responsible). */
export interface ProcessFinalParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
  CALL_ID?: string;
  USER_ID?: string | number;
  DURATION?: string | number;
  /** SIP-like status; 304 means missed */
  STATUS_CODE?: string | number;
}

/** The data of process_final_params: its defaults, and what a script may change. */
export interface ProcessFinalParamsData {
  [key: string]: unknown;
  CALL_ID?: string;
  USER_ID?: string | number;
  DURATION?: string | number;
  /** SIP-like status; 304 means missed */
  STATUS_CODE?: string | number;
}

/** The input of process_task_creation_params: The fields of the task created for a missed call. */
export interface ProcessTaskCreationParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_task_creation_params: its defaults, and what a script may change. */
export type ProcessTaskCreationParamsData = Record<string, unknown>;

/** The input of process_record_file_path: The path of the call's recording file. */
export interface ProcessRecordFilePathInput {
  [key: string]: unknown;
  call_full?: CallFull;
  call_id?: string;
  from?: string;
  to?: string;
  path: string;
}

/** The data of process_record_file_path: its defaults, and what a script may change. */
export interface ProcessRecordFilePathData {
  path: string;
}

/** The input of customize_attach_record_url: The recording URL and file name attached to the call. */
export interface CustomizeAttachRecordUrlInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of customize_attach_record_url: its defaults, and what a script may change. */
export type CustomizeAttachRecordUrlData = Record<string, unknown>;

/** The input of customize_show_call_card: Which users are shown the call card. */
export interface CustomizeShowCallCardInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of customize_show_call_card: its defaults, and what a script may change. */
export type CustomizeShowCallCardData = Record<string, unknown>;

/** The input of customize_autodistribution: Which extension takes an incoming call (empty: the normal route). */
export interface CustomizeAutodistributionInput {
  [key: string]: unknown;
  call_full: CallFull;
  extension?: string;
}

/** The data of customize_autodistribution: its defaults, and what a script may change. */
export interface CustomizeAutodistributionData {
  /** Empty keeps the normal route */
  extension: string;
}

/** The input of post_registration: After registration; the connector ignores the data (acknowledged with result: true). */
export interface PostRegistrationInput {
  [key: string]: unknown;
  call_full: CallFull;
}

/** The data of post_registration: its defaults, and what a script may change. */
export interface PostRegistrationData {
  [key: string]: unknown;
  result?: boolean;
}

/** The input of customize_entity: Call end: fields of the CRM entity to update. */
export interface CustomizeEntityInput {
  [key: string]: unknown;
  call_full: CallFull;
  entity: Record<string, unknown>;
}

/** The data of customize_entity: its defaults, and what a script may change. */
export type CustomizeEntityData = Record<string, unknown>;

/** The input of customize_activity: Call end: fields of the CRM activity to update. */
export interface CustomizeActivityInput {
  [key: string]: unknown;
  call_full: CallFull;
  activity: Record<string, unknown>;
}

/** The data of customize_activity: its defaults, and what a script may change. */
export type CustomizeActivityData = Record<string, unknown>;

/** The input of process_contact_creation_params: The fields of a contact created in Kommo. */
export interface ProcessContactCreationParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_contact_creation_params: its defaults, and what a script may change. */
export type ProcessContactCreationParamsData = Record<string, unknown>;

/** The input of process_lead_creation_params: The fields of a lead created in Kommo. */
export interface ProcessLeadCreationParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_lead_creation_params: its defaults, and what a script may change. */
export type ProcessLeadCreationParamsData = Record<string, unknown>;

/** The input of process_contact_update_params: The fields of a contact updated in Kommo. */
export interface ProcessContactUpdateParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_contact_update_params: its defaults, and what a script may change. */
export type ProcessContactUpdateParamsData = Record<string, unknown>;

/** The input of process_lead_update_params: The fields of a lead updated in Kommo. */
export interface ProcessLeadUpdateParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_lead_update_params: its defaults, and what a script may change. */
export type ProcessLeadUpdateParamsData = Record<string, unknown>;

/** The input of process_unsorted_creation_params: The fields of an unsorted (incoming request) created in Kommo. */
export interface ProcessUnsortedCreationParamsInput {
  [key: string]: unknown;
  call_full: CallFull;
  call_stage?: CallStage;
}

/** The data of process_unsorted_creation_params: its defaults, and what a script may change. */
export type ProcessUnsortedCreationParamsData = Record<string, unknown>;

/** Every hook's input, by hook name. */
export interface HookInputs {
  need_registration: NeedRegistrationInput;
  process_client_phone: ProcessClientPhoneInput;
  process_user_phone: ProcessUserPhoneInput;
  process_originate_params: ProcessOriginateParamsInput;
  process_registration_params: ProcessRegistrationParamsInput;
  process_call_params: ProcessCallParamsInput;
  process_final_params: ProcessFinalParamsInput;
  process_task_creation_params: ProcessTaskCreationParamsInput;
  process_record_file_path: ProcessRecordFilePathInput;
  customize_attach_record_url: CustomizeAttachRecordUrlInput;
  customize_show_call_card: CustomizeShowCallCardInput;
  customize_autodistribution: CustomizeAutodistributionInput;
  post_registration: PostRegistrationInput;
  customize_entity: CustomizeEntityInput;
  customize_activity: CustomizeActivityInput;
  process_contact_creation_params: ProcessContactCreationParamsInput;
  process_lead_creation_params: ProcessLeadCreationParamsInput;
  process_contact_update_params: ProcessContactUpdateParamsInput;
  process_lead_update_params: ProcessLeadUpdateParamsInput;
  process_unsorted_creation_params: ProcessUnsortedCreationParamsInput;
}

/** Every hook's data, by hook name. */
export interface HookDatas {
  need_registration: NeedRegistrationData;
  process_client_phone: ProcessClientPhoneData;
  process_user_phone: ProcessUserPhoneData;
  process_originate_params: ProcessOriginateParamsData;
  process_registration_params: ProcessRegistrationParamsData;
  process_call_params: ProcessCallParamsData;
  process_final_params: ProcessFinalParamsData;
  process_task_creation_params: ProcessTaskCreationParamsData;
  process_record_file_path: ProcessRecordFilePathData;
  customize_attach_record_url: CustomizeAttachRecordUrlData;
  customize_show_call_card: CustomizeShowCallCardData;
  customize_autodistribution: CustomizeAutodistributionData;
  post_registration: PostRegistrationData;
  customize_entity: CustomizeEntityData;
  customize_activity: CustomizeActivityData;
  process_contact_creation_params: ProcessContactCreationParamsData;
  process_lead_creation_params: ProcessLeadCreationParamsData;
  process_contact_update_params: ProcessContactUpdateParamsData;
  process_lead_update_params: ProcessLeadUpdateParamsData;
  process_unsorted_creation_params: ProcessUnsortedCreationParamsData;
}

/** A hook of the catalog. */
export type HookName = keyof HookInputs;
