import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ZERO_TIME, type CallFull, type Channel } from "../../runtime/schema/call-full.js";
import { defaultsFor, hookCatalog, isHookName, type HookName } from "../../runtime/schema/hooks.js";

/** The recorded hook inputs that examples, tests and benchmarks share. */
const PAYLOADS = new URL("../../examples/payloads/", import.meta.url);

const files = readdirSync(PAYLOADS)
  .filter((name) => name.endsWith(".json"))
  .sort();

function load(file: string): Record<string, unknown> {
  return JSON.parse(readFileSync(new URL(file, PAYLOADS), "utf8")) as Record<string, unknown>;
}

/** The hook a payload is for: the file name before the first dot. */
function hookOf(file: string): string {
  return file.slice(0, file.indexOf("."));
}

function parse(file: string): { hook: HookName; input: Record<string, unknown> } {
  const hook = hookOf(file);
  if (!isHookName(hook)) throw new Error(`${file}: "${hook}" is not a hook`);
  const schema: z.ZodType = hookCatalog[hook].input;
  const result = schema.safeParse(load(file));
  if (!result.success) throw new Error(`${file} does not parse:\n${z.prettifyError(result.error)}`);
  return { hook, input: result.data as Record<string, unknown> };
}

function defaultsOf(file: string): Record<string, unknown> {
  const { hook, input } = parse(file);
  return defaultsFor(hook, input);
}

function callFullOf(file: string): CallFull {
  return parse(file).input.call_full as CallFull;
}

describe("examples/payloads", () => {
  it("holds the recorded payloads the examples rely on", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        "need_registration.incoming-answered.json",
        "need_registration.incoming-missed.json",
        "need_registration.missed-in-ivr.json",
        "need_registration.outgoing.json",
        "need_registration.internal.json",
        "need_registration.transferred.json",
        "need_registration.ringing.json",
        "need_registration.large-20-conversations.json",
        "process_client_phone.incoming-8-format.json",
        "process_client_phone.internal.json",
        "process_originate_params.click-to-call.json",
        "process_final_params.missed-trunk-3432723033.json",
        "process_final_params.answered.json",
        "process_registration_params.incoming.json",
        "process_call_params.kommo-incoming.json",
        "customize_autodistribution.incoming.json",
        "process_record_file_path.json",
      ]),
    );
  });

  describe.each(files)("%s", (file) => {
    it("is named after a hook in the catalog", () => {
      expect(isHookName(hookOf(file))).toBe(true);
    });

    it("parses with the hook's input schema, keeping every key", () => {
      const raw = load(file);
      const { input } = parse(file);
      // Loose schemas: nothing the connector sent is dropped (conversations are already a map).
      expect(input).toEqual(raw);
    });

    it("gives defaults that are valid data for the hook", () => {
      const { hook, input } = parse(file);
      const defaults = defaultsFor(hook, input);
      expect(hookCatalog[hook].data.safeParse(defaults).success).toBe(true);
      expect(defaults).not.toHaveProperty("call_full");
      expect(defaults).not.toHaveProperty("call_stage");
    });

    it("is internally consistent, as the connector would send it", () => {
      const { input } = parse(file);
      const call = input.call_full as CallFull | undefined;
      if (call === undefined) return;
      const channels: Channel[] = [call.channel, ...Object.values(call.conversations).map((c) => c.channel)];
      for (const [id, conversation] of Object.entries(call.conversations)) {
        expect(conversation.channel.id).toBe(id);
      }
      if (call.active_conversation_id !== "") {
        expect(Object.keys(call.conversations)).toContain(call.active_conversation_id);
      }
      for (const channel of channels) {
        expect(channel.is_primary).toBe(channel.id === call.channel.id);
        expect(channel.was_answered).toBe(channel.answer_time !== ZERO_TIME);
        expect(channel.start_time).not.toBe(ZERO_TIME);
        if (channel.state === "ringing" || channel.state === "talking") expect(channel.end_time).toBe(ZERO_TIME);
        if (channel.state === "ended") expect(channel.end_time).not.toBe(ZERO_TIME);
        for (const number of [channel.from, channel.to, channel.trunk]) {
          if (number.original === "") continue;
          expect(number.variants[0]).toBe(number.base);
          expect(number.variants).toContain(number.original.replace(/[^\d+]/g, ""));
        }
      }
      if (call.entity !== null) expect(call.entity.responsible_id).toBe(call.entity.responsible?.id);
    });
  });
});

describe("the recorded calls", () => {
  it("incoming answered: +79001234567 on trunk 74951234567 to 101, result 200, one conversation", () => {
    const call = callFullOf("need_registration.incoming-answered.json");
    expect(call.channel).toMatchObject({
      type: "incoming",
      was_answered: true,
      from: { original: "+79001234567" },
      to: { original: "101", is_local: true },
      trunk: { original: "74951234567" },
    });
    expect(call.result).toBe(200);
    expect(Object.keys(call.conversations)).toHaveLength(1);
  });

  it("incoming missed: to 102 on trunk +73432723033, result 304, not in the IVR", () => {
    const call = callFullOf("need_registration.incoming-missed.json");
    expect(call.channel).toMatchObject({ type: "incoming", was_answered: false, answer_time: ZERO_TIME });
    expect(call.channel.to.original).toBe("102");
    expect(call.channel.trunk.original).toBe("+73432723033");
    expect(call).toMatchObject({ result: 304, is_ivr: false });
  });

  it("missed in the IVR: no conversations", () => {
    const call = callFullOf("need_registration.missed-in-ivr.json");
    expect(call).toMatchObject({ is_ivr: true, result: 304, conversations: {}, active_conversation_id: "" });
  });

  it("outgoing from 103 to 89161234567, internal 101 → 104", () => {
    const outgoing = callFullOf("need_registration.outgoing.json");
    expect(outgoing.channel).toMatchObject({
      type: "outgoing",
      was_answered: true,
      from: { original: "103", is_local: true },
      to: { original: "89161234567", is_local: false },
    });
    const internal = callFullOf("need_registration.internal.json");
    expect(internal.channel).toMatchObject({
      type: "local",
      from: { original: "101", is_local: true },
      to: { original: "104", is_local: true },
    });
  });

  it("transferred 101 → 102: two conversations, the second active", () => {
    const call = callFullOf("need_registration.transferred.json");
    const ids = Object.keys(call.conversations);
    expect(ids).toHaveLength(2);
    expect(call.active_conversation_id).toBe(ids[1]);
    expect(ids.map((id) => call.conversations[id]?.channel.to.original)).toEqual(["101", "102"]);
    expect(ids.map((id) => call.conversations[id]?.user?.raw.UF_PHONE_INNER)).toEqual(["101", "102"]);
  });

  it("ringing: conversation requested, not answered yet", () => {
    const { input } = parse("need_registration.ringing.json");
    const call = input.call_full as CallFull;
    expect(input.call_stage).toBe("conversation_requested");
    expect(call.channel).toMatchObject({ state: "ringing", was_answered: false, end_time: ZERO_TIME });
  });

  it("large: a queue call with twenty conversations, about 60 KB", () => {
    const bytes = readFileSync(new URL("need_registration.large-20-conversations.json", PAYLOADS)).length;
    expect(bytes).toBeGreaterThan(50_000);
    expect(bytes).toBeLessThan(80_000);
    const call = callFullOf("need_registration.large-20-conversations.json");
    const ids = Object.keys(call.conversations);
    expect(ids).toHaveLength(20);
    expect(call.active_conversation_id).toBe(ids[19]);
  });

  it("Kommo: no registration, the entity is a Kommo contact", () => {
    const call = callFullOf("process_call_params.kommo-incoming.json");
    expect(call.registration).toBeNull();
    expect(call.entity).toMatchObject({ type: "contact", raw: { custom_fields_values: expect.any(Array) } });
  });

  it("click-to-call comes without call_full", () => {
    expect(parse("process_originate_params.click-to-call.json").input).not.toHaveProperty("call_full");
  });
});

describe("defaults", () => {
  it("need_registration: register the call", () => {
    for (const file of files.filter((name) => hookOf(name) === "need_registration")) {
      expect(defaultsOf(file), file).toEqual({ result: true });
    }
  });

  it("process_client_phone: the phone as received", () => {
    expect(defaultsOf("process_client_phone.incoming-8-format.json")).toEqual({ phone: "89001234567" });
    expect(defaultsOf("process_client_phone.internal.json")).toEqual({ phone: "101" });
  });

  it("process_originate_params: the originate params, unwrapped", () => {
    const raw = load("process_originate_params.click-to-call.json");
    const defaults = defaultsOf("process_originate_params.click-to-call.json");
    expect(defaults).toEqual(raw.params);
    expect(defaults).toMatchObject({
      caller_id: "101",
      channel: "PJSIP/101",
      context: "from-internal",
      extension: "+7 (900) 123-45-67",
      priority: "1",
    });
    // a copy: a script changing the data does not change the input
    const { hook, input } = parse("process_originate_params.click-to-call.json");
    expect(defaultsFor(hook, input)).not.toBe(input.params);
  });

  it("process_final_params: the top-level params without call_full and call_stage", () => {
    const missed = load("process_final_params.missed-trunk-3432723033.json");
    expect(missed).toHaveProperty("call_stage");
    const { call_full: _callFull, call_stage: _callStage, ...params } = missed;
    expect(defaultsOf("process_final_params.missed-trunk-3432723033.json")).toEqual(params);
    expect(params).toMatchObject({ STATUS_CODE: 304, USER_ID: "1", DURATION: 0 });
    expect(params.CALL_ID).toMatch(/^externalCall\./);

    expect(defaultsOf("process_final_params.answered.json")).toMatchObject({ STATUS_CODE: 200 });
  });

  it("process_registration_params and process_call_params: the CRM request's params", () => {
    const registration = defaultsOf("process_registration_params.incoming.json");
    expect(registration).toMatchObject({ USER_PHONE_INNER: "101", PHONE_NUMBER: "+79001234567", TYPE: 2 });
    expect(Object.keys(registration).sort()).toEqual(
      Object.keys(load("process_registration_params.incoming.json"))
        .filter((key) => key !== "call_full" && key !== "call_stage")
        .sort(),
    );
    expect(defaultsOf("process_call_params.kommo-incoming.json")).toMatchObject({
      direction: "inbound",
      phone_number: "+79001234567",
      duration: 187,
    });
  });

  it("process_record_file_path: the path; customize_autodistribution: the normal route", () => {
    expect(defaultsOf("process_record_file_path.json")).toEqual({
      path: "/var/spool/asterisk/monitor/2026/11/20/in-101-79001234567-20261120-140312-1732612345.1234.wav",
    });
    expect(defaultsOf("customize_autodistribution.incoming.json")).toEqual({ extension: "" });
  });
});
