import { describe, it, expect } from "vitest";
import { callFull } from "../../runtime/schema/call-full.js";
import { activeConversation, channelOf, conversationsOf, direction, externalParty, internalParty, isAnswered, isMissed, participants } from "../../sdk/call.js";
import { answeredIncoming, call, channel, client, conversation, ext, none } from "./fixtures.js";

describe("fixtures", () => {
  it("satisfy the callFull schema", () => {
    const fixtures = [
      call(),
      answeredIncoming(),
      call({
        channel: channel({ type: "local", from: ext("101"), to: ext("102"), trunk: none() }),
        conversations: [conversation({ id: "1.2", type: "local", from: ext("101"), to: ext("102") })],
        active_conversation_id: "1.2",
      }),
    ];
    for (const fixture of fixtures) {
      const parsed = callFull.safeParse(fixture);
      expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
      expect(parsed.data).toEqual(fixture);
    }
  });
});

describe("channelOf", () => {
  it("returns the main channel of a call and a channel itself", () => {
    const c = answeredIncoming();
    expect(channelOf(c)).toBe(c.channel);
    const ch = channel({ id: "x" });
    expect(channelOf(ch)).toBe(ch);
  });
});

describe("internalParty / externalParty", () => {
  it("incoming: the extension is to, the client is from", () => {
    const ch = channel({ type: "incoming", from: client("9001234567"), to: ext("101") });
    expect(internalParty(ch).base).toBe("101");
    expect(externalParty(ch).base).toBe("9001234567");
  });
  it("outgoing: the extension is from, the client is to", () => {
    const ch = channel({ type: "outgoing", from: ext("102"), to: client("9007654321") });
    expect(internalParty(ch).base).toBe("102");
    expect(externalParty(ch).base).toBe("9007654321");
  });
  it("local and unknown follow the outgoing rule", () => {
    const local = channel({ type: "local", from: ext("101"), to: ext("102") });
    expect(internalParty(local).base).toBe("101");
    expect(externalParty(local).base).toBe("102");
    const unknown = channel({ type: "unknown", from: ext("103"), to: client("9001112233") });
    expect(internalParty(unknown).base).toBe("103");
    expect(externalParty(unknown).base).toBe("9001112233");
  });
  it("accepts a whole call and reads its main channel", () => {
    const c = call({ channel: channel({ type: "incoming", to: ext("105") }) });
    expect(internalParty(c)).toBe(c.channel.to);
    expect(externalParty(c)).toBe(c.channel.from);
  });
});

describe("activeConversation", () => {
  it("returns the conversation named by active_conversation_id", () => {
    const a = conversation({ id: "1700000000.2", to: ext("101") });
    const b = conversation({ id: "1700000000.3", to: ext("102") });
    const c = call({ conversations: [a, b], active_conversation_id: "1700000000.3" });
    expect(activeConversation(c)).toBe(c.conversations["1700000000.3"]);
    expect(activeConversation(c)?.channel.to.base).toBe("102");
  });
  it("returns null for an empty or unknown id", () => {
    const a = conversation({ id: "1700000000.2" });
    expect(activeConversation(call({ conversations: [a] }))).toBeNull();
    expect(activeConversation(call({ conversations: [a], active_conversation_id: "9.9" }))).toBeNull();
    expect(activeConversation(call())).toBeNull();
  });
  it("is not fooled by inherited property names", () => {
    expect(activeConversation(call({ active_conversation_id: "constructor" }))).toBeNull();
    expect(activeConversation(call({ active_conversation_id: "__proto__" }))).toBeNull();
  });
});

describe("conversationsOf", () => {
  it("orders by start time, then by uniqueid numerically", () => {
    const late = conversation({ id: "1700000000.1", start_time: "2024-03-15 10:05:00" });
    const ten = conversation({ id: "1700000000.10", start_time: "2024-03-15 10:00:00" });
    const nine = conversation({ id: "1700000000.9", start_time: "2024-03-15 10:00:00" });
    const early = conversation({ id: "1700000001.1", start_time: "2024-03-14 23:59:59" });
    const c = call({ conversations: [late, ten, nine, early] });
    expect(conversationsOf(c).map((x) => x.channel.id)).toEqual(["1700000001.1", "1700000000.9", "1700000000.10", "1700000000.1"]);
  });
  it("orders ids by their integer part before their sequence", () => {
    const a = conversation({ id: "999999999.5" });
    const b = conversation({ id: "1000000000.1" });
    expect(conversationsOf(call({ conversations: [b, a] })).map((x) => x.channel.id)).toEqual(["999999999.5", "1000000000.1"]);
  });
  it("falls back to plain string order for ids that are not uniqueids", () => {
    const a = conversation({ id: "b-leg" });
    const b = conversation({ id: "a-leg" });
    const c = conversation({ id: "1700000000.1" });
    expect(conversationsOf(call({ conversations: [a, b, c] })).map((x) => x.channel.id)).toEqual(["1700000000.1", "a-leg", "b-leg"]);
  });
  it("puts a zero start time first", () => {
    const a = conversation({ id: "1.1", start_time: "2024-03-15 10:00:00" });
    const b = conversation({ id: "1.2", start_time: "0001-01-01 00:00:00" });
    expect(conversationsOf(call({ conversations: [a, b] })).map((x) => x.channel.id)).toEqual(["1.2", "1.1"]);
  });
  it("returns [] for a call without conversations and does not change the call", () => {
    expect(conversationsOf(call())).toEqual([]);
    const c = answeredIncoming();
    const keys = Object.keys(c.conversations);
    const list = conversationsOf(c);
    expect(list).toHaveLength(2);
    expect(Object.keys(c.conversations)).toEqual(keys);
  });
});

describe("participants", () => {
  it("lists the extensions of an incoming call with a transfer, in order", () => {
    // main channel to 100, conversations: 100 then 101
    expect(participants(answeredIncoming())).toEqual(["100", "101"]);
  });
  it("lists the caller's extension on an outgoing call", () => {
    const c = call({
      channel: channel({ type: "outgoing", from: ext("102"), to: client("9001234567") }),
      conversations: [conversation({ id: "1.1", type: "outgoing", from: ext("102"), to: client("9001234567") })],
    });
    expect(participants(c)).toEqual(["102"]);
  });
  it("lists both extensions of a local call", () => {
    const c = call({
      channel: channel({ type: "local", from: ext("101"), to: ext("102"), trunk: none() }),
      conversations: [conversation({ id: "1.1", type: "local", from: ext("101"), to: ext("102") })],
    });
    expect(participants(c)).toEqual(["101", "102"]);
  });
  it("skips non-local numbers: a call still in the queue has no participants", () => {
    const c = call({ channel: channel({ type: "incoming", to: client("3432723033") }) });
    expect(participants(c)).toEqual([]);
  });
  it("includes ring-group members from their conversations, deduplicated", () => {
    const c = call({
      channel: channel({ type: "incoming", to: client("3432723033") }),
      conversations: [
        conversation({ id: "1.3", start_time: "2024-03-15 10:00:01", to: ext("103") }),
        conversation({ id: "1.2", start_time: "2024-03-15 10:00:01", to: ext("102") }),
        conversation({ id: "1.4", start_time: "2024-03-15 10:00:30", to: ext("102") }),
      ],
    });
    expect(participants(c)).toEqual(["102", "103"]);
  });
  it("uses the extension's base, falling back to custom/original when base is empty", () => {
    const c = call({
      channel: channel({ type: "incoming", to: { ...ext("101"), original: "SIP/101", base: "101" } }),
      conversations: [conversation({ id: "1.1", to: { ...ext("x"), base: "", original: "104" } })],
    });
    expect(participants(c)).toEqual(["101", "104"]);
  });
  it("skips a local number with no text at all", () => {
    const c = call({ channel: channel({ type: "incoming", to: { ...none(), is_local: true } }) });
    expect(participants(c)).toEqual([]);
  });
});

describe("isAnswered / isMissed", () => {
  it("result 200 is answered, not missed", () => {
    const c = call({ result: 200, channel: channel({ state: "ended", was_answered: false }) });
    expect(isAnswered(c)).toBe(true);
    expect(isMissed(c)).toBe(false);
  });
  it("an answered main channel is answered", () => {
    const c = call({ result: 0, channel: channel({ state: "talking", was_answered: true }) });
    expect(isAnswered(c)).toBe(true);
    expect(isMissed(c)).toBe(false);
  });
  it("result 304 is missed, even when the IVR answered the main channel", () => {
    const c = call({ result: 304, is_ivr: true, channel: channel({ state: "ended", was_answered: true }) });
    expect(isAnswered(c)).toBe(false);
    expect(isMissed(c)).toBe(true);
  });
  it("result 304 is missed even before the channel state says ended", () => {
    const c = call({ result: 304, channel: channel({ state: "ringing" }) });
    expect(isMissed(c)).toBe(true);
  });
  it("an unanswered ended or processed call is missed", () => {
    for (const state of ["ended", "processed"] as const) {
      const c = call({ result: 486, channel: channel({ state }) });
      expect(isAnswered(c)).toBe(false);
      expect(isMissed(c)).toBe(true);
    }
  });
  it("a ringing call is neither answered nor missed", () => {
    const c = call({ result: 0, channel: channel({ state: "ringing" }) });
    expect(isAnswered(c)).toBe(false);
    expect(isMissed(c)).toBe(false);
  });
  it("works on a single channel", () => {
    expect(isAnswered(channel({ was_answered: true }))).toBe(true);
    expect(isAnswered(channel({ was_answered: false }))).toBe(false);
    expect(isMissed(channel({ was_answered: false, state: "ended" }))).toBe(true);
    expect(isMissed(channel({ was_answered: true, state: "ended" }))).toBe(false);
    expect(isMissed(channel({ was_answered: false, state: "ringing" }))).toBe(false);
  });
  it("reads each conversation's channel on its own", () => {
    const c = answeredIncoming();
    const missedLeg = conversation({ id: "1.9", state: "ended", was_answered: false });
    expect(conversationsOf(c).every((x) => isAnswered(x.channel))).toBe(true);
    expect(isMissed(missedLeg.channel)).toBe(true);
  });
});

describe("direction", () => {
  it("returns the main channel's type", () => {
    expect(direction(call({ channel: channel({ type: "incoming" }) }))).toBe("incoming");
    expect(direction(call({ channel: channel({ type: "outgoing" }) }))).toBe("outgoing");
    expect(direction(channel({ type: "local" }))).toBe("local");
    expect(direction(channel({ type: "unknown" }))).toBe("unknown");
  });
});
