/**
 * Missed calls on some lines go to a given CRM user: the Ekaterinburg branch's line to its
 * manager, the toll-free line to the call-centre lead. Without this, a missed call is assigned to
 * whoever's phone rang last, or to the entity's responsible, who may be in another city.
 *
 * process_final_params finishes the call in Bitrix24; STATUS_CODE 304 means missed, USER_ID is
 * the user the call (and the missed-call task) is assigned to.
 */
import { defineScript } from "callscript";
import { lookupByNumber } from "./lib/numbers";

export default defineScript({
  settings: {
    /** Trunk → the Bitrix24 user id responsible for calls missed on it. */
    responsibleByTrunk: { "+73432723033": 5, "88007654321": 456 } as Record<string, number | string>,
  },
  hooks: {
    process_final_params({ call_full, STATUS_CODE, USER_ID }, { settings, log }) {
      // The connector sends the status as a number, some versions as a string.
      if (Number(STATUS_CODE) !== 304) return undefined;
      const trunk = call_full.channel.trunk;
      const responsible = lookupByNumber(settings.responsibleByTrunk, trunk);
      if (responsible === undefined) return undefined;
      log.info(`missed on ${trunk.original}: responsible ${responsible} instead of ${USER_ID}`);
      // USER_ID goes back as the connector sent it: a string.
      return { USER_ID: String(responsible) };
    },
  },
});
