import { describe, expect, it } from "vitest";
import type { z } from "zod";
import { callFull, numberData, pbxTime, ZERO_TIME } from "../../runtime/schema/call-full.js";
import { hookCatalog, partialDataSchema } from "../../runtime/schema/hooks.js";

/** The `to` number of the call_full documentation's example. */
const SEED_NUMBER = {
  base: "9001234567",
  custom: "89001234567",
  is_local: false,
  original: "+79001234567",
  variants: ["9001234567", "+74959001234567", "84959001234567", "+79001234567", "79001234567", "89001234567"],
};

const clientNumber = () => ({
  base: "9001234567",
  custom: "",
  is_local: false,
  original: "+79001234567",
  variants: ["9001234567", "+79001234567", "89001234567", "79001234567"],
});
const extensionNumber = (n: string) => ({ base: n, custom: "", is_local: true, original: n, variants: [n] });
const trunkNumber = () => ({
  base: "4951234567",
  custom: "",
  is_local: false,
  original: "74951234567",
  variants: ["4951234567", "+74951234567", "84951234567", "74951234567"],
});

const channel = (id: string, name: string, primary: boolean) => ({
  answer_time: "2026-11-20 14:03:19",
  end_time: "2026-11-20 14:06:26",
  extra: { context: "from-trunk", exten: "74951234567" },
  from: clientNumber(),
  id,
  is_primary: primary,
  name,
  start_time: "2026-11-20 14:03:12",
  state: "ended",
  to: extensionNumber("101"),
  trunk: trunkNumber(),
  type: "incoming",
  was_answered: true,
});

const bitrixUser = () => ({
  email: "i.petrov@stroymarket.ru",
  id: "1",
  name: "Иван Петров",
  phones: ["101", "+79161112233"],
  position: "Менеджер по продажам",
  raw: { ID: "1", NAME: "Иван", LAST_NAME: "Петров", UF_PHONE_INNER: "101", PERSONAL_MOBILE: "+79161112233" },
});

const CONVERSATION_ID = "1732612345.1235";

/** A valid need_registration input: an answered incoming call; every call builds a fresh copy. */
function validInput() {
  return {
    call_full: {
      active_conversation_id: CONVERSATION_ID,
      channel: channel("1732612345.1234", "SIP/trunk_mts-00000017", true),
      conversations: {
        [CONVERSATION_ID]: {
          channel: channel(CONVERSATION_ID, "PJSIP/101-0000002a", false),
          is_parked: false,
          user: bitrixUser(),
        },
      },
      deal: null,
      entity: {
        id: "245",
        is_new: false,
        name: "Сергей Николаев",
        phones: [clientNumber()],
        raw: { ID: "245", NAME: "Сергей", ASSIGNED_BY_ID: "1" },
        responsible: bitrixUser(),
        responsible_id: "1",
        type: "contact",
      },
      is_ivr: false,
      record: "",
      registration: {
        activity_id: "3187",
        created_company_id: "",
        created_contact_id: "",
        created_deal_id: "",
        created_lead_id: "",
        entity_id: "245",
        entity_type: "contact",
        id: "externalCall.9d1c0b7f4e2a8c6d5b3a1f0e9d8c7b6a.1732612352",
        responsible_id: "1",
      },
      result: 200,
    },
    call_stage: "call_ended",
  };
}

type Input = ReturnType<typeof validInput>;

const needRegistration = hookCatalog.need_registration;

/** Parses a changed copy of the valid input and returns the issues (none when it parses). */
function issuesAfter(change: (input: Input) => void): z.core.$ZodIssue[] {
  const input = validInput();
  change(input);
  const result = needRegistration.input.safeParse(input);
  return result.success ? [] : result.error.issues;
}

/** Lets a test put a value of the wrong type where the types say it cannot go. */
function set(target: object, key: string, value: unknown): void {
  (target as Record<string, unknown>)[key] = value;
}

describe("number data", () => {
  it("parses the documentation's example unchanged", () => {
    expect(numberData.parse(SEED_NUMBER)).toEqual(SEED_NUMBER);
  });

  it("parses it inside a call, as channel.to", () => {
    const input = validInput();
    set(input.call_full.channel, "to", SEED_NUMBER);
    const parsed = needRegistration.input.parse(input);
    expect(parsed.call_full.channel.to).toEqual(SEED_NUMBER);
  });

  it("accepts an empty number (no trunk on an internal call)", () => {
    expect(numberData.safeParse({ base: "", custom: "", is_local: false, original: "", variants: [] }).success).toBe(true);
  });
});

describe("call_full", () => {
  it("parses a valid call unchanged", () => {
    const input = validInput();
    expect(needRegistration.input.parse(input)).toEqual(input);
    expect(callFull.parse(input.call_full)).toEqual(input.call_full);
  });

  it("accepts the zero time where an event did not happen", () => {
    expect(pbxTime.parse(ZERO_TIME)).toBe("0001-01-01 00:00:00");
    const issues = issuesAfter((input) => {
      const conversation = input.call_full.conversations[CONVERSATION_ID]!;
      for (const ch of [input.call_full.channel, conversation.channel]) {
        ch.answer_time = ZERO_TIME;
        ch.end_time = ZERO_TIME;
        ch.state = "ringing";
        ch.was_answered = false;
      }
    });
    expect(issues).toEqual([]);
  });

  it("keeps unknown keys at every level", () => {
    const input = validInput();
    const call = input.call_full;
    const conversation = call.conversations[CONVERSATION_ID]!;
    const entity = call.entity;
    set(input, "x_top", 1);
    set(call, "x_call", { nested: true });
    set(call.channel, "x_channel", "c");
    set(call.channel.extra, "x_extra", "e");
    set(call.channel.from, "x_from", "f");
    set(call.channel.to, "x_to", "t");
    set(call.channel.trunk, "x_trunk", "k");
    set(conversation, "x_conversation", [1, 2]);
    set(conversation.channel, "x_conversation_channel", null);
    set(conversation.channel.from, "x_conversation_from", 0);
    set(conversation.user, "x_user", "u");
    set(conversation.user.raw, "UF_USR_1690000000000", "x");
    set(entity, "x_entity", "n");
    set(entity.raw, "UF_CRM_1698412345", "Крупный опт");
    set(entity.phones[0]!, "x_phone", "p");
    set(entity.responsible, "x_responsible", "r");
    set(call.registration, "x_registration", "g");
    set(call, "deal", { ID: "77", TITLE: "Заказ", x_deal: "d" });

    const parsed = needRegistration.input.parse(input) as Record<string, unknown>;
    expect(parsed).toEqual(input);
    const out = parsed.call_full as Record<string, any>;
    expect(parsed.x_top).toBe(1);
    expect(out.x_call).toEqual({ nested: true });
    expect(out.channel.x_channel).toBe("c");
    expect(out.channel.extra.x_extra).toBe("e");
    expect(out.channel.from.x_from).toBe("f");
    expect(out.channel.to.x_to).toBe("t");
    expect(out.channel.trunk.x_trunk).toBe("k");
    const outConversation = out.conversations[CONVERSATION_ID];
    expect(outConversation.x_conversation).toEqual([1, 2]);
    expect(outConversation.channel).toHaveProperty("x_conversation_channel", null);
    expect(outConversation.channel.from.x_conversation_from).toBe(0);
    expect(outConversation.user.x_user).toBe("u");
    expect(outConversation.user.raw.UF_USR_1690000000000).toBe("x");
    expect(out.entity.x_entity).toBe("n");
    expect(out.entity.raw.UF_CRM_1698412345).toBe("Крупный опт");
    expect(out.entity.phones[0].x_phone).toBe("p");
    expect(out.entity.responsible.x_responsible).toBe("r");
    expect(out.registration.x_registration).toBe("g");
    expect(out.deal.x_deal).toBe("d");
  });

  it("accepts the nullable parts as null", () => {
    const issues = issuesAfter((input) => {
      set(input.call_full, "entity", null);
      set(input.call_full, "registration", null);
      set(input.call_full, "deal", null);
      set(input.call_full.conversations[CONVERSATION_ID]!, "user", null);
    });
    expect(issues).toEqual([]);
    const input = validInput();
    set(input.call_full.entity, "responsible", null);
    expect(needRegistration.input.safeParse(input).success).toBe(true);
  });

  it.each([
    ["[]", []],
    ["null", null],
  ])("turns conversations given as %s into {}", (_label, empty) => {
    const input = validInput();
    set(input.call_full, "conversations", empty);
    input.call_full.active_conversation_id = "";
    expect(needRegistration.input.parse(input).call_full.conversations).toEqual({});
    expect(callFull.parse(input.call_full).conversations).toEqual({});
  });

  it("rejects a non-empty array of conversations", () => {
    const issues = issuesAfter((input) => {
      set(input.call_full, "conversations", [input.call_full.conversations[CONVERSATION_ID]]);
    });
    expect(issues.map((issue) => issue.path)).toEqual([["call_full", "conversations"]]);
  });
});

describe("malformed payloads fail at the right path", () => {
  const cases: [string, (input: Input) => void, PropertyKey[], string][] = [
    [
      "channel.from.variants not an array",
      (input) => set(input.call_full.channel.from, "variants", "9001234567"),
      ["call_full", "channel", "from", "variants"],
      "invalid_type",
    ],
    [
      "an ISO time instead of the PBX format",
      (input) => (input.call_full.channel.start_time = "2026-11-20T14:03:12"),
      ["call_full", "channel", "start_time"],
      "invalid_format",
    ],
    [
      "a time without seconds, in a conversation",
      (input) => (input.call_full.conversations[CONVERSATION_ID]!.channel.answer_time = "2026-11-20 14:03"),
      ["call_full", "conversations", CONVERSATION_ID, "channel", "answer_time"],
      "invalid_format",
    ],
    ['channel.type "sideways"', (input) => (input.call_full.channel.type = "sideways"), ["call_full", "channel", "type"], "invalid_value"],
    ['channel.state "hold"', (input) => (input.call_full.channel.state = "hold"), ["call_full", "channel", "state"], "invalid_value"],
    ["result 200.5", (input) => (input.call_full.result = 200.5), ["call_full", "result"], "invalid_type"],
    ['result "200"', (input) => set(input.call_full, "result", "200"), ["call_full", "result"], "invalid_type"],
    ['is_ivr "false"', (input) => set(input.call_full, "is_ivr", "false"), ["call_full", "is_ivr"], "invalid_type"],
    ["an entity phone as a string", (input) => set(input.call_full.entity.phones, "0", "+79001234567"), ["call_full", "entity", "phones", 0], "invalid_type"],
    [
      "a user phone as a number",
      (input) => set(input.call_full.conversations[CONVERSATION_ID]!.user.phones, "0", 101),
      ["call_full", "conversations", CONVERSATION_ID, "user", "phones", 0],
      "invalid_type",
    ],
    [
      "registration.id missing",
      (input) => delete (input.call_full.registration as Partial<Input["call_full"]["registration"]>).id,
      ["call_full", "registration", "id"],
      "invalid_type",
    ],
    ['call_stage "ringing"', (input) => set(input, "call_stage", "ringing"), ["call_stage"], "invalid_value"],
    ["no call_full", (input) => delete (input as Partial<Input>).call_full, ["call_full"], "invalid_type"],
  ];

  it.each(cases)("%s", (_label, change, path, code) => {
    const issues = issuesAfter(change);
    expect(issues.map((issue) => ({ path: issue.path, code: issue.code }))).toEqual([{ path, code }]);
  });

  it("reports a bad time with the PBX format in the message", () => {
    const [issue] = issuesAfter((input) => (input.call_full.channel.end_time = "20.11.2026 14:06:26"));
    expect(issue?.message).toContain("YYYY-MM-DD HH:MM:SS");
  });
});

describe("hook data schemas", () => {
  const data = hookCatalog.need_registration.data;

  it("need_registration takes { result: boolean } only", () => {
    expect(data.safeParse({ result: true }).success).toBe(true);
    expect(data.safeParse({ result: false }).success).toBe(true);

    const yes = data.safeParse({ result: "yes" });
    expect(yes.success).toBe(false);
    expect(yes.error?.issues.map((issue) => [issue.path, issue.code])).toEqual([[["result"], "invalid_type"]]);

    const unknown = data.safeParse({ result: true, reason: "blacklisted" });
    expect(unknown.success).toBe(false);
    expect(unknown.error?.issues).toMatchObject([{ code: "unrecognized_keys", keys: ["reason"] }]);

    expect(data.safeParse({}).success).toBe(false);
  });

  it("need_registration partial data: {} and { result } pass, a wrong type does not", () => {
    const partial = partialDataSchema("need_registration");
    expect(partial.safeParse({}).success).toBe(true);
    expect(partial.safeParse({ result: false }).success).toBe(true);
    expect(partial.safeParse({ result: "yes" }).success).toBe(false);
  });

  it("process_originate_params needs every field", () => {
    const originate = hookCatalog.process_originate_params.data;
    const params = {
      caller_id: "101",
      channel: "PJSIP/101",
      context: "from-internal",
      extension: "89001234567",
      priority: "1",
      request_data: {},
    };
    expect(originate.safeParse(params).success).toBe(true);
    expect(originate.safeParse({ ...params, priority: 1 }).success).toBe(true);

    const { context: _context, ...withoutContext } = params;
    const missing = originate.safeParse(withoutContext);
    expect(missing.success).toBe(false);
    expect(missing.error?.issues.map((issue) => [issue.path, issue.code])).toEqual([[["context"], "invalid_type"]]);

    const extra = originate.safeParse({ ...params, timeout: 30000 });
    expect(extra.success).toBe(false);
    expect(extra.error?.issues).toMatchObject([{ code: "unrecognized_keys", keys: ["timeout"] }]);
  });
});
