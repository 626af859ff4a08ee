/**
 * Phone number helpers for scripts. Pure functions: no Node APIs, no Intl, no clock.
 */
import type { NumberData } from "./hook-types.generated.js";

/** Options of {@link formatE164}. */
export interface E164Options {
  /** Country calling code, digits only (a leading `+` is ignored). Default `"7"`. */
  countryCode?: string;
  /** Trunk prefix dialled before a national number inside the country. Default `"8"`; `""` for none. */
  nationalPrefix?: string;
  /** Digits of a national number (without country code or prefix). Default `10`. */
  nationalLength?: number;
}

/** Options of {@link matchesAny}. */
export interface MatchOptions {
  /**
   * Compare only the last `k` digits (both sides must have at least `k` digits). A missing,
   * zero, negative or non-finite value means: compare all digits.
   */
  lastDigits?: number;
}

/**
 * The digits of `value`, in order, everything else dropped.
 * @returns `"+7 (900) 123-45-67"` → `"79001234567"`; `""` when there are none.
 */
export function digits(value: string): string {
  return value.replace(/[^0-9]/g, "");
}

/**
 * The last `n` digits of `value` (non-digits are dropped first).
 * @returns all the digits when there are fewer than `n`; `""` when `n` is zero, negative or not
 *   a finite number. A fractional `n` is rounded down.
 */
export function lastDigits(value: string, n: number): string {
  const count = Number.isFinite(n) ? Math.floor(n) : 0;
  if (count <= 0) return "";
  const all = digits(value);
  return all.length <= count ? all : all.slice(all.length - count);
}

/**
 * The number the connector actually uses: `custom` (the result of auto-substitution or
 * customization) when it is non-empty, else `original`.
 */
export function numberOf(n: NumberData): string {
  return n.custom !== "" ? n.custom : n.original;
}

/**
 * Whether a number is internal (an extension).
 * - `NumberData`: its `is_local` flag, as the connector decided it.
 * - string: after trimming surrounding whitespace, only digits, `*` and `#`, and between 1 and
 *   `maxLength` characters. `"101"`, `"*97"` → true; `""`, `"SIP/101"`, `"89001234567"` → false.
 */
export function isInternalNumber(value: string | NumberData, maxLength = 4): boolean {
  if (typeof value !== "string") return value.is_local;
  const text = value.trim();
  return text.length > 0 && text.length <= maxLength && /^[0-9*#]+$/.test(text);
}

/** Characters allowed in a number that {@link formatE164} formats: digits and the usual punctuation. */
const PHONE_TEXT = /^\+?[0-9\s().-]*$/;

/**
 * The number in E.164 form, `+` country code national number.
 *
 * Accepted (with the defaults: country `7`, national prefix `8`, 10 national digits):
 * - the national number alone: `9001234567`;
 * - national prefix + national number: `89001234567`;
 * - country code + national number, with or without `+`: `79001234567`, `+7 (900) 123-45-67`.
 *
 * Spaces, dashes, dots and parentheses are ignored. A leading `+` means the digits must start
 * with the country code (`+89001234567` → null).
 *
 * @returns the `+…` string, or null for anything else: internal or short numbers (`101`, `*97`),
 *   numbers of the wrong length, letters or other characters (`SIP/101`), an empty string. Null
 *   lets a script leave such numbers untouched.
 */
export function formatE164(value: string, options: E164Options = {}): string | null {
  const countryCode = digits(options.countryCode ?? "7");
  const nationalPrefix = digits(options.nationalPrefix ?? "8");
  const nationalLength = options.nationalLength ?? 10;
  if (countryCode === "" || !Number.isInteger(nationalLength) || nationalLength <= 0) return null;

  const text = value.trim();
  if (!PHONE_TEXT.test(text)) return null;
  const all = digits(text);
  if (all.length === 0) return null;

  let national: string | null = null;
  if (all.length === countryCode.length + nationalLength && all.startsWith(countryCode)) {
    national = all.slice(countryCode.length);
  } else if (!text.startsWith("+")) {
    if (all.length === nationalLength) {
      national = all;
    } else if (nationalPrefix !== "" && all.length === nationalPrefix.length + nationalLength && all.startsWith(nationalPrefix)) {
      national = all.slice(nationalPrefix.length);
    }
  }
  return national === null ? null : `+${countryCode}${national}`;
}

/** The forms of a number that {@link matchesAny} tries. */
function candidatesOf(number: NumberData | string): string[] {
  if (typeof number === "string") return [number];
  const forms = [...number.variants, number.base, number.original, number.custom];
  return forms.filter((form) => form !== "");
}

/**
 * Whether a number is one of `list`.
 *
 * The number's forms are, for `NumberData`, each of its `variants`, `base`, `original` and
 * `custom` (the non-empty ones), and for a string, the string itself. Each form and each list
 * entry is reduced to its digits (so entries may be written `"+7 (343) 272-30-33"`), and the
 * number matches when some form's digits equal some entry's digits.
 *
 * With `lastDigits: k`, only the last `k` digits are compared, and only for a form and an entry
 * that both have at least `k` digits (so a 3-digit extension never matches on the last 10).
 *
 * Forms or entries with no digits never match; an empty list matches nothing.
 */
export function matchesAny(number: NumberData | string, list: readonly string[], options: MatchOptions = {}): boolean {
  const raw = options.lastDigits;
  const k = raw !== undefined && Number.isFinite(raw) && raw >= 1 ? Math.floor(raw) : 0;
  const key = (value: string): string | null => {
    const all = digits(value);
    if (all === "") return null;
    if (k === 0) return all;
    return all.length >= k ? all.slice(all.length - k) : null;
  };

  const wanted = new Set<string>();
  for (const entry of list) {
    const entryKey = key(entry);
    if (entryKey !== null) wanted.add(entryKey);
  }
  if (wanted.size === 0) return false;
  return candidatesOf(number).some((form) => {
    const formKey = key(form);
    return formKey !== null && wanted.has(formKey);
  });
}
