/**
 * Differences between an expected and an actual JSON value, by field path: what an admin reads
 * when a case fails ("data.USER_ID: expected "5", actual "1"").
 */

export interface Difference {
  /** `data.USER_ID`, `data.list[2]`, `data["odd key"]`. */
  path: string;
  /** Absent when the field is missing on that side. */
  expected?: unknown;
  actual?: unknown;
  kind: "changed" | "missing" | "unexpected";
}

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;

function child(path: string, key: string | number): string {
  if (typeof key === "number") return `${path}[${key}]`;
  if (!IDENTIFIER.test(key)) return `${path}[${JSON.stringify(key)}]`;
  return path === "" ? key : `${path}.${key}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Every difference between `expected` and `actual` (JSON values), deepest first reached. */
export function diffValues(expected: unknown, actual: unknown, path = ""): Difference[] {
  if (Object.is(expected, actual)) return [];
  if (isPlainObject(expected) && isPlainObject(actual)) {
    const out: Difference[] = [];
    for (const key of Object.keys(expected)) {
      const at = child(path, key);
      if (!Object.hasOwn(actual, key)) out.push({ path: at, expected: expected[key], kind: "missing" });
      else out.push(...diffValues(expected[key], actual[key], at));
    }
    for (const key of Object.keys(actual)) {
      if (!Object.hasOwn(expected, key)) out.push({ path: child(path, key), actual: actual[key], kind: "unexpected" });
    }
    return out;
  }
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const out: Difference[] = [];
    const length = Math.max(expected.length, actual.length);
    for (let index = 0; index < length; index++) {
      const at = child(path, index);
      if (index >= actual.length) out.push({ path: at, expected: expected[index], kind: "missing" });
      else if (index >= expected.length) out.push({ path: at, actual: actual[index], kind: "unexpected" });
      else out.push(...diffValues(expected[index], actual[index], at));
    }
    return out;
  }
  return [{ path: path || "(value)", expected, actual, kind: "changed" }];
}

/** A value as one line of JSON, shortened past `max` characters with a visible marker. */
export function showValue(value: unknown, max = 300): string {
  const text = value === undefined ? "undefined" : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}
