/**
 * Outside working hours, and on holidays, an incoming call goes to the duty manager's extension
 * instead of the usual route (the client's responsible manager, who has gone home). A line may
 * have its own duty manager (the Ekaterinburg branch has one).
 *
 * The time is the call's start as the PBX reports it, in the PBX's own time zone.
 */
import { defineScript, isWithinHours, parsePbxTime } from "callscript";
import { lookupByNumber } from "./lib/numbers";

export default defineScript({
  settings: {
    /** Weekdays 0 = Sunday … 6 = Saturday; from inclusive, to exclusive. */
    hours: { days: [1, 2, 3, 4, 5], from: "09:00", to: "18:00" },
    /** Days off besides weekends, as YYYY-MM-DD. */
    holidays: ["2026-11-04", "2026-12-31"] as string[],
    dutyExtension: "104",
    /** Trunk → the duty extension for calls on that line. */
    dutyByTrunk: {} as Record<string, string>,
  },
  hooks: {
    customize_autodistribution({ call_full }, { settings, log }) {
      const started = parsePbxTime(call_full.channel.start_time);
      if (started === null) return undefined;
      const day = call_full.channel.start_time.slice(0, 10);
      const holiday = settings.holidays.includes(day);
      if (!holiday && isWithinHours(started, settings.hours)) return undefined;
      const extension = lookupByNumber(settings.dutyByTrunk, call_full.channel.trunk) ?? settings.dutyExtension;
      log.info(`${holiday ? "holiday" : "out of hours"} (${call_full.channel.start_time}): to the duty manager at ${extension}`);
      return { extension };
    },
  },
});
