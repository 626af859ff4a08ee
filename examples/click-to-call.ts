/**
 * Click-to-call: the CRM sends the number as its user sees it, "+7 (900) 123-45-67"; the PBX's
 * outbound route wants 8 and the ten national digits, 89001234567. Toll-free 8-800 numbers go out
 * through their own context (a trunk whose provider does not charge for them).
 *
 * Internal numbers (a click on a colleague's extension) are dialled as they are.
 */
import { defineScript, isInternalNumber, lastDigits } from "callscript";

export default defineScript({
  settings: {
    /** What the PBX dials before the national number. */
    dialPrefix: "8",
    /** National number prefix → the dialplan context that dials it; the first match wins. */
    contexts: { "800": "outbound-tollfree" } as Record<string, string>,
  },
  hooks: {
    process_originate_params({ params }, { settings, log }) {
      if (isInternalNumber(params.extension)) return undefined;
      const national = lastDigits(params.extension, 10);
      if (national.length < 10) {
        log.warn(`${params.extension} has fewer than 10 digits; dialled as it is`);
        return undefined;
      }
      const extension = settings.dialPrefix + national;
      const prefix = Object.keys(settings.contexts).find((start) => national.startsWith(start));
      const context = prefix === undefined ? params.context : (settings.contexts[prefix] ?? params.context);
      log.info(`dialling ${extension} from ${params.caller_id} in ${context}`);
      return { extension, context };
    },
  },
});
