/**
 * White list of trunks: only calls on the company's own lines are registered in the CRM.
 *
 * Why: the PBX is shared with a sister company whose lines must never reach this CRM. A call
 * without a trunk (extension to extension) is not this script's business: it is left alone.
 *
 * Like every need_registration example here, it only ever vetoes ({ result: false }) and never
 * answers { result: true }: the scripts of a hook run one after the other over the same data, so
 * a later script saying "true" would undo an earlier one's veto.
 */
import { defineScript, matchesAny } from "callscript";

export default defineScript({
  settings: {
    /** The company's trunks, written any way ("+7 (495) 123-45-67", "84951234567"). */
    trunks: ["+74951234567", "+73432723033"],
  },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      const { trunk } = call_full.channel;
      if (trunk.base === "" && trunk.original === "") return undefined;
      // Last 10 digits: the connector writes one trunk as 74951234567, another as +73432723033.
      if (matchesAny(trunk, settings.trunks, { lastDigits: 10 })) return undefined;
      log.info(`not registering: trunk ${trunk.original} is not one of ours`);
      return { result: false };
    },
  },
});
