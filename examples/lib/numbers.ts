/**
 * Helpers shared by the examples. A helper lives in a subfolder: only the top-level .ts files of
 * the scripts folder are scripts, and whatever a script imports from here is bundled into it.
 */
import { matchesAny, type NumberData } from "callscript";

/**
 * The value of a map keyed by phone numbers that matches `number`. Keys may be written any way
 * an admin writes a number ("+7 (343) 272-30-33", "83432723033", "73432723033"): only the last
 * 10 digits are compared, so the country code and the trunk prefix do not matter.
 */
export function lookupByNumber<T>(map: Readonly<Record<string, T>>, number: NumberData | string): T | undefined {
  for (const [key, value] of Object.entries(map)) {
    if (matchesAny(number, [key], { lastDigits: 10 })) return value;
  }
  return undefined;
}
