/**
 * Builders of `call_full` objects for the SDK tests. Every builder returns an object that the
 * `callFull` zod schema accepts (checked in call.test.ts).
 */
import type { CallFull, Channel, Conversation, NumberData } from "../../runtime/schema/call-full.js";

export const NEVER_TIME = "0001-01-01 00:00:00";

/** An extension, e.g. `"101"`. */
export function ext(number: string): NumberData {
  return { base: number, custom: "", is_local: true, original: number, variants: [number] };
}

/**
 * A Russian client number given by its 10 national digits, with the connector's usual
 * variants for the prefixes `+7`, `7`, `8`.
 */
export function client(national: string, overrides: Partial<NumberData> = {}): NumberData {
  return {
    base: national,
    custom: "",
    is_local: false,
    original: `+7${national}`,
    variants: [national, `+7${national}`, `7${national}`, `8${national}`],
    ...overrides,
  };
}

/** An empty number (e.g. no trunk on a local call). */
export function none(): NumberData {
  return { base: "", custom: "", is_local: false, original: "", variants: [] };
}

export function channel(overrides: Partial<Channel> = {}): Channel {
  return {
    answer_time: NEVER_TIME,
    end_time: NEVER_TIME,
    extra: {},
    from: client("9001234567"),
    id: "1700000000.1",
    is_primary: true,
    name: "SIP/trunk-00000001",
    start_time: "2024-03-15 10:00:00",
    state: "ringing",
    to: ext("101"),
    trunk: client("3432723033"),
    type: "incoming",
    was_answered: false,
    ...overrides,
  };
}

export function conversation(overrides: Partial<Channel> = {}, extra: Partial<Conversation> = {}): Conversation {
  return {
    channel: channel({ is_primary: false, name: "SIP/101-00000002", ...overrides }),
    is_parked: false,
    user: null,
    ...extra,
  };
}

/** A call: `conversations` may be given as a list, keyed by each channel's id. */
export function call(overrides: Omit<Partial<CallFull>, "conversations"> & { conversations?: Conversation[] } = {}): CallFull {
  const { conversations = [], ...rest } = overrides;
  const map: Record<string, Conversation> = {};
  for (const c of conversations) map[c.channel.id] = c;
  return {
    active_conversation_id: "",
    channel: channel(),
    conversations: map,
    deal: null,
    entity: null,
    is_ivr: false,
    record: "",
    registration: null,
    result: 0,
    ...rest,
  };
}

/** An incoming call answered by 101 after a transfer from 100, finished. */
export function answeredIncoming(): CallFull {
  const first = conversation({
    id: "1700000000.2",
    start_time: "2024-03-15 10:00:01",
    answer_time: "2024-03-15 10:00:05",
    end_time: "2024-03-15 10:01:00",
    state: "ended",
    to: ext("100"),
    was_answered: true,
  });
  const second = conversation({
    id: "1700000000.10",
    start_time: "2024-03-15 10:01:00",
    answer_time: "2024-03-15 10:01:03",
    end_time: "2024-03-15 10:03:20",
    state: "ended",
    to: ext("101"),
    was_answered: true,
  });
  return call({
    active_conversation_id: "",
    channel: channel({
      answer_time: "2024-03-15 10:00:05",
      end_time: "2024-03-15 10:03:20",
      state: "ended",
      to: ext("100"),
      was_answered: true,
    }),
    conversations: [second, first],
    result: 200,
  });
}
