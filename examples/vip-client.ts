/**
 * VIP clients go to their own manager. When a contact of a VIP type calls, the call is registered
 * in Bitrix24 to the manager responsible for that contact (its ASSIGNED_BY_ID), not to whoever's
 * phone rang: the call, its card and its missed-call task are the manager's.
 *
 * The contact is looked up in the portal while the call rings (crm.contact.list by the client's
 * number, as the CRM holds it now), through an inbound webhook. The webhook's code is a full
 * access key, so it is a secret: the script writes ctx.secret("BITRIX_WEBHOOK") where it goes and
 * never sees the value, which the server puts in place only in a fetch to an allowed origin.
 *
 *   secrets:
 *     BITRIX_WEBHOOK: "${BITRIX_WEBHOOK}"            # from the environment
 *   scripts:
 *     vip-client:
 *       fetch: { allow: ["https://stroymarket.bitrix24.ru"], timeoutMs: 1500, maxCalls: 2 }
 *       secrets: [BITRIX_WEBHOOK]
 *
 * A lookup must never cost a call: when the portal is slow, down, over its request limit or
 * refuses the webhook, the script says so in its log and the call is registered as the connector
 * would have registered it.
 */
import { defineScript } from "callscript";

/** The fields of a contact this script asks for (Bitrix24 sends IDs as strings). */
interface Contact {
  ID: string;
  TYPE_ID?: string;
  ASSIGNED_BY_ID?: string;
}

/** A Bitrix24 REST answer: `result` on success, `error` and `error_description` otherwise. */
interface RestAnswer<T> {
  result?: T;
  error?: string;
  error_description?: string;
}

export default defineScript({
  settings: {
    /** The portal's address: it must be one of this script's fetch.allow in the config. */
    portal: "https://stroymarket.bitrix24.ru",
    /** The user the inbound webhook belongs to: /rest/<user>/<code>/. */
    webhookUser: "1",
    /** Contact types (TYPE_ID) whose calls go to their manager. */
    vipTypes: ["VIP"] as string[],
  },
  hooks: {
    async process_registration_params({ call_full, PHONE_NUMBER, USER_ID }, ctx) {
      const { settings, log } = ctx;
      // Only a client who calls in: an outgoing call already belongs to the manager who makes it.
      if (call_full.channel.type !== "incoming") return undefined;
      const phone = PHONE_NUMBER || call_full.channel.from.original;
      if (!phone) return undefined;

      const webhook = `${settings.portal}/rest/${settings.webhookUser}/${ctx.secret("BITRIX_WEBHOOK")}`;
      let contacts: Contact[];
      try {
        const res = await ctx.fetch(`${webhook}/crm.contact.list.json`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          // The phone filter matches the number exactly as the CRM stores it.
          body: JSON.stringify({ filter: { PHONE: phone }, select: ["ID", "TYPE_ID", "ASSIGNED_BY_ID"] }),
        });
        const answer = res.json() as RestAnswer<Contact[]>;
        if (!res.ok) {
          log.warn(`Bitrix24 answered ${res.status} ${answer.error ?? ""}: ${answer.error_description ?? res.statusText}; registered as usual`);
          return undefined;
        }
        contacts = answer.result ?? [];
      } catch (error) {
        // A refusal of the server (CapabilityError: its code and a message naming the config key) or an answer that is not JSON.
        const { code, message } = error as { code?: string; message: string };
        log.warn(`no lookup (${code ?? "not JSON"}): ${message}; registered as usual`);
        return undefined;
      }

      const vip = contacts.find((contact) => contact.ASSIGNED_BY_ID && settings.vipTypes.includes(contact.TYPE_ID ?? ""));
      if (!vip?.ASSIGNED_BY_ID || vip.ASSIGNED_BY_ID === String(USER_ID)) return undefined;
      log.info(`VIP contact ${vip.ID}: registered to their manager ${vip.ASSIGNED_BY_ID} instead of ${USER_ID}`);
      return { USER_ID: vip.ASSIGNED_BY_ID };
    },
  },
});
