/**
 * Missed calls on the sales line go to the sales managers in turn: the first to user 3, the next
 * to 4, then 7, then 3 again. Without this every missed call (and its task) goes to whoever's
 * phone rang last, often the same receptionist.
 *
 * The turn is a counter in the script's own key-value store: ctx.kv.incr adds one atomically,
 * so two calls missed at the same moment get two different managers, and the turn survives a
 * restart or a new version of the script (a module variable would start again at every save).
 * With `kv.url: redis://…` in the config, several callscript instances share the turn.
 *
 * process_final_params finishes the call in Bitrix24: STATUS_CODE 304 means missed, USER_ID is the
 * user the call and its missed-call task are assigned to.
 */
import { defineScript } from "callscript";
import { lookupByNumber } from "./lib/numbers";

export default defineScript({
  settings: {
    /** The lines (trunk numbers) whose missed calls are shared out. */
    lines: ["74951234567"] as string[],
    /** The group: Bitrix24 user ids, in the order they take their turn. */
    users: ["3", "4", "7"] as string[],
  },
  hooks: {
    async process_final_params({ call_full, STATUS_CODE, USER_ID }, { settings, kv, log }) {
      if (Number(STATUS_CODE) !== 304 || settings.users.length === 0) return undefined;
      const trunk = call_full.channel.trunk;
      const onLine = lookupByNumber(Object.fromEntries(settings.lines.map((line) => [line, true])), trunk);
      if (!onLine) return undefined;
      let turn: number;
      try {
        turn = await kv.incr("turn");
      } catch (error) {
        // The store is unavailable (the server's log says why): the call keeps its user.
        log.warn(`no turn: ${(error as Error).message}`);
        return undefined;
      }
      const user = settings.users[(turn - 1) % settings.users.length]!;
      log.info(`missed on ${trunk.original}: turn ${turn}, responsible ${user} instead of ${USER_ID}`);
      return { USER_ID: user };
    },
  },
});
