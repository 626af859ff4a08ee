/**
 * The client's number as the CRM stores it: +7XXXXXXXXXX. The PBX receives it as 89001234567,
 * 79001234567 or 9001234567 depending on the trunk; written one way in the CRM, the same client
 * is found whatever line they call on, and no duplicate contact is made.
 *
 * Internal numbers (101, *97) and numbers that are not Russian are passed on untouched.
 */
import { defineScript, formatE164, isInternalNumber } from "callscript";

export default defineScript({
  settings: {
    countryCode: "7",
    /** Dialled before a national number inside the country. */
    nationalPrefix: "8",
  },
  hooks: {
    process_client_phone({ phone }, { settings, log }) {
      if (isInternalNumber(phone)) return undefined;
      const formatted = formatE164(phone, { countryCode: settings.countryCode, nationalPrefix: settings.nationalPrefix });
      if (formatted === null) {
        log.debug(`${phone} is not a +${settings.countryCode} number; left as it is`);
        return undefined;
      }
      return formatted === phone ? undefined : { phone: formatted };
    },
  },
});
