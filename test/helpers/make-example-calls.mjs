// Makes examples/calls/*.call.json: one call per shape, with call_full consistent across its steps
// (one linkedid, times that only move forward, the customized client number in later steps).
// Run: node test/helpers/make-example-calls.mjs examples/calls
import { writeFileSync, mkdirSync } from "node:fs";
const ZERO = "0001-01-01 00:00:00";
const OUT = process.argv[2];
mkdirSync(OUT, { recursive: true });

const client = (original) => {
  const digits = original.replace(/\D/g, "");
  const base = digits.slice(-10);
  return { base, custom: "", is_local: false, original, variants: [base, `+7${base}`, `8${base}`, `7${base}`] };
};
const local = (ext) => ({ base: ext, custom: "", is_local: true, original: ext, variants: [ext] });
const none = () => ({ base: "", custom: "", is_local: false, original: "", variants: [] });
const withCustom = (number, custom) => ({ ...number, custom });

const users = {
  101: { email: "i.petrov@stroymarket.ru", id: "1", name: "Иван Петров", phones: ["101", "+79161112233"], position: "Менеджер по продажам" },
  103: { email: "a.volkov@stroymarket.ru", id: "3", name: "Алексей Волков", phones: ["103"], position: "Менеджер по продажам" },
  104: { email: "m.kuznetsova@stroymarket.ru", id: "4", name: "Мария Кузнецова", phones: ["104"], position: "Дежурный менеджер" },
  105: { email: "d.orlov@stroymarket.ru", id: "12", name: "Дмитрий Орлов", phones: ["105"], position: "Менеджер филиала" },
};
const user = (ext) => {
  const u = users[ext];
  const [first, last] = u.name.split(" ");
  return {
    ...u,
    raw: {
      ID: u.id,
      ACTIVE: true,
      NAME: first,
      LAST_NAME: last,
      EMAIL: u.email,
      WORK_POSITION: u.position,
      PERSONAL_MOBILE: u.phones[1] ?? "",
      WORK_PHONE: "",
      UF_PHONE_INNER: ext,
      UF_DEPARTMENT: [3],
    },
  };
};
const contact = (id, name, phone, responsibleExt) => {
  const [first, last] = name.split(" ");
  return {
    id,
    is_new: false,
    name,
    phones: [client(phone)],
    raw: {
      ID: id,
      NAME: first,
      LAST_NAME: last,
      TYPE_ID: "CLIENT",
      ASSIGNED_BY_ID: users[responsibleExt].id,
      HAS_PHONE: "Y",
      PHONE: [{ ID: String(Number(id) * 3), VALUE_TYPE: "WORK", VALUE: phone, TYPE_ID: "PHONE" }],
    },
    responsible: user(responsibleExt),
    responsible_id: users[responsibleExt].id,
    type: "contact",
  };
};
const channel = (c) => ({
  answer_time: c.answer ?? ZERO,
  end_time: c.end ?? ZERO,
  extra: c.extra ?? {},
  from: c.from,
  id: c.id,
  is_primary: c.primary ?? false,
  name: c.name,
  start_time: c.start,
  state: c.state,
  to: c.to,
  trunk: c.trunk,
  type: c.type,
  was_answered: c.answer !== undefined && c.answer !== ZERO,
});
const registration = (callId, entityId, responsibleId) => ({
  activity_id: String(3000 + (Number(entityId) % 1000)),
  created_company_id: "",
  created_contact_id: "",
  created_deal_id: "",
  created_lead_id: "",
  entity_id: entityId,
  entity_type: "contact",
  id: callId,
  responsible_id: responsibleId,
});
const epoch = (time) => Math.round(Date.parse(time.replace(" ", "T") + "+03:00") / 1000);
const isoMsk = (time) => time.replace(" ", "T") + "+03:00";
const callFull = (c) => ({
  active_conversation_id: c.active ?? "",
  channel: c.channel,
  conversations: c.conversations ?? {},
  deal: null,
  entity: c.entity ?? null,
  is_ivr: c.is_ivr ?? false,
  record: c.record ?? "",
  registration: c.registration ?? null,
  result: c.result ?? 0,
});
const write = (file, call) => writeFileSync(`${OUT}/${file}`, JSON.stringify({ $schema: "./call.schema.json", ...call }, null, 2) + "\n");

// ------------------------------------------------------------------ 1. incoming, answered
{
  const start = "2026-11-20 11:02:15",
    ring = "2026-11-20 11:02:17",
    answer = "2026-11-20 11:02:24",
    end = "2026-11-20 11:05:45";
  const linkedid = `${epoch(start)}.2101`,
    legId = `${epoch(start)}.2102`;
  const trunk = client("74951234567");
  const from = client("89001234567");
  const fromCustom = withCustom(from, "+79001234567");
  const bxCall = `externalCall.5e1a9c3b7d2f4a6c8e0b1d3f5a7c9e2b.${epoch(ring)}`;
  const entity = contact("412", "Павел Сорокин", "+79001234567", "103");
  const main = (state, to, answered, ended, num = from) =>
    channel({
      id: linkedid,
      name: "SIP/trunk_mts-00000031",
      primary: true,
      type: "incoming",
      start,
      answer: answered,
      end: ended,
      state,
      from: num,
      to,
      trunk,
      extra: { context: "from-trunk", exten: "74951234567", appname: "Dial", appdata: "PJSIP/103,30,tT" },
    });
  const leg = (state, answered, ended, num = from) => ({
    channel: channel({
      id: legId,
      name: "PJSIP/103-00000061",
      type: "incoming",
      start: ring,
      answer: answered,
      end: ended,
      state,
      from: num,
      to: local("103"),
      trunk,
      extra: { context: "from-internal", exten: "103" },
    }),
    is_parked: false,
    user: user("103"),
  });
  const reg = registration(bxCall, "412", "3");
  const path = `/var/spool/asterisk/monitor/2026/11/20/in-103-89001234567-20261120-110224-${linkedid}.wav`;
  write("incoming-answered.call.json", {
    name: "incoming call on the Moscow line, answered by 103",
    description: "A client calls 74951234567 in working hours; 103 (Алексей Волков, the contact's responsible) answers and talks for 3 min 21 s. Bitrix24.",
    steps: [
      {
        hook: "customize_autodistribution",
        note: "the dialplan asks who takes the call",
        input: { call_full: callFull({ channel: main("ringing", trunk), entity }) },
      },
      {
        hook: "need_registration",
        note: "103 rings",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing", local("103")), conversations: { [legId]: leg("ringing") }, entity }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_client_phone",
        note: "the number to search the CRM with",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing", local("103")), conversations: { [legId]: leg("ringing") }, entity }),
          phone: "89001234567",
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_registration_params",
        note: "telephony.externalcall.register",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("ringing", local("103"), undefined, undefined, fromCustom),
            conversations: { [legId]: leg("ringing", undefined, undefined, fromCustom) },
            entity,
          }),
          call_stage: "conversation_requested",
          USER_ID: "3",
          USER_PHONE_INNER: "103",
          PHONE_NUMBER: "+79001234567",
          CALL_START_DATE: isoMsk(ring),
          TYPE: 2,
          CRM_CREATE: 1,
          CRM_SOURCE: "CALL",
          CRM_ENTITY_TYPE: "CONTACT",
          CRM_ENTITY_ID: "412",
          SHOW: 1,
          LINE_NUMBER: "74951234567",
        },
      },
      {
        hook: "post_registration",
        note: "registered as " + bxCall,
        input: {
          call_full: callFull({
            active: legId,
            channel: main("ringing", local("103"), undefined, undefined, fromCustom),
            conversations: { [legId]: leg("ringing", undefined, undefined, fromCustom) },
            entity,
            registration: reg,
          }),
        },
      },
      {
        hook: "need_registration",
        note: "103 answers",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("talking", local("103"), answer, undefined, fromCustom),
            conversations: { [legId]: leg("talking", answer, undefined, fromCustom) },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_accepted",
        },
      },
      {
        hook: "need_registration",
        note: "the client hangs up",
        input: {
          call_full: callFull({
            channel: main("ended", local("103"), answer, end, fromCustom),
            conversations: { [legId]: leg("ended", answer, end, fromCustom) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
        },
      },
      {
        hook: "process_final_params",
        note: "telephony.externalcall.finish",
        input: {
          call_full: callFull({
            channel: main("ended", local("103"), answer, end, fromCustom),
            conversations: { [legId]: leg("ended", answer, end, fromCustom) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
          CALL_ID: bxCall,
          USER_ID: "3",
          DURATION: 201,
          STATUS_CODE: 200,
          ADD_TO_CHAT: 1,
        },
      },
      {
        hook: "process_record_file_path",
        note: "the recording is looked for",
        input: {
          call_full: callFull({
            channel: main("processed", local("103"), answer, end, fromCustom),
            conversations: { [legId]: leg("ended", answer, end, fromCustom) },
            entity,
            registration: reg,
            result: 200,
            record: "",
          }),
          call_id: linkedid,
          from: "89001234567",
          to: "103",
          path,
        },
      },
    ],
  });
}

// ------------------------------------------------------------------ 2. incoming, missed (out of hours, Ekaterinburg line)
{
  const start = "2026-11-20 19:20:05",
    ring = "2026-11-20 19:20:08",
    end = "2026-11-20 19:20:40";
  const linkedid = `${epoch(start)}.3301`,
    legId = `${epoch(start)}.3302`;
  const trunk = client("+73432723033");
  const from = client("+79124567890");
  const fromCustom = withCustom(from, "+79124567890");
  const bxCall = `externalCall.8c2e4a6b0d1f3e5a7c9b2d4f6a8c0e1d.${epoch(ring)}`;
  const entity = contact("455", "Ольга Белова", "+79124567890", "105");
  const main = (state, to, ended, num = from) =>
    channel({
      id: linkedid,
      name: "SIP/trunk_ekb-00000042",
      primary: true,
      type: "incoming",
      start,
      end: ended,
      state,
      from: num,
      to,
      trunk,
      extra: { context: "from-trunk", exten: "73432723033", appname: "Dial", appdata: "PJSIP/104,30,tT" },
    });
  const leg = (state, ended, num = from) => ({
    channel: channel({
      id: legId,
      name: "PJSIP/104-00000077",
      type: "incoming",
      start: ring,
      end: ended,
      state,
      from: num,
      to: local("104"),
      trunk,
      extra: { context: "from-internal", exten: "104" },
    }),
    is_parked: false,
    user: user("104"),
  });
  const reg = registration(bxCall, "455", "4");
  write("incoming-missed.call.json", {
    name: "missed call on the Ekaterinburg line, out of hours",
    description:
      "Friday 19:20, after hours: the call goes to the duty manager 104, who does not answer within 32 s. Bitrix24; the missed call is assigned to user 5, the branch manager.",
    steps: [
      {
        hook: "customize_autodistribution",
        note: "the dialplan asks who takes the call",
        input: { call_full: callFull({ channel: main("ringing", trunk), entity }) },
      },
      {
        hook: "need_registration",
        note: "104 rings",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing", local("104")), conversations: { [legId]: leg("ringing") }, entity }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_client_phone",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing", local("104")), conversations: { [legId]: leg("ringing") }, entity }),
          phone: "+79124567890",
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_registration_params",
        note: "telephony.externalcall.register",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("ringing", local("104"), undefined, fromCustom),
            conversations: { [legId]: leg("ringing", undefined, fromCustom) },
            entity,
          }),
          call_stage: "conversation_requested",
          USER_ID: "4",
          USER_PHONE_INNER: "104",
          PHONE_NUMBER: "+79124567890",
          CALL_START_DATE: isoMsk(ring),
          TYPE: 2,
          CRM_CREATE: 1,
          CRM_SOURCE: "CALL",
          CRM_ENTITY_TYPE: "CONTACT",
          CRM_ENTITY_ID: "455",
          SHOW: 1,
          LINE_NUMBER: "+73432723033",
        },
      },
      {
        hook: "post_registration",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("ringing", local("104"), undefined, fromCustom),
            conversations: { [legId]: leg("ringing", undefined, fromCustom) },
            entity,
            registration: reg,
          }),
        },
      },
      {
        hook: "need_registration",
        note: "the client gives up",
        input: {
          call_full: callFull({
            channel: main("ended", local("104"), end, fromCustom),
            conversations: { [legId]: leg("ended", end, fromCustom) },
            entity,
            registration: reg,
            result: 304,
          }),
          call_stage: "call_ended",
        },
      },
      {
        hook: "process_final_params",
        note: "telephony.externalcall.finish",
        input: {
          call_full: callFull({
            channel: main("ended", local("104"), end, fromCustom),
            conversations: { [legId]: leg("ended", end, fromCustom) },
            entity,
            registration: reg,
            result: 304,
          }),
          call_stage: "call_ended",
          CALL_ID: bxCall,
          USER_ID: "4",
          DURATION: 0,
          STATUS_CODE: 304,
          ADD_TO_CHAT: 1,
        },
      },
      {
        hook: "process_task_creation_params",
        note: "a task for the missed call",
        input: {
          call_full: callFull({
            channel: main("processed", local("104"), end, fromCustom),
            conversations: { [legId]: leg("ended", end, fromCustom) },
            entity,
            registration: reg,
            result: 304,
          }),
          call_stage: "call_ended",
          TITLE: "Пропущенный звонок +79124567890",
          RESPONSIBLE_ID: "4",
          DEADLINE: "2026-11-21T19:20:40+03:00",
          UF_CRM_TASK: ["C_455"],
        },
      },
    ],
  });
}

// ------------------------------------------------------------------ 3. missed in the IVR
{
  const start = "2026-11-20 12:47:30",
    end = "2026-11-20 12:47:52";
  const linkedid = `${epoch(start)}.2601`;
  const trunk = client("74951234567");
  const from = client("+79035551122");
  write("missed-in-ivr.call.json", {
    name: "call missed in the IVR",
    description:
      "A client calls the Moscow line and hangs up in the voice menu after 22 s; no extension ever rings. The connector asks need_registration at the call's end and registers the call only if it answers true: with skip-short-and-ivr it does not, so this is the whole call.",
    steps: [
      {
        hook: "need_registration",
        note: "the client hangs up in the menu",
        input: {
          call_full: callFull({
            channel: channel({
              id: linkedid,
              name: "SIP/trunk_mts-00000035",
              primary: true,
              type: "incoming",
              start,
              answer: "2026-11-20 12:47:31",
              end,
              state: "ended",
              from,
              to: trunk,
              trunk,
              extra: { context: "ivr-main", exten: "s", appname: "BackGround", appdata: "custom/main-menu" },
            }),
            is_ivr: true,
            result: 304,
          }),
          call_stage: "call_ended",
        },
      },
    ],
  });
}

// ------------------------------------------------------------------ 4. outgoing (click-to-call)
{
  const start = "2026-11-20 14:10:02",
    dial = "2026-11-20 14:10:06",
    answer = "2026-11-20 14:10:15",
    end = "2026-11-20 14:11:50";
  const linkedid = `${epoch(start)}.2801`,
    legId = `${epoch(start)}.2802`;
  const trunk = client("74951234567");
  const to = client("89007654321");
  const toCustom = withCustom(to, "+79007654321");
  const bxCall = `externalCall.1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a.${epoch(start)}`;
  const entity = contact("398", "Наталья Егорова", "+79007654321", "103");
  const main = (state, answered, ended, num = to) =>
    channel({
      id: linkedid,
      name: "PJSIP/103-00000064",
      primary: true,
      type: "outgoing",
      start,
      answer: answered,
      end: ended,
      state,
      from: local("103"),
      to: num,
      trunk,
      extra: { context: "from-internal", exten: "89007654321", appname: "Dial", appdata: "SIP/trunk_mts/89007654321,60,tT" },
    });
  const leg = (state, answered, ended, num = to) => ({
    channel: channel({
      id: legId,
      name: "SIP/trunk_mts-00000036",
      type: "outgoing",
      start: dial,
      answer: answered,
      end: ended,
      state,
      from: local("103"),
      to: num,
      trunk,
      extra: { context: "from-internal", exten: "89007654321" },
    }),
    is_parked: false,
    user: user("103"),
  });
  const reg = registration(bxCall, "398", "3");
  const path = `/var/spool/asterisk/monitor/2026/11/20/out-89007654321-103-20261120-141015-${linkedid}.wav`;
  write("outgoing.call.json", {
    name: "outgoing call from the CRM (click-to-call) by 103",
    description:
      "103 clicks the contact's number +7 (900) 765-43-21 in Bitrix24; the PBX rings 103, then dials the client, who answers and talks for 1 min 35 s.",
    steps: [
      {
        hook: "process_originate_params",
        note: "before the AMI Originate: no call yet",
        input: {
          params: {
            caller_id: "103",
            channel: "PJSIP/103",
            context: "from-internal",
            extension: "+7 (900) 765-43-21",
            priority: "1",
            request_data: {
              event: "ONEXTERNALCALLSTART",
              data: {
                USER_ID: "3",
                PHONE_NUMBER: "+7 (900) 765-43-21",
                PHONE_NUMBER_INTERNATIONAL: "+79007654321",
                EXTENSION: "103",
                CALL_ID: bxCall,
                CRM_ENTITY_TYPE: "CONTACT",
                CRM_ENTITY_ID: "398",
              },
            },
          },
        },
      },
      {
        hook: "need_registration",
        note: "the client's phone rings",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing"), conversations: { [legId]: leg("ringing") }, entity }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_client_phone",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing"), conversations: { [legId]: leg("ringing") }, entity }),
          phone: "89007654321",
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_registration_params",
        note: "telephony.externalcall.register",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("ringing", undefined, undefined, toCustom),
            conversations: { [legId]: leg("ringing", undefined, undefined, toCustom) },
            entity,
          }),
          call_stage: "conversation_requested",
          USER_ID: "3",
          USER_PHONE_INNER: "103",
          PHONE_NUMBER: "+79007654321",
          CALL_START_DATE: isoMsk(start),
          TYPE: 1,
          CRM_CREATE: 0,
          CRM_SOURCE: "CALL",
          CRM_ENTITY_TYPE: "CONTACT",
          CRM_ENTITY_ID: "398",
          SHOW: 0,
          LINE_NUMBER: "74951234567",
        },
      },
      {
        hook: "need_registration",
        note: "the client answers",
        input: {
          call_full: callFull({
            active: legId,
            channel: main("talking", answer, undefined, toCustom),
            conversations: { [legId]: leg("talking", answer, undefined, toCustom) },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_accepted",
        },
      },
      {
        hook: "need_registration",
        note: "103 hangs up",
        input: {
          call_full: callFull({
            channel: main("ended", answer, end, toCustom),
            conversations: { [legId]: leg("ended", answer, end, toCustom) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
        },
      },
      {
        hook: "process_final_params",
        note: "telephony.externalcall.finish",
        input: {
          call_full: callFull({
            channel: main("ended", answer, end, toCustom),
            conversations: { [legId]: leg("ended", answer, end, toCustom) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
          CALL_ID: bxCall,
          USER_ID: "3",
          DURATION: 95,
          STATUS_CODE: 200,
          ADD_TO_CHAT: 1,
        },
      },
      {
        hook: "process_record_file_path",
        input: {
          call_full: callFull({
            channel: main("processed", answer, end, toCustom),
            conversations: { [legId]: leg("ended", answer, end, toCustom) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_id: linkedid,
          from: "103",
          to: "89007654321",
          path,
        },
      },
    ],
  });
}

// ------------------------------------------------------------------ 5. internal
{
  const start = "2026-11-20 15:30:00",
    answer = "2026-11-20 15:30:06",
    end = "2026-11-20 15:30:51";
  const linkedid = `${epoch(start)}.3001`,
    legId = `${epoch(start)}.3002`;
  const main = (state, answered, ended) =>
    channel({
      id: linkedid,
      name: "PJSIP/103-00000070",
      primary: true,
      type: "local",
      start,
      answer: answered,
      end: ended,
      state,
      from: local("103"),
      to: local("104"),
      trunk: none(),
      extra: { context: "from-internal", exten: "104", appname: "Dial", appdata: "PJSIP/104,30,tT" },
    });
  const leg = (state, answered, ended) => ({
    channel: channel({
      id: legId,
      name: "PJSIP/104-00000071",
      type: "local",
      start: "2026-11-20 15:30:01",
      answer: answered,
      end: ended,
      state,
      from: local("103"),
      to: local("104"),
      trunk: none(),
      extra: { context: "from-internal", exten: "104" },
    }),
    is_parked: false,
    user: user("104"),
  });
  write("internal.call.json", {
    name: "internal call from 103 to 104",
    description: "Two colleagues talk for 45 s, extension to extension: no trunk, no client. Bitrix24.",
    steps: [
      {
        hook: "need_registration",
        note: "104 rings",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing"), conversations: { [legId]: leg("ringing") } }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_user_phone",
        note: "the user behind 104",
        input: {
          call_full: callFull({ active: legId, channel: main("ringing"), conversations: { [legId]: leg("ringing") } }),
          phone: "104",
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "need_registration",
        note: "104 answers",
        input: {
          call_full: callFull({ active: legId, channel: main("talking", answer), conversations: { [legId]: leg("talking", answer) } }),
          call_stage: "conversation_accepted",
        },
      },
      {
        hook: "need_registration",
        note: "103 hangs up",
        input: {
          call_full: callFull({ channel: main("ended", answer, end), conversations: { [legId]: leg("ended", answer, end) }, result: 200 }),
          call_stage: "call_ended",
        },
      },
    ],
  });
}

// ------------------------------------------------------------------ 6. transferred
{
  const start = "2026-11-20 16:05:10",
    ring1 = "2026-11-20 16:05:12",
    answer1 = "2026-11-20 16:05:18",
    transfer = "2026-11-20 16:06:40",
    answer2 = "2026-11-20 16:06:47",
    end = "2026-11-20 16:09:02";
  const linkedid = `${epoch(start)}.3101`,
    leg1 = `${epoch(start)}.3102`,
    leg2 = `${epoch(start)}.3107`;
  const trunk = client("74951234567");
  const from = client("+79857778899");
  const fromCustom = withCustom(from, "+79857778899");
  const bxCall = `externalCall.7c2e9a4f1d6b3e8c0a5f2d7b9e1c4a6f.${epoch(ring1)}`;
  const entity = contact("377", "Сергей Николаев", "+79857778899", "103");
  const main = (state, to, answered, ended, num = from) =>
    channel({
      id: linkedid,
      name: "SIP/trunk_mts-00000038",
      primary: true,
      type: "incoming",
      start,
      answer: answered,
      end: ended,
      state,
      from: num,
      to,
      trunk,
      extra: { context: "from-trunk", exten: "74951234567", appname: "Dial", appdata: "PJSIP/103,30,tT" },
    });
  const first = (state, answered, ended, num = from) => ({
    channel: channel({
      id: leg1,
      name: "PJSIP/103-00000080",
      type: "incoming",
      start: ring1,
      answer: answered,
      end: ended,
      state,
      from: num,
      to: local("103"),
      trunk,
      extra: ended ? { context: "from-internal", exten: "103", transfer: "blind", transfer_target: "104" } : { context: "from-internal", exten: "103" },
    }),
    is_parked: false,
    user: user("103"),
  });
  const second = (state, answered, ended, num = fromCustom) => ({
    channel: channel({
      id: leg2,
      name: "PJSIP/104-00000082",
      type: "incoming",
      start: transfer,
      answer: answered,
      end: ended,
      state,
      from: num,
      to: local("104"),
      trunk,
      extra: { context: "from-internal", exten: "104" },
    }),
    is_parked: false,
    user: user("104"),
  });
  const reg = registration(bxCall, "377", "3");
  const path = `/var/spool/asterisk/monitor/2026/11/20/in-103-79857778899-20261120-160518-${linkedid}.wav`;
  write("transferred.call.json", {
    name: "incoming call answered by 103, transferred to 104",
    description: "103 answers, talks 1 min 22 s and blind-transfers the client to 104, who talks for 2 min 15 s. Bitrix24.",
    steps: [
      {
        hook: "customize_autodistribution",
        note: "the dialplan asks who takes the call",
        input: { call_full: callFull({ channel: main("ringing", trunk), entity }) },
      },
      {
        hook: "need_registration",
        note: "103 rings",
        input: {
          call_full: callFull({ active: leg1, channel: main("ringing", local("103")), conversations: { [leg1]: first("ringing") }, entity }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_client_phone",
        input: {
          call_full: callFull({ active: leg1, channel: main("ringing", local("103")), conversations: { [leg1]: first("ringing") }, entity }),
          phone: "+79857778899",
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "process_registration_params",
        note: "telephony.externalcall.register",
        input: {
          call_full: callFull({
            active: leg1,
            channel: main("ringing", local("103"), undefined, undefined, fromCustom),
            conversations: { [leg1]: first("ringing", undefined, undefined, fromCustom) },
            entity,
          }),
          call_stage: "conversation_requested",
          USER_ID: "3",
          USER_PHONE_INNER: "103",
          PHONE_NUMBER: "+79857778899",
          CALL_START_DATE: isoMsk(ring1),
          TYPE: 2,
          CRM_CREATE: 1,
          CRM_SOURCE: "CALL",
          CRM_ENTITY_TYPE: "CONTACT",
          CRM_ENTITY_ID: "377",
          SHOW: 1,
          LINE_NUMBER: "74951234567",
        },
      },
      {
        hook: "need_registration",
        note: "103 answers",
        input: {
          call_full: callFull({
            active: leg1,
            channel: main("talking", local("103"), answer1, undefined, fromCustom),
            conversations: { [leg1]: first("talking", answer1, undefined, fromCustom) },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_accepted",
        },
      },
      {
        hook: "need_registration",
        note: "103 transfers to 104, which rings",
        input: {
          call_full: callFull({
            active: leg2,
            channel: main("talking", local("104"), answer1, undefined, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("ringing") },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_requested",
        },
      },
      {
        hook: "customize_show_call_card",
        note: "the call card moves to 104",
        input: {
          call_full: callFull({
            active: leg2,
            channel: main("talking", local("104"), answer1, undefined, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("ringing") },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_requested",
          CALL_ID: bxCall,
          USER_ID: ["4"],
        },
      },
      {
        hook: "need_registration",
        note: "104 answers",
        input: {
          call_full: callFull({
            active: leg2,
            channel: main("talking", local("104"), answer1, undefined, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("talking", answer2) },
            entity,
            registration: reg,
          }),
          call_stage: "conversation_accepted",
        },
      },
      {
        hook: "need_registration",
        note: "the client hangs up",
        input: {
          call_full: callFull({
            channel: main("ended", local("104"), answer1, end, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("ended", answer2, end) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
        },
      },
      {
        hook: "process_final_params",
        note: "telephony.externalcall.finish",
        input: {
          call_full: callFull({
            channel: main("ended", local("104"), answer1, end, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("ended", answer2, end) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_stage: "call_ended",
          CALL_ID: bxCall,
          USER_ID: "4",
          DURATION: 224,
          STATUS_CODE: 200,
          ADD_TO_CHAT: 1,
        },
      },
      {
        hook: "process_record_file_path",
        input: {
          call_full: callFull({
            channel: main("processed", local("104"), answer1, end, fromCustom),
            conversations: { [leg1]: first("ended", answer1, transfer, fromCustom), [leg2]: second("ended", answer2, end) },
            entity,
            registration: reg,
            result: 200,
          }),
          call_id: linkedid,
          from: "79857778899",
          to: "103",
          path,
        },
      },
    ],
  });
}
