import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parseHookInput } from "../../runtime/schema/hook-input.js";
import { anonymizeInput, recordInput } from "../../runtime/record/anonymize.js";
import type { CallFull, Channel, NumberData } from "../../runtime/schema/call-full.js";
import { isHookName } from "../../runtime/schema/hooks.js";
import { callscript } from "../helpers/build.js";
import { folder, payload, payloadsDir } from "./fixtures.js";

type Input = Record<string, unknown> & { call_full: CallFull };
const KEY = "test-key";

function load(name: string): Input {
  return JSON.parse(payload(name)) as Input;
}

function channels(call: CallFull): Channel[] {
  return [call.channel, ...Object.values(call.conversations).map((conversation) => conversation.channel)];
}

const digitsOf = (text: string) => text.replace(/\D/g, "");

describe("anonymizeInput", () => {
  it("replaces the client's number everywhere it is written, the same way, keeping its length and prefix", () => {
    const input = load("need_registration.incoming-missed.json");
    const { value, report } = anonymizeInput(input, { key: KEY });
    const from = value.call_full.channel.from;
    expect(from.base).toHaveLength(10);
    expect(from.base).not.toBe("9124567890");
    expect(from.base.slice(0, 3)).toBe("912");
    expect(from.original).toBe(`+7${from.base}`);
    expect(from.variants).toEqual([from.base, `+7${from.base}`, `8${from.base}`, `7${from.base}`]);
    for (const channel of channels(value.call_full)) expect(channel.from).toEqual(from);
    expect(value.call_full.entity!.phones).toEqual([from]);
    expect((value.call_full.entity!.raw.PHONE as Array<{ VALUE: string }>)[0]!.VALUE).toBe(`+7${from.base}`);
    expect(JSON.stringify(value)).not.toContain("9124567890");
    expect(report.numbers).toBe(2); // the client and 101's own mobile +79161112233
  });

  it("keeps extensions, trunks and everything that is not about a person", () => {
    const input = load("need_registration.incoming-missed.json");
    const { value } = anonymizeInput(input, { key: KEY });
    const call = value.call_full;
    expect(call.channel.to).toEqual(input.call_full.channel.to);
    expect(call.channel.to.original).toBe("102");
    expect(channels(call).map((channel) => channel.trunk)).toEqual(channels(input.call_full).map((channel) => channel.trunk));
    expect(call.channel.trunk.original).toBe("+73432723033");
    expect(call.channel.name).toBe("PJSIP/trunk_ekb-00000021");
    expect(call.registration).toEqual(input.call_full.registration);
    expect(call.channel.start_time).toBe(input.call_full.channel.start_time);
    expect(value.call_stage).toBe("call_ended");
    // The called line of a call that ended in the IVR is the trunk too: kept.
    const ivr = anonymizeInput(load("need_registration.missed-in-ivr.json"), { key: KEY }).value.call_full.channel;
    expect(ivr.to.original).toBe("74951234567");
    expect(ivr.trunk.original).toBe("74951234567");
    expect(ivr.from.original).not.toBe("+79035551122");
  });

  it("replaces the client's and the users' names and e-mail addresses, consistently", () => {
    const input = load("need_registration.incoming-missed.json");
    const { value, report } = anonymizeInput(input, { key: KEY });
    const entity = value.call_full.entity!;
    expect(entity.name).toMatch(/^Client [0-9a-f]{4}$/);
    expect(entity.raw.NAME).toBe(entity.name); // both were "Контакт +79124567890"
    const user = Object.values(value.call_full.conversations)[0]!.user!;
    expect(user.name).toMatch(/^User [0-9a-f]{4}$/);
    expect(user.email).toMatch(/^person-[0-9a-f]{6}@example\.com$/);
    expect(user.raw.EMAIL).toBe(user.email);
    expect(user.phones).toEqual(["102"]);
    expect(user.id).toBe("7");
    expect(user.position).toBe("Менеджер по продажам");
    expect(entity.responsible!.phones[0]).toBe("101");
    expect(entity.responsible!.phones[1]).not.toBe("+79161112233");
    expect(entity.responsible!.raw.PERSONAL_MOBILE).toBe(entity.responsible!.phones[1]);
    const text = JSON.stringify(value);
    for (const secret of ["Смирнова", "Петров", "stroymarket.ru", "+79161112233"]) expect(text).not.toContain(secret);
    expect(report).toMatchObject({ emails: 2 });
    expect(report.names).toBeGreaterThanOrEqual(8);
  });

  it("rewrites formatted numbers, paths and URLs without call_full, or beside it", () => {
    type Click = { params: { extension: string; caller_id: string; request_data: { data: Record<string, string> } } };
    const click = anonymizeInput(JSON.parse(payload("process_originate_params.click-to-call.json")) as Click, { key: KEY }).value;
    const { extension } = click.params;
    expect(extension).toMatch(/^\+7 \(900\) \d{3}-\d{2}-\d{2}$/);
    expect(extension).not.toBe("+7 (900) 123-45-67");
    expect(click.params.request_data.data.PHONE_NUMBER).toBe(extension);
    expect(click.params.request_data.data.PHONE_NUMBER_INTERNATIONAL).toBe(`+${digitsOf(extension)}`);
    expect(click.params.caller_id).toBe("101");

    const record = anonymizeInput(load("process_record_file_path.json"), { key: KEY }).value as Input & { path: string; from: string; to: string };
    const client = record.call_full.channel.from.base;
    expect(record.path).toBe(`/var/spool/asterisk/monitor/2026/11/20/in-101-7${client}-20261120-140312-1732612345.1234.wav`);
    expect(record.from).toBe(`7${client}`);
    expect(record.to).toBe("101");
    expect(record.call_full.record).toContain(`in-101-7${client}-`);
  });

  it("gives the same fake for the same number with the same key, in every payload; another key gives another", () => {
    const a = anonymizeInput(load("need_registration.incoming-answered.json"), { key: KEY }).value;
    const b = anonymizeInput(load("process_client_phone.incoming-8-format.json"), { key: KEY }).value as Input & { phone: string };
    expect(b.call_full.channel.from.base).toBe(a.call_full.channel.from.base);
    expect(b.phone).toBe(`8${a.call_full.channel.from.base}`);
    const other = anonymizeInput(load("need_registration.incoming-answered.json"), { key: "another key" }).value;
    expect(other.call_full.channel.from.base).not.toBe(a.call_full.channel.from.base);
    const unkeyed = [1, 2].map(() => anonymizeInput(load("need_registration.incoming-answered.json")).value.call_full.channel.from.base);
    expect(unkeyed[0]).toBe(unkeyed[1]); // one random key per process
  });

  it.each(readdirSync(payloadsDir).filter((name) => name.endsWith(".json")))("%s stays a valid input for its hook", (name) => {
    const hook = name.split(".")[0]!;
    if (!isHookName(hook)) throw new Error(`${name} is not named after a hook`);
    const input = load(name);
    const { value } = anonymizeInput(input, { key: KEY });
    const parsed = parseHookInput(hook, value);
    expect(parsed.ok ? [] : parsed.issues).toEqual([]);
    if (!input.call_full) return;
    const before = channels(input.call_full);
    channels(value.call_full).forEach((channel, index) => {
      expect(channel.trunk).toEqual(before[index]!.trunk);
      for (const side of ["from", "to"] as const) {
        const number: NumberData = channel[side];
        if (number.is_local) expect(number).toEqual(before[index]![side]);
        if (number.original === "") continue;
        expect(number.variants[0]).toBe(number.base);
        expect(number.variants).toContain(number.original.replace(/[^\d+]/g, ""));
      }
    });
  });
});

describe("recordInput", () => {
  it("saves <hook>.<timestamp>-<id>.json, anonymized, creating the folder", async () => {
    const dir = path.join(folder({}), "recorded", "calls");
    const input = load("need_registration.incoming-missed.json");
    const file = await recordInput(dir, "need_registration", input, { anonymize: true, key: KEY, id: "req/42" });
    expect(path.dirname(file)).toBe(dir);
    expect(path.basename(file)).toMatch(/^need_registration\.\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}\.\d{3}Z-req_42\.json$/);
    expect(readdirSync(dir)).toEqual([path.basename(file)]);
    const saved = JSON.parse(readFileSync(file, "utf8")) as Input;
    expect(saved).toEqual(anonymizeInput(input, { key: KEY }).value);
    expect(parseHookInput("need_registration", saved).ok).toBe(true);

    const raw = await recordInput(dir, "need_registration", input, { anonymize: false });
    expect(JSON.parse(readFileSync(raw, "utf8"))).toEqual(input);
    expect(path.basename(raw)).toMatch(/-[0-9a-f]{8}\.json$/);
    await expect(recordInput(dir, "../../etc/x", input, { anonymize: false })).rejects.toThrow("'../../etc/x' is not a hook");
  });
});

describe("callscript record anonymize", () => {
  it("writes anonymized copies to --out that are still valid for their hook", () => {
    const dir = folder({
      "need_registration.missed.json": payload("need_registration.incoming-missed.json"),
      "process_client_phone.8.json": payload("process_client_phone.incoming-8-format.json"),
    });
    const out = path.join(dir, "clean");
    const run = callscript([
      "record",
      "anonymize",
      path.join(dir, "need_registration.missed.json"),
      path.join(dir, "process_client_phone.8.json"),
      "--out",
      out,
      "--key",
      KEY,
    ]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain("need_registration.missed.json: 2 numbers, 8 names, 2 e-mail addresses replaced, still a valid need_registration input");
    expect(run.stdout).toContain("process_client_phone.8.json: 2 numbers, 3 names, 1 e-mail address replaced, still a valid process_client_phone input");
    const missed = JSON.parse(readFileSync(path.join(out, "need_registration.missed.json"), "utf8")) as Input;
    expect(missed).toEqual(anonymizeInput(load("need_registration.incoming-missed.json"), { key: KEY }).value);
    expect(missed.call_full.channel.to.original).toBe("102");
    expect(missed.call_full.channel.from.original).not.toBe("+79124567890");
    // The originals are left alone.
    expect(readFileSync(path.join(dir, "need_registration.missed.json"), "utf8")).toBe(payload("need_registration.incoming-missed.json"));
  });

  it("anonymizes in place; a file that is not JSON is reported and the others are done", () => {
    const dir = folder({ "process_client_phone.8.json": payload("process_client_phone.incoming-8-format.json"), "broken.json": "{ nope" });
    const run = callscript(["record", "anonymize", path.join(dir, "broken.json"), path.join(dir, "process_client_phone.8.json")]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`not anonymized ${path.join(dir, "broken.json")}: Input file ${path.join(dir, "broken.json")} is not valid JSON`);
    const changed = JSON.parse(readFileSync(path.join(dir, "process_client_phone.8.json"), "utf8")) as Input & { phone: string };
    expect(changed.phone).toMatch(/^8900\d{7}$/);
    expect(changed.phone).not.toBe("89001234567");
    expect(changed.call_full.channel.to.original).toBe("101");
  });
});
