import { describe, it, expect } from "vitest";
import { ZERO_TIME } from "../../runtime/schema/call-full.js";
import { NEVER, isWithinHours, parsePbxTime, secondsBetween, talkSeconds, totalSeconds } from "../../sdk/time.js";
import { call, channel } from "./fixtures.js";

describe("NEVER", () => {
  it("is the connector's zero time", () => {
    expect(NEVER).toBe("0001-01-01 00:00:00");
    expect(NEVER).toBe(ZERO_TIME);
  });
});

describe("parsePbxTime", () => {
  it("splits a time into its parts", () => {
    expect(parsePbxTime("2024-03-15 17:45:09")).toEqual({
      year: 2024,
      month: 3,
      day: 15,
      hour: 17,
      minute: 45,
      second: 9,
      weekday: 5,
      minuteOfDay: 17 * 60 + 45,
      epochMs: Date.UTC(2024, 2, 15, 17, 45, 9),
    });
  });
  it("computes the weekday (0 = Sunday)", () => {
    expect(parsePbxTime("1970-01-01 00:00:00")?.weekday).toBe(4);
    expect(parsePbxTime("2023-01-01 12:00:00")?.weekday).toBe(0);
    expect(parsePbxTime("2024-03-16 12:00:00")?.weekday).toBe(6);
    expect(parsePbxTime("2024-03-18 12:00:00")?.weekday).toBe(1);
    expect(parsePbxTime("1969-12-31 23:59:59")?.weekday).toBe(3);
    expect(parsePbxTime("0001-01-01 00:00:01")?.weekday).toBe(1);
  });
  it("computes epochMs as the wall-clock time read as UTC", () => {
    expect(parsePbxTime("1970-01-01 00:00:00")?.epochMs).toBe(0);
    expect(parsePbxTime("1969-12-31 23:59:59")?.epochMs).toBe(-1000);
    for (const [text, utc] of [
      ["2000-02-29 23:59:59", Date.UTC(2000, 1, 29, 23, 59, 59)],
      ["2100-12-31 00:00:00", Date.UTC(2100, 11, 31)],
      ["1999-07-04 06:30:15", Date.UTC(1999, 6, 4, 6, 30, 15)],
    ] as const) {
      expect(parsePbxTime(text)?.epochMs).toBe(utc);
    }
  });
  it("accepts leap days of leap years", () => {
    expect(parsePbxTime("2024-02-29 10:00:00")).toMatchObject({ month: 2, day: 29, weekday: 4 });
    expect(parsePbxTime("2000-02-29 00:00:00")).toMatchObject({ day: 29, weekday: 2 });
  });
  it("rejects impossible dates", () => {
    expect(parsePbxTime("2023-02-29 10:00:00")).toBeNull();
    expect(parsePbxTime("1900-02-29 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-02-30 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-04-31 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-13-01 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-00-10 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-01-00 10:00:00")).toBeNull();
    expect(parsePbxTime("2024-01-32 10:00:00")).toBeNull();
  });
  it("rejects impossible times of day", () => {
    expect(parsePbxTime("2024-01-01 24:00:00")).toBeNull();
    expect(parsePbxTime("2024-01-01 23:60:00")).toBeNull();
    expect(parsePbxTime("2024-01-01 23:59:60")).toBeNull();
  });
  it("returns null for the zero time", () => {
    expect(parsePbxTime("0001-01-01 00:00:00")).toBeNull();
    expect(parsePbxTime(NEVER)).toBeNull();
  });
  it("returns null for malformed strings", () => {
    for (const text of [
      "",
      "2024-03-15",
      "2024-03-15T10:00:00",
      "2024-03-15 10:00",
      "2024-03-15 10:00:00.123",
      "2024-03-15 10:00:00Z",
      " 2024-03-15 10:00:00",
      "2024-3-15 10:00:00",
      "15.03.2024 10:00:00",
      "24-03-15 10:00:00",
    ]) {
      expect(parsePbxTime(text), text).toBeNull();
    }
  });
  it("returns null for a value that is not a string", () => {
    expect(parsePbxTime(undefined as unknown as string)).toBeNull();
    expect(parsePbxTime(1710496800 as unknown as string)).toBeNull();
  });
});

describe("secondsBetween", () => {
  it("counts seconds from a to b", () => {
    expect(secondsBetween("2024-03-15 10:00:00", "2024-03-15 10:01:30")).toBe(90);
    expect(secondsBetween("2024-03-15 10:00:00", "2024-03-15 10:00:00")).toBe(0);
  });
  it("is negative when b is earlier", () => {
    expect(secondsBetween("2024-03-15 10:01:30", "2024-03-15 10:00:00")).toBe(-90);
  });
  it("crosses midnight, month ends, leap days and year ends", () => {
    expect(secondsBetween("2024-03-15 23:59:59", "2024-03-16 00:00:01")).toBe(2);
    expect(secondsBetween("2024-02-28 23:00:00", "2024-03-01 01:00:00")).toBe(26 * 3600);
    expect(secondsBetween("2023-02-28 23:00:00", "2023-03-01 01:00:00")).toBe(2 * 3600);
    expect(secondsBetween("2023-12-31 23:59:30", "2024-01-01 00:00:30")).toBe(60);
  });
  it("returns null when either time is zero or invalid", () => {
    expect(secondsBetween(NEVER, "2024-03-15 10:00:00")).toBeNull();
    expect(secondsBetween("2024-03-15 10:00:00", NEVER)).toBeNull();
    expect(secondsBetween("2024-03-15 10:00:00", "")).toBeNull();
    expect(secondsBetween("2024-02-30 10:00:00", "2024-03-15 10:00:00")).toBeNull();
  });
});

describe("talkSeconds / totalSeconds", () => {
  const ended = channel({
    start_time: "2024-03-15 10:00:00",
    answer_time: "2024-03-15 10:00:12",
    end_time: "2024-03-15 10:05:12",
    state: "ended",
    was_answered: true,
  });

  it("measure a finished, answered channel", () => {
    expect(talkSeconds(ended)).toBe(300);
    expect(totalSeconds(ended)).toBe(312);
  });
  it("read the main channel of a call", () => {
    const c = call({ channel: ended, result: 200 });
    expect(talkSeconds(c)).toBe(300);
    expect(totalSeconds(c)).toBe(312);
  });
  it("talkSeconds is null for a call never answered; totalSeconds still counts", () => {
    const missed = channel({ start_time: "2024-03-15 10:00:00", end_time: "2024-03-15 10:00:40", state: "ended" });
    expect(talkSeconds(missed)).toBeNull();
    expect(totalSeconds(missed)).toBe(40);
  });
  it("are null while the call has not ended", () => {
    const talking = channel({ start_time: "2024-03-15 10:00:00", answer_time: "2024-03-15 10:00:05", state: "talking" });
    expect(talkSeconds(talking)).toBeNull();
    expect(totalSeconds(talking)).toBeNull();
  });
  it("totalSeconds is null without a start time", () => {
    expect(totalSeconds(channel({ start_time: NEVER, end_time: "2024-03-15 10:00:40" }))).toBeNull();
  });
  it("are zero for an immediate hang-up", () => {
    const t = "2024-03-15 10:00:00";
    expect(talkSeconds(channel({ start_time: t, answer_time: t, end_time: t }))).toBe(0);
    expect(totalSeconds(channel({ start_time: t, end_time: t }))).toBe(0);
  });
  it("are null when the end is before the start (inconsistent data)", () => {
    const broken = channel({
      start_time: "2024-03-15 10:00:10",
      answer_time: "2024-03-15 10:00:20",
      end_time: "2024-03-15 10:00:00",
    });
    expect(talkSeconds(broken)).toBeNull();
    expect(totalSeconds(broken)).toBeNull();
  });
});

describe("isWithinHours", () => {
  const office = { from: "09:00", to: "18:00" };

  it("checks weekdays Monday–Friday by default", () => {
    expect(isWithinHours("2024-03-15 10:00:00", office)).toBe(true); // Friday
    expect(isWithinHours("2024-03-18 09:00:00", office)).toBe(true); // Monday
    expect(isWithinHours("2024-03-16 10:00:00", office)).toBe(false); // Saturday
    expect(isWithinHours("2024-03-17 10:00:00", office)).toBe(false); // Sunday
  });
  it("includes from and excludes to", () => {
    expect(isWithinHours("2024-03-15 08:59:59", office)).toBe(false);
    expect(isWithinHours("2024-03-15 09:00:00", office)).toBe(true);
    expect(isWithinHours("2024-03-15 17:59:59", office)).toBe(true);
    expect(isWithinHours("2024-03-15 18:00:00", office)).toBe(false);
  });
  it("takes explicit days, with 0 or 7 for Sunday", () => {
    const weekend = { days: [6, 0], from: "10:00", to: "16:00" };
    expect(isWithinHours("2024-03-16 12:00:00", weekend)).toBe(true);
    expect(isWithinHours("2024-03-17 12:00:00", weekend)).toBe(true);
    expect(isWithinHours("2024-03-15 12:00:00", weekend)).toBe(false);
    expect(isWithinHours("2024-03-17 12:00:00", { days: [7], from: "10:00", to: "16:00" })).toBe(true);
    expect(isWithinHours("2024-03-15 12:00:00", { days: [], from: "00:00", to: "24:00" })).toBe(false);
  });
  it("wraps an overnight range past midnight, by the day the shift starts", () => {
    const night = { days: [5], from: "22:00", to: "06:00" }; // Friday night shift
    expect(isWithinHours("2024-03-15 21:59:59", night)).toBe(false);
    expect(isWithinHours("2024-03-15 22:00:00", night)).toBe(true); // Friday evening
    expect(isWithinHours("2024-03-15 23:59:59", night)).toBe(true);
    expect(isWithinHours("2024-03-16 00:00:00", night)).toBe(true); // Saturday morning
    expect(isWithinHours("2024-03-16 05:59:59", night)).toBe(true);
    expect(isWithinHours("2024-03-16 06:00:00", night)).toBe(false);
    expect(isWithinHours("2024-03-16 22:30:00", night)).toBe(false); // Saturday's shift is not listed
    expect(isWithinHours("2024-03-15 03:00:00", night)).toBe(false); // Thursday's shift
    expect(isWithinHours("2024-03-15 12:00:00", night)).toBe(false); // midday
  });
  it("wraps Saturday night into Sunday morning across the week boundary", () => {
    const night = { days: [6], from: "20:00", to: "02:00" };
    expect(isWithinHours("2024-03-17 01:00:00", night)).toBe(true); // Sunday 01:00, Saturday's shift
    expect(isWithinHours("2024-03-18 01:00:00", night)).toBe(false); // Monday 01:00, Sunday's shift
    const sundayNight = { days: [0], from: "20:00", to: "02:00" };
    expect(isWithinHours("2024-03-18 01:00:00", sundayNight)).toBe(true);
  });
  it("allows 24:00 as the end of the day and H:MM", () => {
    expect(isWithinHours("2024-03-15 23:59:59", { from: "9:00", to: "24:00" })).toBe(true);
    expect(isWithinHours("2024-03-15 08:59:00", { from: "9:00", to: "24:00" })).toBe(false);
    expect(isWithinHours("2024-03-15 00:00:00", { from: "00:00", to: "24:00" })).toBe(true);
  });
  it("treats from equal to to as an empty range", () => {
    expect(isWithinHours("2024-03-15 09:00:00", { from: "09:00", to: "09:00" })).toBe(false);
  });
  it("accepts a parsed PbxTime", () => {
    const t = parsePbxTime("2024-03-15 10:00:00");
    expect(t).not.toBeNull();
    if (t) expect(isWithinHours(t, office)).toBe(true);
  });
  it("returns false for the zero time and invalid times", () => {
    expect(isWithinHours(NEVER, { days: [0, 1, 2, 3, 4, 5, 6], from: "00:00", to: "24:00" })).toBe(false);
    expect(isWithinHours("", office)).toBe(false);
    expect(isWithinHours("2024-02-30 10:00:00", office)).toBe(false);
  });
  it("throws on malformed hours", () => {
    expect(() => isWithinHours("2024-03-15 10:00:00", { from: "9", to: "18:00" })).toThrow(RangeError);
    expect(() => isWithinHours("2024-03-15 10:00:00", { from: "09:00", to: "25:00" })).toThrow(/to must be/);
    expect(() => isWithinHours("2024-03-15 10:00:00", { from: "24:00", to: "06:00" })).toThrow(/from must be/);
    expect(() => isWithinHours("2024-03-15 10:00:00", { from: "09:60", to: "18:00" })).toThrow(RangeError);
    expect(() => isWithinHours(NEVER, { from: "", to: "18:00" })).toThrow(RangeError);
  });
});
