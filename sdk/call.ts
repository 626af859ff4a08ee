/**
 * Helpers that read the `call_full` object. Pure functions: no Node APIs, no Intl, no clock.
 * Most accept either the whole call (`CallFull`, whose main channel is used) or one `Channel`
 * (e.g. a conversation's).
 */
import type { CallFull, Channel, ChannelType, Conversation, NumberData } from "./hook-types.generated.js";

function isCallFull(value: CallFull | Channel): value is CallFull {
  return "conversations" in value && typeof value["channel"] === "object" && value["channel"] !== null;
}

/**
 * The channel a helper reads: the call's main channel (`call.channel`) for a `CallFull`, the
 * channel itself for a `Channel`.
 */
export function channelOf(channelOrCall: CallFull | Channel): Channel {
  return isCallFull(channelOrCall) ? channelOrCall.channel : channelOrCall;
}

/**
 * The extension side of a channel, as the connector's docs define it: `to` on incoming calls,
 * `from` on every other type (outgoing, local, unknown). On a local call both sides are
 * extensions; this returns the caller.
 */
export function internalParty(channelOrCall: CallFull | Channel): NumberData {
  const channel = channelOf(channelOrCall);
  return channel.type === "incoming" ? channel.to : channel.from;
}

/**
 * The client side of a channel: `from` on incoming calls, `to` on every other type. On a local
 * call this is the called extension.
 */
export function externalParty(channelOrCall: CallFull | Channel): NumberData {
  const channel = channelOf(channelOrCall);
  return channel.type === "incoming" ? channel.from : channel.to;
}

function hasOwn(object: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/**
 * The conversation the call is on now: `conversations[active_conversation_id]`.
 * @returns null when `active_conversation_id` is empty or names no conversation.
 */
export function activeConversation(call: CallFull): Conversation | null {
  const id = call.active_conversation_id;
  if (id === "" || !hasOwn(call.conversations, id)) return null;
  return call.conversations[id] ?? null;
}

/**
 * Compares Asterisk uniqueids (`<epoch seconds>.<sequence>`) numerically part by part, so
 * `"1700000000.9"` comes before `"1700000000.10"`; other ids compare as plain strings.
 */
function compareIds(a: string, b: string): number {
  const pattern = /^(\d+)(?:\.(\d+))?$/;
  const ma = pattern.exec(a);
  const mb = pattern.exec(b);
  if (ma && mb) {
    const byInt = compareDigitStrings(ma[1] ?? "", mb[1] ?? "");
    if (byInt !== 0) return byInt;
    const bySeq = compareDigitStrings(ma[2] ?? "", mb[2] ?? "");
    if (bySeq !== 0) return bySeq;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Numeric comparison of non-negative integers written in digits, of any length. */
function compareDigitStrings(a: string, b: string): number {
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * The call's conversations, ordered by their channel's `start_time` (earliest first), then by
 * channel uniqueid (numerically, `"….9"` before `"….10"`). A conversation whose start time is
 * the zero time ("never") sorts first. Returns a new array; the call is not changed.
 */
export function conversationsOf(call: CallFull): Conversation[] {
  return Object.keys(call.conversations)
    .map((key) => ({ key, conversation: call.conversations[key] }))
    .filter((item): item is { key: string; conversation: Conversation } => item.conversation !== undefined)
    .sort((a, b) => {
      const ta = a.conversation.channel.start_time;
      const tb = b.conversation.channel.start_time;
      if (ta !== tb) return ta < tb ? -1 : 1;
      return compareIds(a.conversation.channel.id || a.key, b.conversation.channel.id || b.key);
    })
    .map((item) => item.conversation);
}

/**
 * Every internal number (extension) that took part in the call, as its `base` (or, if `base` is
 * empty, the number the connector uses), deduplicated, in order of appearance:
 * the main channel first, then each conversation in {@link conversationsOf} order. For each
 * channel its internal party is taken when it is local (`is_local`), then its other party when
 * that is local too (a local call, extension to extension: both took part).
 *
 * Used e.g. for "don't register calls in which extension 101 or 102 took part".
 * @returns `[]` when no local number appears.
 */
export function participants(call: CallFull): string[] {
  const seen = new Set<string>();
  const add = (n: NumberData): void => {
    if (!n.is_local) return;
    const number = n.base !== "" ? n.base : n.custom !== "" ? n.custom : n.original;
    if (number !== "") seen.add(number);
  };
  const channels = [call.channel, ...conversationsOf(call).map((c) => c.channel)];
  for (const channel of channels) {
    add(internalParty(channel));
    add(externalParty(channel));
  }
  return [...seen];
}

/**
 * Whether the call (or channel) was answered.
 * - `CallFull`: `result === 200` → true; `result === 304` (the connector's "missed") → false
 *   even if the main channel was answered (e.g. by an IVR); otherwise `channel.was_answered`.
 * - `Channel`: its `was_answered`.
 */
export function isAnswered(channelOrCall: CallFull | Channel): boolean {
  if (isCallFull(channelOrCall)) {
    if (channelOrCall.result === 200) return true;
    if (channelOrCall.result === 304) return false;
  }
  return channelOf(channelOrCall).was_answered;
}

/**
 * Whether the call (or channel) was missed: not {@link isAnswered}, and either `result` is 304
 * (calls only) or the (main) channel has finished (state `ended` or `processed`).
 * A call still ringing is neither answered nor missed.
 */
export function isMissed(channelOrCall: CallFull | Channel): boolean {
  if (isAnswered(channelOrCall)) return false;
  if (isCallFull(channelOrCall) && channelOrCall.result === 304) return true;
  const state = channelOf(channelOrCall).state;
  return state === "ended" || state === "processed";
}

/** The type of the (main) channel: `"incoming"`, `"outgoing"`, `"local"` or `"unknown"`. */
export function direction(channelOrCall: CallFull | Channel): ChannelType {
  return channelOf(channelOrCall).type;
}
