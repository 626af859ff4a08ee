/**
 * Black list of extensions: calls in which one of the listed extensions took part are not
 * registered in the CRM. The list lives in the config (scripts.blacklist-extensions.settings), so
 * it changes without touching code.
 */
import { defineScript, participants } from "callscript";

export default defineScript({
  settings: { extensions: ["101", "102"] },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      const blocked = participants(call_full).filter((ext) => settings.extensions.includes(ext));
      if (blocked.length === 0) return undefined;
      log.info(`not registering: extension ${blocked.join(", ")} took part`);
      return { result: false };
    },
  },
});
