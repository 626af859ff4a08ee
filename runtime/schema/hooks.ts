import { z } from "zod";
import { callFull } from "./call-full.js";
import type { HookAnswer } from "./envelope.js";

/**
 * The hook catalog: every point in a call's life at which the connector asks the scripts.
 * One table, one source of truth: the HTTP routes, the SDK's handler types, the runner and the
 * OpenAPI document are all derived from it.
 */

export const callStage = z
  .enum(["conversation_requested", "conversation_accepted", "conversation_ended", "call_ended"])
  .describe("Which moment of the call this invocation is for");

/** Number/ID fields the CRMs send either as strings or as numbers. */
const id = z.union([z.string(), z.number()]);

type InputShape = z.ZodRawShape;

/** Current connectors send `call_full` beside the hook's own keys; unknown keys pass through. */
function withCallFull<S extends InputShape>(shape: S) {
  return z.looseObject({ call_full: callFull, ...shape });
}

/** Keys of the input that are not parameters of the CRM request the hook precedes. */
const CONTEXT_KEYS = new Set(["call_full", "call_stage"]);

/** For hooks whose `data` is the CRM request's whole parameter set, sent at the top level. */
function topLevelParams(input: Record<string, unknown>): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(input)) {
    if (!CONTEXT_KEYS.has(key)) params[key] = value;
  }
  return params;
}

function wrapped(key: string) {
  return (input: Record<string, unknown>): Record<string, unknown> => {
    const value = input[key];
    return value !== null && typeof value === "object" && !Array.isArray(value) ? { ...(value as Record<string, unknown>) } : {};
  };
}

export type Crm = "bitrix24" | "kommo" | "both";

/** A field of a parameter set, named in words, or written by a function of its own. */
type Field = readonly [key: string, label: string | ((value: unknown) => string)];

const shown = (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value));
const seconds = (value: unknown) => `${shown(value)} s`;

/** The SIP-like statuses of domain/hooks.md, in words. */
const SIP_STATUSES: Record<string, string> = {
  "200": "answered",
  "304": "missed",
  "404": "not found",
  "480": "unavailable",
  "486": "busy",
  "487": "cancelled",
  "603": "declined",
};
const sipStatus = (value: unknown) => {
  const words = SIP_STATUSES[shown(value)];
  return `status ${shown(value)}${words ? ` (${words})` : ""}`;
};

/** `what: label value, label value` for the fields of `data` that are set. */
function withFields(what: string, data: Record<string, unknown>, fields: readonly Field[]): string {
  const parts = fields
    .filter(([key]) => data[key] !== undefined && data[key] !== null && data[key] !== "")
    .map(([key, label]) => (typeof label === "function" ? label(data[key]) : `${label} ${shown(data[key])}`));
  return parts.length > 0 ? `${what}: ${parts.join(", ")}` : what;
}

/** `what: the fields it sends`, for a set of fields nothing more is known about. */
function changedFields(what: string, data: Record<string, unknown>): string {
  const keys = Object.keys(data);
  return keys.length > 0 ? `${what}: ${keys.join(", ")}` : `${what}: no field`;
}

interface HookSpec<I extends z.ZodType, D extends z.ZodObject> {
  crm: Crm;
  summary: string;
  input: I;
  data: D;
  /** The data the connector gets when no script changes anything. */
  defaults: (input: z.output<I>) => z.output<D>;
  /** How long the connector waits for this hook, when it is not the usual. */
  connectorTimeoutMs?: number;
  /**
   * What the connector does with a success answer's data, in words an admin reads in `simulate`
   * ("client number sent to the CRM: +79001234567"). Cancels and errors are worded the same for
   * every hook (see effectOf).
   */
  effect: (data: z.output<D>, input: z.output<I>) => string;
}

function hook<I extends z.ZodType, D extends z.ZodObject>(spec: HookSpec<I, D>): HookSpec<I, D> {
  return spec;
}

const phoneInput = withCallFull({
  phone: z.string().describe("The number as the connector would use it"),
  call_stage: callStage.optional(),
});
const phoneData = z.strictObject({ phone: z.string() });

const originateShape = {
  caller_id: z.string(),
  channel: z.string(),
  context: z.string(),
  extension: z.string(),
  priority: id,
  request_data: z.unknown().optional().describe("The CRM's click-to-call request, as received"),
};
/** Strict on the way back (a misspelt key would be dropped by the PBX), lenient on the way in. */
const originateParams = z.strictObject(originateShape);
const originateParamsInput = z.looseObject(originateShape);

const registrationParams = z.looseObject({
  USER_ID: id.optional(),
  USER_PHONE_INNER: id.optional(),
  PHONE_NUMBER: z.string().optional(),
  TYPE: id.optional(),
  CRM_CREATE: z.union([id, z.boolean()]).optional(),
  CRM_ENTITY_TYPE: z.string().optional(),
  CRM_ENTITY_ID: id.optional(),
  SHOW: z.union([id, z.boolean()]).optional(),
  LINE_NUMBER: id.optional(),
});

const kommoCallParams = z.looseObject({
  call_result: z.string().optional(),
  call_status: id.optional(),
  phone_number: z.string().optional(),
  direction: z.string().optional(),
  responsible_user_id: id.optional(),
  duration: z.number().optional(),
  link: z.string().optional(),
});

const finalParams = z.looseObject({
  CALL_ID: z.string().optional(),
  USER_ID: id.optional(),
  DURATION: id.optional(),
  STATUS_CODE: id.optional().describe("SIP-like status; 304 means missed"),
});

/** Parameter sets we know little about: any keys, passed through. */
const anyParams = z.looseObject({});

const params = (data: z.ZodObject, shape: InputShape = {}) => withCallFull({ call_stage: callStage.optional(), ...data.partial().shape, ...shape });

export const hookCatalog = {
  need_registration: hook({
    crm: "both",
    summary: "Whether this call is registered in the CRM at this stage",
    input: withCallFull({ call_stage: callStage.optional() }),
    data: z.strictObject({ result: z.boolean().describe("true registers the call") }),
    defaults: () => ({ result: true }),
    effect: (data, input) =>
      `${data.result ? "the call is registered in the CRM" : "the call is not registered in the CRM"}${input.call_stage ? ` (${input.call_stage})` : ""}`,
  }),
  process_client_phone: hook({
    crm: "both",
    summary: "The client's number used to search and register in the CRM",
    input: phoneInput,
    data: phoneData,
    defaults: (input) => ({ phone: input.phone }),
    effect: (data) => `client number sent to the CRM: ${data.phone}`,
  }),
  process_user_phone: hook({
    crm: "bitrix24",
    summary: "The extension used to find the CRM user",
    input: phoneInput,
    data: phoneData,
    defaults: (input) => ({ phone: input.phone }),
    effect: (data) => `CRM user looked up by the number ${data.phone}`,
  }),
  process_originate_params: hook({
    crm: "both",
    summary: "Click-to-call: the parameters of the AMI Originate",
    input: z.looseObject({ call_full: callFull.optional(), params: originateParamsInput }),
    data: originateParams,
    defaults: (input) => ({ ...input.params }),
    effect: (data) => `the PBX dials ${data.extension} for ${data.caller_id} through ${data.channel}, context ${data.context}`,
  }),
  process_registration_params: hook({
    crm: "bitrix24",
    summary: "The parameters of the call registration in Bitrix24",
    input: params(registrationParams),
    data: registrationParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("call registered in Bitrix24", data, [
        ["USER_ID", "responsible user"],
        ["PHONE_NUMBER", "client number"],
        ["LINE_NUMBER", "line"],
        ["CRM_ENTITY_TYPE", "entity"],
        ["CRM_ENTITY_ID", "id"],
      ]),
  }),
  process_call_params: hook({
    crm: "kommo",
    summary: "The parameters of the call logged in Kommo",
    input: params(kommoCallParams),
    data: kommoCallParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("call logged in Kommo", data, [
        ["responsible_user_id", "responsible user"],
        ["phone_number", "client number"],
        ["call_status", "status"],
        ["duration", seconds],
      ]),
  }),
  process_final_params: hook({
    crm: "bitrix24",
    summary: "Call end: the parameters that finish the call in Bitrix24 (e.g. USER_ID responsible)",
    input: params(finalParams),
    data: finalParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("call finished in Bitrix24", data, [
        ["USER_ID", "responsible user"],
        ["STATUS_CODE", sipStatus],
        ["DURATION", seconds],
      ]),
  }),
  process_task_creation_params: hook({
    crm: "both",
    summary: "The fields of the task created for a missed call",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("missed-call task created", data, [
        ["RESPONSIBLE_ID", "responsible user"],
        ["responsible_user_id", "responsible user"],
        ["TITLE", "title"],
        ["text", "text"],
      ]),
  }),
  process_record_file_path: hook({
    crm: "both",
    summary: "The path of the call's recording file",
    input: z.looseObject({
      call_full: callFull.optional(),
      call_id: z.string().optional(),
      from: z.string().optional(),
      to: z.string().optional(),
      path: z.string(),
    }),
    data: z.strictObject({ path: z.string() }),
    defaults: (input) => ({ path: input.path }),
    connectorTimeoutMs: 10_000,
    effect: (data) => `recording read from ${data.path}`,
  }),
  customize_attach_record_url: hook({
    crm: "bitrix24",
    summary: "The recording URL and file name attached to the call",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("recording attached to the call in Bitrix24", data, [
        ["URL", "url"],
        ["FILENAME", "file"],
        ["RECORD_URL", "url"],
      ]),
  }),
  customize_show_call_card: hook({
    crm: "bitrix24",
    summary: "Which users are shown the call card",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("call card shown in Bitrix24", data, [
        ["USER_ID", "to user"],
        ["USER_IDS", "to users"],
      ]),
  }),
  customize_autodistribution: hook({
    crm: "both",
    summary: "Which extension takes an incoming call (empty: the normal route)",
    input: withCallFull({ extension: z.string().optional() }),
    data: z.strictObject({ extension: z.string().describe("Empty keeps the normal route") }),
    defaults: () => ({ extension: "" }),
    effect: (data) => (data.extension === "" ? "the call takes the normal route" : `the call is routed to extension ${data.extension}`),
  }),
  post_registration: hook({
    crm: "both",
    summary: "After registration; the connector ignores the data (acknowledged with result: true)",
    input: withCallFull({}),
    data: z.looseObject({ result: z.boolean().optional() }),
    defaults: () => ({ result: true }),
    effect: () => "nothing: the connector does not use this answer",
  }),
  customize_entity: hook({
    crm: "bitrix24",
    summary: "Call end: fields of the CRM entity to update",
    input: withCallFull({ entity: z.record(z.string(), z.unknown()) }),
    data: anyParams,
    defaults: wrapped("entity"),
    effect: (data) => changedFields("CRM entity updated", data),
  }),
  customize_activity: hook({
    crm: "bitrix24",
    summary: "Call end: fields of the CRM activity to update",
    input: withCallFull({ activity: z.record(z.string(), z.unknown()) }),
    data: anyParams,
    defaults: wrapped("activity"),
    effect: (data) => changedFields("CRM activity updated", data),
  }),
  process_contact_creation_params: hook({
    crm: "kommo",
    summary: "The fields of a contact created in Kommo",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("contact created in Kommo", data, [
        ["name", "name"],
        ["responsible_user_id", "responsible user"],
      ]),
  }),
  process_lead_creation_params: hook({
    crm: "kommo",
    summary: "The fields of a lead created in Kommo",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("lead created in Kommo", data, [
        ["name", "name"],
        ["responsible_user_id", "responsible user"],
        ["status_id", "status"],
      ]),
  }),
  process_contact_update_params: hook({
    crm: "kommo",
    summary: "The fields of a contact updated in Kommo",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("contact updated in Kommo", data, [
        ["name", "name"],
        ["responsible_user_id", "responsible user"],
      ]),
  }),
  process_lead_update_params: hook({
    crm: "kommo",
    summary: "The fields of a lead updated in Kommo",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("lead updated in Kommo", data, [
        ["name", "name"],
        ["responsible_user_id", "responsible user"],
        ["status_id", "status"],
      ]),
  }),
  process_unsorted_creation_params: hook({
    crm: "kommo",
    summary: "The fields of an unsorted (incoming request) created in Kommo",
    input: params(anyParams),
    data: anyParams,
    defaults: topLevelParams,
    effect: (data) =>
      withFields("unsorted request created in Kommo", data, [
        ["source_name", "source"],
        ["pipeline_id", "pipeline"],
      ]),
  }),
} as const;

export type HookCatalog = typeof hookCatalog;
export type HookName = keyof HookCatalog;
export type HookInput<H extends HookName> = z.output<HookCatalog[H]["input"]>;
export type HookData<H extends HookName> = z.output<HookCatalog[H]["data"]>;

export const hookNames = Object.keys(hookCatalog) as HookName[];

export function isHookName(name: string): name is HookName {
  return Object.hasOwn(hookCatalog, name);
}

/** Partial data a script returns; validated before it is merged over the data so far. */
const partialDataSchemas = new Map<HookName, z.ZodType>(hookNames.map((name) => [name, hookCatalog[name].data.partial()]));

export function partialDataSchema(name: HookName): z.ZodType {
  return partialDataSchemas.get(name)!;
}

/** The hook's defaults, computed from an input that already passed its schema. */
export function defaultsFor(name: HookName, input: Record<string, unknown>): Record<string, unknown> {
  const spec = hookCatalog[name] as unknown as HookSpec<z.ZodType, z.ZodObject>;
  return spec.defaults(input) as Record<string, unknown>;
}

/**
 * What the connector does with an answer, in words: the hook's own `effect` for data, and the same
 * words for every hook when a script cancelled (`data` is `{}`) or the answer is an error.
 */
export function effectOf(name: HookName, input: Record<string, unknown>, answer: HookAnswer, cancelled: boolean): string {
  if (answer.state === "error") {
    const who = answer.error.script ? ` in ${answer.error.script}` : "";
    return `error (${answer.error.reason}${who}): the connector falls back to its own behaviour`;
  }
  if (cancelled) return "CRM request cancelled";
  const spec = hookCatalog[name] as unknown as HookSpec<z.ZodType, z.ZodObject>;
  return spec.effect(answer.data, input);
}
