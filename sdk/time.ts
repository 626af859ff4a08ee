/**
 * Helpers for the PBX's times (`YYYY-MM-DD HH:MM:SS`, the PBX's local time zone). Pure
 * functions: no Node APIs, no Intl, no clock (`Date.now` is never read); calendar arithmetic is
 * done here, not by `Date`.
 */
import type { CallFull, Channel } from "./hook-types.generated.js";
import { channelOf } from "./call.js";

/** The time the connector sends for an event that did not happen (Go's zero time). */
export const NEVER = "0001-01-01 00:00:00";

/** A PBX time, split into its parts. */
export interface PbxTime {
  year: number;
  /** 1–12. */
  month: number;
  /** 1–31. */
  day: number;
  /** 0–23. */
  hour: number;
  /** 0–59. */
  minute: number;
  /** 0–59. */
  second: number;
  /** 0 = Sunday, 1 = Monday … 6 = Saturday. */
  weekday: number;
  /** Minutes since midnight: `hour * 60 + minute` (0–1439). */
  minuteOfDay: number;
  /**
   * The wall-clock time read as if it were UTC, in milliseconds since 1970-01-01 00:00:00.
   * Not a real instant (the PBX's zone is unknown): compare it only with other PbxTimes'
   * `epochMs`; the difference of two is right (a DST change in between aside).
   */
  epochMs: number;
}

/** Working hours for {@link isWithinHours}. */
export interface WorkingHours {
  /** Weekdays the hours apply to, 0 = Sunday … 6 = Saturday (7 is read as Sunday too). Default Monday–Friday. */
  days?: readonly number[];
  /** Start, `"HH:MM"` (or `"H:MM"`), inclusive. */
  from: string;
  /** End, `"HH:MM"`, exclusive; `"24:00"` is the end of the day. Earlier than `from`: past midnight. */
  to: string;
}

const WORKDAYS: readonly number[] = [1, 2, 3, 4, 5];
const PBX_TIME = /^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})$/;

function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's days_from_civil). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Parses a PBX time, `YYYY-MM-DD HH:MM:SS` exactly (no `T`, no zone, no fractions).
 * @returns the parts, or null for the zero time {@link NEVER}, a malformed string, or an
 *   impossible date or time (month 13, February 30, February 29 of a non-leap year, 24:00:00,
 *   second 60).
 */
export function parsePbxTime(text: string): PbxTime | null {
  if (typeof text !== "string" || text === NEVER) return null;
  const match = PBX_TIME.exec(text);
  if (!match) return null;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  const days = daysFromCivil(year, month, day);
  return {
    year,
    month,
    day,
    hour,
    minute,
    second,
    weekday: (((days + 4) % 7) + 7) % 7, // 1970-01-01 was a Thursday
    minuteOfDay: hour * 60 + minute,
    epochMs: ((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000,
  };
}

/**
 * Seconds from `a` to `b`: positive when `b` is later, negative when earlier.
 * @returns null when either is the zero time or not a valid PBX time.
 */
export function secondsBetween(a: string, b: string): number | null {
  const start = parsePbxTime(a);
  const end = parsePbxTime(b);
  if (start === null || end === null) return null;
  return (end.epochMs - start.epochMs) / 1000;
}

function duration(from: string, to: string): number | null {
  const seconds = secondsBetween(from, to);
  return seconds === null || seconds < 0 ? null : seconds;
}

/**
 * Talk time of the (main) channel: `answer_time` → `end_time`, in seconds.
 * @returns null if it was never answered, has not ended yet (either time is zero), or the end
 *   is before the answer.
 */
export function talkSeconds(channelOrCall: CallFull | Channel): number | null {
  const channel = channelOf(channelOrCall);
  return duration(channel.answer_time, channel.end_time);
}

/**
 * Whole length of the (main) channel, ringing included: `start_time` → `end_time`, in seconds.
 * @returns null if it has not ended yet (either time is zero), or the end is before the start.
 */
export function totalSeconds(channelOrCall: CallFull | Channel): number | null {
  const channel = channelOf(channelOrCall);
  return duration(channel.start_time, channel.end_time);
}

/** Minutes since midnight of `"HH:MM"`/`"H:MM"`; `"24:00"` only when `allowEndOfDay`. */
function minutesOf(text: string, name: string, allowEndOfDay: boolean): number {
  const match = /^(\d{1,2}):(\d{2})$/.exec(text);
  const hour = match ? Number(match[1]) : NaN;
  const minute = match ? Number(match[2]) : NaN;
  if (hour === 24 && minute === 0 && allowEndOfDay) return 24 * 60;
  if (!(hour <= 23 && minute <= 59)) {
    throw new RangeError(`isWithinHours: ${name} must be "HH:MM" (00:00–23:59), got ${JSON.stringify(text)}`);
  }
  return hour * 60 + minute;
}

/**
 * Whether a PBX time falls within working hours.
 *
 * `from` is inclusive and `to` exclusive (`09:00`–`18:00` includes 17:59:59, not 18:00:00).
 * When `to` is earlier than `from` the range runs past midnight (`22:00`–`06:00`) and the day
 * checked against `days` is the day the shift starts: Friday 23:00 and Saturday 05:00 are both
 * in a Friday night shift. `from` equal to `to` is an empty range (use `"00:00"`–`"24:00"` for
 * the whole day).
 *
 * @returns false for the zero time and for invalid times.
 * @throws RangeError when `from` or `to` is not `"HH:MM"` (a configuration error, reported loudly
 *   rather than silently treating every call as out of hours).
 */
export function isWithinHours(time: string | PbxTime, hours: WorkingHours): boolean {
  const from = minutesOf(hours.from, "from", false);
  const to = minutesOf(hours.to, "to", true);
  const at = typeof time === "string" ? parsePbxTime(time) : time;
  if (at === null) return false;
  const days = (hours.days ?? WORKDAYS).map((day) => (day === 7 ? 0 : day));
  const minute = at.minuteOfDay;
  if (from < to) return days.includes(at.weekday) && minute >= from && minute < to;
  if (from === to) return false;
  // Overnight: the evening part belongs to today's shift, the early-morning part to yesterday's.
  if (minute >= from) return days.includes(at.weekday);
  if (minute < to) return days.includes((at.weekday + 6) % 7);
  return false;
}
