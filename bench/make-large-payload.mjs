#!/usr/bin/env node
// @ts-check
// Writes examples/payloads/need_registration.large-20-conversations.json: a need_registration
// input (about 60 KB, on one line as the connector POSTs it) for an incoming call that went
// through queue 600 and rang twenty agents, the last of whom answered, with Bitrix24 `raw` user
// and entity objects as large as user.get / crm.contact.get return them.
// Deterministic: no clock, no randomness; running it again gives the same bytes.
//
//   node bench/make-large-payload.mjs

import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";

const OUT = fileURLToPath(new URL("../examples/payloads/need_registration.large-20-conversations.json", import.meta.url));

const ZERO = "0001-01-01 00:00:00";
const PREFIXES = ["+7", "8", "7"];
const LINKEDID = "1732618800.2001";
const CALL_START = Date.UTC(2026, 10, 20, 18, 0, 4); // PBX time 2026-11-20 18:00:04, kept as UTC

/** @param {number} offsetSeconds */
function pbxTime(offsetSeconds) {
  return new Date(CALL_START + offsetSeconds * 1000).toISOString().slice(0, 19).replace("T", " ");
}

/** @param {number} offsetSeconds */
function isoMsk(offsetSeconds) {
  return new Date(CALL_START + offsetSeconds * 1000).toISOString().slice(0, 19) + "+03:00";
}

/** @param {string} original */
function client(original, custom = "") {
  const digits = original.replace(/\D/g, "");
  const base = digits.length === 11 ? digits.slice(1) : digits;
  return { base, custom, is_local: false, original, variants: [base, ...PREFIXES.map((p) => p + base)] };
}

/** @param {string} number */
function extension(number) {
  return { base: number, custom: "", is_local: true, original: number, variants: [number] };
}

const FIRST = ["Анна", "Дмитрий", "Елена", "Павел", "Наталья", "Сергей", "Татьяна", "Андрей", "Юлия", "Максим"];
const LAST = ["Соколова", "Морозов", "Лебедева", "Новиков", "Козлова", "Егоров", "Павлова", "Орлов", "Фёдорова", "Зайцев"];

/** @param {number} index */
function bitrixUser(index) {
  const inner = String(101 + index);
  const id = String(20 + index);
  const first = FIRST[index % FIRST.length];
  const last = LAST[(index * 3) % LAST.length];
  const email = `agent${inner}@stroymarket.ru`;
  const mobile = index % 3 === 0 ? "" : `+7916${String(3000000 + index * 7919).padStart(7, "0")}`;
  const position = index === 0 ? "Руководитель колл-центра" : "Оператор колл-центра";
  return {
    email,
    id,
    name: `${first} ${last}`,
    phones: mobile ? [inner, mobile] : [inner],
    position,
    raw: {
      ID: id,
      XML_ID: `ad-${1000 + index}`,
      ACTIVE: true,
      NAME: first,
      LAST_NAME: last,
      SECOND_NAME: "",
      EMAIL: email,
      LAST_LOGIN: isoMsk(-3600 * (index + 1)),
      DATE_REGISTER: "2024-02-01T00:00:00+03:00",
      LAST_ACTIVITY_DATE: isoMsk(-60 * (index + 1)),
      IS_ONLINE: index % 4 === 0 ? "N" : "Y",
      TIME_ZONE: "Europe/Moscow",
      TIME_ZONE_OFFSET: "10800",
      TIMESTAMP_X: "2026-10-01T09:00:00+03:00",
      PERSONAL_GENDER: index % 2 === 0 ? "F" : "M",
      PERSONAL_BIRTHDAY: "",
      PERSONAL_PHOTO: `https://cdn-ru.bitrix24.ru/b1234567/main/${(0xabc000 + index).toString(16)}/avatar.png`,
      PERSONAL_MOBILE: mobile,
      PERSONAL_PHONE: "",
      PERSONAL_PROFESSION: "",
      PERSONAL_WWW: "",
      PERSONAL_ICQ: "",
      PERSONAL_FAX: "",
      PERSONAL_PAGER: "",
      PERSONAL_STREET: "",
      PERSONAL_MAILBOX: "",
      PERSONAL_CITY: "Москва",
      PERSONAL_STATE: "",
      PERSONAL_ZIP: "",
      PERSONAL_COUNTRY: "1",
      PERSONAL_NOTES: "",
      WORK_PHONE: "",
      WORK_COMPANY: "ООО «СтройМаркет»",
      WORK_DEPARTMENT: "Колл-центр",
      WORK_POSITION: position,
      WORK_WWW: "https://stroymarket.ru",
      WORK_FAX: "",
      WORK_PAGER: "",
      WORK_STREET: "ул. Складская, 5",
      WORK_MAILBOX: "",
      WORK_CITY: "Москва",
      WORK_STATE: "",
      WORK_ZIP: "115432",
      WORK_COUNTRY: "1",
      WORK_PROFILE: "",
      WORK_NOTES: "",
      UF_EMPLOYMENT_DATE: "2024-02-01T00:00:00+03:00",
      UF_DEPARTMENT: [7],
      UF_PHONE_INNER: inner,
      UF_SKYPE: "",
      UF_SKYPE_LINK: "",
      UF_ZOOM: "",
      UF_TIMEMAN: "Y",
      UF_PUBLIC: false,
      UF_INTERESTS: "",
      UF_SKILLS: "",
      UF_WEB_SITES: "",
      UF_XING: "",
      UF_LINKEDIN: "",
      USER_TYPE: "employee",
    },
  };
}

/**
 * @typedef {import("../dist/runtime/schema/call-full.js").Channel} Channel
 * @param {Omit<Channel, "type" | "answer_time" | "end_time" | "is_primary" | "was_answered"> & Partial<Pick<Channel, "answer_time" | "end_time" | "is_primary" | "was_answered">>} fields
 */
function queueChannel(fields) {
  return {
    answer_time: fields.answer_time ?? ZERO,
    end_time: fields.end_time ?? ZERO,
    extra: fields.extra,
    from: fields.from,
    id: fields.id,
    is_primary: fields.is_primary ?? false,
    name: fields.name,
    start_time: fields.start_time,
    state: fields.state,
    to: fields.to,
    trunk: fields.trunk,
    type: "incoming",
    was_answered: fields.was_answered ?? false,
  };
}

const caller = client("+79031234567");
const trunk = client("74951234567");
const ANSWERED = 19; // the twentieth agent takes the call

/** @type {Record<string, unknown>} */
const conversations = {};
let activeId = "";
for (let i = 0; i < 20; i++) {
  const id = `1732618800.${2002 + i * 2}`;
  const rang = 5 + i * 15; // queue strategy rrmemory, 15 s per member
  const answered = i === ANSWERED;
  const inner = String(101 + i);
  conversations[id] = {
    channel: queueChannel({
      id,
      name: `PJSIP/${inner}-${(0x60 + i).toString(16).padStart(8, "0")}`,
      start_time: pbxTime(rang),
      answer_time: answered ? pbxTime(rang + 6) : ZERO,
      end_time: answered ? ZERO : pbxTime(rang + 15),
      state: answered ? "talking" : "ended",
      was_answered: answered,
      from: caller,
      to: extension(inner),
      trunk,
      extra: {
        context: "from-queue",
        exten: "600",
        peer: "",
        userfield: "",
        queue: "600",
        queue_member: `Local/${inner}@from-queue/n`,
        hangupcause: answered ? "" : "19",
      },
    }),
    is_parked: false,
    user: bitrixUser(i),
  };
  if (answered) activeId = id;
}

const responsible = bitrixUser(0);

const comments = [];
for (let i = 0; i < 24; i++) {
  comments.push(
    `${isoMsk(-86400 * (24 - i)).slice(0, 10)}: клиент уточнял наличие и сроки поставки по заказу №${48100 + i}, ` +
      `договорились перезвонить после согласования счёта с бухгалтерией.`,
  );
}

const entity = {
  id: "9051",
  is_new: false,
  name: "Григорий Белов",
  phones: [client("+79031234567"), client("84959876543")],
  raw: {
    ID: "9051",
    HONORIFIC: "HNR_RU_1",
    NAME: "Григорий",
    SECOND_NAME: "Андреевич",
    LAST_NAME: "Белов",
    PHOTO: null,
    BIRTHDATE: "",
    TYPE_ID: "CLIENT",
    SOURCE_ID: "CALL",
    SOURCE_DESCRIPTION: "Входящий звонок на 74951234567",
    POST: "Главный инженер",
    ADDRESS: "ул. Строителей, 12, офис 4",
    COMMENTS: comments.join("\n"),
    OPENED: "Y",
    EXPORT: "Y",
    HAS_PHONE: "Y",
    HAS_EMAIL: "Y",
    HAS_IMOL: "N",
    ASSIGNED_BY_ID: responsible.id,
    CREATED_BY_ID: responsible.id,
    MODIFY_BY_ID: responsible.id,
    DATE_CREATE: "2025-06-02T11:15:40+03:00",
    DATE_MODIFY: "2026-11-19T17:42:03+03:00",
    COMPANY_ID: "1733",
    COMPANY_IDS: ["1733"],
    LEAD_ID: "20417",
    ORIGINATOR_ID: null,
    ORIGIN_ID: null,
    ORIGIN_VERSION: null,
    FACE_ID: null,
    LAST_ACTIVITY_TIME: "2026-11-19T17:42:03+03:00",
    LAST_ACTIVITY_BY: responsible.id,
    UTM_SOURCE: "yandex",
    UTM_MEDIUM: "cpc",
    UTM_CAMPAIGN: "brick_msk_autumn",
    UTM_CONTENT: null,
    UTM_TERM: "кирпич облицовочный купить",
    PHONE: [
      { ID: "40211", VALUE_TYPE: "MOBILE", VALUE: "+79031234567", TYPE_ID: "PHONE" },
      { ID: "40212", VALUE_TYPE: "WORK", VALUE: "84959876543", TYPE_ID: "PHONE" },
    ],
    EMAIL: [{ ID: "40213", VALUE_TYPE: "WORK", VALUE: "g.belov@vector-stroy.ru", TYPE_ID: "EMAIL" }],
    UF_CRM_1698412345: "Крупный опт",
    UF_CRM_1698412399: ["314", "316"],
    UF_CRM_1701123456: "2026-12-01T00:00:00+03:00",
    UF_CRM_1701129876: "Доставка манипулятором, разгрузка своими силами",
  },
  responsible,
  responsible_id: responsible.id,
  type: "contact",
};

const body = {
  call_full: {
    active_conversation_id: activeId,
    channel: queueChannel({
      id: LINKEDID,
      name: "SIP/trunk_mts-0000002e",
      is_primary: true,
      start_time: pbxTime(0),
      answer_time: pbxTime(2),
      state: "talking",
      was_answered: true,
      from: caller,
      to: extension("600"),
      trunk,
      extra: {
        accountcode: "",
        appname: "Queue",
        appdata: "600,tT,,,300",
        context: "from-trunk",
        exten: "74951234567",
        userfield: "",
        queue: "600",
      },
    }),
    conversations,
    deal: null,
    entity,
    is_ivr: false,
    record: "",
    registration: {
      activity_id: "51877",
      created_company_id: "",
      created_contact_id: "",
      created_deal_id: "",
      created_lead_id: "",
      entity_id: "9051",
      entity_type: "contact",
      id: "externalCall.6a0f3c9e2b7d4a1f8e5c0b3d9a7f2e6c.1732618805",
      responsible_id: responsible.id,
    },
    result: 200,
  },
  call_stage: "conversation_accepted",
};

// One line, as the connector POSTs it.
mkdirSync(dirname(OUT), { recursive: true });
const text = JSON.stringify(body) + "\n";
writeFileSync(OUT, text);
console.log(`${OUT}: ${Buffer.byteLength(text)} bytes`);
