/**
 * Don't register calls that are noise in the CRM: calls missed in the IVR (the client hung up in
 * the voice menu before reaching anyone) and answered calls shorter than a few seconds (wrong
 * numbers, dropped lines).
 *
 * The length of a call is known only once it has ended: at the earlier stages
 * (conversation_requested, conversation_accepted) this script lets the call through and decides
 * at call_ended. It only ever vetoes, like the other need_registration examples.
 */
import { defineScript, isAnswered, isMissed, talkSeconds, totalSeconds } from "callscript";

export default defineScript({
  settings: {
    skipMissedInIvr: true,
    /** Answered calls with less talk than this are not registered; 0 keeps them all. */
    minTalkSeconds: 5,
    /** Missed calls that rang for less than this are not registered; 0 keeps them all. */
    minRingSeconds: 0,
  },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      if (settings.skipMissedInIvr && call_full.is_ivr && isMissed(call_full)) {
        log.info("not registering: missed in the IVR");
        return { result: false };
      }
      if (isAnswered(call_full)) {
        const talk = talkSeconds(call_full);
        if (talk !== null && talk < settings.minTalkSeconds) {
          log.info(`not registering: ${talk} s of talk, under ${settings.minTalkSeconds} s`);
          return { result: false };
        }
      } else if (isMissed(call_full)) {
        const ring = totalSeconds(call_full);
        if (ring !== null && ring < settings.minRingSeconds) {
          log.info(`not registering: missed after ${ring} s of ringing, under ${settings.minRingSeconds} s`);
          return { result: false };
        }
      }
      return undefined;
    },
  },
});
