/**
 * The recording's path as our dialplan writes it. The connector guesses the file from its own
 * naming (in-101-79001234567-20261120-140312-<linkedid>.wav); our MixMonitor writes
 * <root>/YYYY/MM/DD/<linkedid>-<uniqueid>.<format>: the date folders of the call's start, the
 * call's id and the id of the channel that answered.
 *
 * Without call_full (older connector versions send only call_id, from, to and path) the ids are
 * not known and the path is left as it is.
 */
import { conversationsOf, defineScript, parsePbxTime } from "callscript";

export default defineScript({
  settings: {
    root: "/var/spool/asterisk/monitor",
    format: "wav",
  },
  hooks: {
    process_record_file_path({ call_full, path }, { settings, log }) {
      if (call_full === undefined) {
        log.warn(`no call_full: ${path} left as it is`);
        return undefined;
      }
      const started = parsePbxTime(call_full.channel.start_time);
      if (started === null) return undefined;
      const answered = conversationsOf(call_full).find((conversation) => conversation.channel.was_answered);
      const uniqueid = answered?.channel.id ?? call_full.channel.id;
      const two = (n: number) => String(n).padStart(2, "0");
      const folders = `${started.year}/${two(started.month)}/${two(started.day)}`;
      return { path: `${settings.root}/${folders}/${call_full.channel.id}-${uniqueid}.${settings.format}` };
    },
  },
});
