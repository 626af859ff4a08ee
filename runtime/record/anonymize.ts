import { createHmac, randomBytes } from "node:crypto";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { digits, isInternalNumber } from "../../sdk/phone.js";
import { isHookName } from "../schema/hooks.js";
import { writeFileAtomic } from "../util/write-atomic.js";

/**
 * Real calls as test inputs: the server saves each hook input it receives (config `record`), and
 * `callscript record anonymize` cleans payloads saved by hand. Anonymized, a payload keeps its
 * shape and stays valid for its hook, extensions and trunks are kept (scripts decide by them),
 * and every client number is replaced by one fake of the same length, the same way everywhere
 * in the payload (original, base, variants, the entity's phones, record paths and URLs), so a
 * script that matches a number's variants still matches.
 */

export interface AnonymizeOptions {
  /**
   * The key the fakes are derived from: the same key gives the same fake for a number, in every
   * payload. Default: one random key per process, so that a fake cannot be turned back into the
   * number by trying every phone number.
   */
  key?: string;
}

export interface AnonymizeReport {
  /** Distinct client (and personal) numbers replaced. */
  numbers: number;
  /** Name fields replaced. */
  names: number;
  /** Distinct e-mail addresses replaced. */
  emails: number;
}

let processKey: string | undefined;
function keyOf(options: AnonymizeOptions): string {
  if (options.key !== undefined) return options.key;
  processKey ??= randomBytes(32).toString("hex");
  return processKey;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

/** Fields that hold a person's or a company's name, in Bitrix24 and Kommo records. */
const NAME_KEYS = new Set(["name", "first_name", "last_name", "second_name", "full_name", "title", "company_title"]);
const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}/g;
/** What may stand between the digits of a written number: `+7 (900) 123-45-67`. */
const SEPARATOR = "[\\s().\\-]{0,2}";
/** Leading digits of a number kept as they are: the area or mobile operator code. */
const KEPT_DIGITS = 3;

class Anonymizer {
  /** Digits of trunks (and the numbers they are dialled as): kept. */
  private readonly trunks = new Set<string>();
  /** The bases (numbers without prefixes) of the client numbers to replace. */
  private readonly clients = new Set<string>();
  private readonly fakes = new Map<string, string>();
  private readonly emails = new Map<string, string>();
  names = 0;

  constructor(private readonly key: string) {}

  private hash(text: string): Buffer {
    return createHmac("sha256", this.key).update(text).digest();
  }

  addTrunk(number: unknown): void {
    if (!isObject(number)) return;
    for (const form of [text(number.base), text(number.original), text(number.custom)]) {
      const all = digits(form);
      if (all !== "") this.trunks.add(all);
    }
  }

  /** A number object (`from`, `to`, an entity's phone): a client's unless it is an extension or a trunk. */
  addNumber(number: unknown): void {
    if (!isObject(number) || number.is_local === true) return;
    const base = digits(text(number.base));
    if (base !== "") this.addClient(base);
    else this.addPhone(text(number.original));
    // After auto-substitution the number used may be another one altogether.
    this.addPhone(text(number.custom));
  }

  /** A number written as text: a client's unless it is internal or a trunk. */
  addPhone(value: unknown): void {
    if (typeof value !== "string" || isInternalNumber(value)) return;
    const all = digits(value);
    if (all.length <= 4) return;
    this.addClient(all.length > 10 ? all.slice(-10) : all);
  }

  private addClient(base: string): void {
    if (base.length <= 4 || this.trunks.has(base) || [...this.trunks].some((trunk) => trunk.endsWith(base))) return;
    this.clients.add(base);
  }

  get numbers(): number {
    return this.fakes.size;
  }

  /** Same length, same leading digits, the rest derived from the key; never a trunk or another fake. */
  private fakeFor(base: string): string {
    const keep = base.length >= KEPT_DIGITS + 4 ? KEPT_DIGITS : Math.max(0, base.length - 4);
    const taken = new Set([...this.fakes.values(), ...this.trunks, ...this.clients]);
    for (let attempt = 0; ; attempt++) {
      const bytes = this.hash(`number:${base}:${attempt}`);
      let tail = "";
      for (let index = 0; tail.length < base.length - keep; index++) tail += String(bytes[index % bytes.length]! % 10);
      const fake = base.slice(0, keep) + tail;
      if (!taken.has(fake)) return fake;
    }
  }

  /** Replace every client number, in every form it is written in, inside a string. */
  replaceNumbers(value: string, patterns: Array<{ pattern: RegExp; fake: string }>): string {
    let out = value;
    for (const { pattern, fake } of patterns) {
      out = out.replace(pattern, (match) => {
        let next = 0;
        return match.replace(/\d/g, () => fake[next++]!);
      });
    }
    return out;
  }

  patterns(): Array<{ pattern: RegExp; fake: string }> {
    // Longer numbers first, so that a short one never replaces part of a long one.
    return [...this.clients]
      .sort((a, b) => b.length - a.length || (a < b ? -1 : 1))
      .map((base) => {
        const fake = this.fakeFor(base);
        this.fakes.set(base, fake);
        return { pattern: new RegExp(`${base.split("").join(SEPARATOR)}(?!\\d)`, "g"), fake };
      });
  }

  email(address: string): string {
    const lower = address.toLowerCase();
    let fake = this.emails.get(lower);
    if (!fake) {
      fake = `person-${this.hash(`email:${lower}`).toString("hex").slice(0, 6)}@example.com`;
      this.emails.set(lower, fake);
    }
    return fake;
  }

  get emailCount(): number {
    return this.emails.size;
  }

  name(label: string, value: string): string {
    this.names++;
    return `${label} ${this.hash(`name:${value}`).toString("hex").slice(0, 4)}`;
  }
}

/**
 * Replace the name fields of the records under `value`, at any depth. `labels` says, by key, where
 * another kind of record starts (`responsible` and `user` are CRM users) and what to leave alone
 * (`null`: a channel's `name` is a channel's, not a person's).
 */
function replaceNames(value: Json, label: string, anonymizer: Anonymizer, labels: Record<string, string | null>): Json {
  if (Array.isArray(value)) return value.map((item) => replaceNames(item, label, anonymizer, labels));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) {
    const inner = Object.hasOwn(labels, key) ? labels[key] : label;
    if (inner === null || inner === undefined) out[key] = item;
    else if (NAME_KEYS.has(key.toLowerCase()) && typeof item === "string" && item !== "") out[key] = anonymizer.name(label, item);
    else out[key] = replaceNames(item, inner, anonymizer, labels);
  }
  return out;
}

/** Where the records of a hook input are: the client's everywhere, the users' under these keys. */
const RECORD_LABELS: Record<string, string | null> = { responsible: "User", user: "User", channel: null, params: null };

/** Numbers and e-mail addresses, wherever they are written (paths, URLs, raw CRM records). */
function replaceText(value: Json, anonymizer: Anonymizer, patterns: Array<{ pattern: RegExp; fake: string }>): Json {
  if (typeof value === "string") {
    return anonymizer.replaceNumbers(value, patterns).replace(EMAIL, (address) => anonymizer.email(address));
  }
  if (typeof value === "number" && Number.isSafeInteger(value) && value > 9999) {
    const replaced = anonymizer.replaceNumbers(String(value), patterns);
    return replaced === String(value) ? value : Number(replaced);
  }
  if (Array.isArray(value)) return value.map((item) => replaceText(item, anonymizer, patterns));
  if (!isObject(value)) return value;
  const out: JsonObject = {};
  for (const [key, item] of Object.entries(value)) out[key] = replaceText(item, anonymizer, patterns);
  return out;
}

function channelsOf(callFull: JsonObject): JsonObject[] {
  const channels: JsonObject[] = [];
  if (isObject(callFull.channel)) channels.push(callFull.channel);
  if (isObject(callFull.conversations)) {
    for (const conversation of Object.values(callFull.conversations)) {
      if (isObject(conversation) && isObject(conversation.channel)) channels.push(conversation.channel);
    }
  }
  return channels;
}

function usersOf(callFull: JsonObject): JsonObject[] {
  const users: JsonObject[] = [];
  if (isObject(callFull.conversations)) {
    for (const conversation of Object.values(callFull.conversations)) {
      if (isObject(conversation) && isObject(conversation.user)) users.push(conversation.user);
    }
  }
  if (isObject(callFull.entity) && isObject(callFull.entity.responsible)) users.push(callFull.entity.responsible);
  return users;
}

/** Keys of hook inputs without `call_full` (or beside it) that hold a phone number. */
const PHONE_KEYS = ["phone", "PHONE_NUMBER", "phone_number", "from", "to"];

/** Keys of an answer's data that hold a number a script may have written (beside PHONE_KEYS). */
const ANSWER_PHONE_KEYS = [...PHONE_KEYS, "extension", "caller_id"];

/**
 * A copy of a hook input with client numbers, names and e-mail addresses replaced. Extensions,
 * trunks, ids, times and everything else are kept as they are.
 */
export function anonymizeInput<T>(input: T, options: AnonymizeOptions = {}): { value: T; report: AnonymizeReport } {
  const { input: value, report } = anonymizeRecording(input, undefined, options);
  return { value, report };
}

/**
 * A recording (an input and the answer sent for it) anonymized as one: a number, name or address
 * gets the same fake in the input and in the answer, so that replaying the anonymized input
 * against the same scripts gives the anonymized answer. Numbers a script wrote into the answer that
 * the input does not hold are replaced too.
 */
export function anonymizeRecording<T, A>(
  input: T,
  answer: A | undefined,
  options: AnonymizeOptions = {},
): { input: T; answer: A | undefined; report: AnonymizeReport } {
  const anonymizer = new Anonymizer(keyOf(options));
  // A JSON round trip, not structuredClone: the copy is the JSON the recording holds (no undefined,
  // Date or Map left), which is what the walk below is typed for.
  const source = JSON.parse(JSON.stringify(input)) as Json;
  const answered = answer === undefined ? undefined : (JSON.parse(JSON.stringify(answer)) as Json);
  if (!isObject(source)) return { input, answer, report: { numbers: 0, names: 0, emails: 0 } };

  const callFull = isObject(source.call_full) ? source.call_full : undefined;
  if (callFull) {
    const channels = channelsOf(callFull);
    for (const channel of channels) anonymizer.addTrunk(channel.trunk);
    for (const channel of channels) {
      anonymizer.addNumber(channel.from);
      anonymizer.addNumber(channel.to);
    }
    if (isObject(callFull.entity) && Array.isArray(callFull.entity.phones)) {
      for (const phone of callFull.entity.phones) anonymizer.addNumber(phone);
    }
    // A user's own mobile is personal too; their extension is not.
    for (const user of usersOf(callFull)) if (Array.isArray(user.phones)) for (const phone of user.phones) anonymizer.addPhone(phone);
  }
  for (const key of PHONE_KEYS) anonymizer.addPhone(source[key]);
  if (isObject(source.params)) anonymizer.addPhone(source.params.extension);
  const answerData = isObject(answered) && isObject(answered.data) ? answered.data : undefined;
  if (answerData) for (const key of ANSWER_PHONE_KEYS) anonymizer.addPhone(answerData[key]);

  // Names of the client's record (entity, deal, the hook's own params) and of the CRM users'; then
  // numbers and addresses wherever they are written (in an error's message too).
  const patterns = anonymizer.patterns();
  const named = replaceNames(source, "Client", anonymizer, RECORD_LABELS);
  const value = replaceText(named, anonymizer, patterns) as T;
  let answerValue = answer;
  if (isObject(answered)) {
    if (answerData) answered.data = replaceNames(answerData, "Client", anonymizer, RECORD_LABELS);
    answerValue = replaceText(answered, anonymizer, patterns) as A;
  }
  return {
    input: value,
    answer: answerValue,
    report: { numbers: anonymizer.numbers, names: anonymizer.names, emails: anonymizer.emailCount },
  };
}

export interface RecordOptions extends AnonymizeOptions {
  /** Replace client numbers, names and e-mail addresses before saving (config `record.anonymize`). */
  anonymize: boolean;
  /** Goes into the file name (e.g. the request id); default: random. */
  id?: string;
}

/** `<hook>.<timestamp>-<id>.json`: sorted by name within a hook, by the timestamp across hooks. */
export function recordFileName(hook: string, id?: string): string {
  const stamp = new Date().toISOString().replace(/:/g, "-");
  const safeId = (id ?? randomBytes(4).toString("hex")).replace(/[^A-Za-z0-9_-]/g, "_").slice(0, 40);
  return `${hook}.${stamp}-${safeId}.json`;
}

/**
 * Save one hook input as `<dir>/<hook>.<timestamp>-<id>.json`, ready to be an `inputFile` of a
 * case. Written to a temporary name and renamed, so a reader never sees half a file.
 * @returns the file's path.
 */
export async function recordInput(dir: string, hook: string, input: unknown, options: RecordOptions): Promise<string> {
  if (!isHookName(hook)) throw new Error(`recordInput: '${hook}' is not a hook`);
  const value = options.anonymize ? anonymizeInput(input, options).value : input;
  const file = path.join(dir, recordFileName(hook, options.id));
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}
