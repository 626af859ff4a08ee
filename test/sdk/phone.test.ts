import { describe, it, expect } from "vitest";
import { digits, formatE164, isInternalNumber, lastDigits, matchesAny, numberOf } from "../../sdk/phone.js";
import { client, ext, none } from "./fixtures.js";

describe("digits", () => {
  it("keeps only the digits, in order", () => {
    expect(digits("+7 (900) 123-45-67")).toBe("79001234567");
    expect(digits("SIP/101-0000a1")).toBe("10100001");
    expect(digits("89001234567")).toBe("89001234567");
  });
  it("returns an empty string when there are none", () => {
    expect(digits("")).toBe("");
    expect(digits("*#+() -")).toBe("");
    expect(digits("anonymous")).toBe("");
  });
  it("ignores non-ASCII digits", () => {
    expect(digits("١٢٣45")).toBe("45");
  });
});

describe("lastDigits", () => {
  it("returns the last n digits", () => {
    expect(lastDigits("+7 (900) 123-45-67", 10)).toBe("9001234567");
    expect(lastDigits("89001234567", 4)).toBe("4567");
  });
  it("returns all digits when there are fewer than n", () => {
    expect(lastDigits("101", 10)).toBe("101");
    expect(lastDigits("1-0-1", 3)).toBe("101");
  });
  it("returns an empty string for no digits or a non-positive n", () => {
    expect(lastDigits("", 10)).toBe("");
    expect(lastDigits("abc", 2)).toBe("");
    expect(lastDigits("12345", 0)).toBe("");
    expect(lastDigits("12345", -3)).toBe("");
    expect(lastDigits("12345", Number.NaN)).toBe("");
  });
  it("rounds a fractional n down", () => {
    expect(lastDigits("12345", 2.9)).toBe("45");
  });
  it("handles an infinite n as invalid", () => {
    expect(lastDigits("12345", Number.POSITIVE_INFINITY)).toBe("");
  });
});

describe("numberOf", () => {
  it("uses custom when it is non-empty", () => {
    expect(numberOf(client("9001234567", { custom: "89001234567" }))).toBe("89001234567");
  });
  it("falls back to original when custom is empty", () => {
    expect(numberOf(client("9001234567"))).toBe("+79001234567");
    expect(numberOf(ext("101"))).toBe("101");
  });
  it("returns an empty string when both are empty", () => {
    expect(numberOf(none())).toBe("");
  });
  it("does not trim: a custom of spaces is used as is", () => {
    expect(numberOf(client("9001234567", { custom: " " }))).toBe(" ");
  });
});

describe("isInternalNumber", () => {
  it("uses is_local for number data", () => {
    expect(isInternalNumber(ext("101"))).toBe(true);
    expect(isInternalNumber(client("9001234567"))).toBe(false);
    // is_local wins over the length of the number
    expect(isInternalNumber({ ...ext("SIP/operator"), is_local: true })).toBe(true);
    expect(isInternalNumber({ ...ext("101"), is_local: false })).toBe(false);
  });
  it("accepts short strings of digits, * and #", () => {
    expect(isInternalNumber("101")).toBe(true);
    expect(isInternalNumber("1")).toBe(true);
    expect(isInternalNumber("1001")).toBe(true);
    expect(isInternalNumber("*97")).toBe(true);
    expect(isInternalNumber("#1")).toBe(true);
    expect(isInternalNumber(" 101 ")).toBe(true);
  });
  it("rejects longer numbers, other characters and the empty string", () => {
    expect(isInternalNumber("10001")).toBe(false);
    expect(isInternalNumber("89001234567")).toBe(false);
    expect(isInternalNumber("+101")).toBe(false);
    expect(isInternalNumber("SIP/101")).toBe(false);
    expect(isInternalNumber("1 01")).toBe(false);
    expect(isInternalNumber("")).toBe(false);
    expect(isInternalNumber("   ")).toBe(false);
  });
  it("honours maxLength", () => {
    expect(isInternalNumber("10001", 5)).toBe(true);
    expect(isInternalNumber("101", 2)).toBe(false);
    expect(isInternalNumber("1", 0)).toBe(false);
  });
});

describe("formatE164", () => {
  it("formats the usual Russian forms", () => {
    expect(formatE164("89001234567")).toBe("+79001234567");
    expect(formatE164("79001234567")).toBe("+79001234567");
    expect(formatE164("+79001234567")).toBe("+79001234567");
    expect(formatE164("+7 (900) 123-45-67")).toBe("+79001234567");
    expect(formatE164("8 (900) 123-45-67")).toBe("+79001234567");
    expect(formatE164("9001234567")).toBe("+79001234567");
    expect(formatE164("900.123.45.67")).toBe("+79001234567");
    expect(formatE164("  89001234567\n")).toBe("+79001234567");
    expect(formatE164("8-800-765-43-21")).toBe("+78007654321");
  });
  it("returns null for internal and short numbers", () => {
    expect(formatE164("101")).toBeNull();
    expect(formatE164("*97")).toBeNull();
    expect(formatE164("1001")).toBeNull();
    expect(formatE164("2723033")).toBeNull();
  });
  it("returns null for anything that does not fit", () => {
    expect(formatE164("")).toBeNull();
    expect(formatE164("   ")).toBeNull();
    expect(formatE164("+")).toBeNull();
    expect(formatE164("SIP/89001234567")).toBeNull();
    expect(formatE164("anonymous")).toBeNull();
    expect(formatE164("890012345678")).toBeNull(); // 12 digits
    expect(formatE164("99001234567")).toBeNull(); // 11 digits, neither 7 nor 8 first
    expect(formatE164("+89001234567")).toBeNull(); // + demands the country code
    expect(formatE164("+9001234567")).toBeNull();
    expect(formatE164("+380441234567")).toBeNull(); // another country
    expect(formatE164("89001234567#")).toBeNull();
  });
  it("takes another country code, prefix and length", () => {
    const by = { countryCode: "375", nationalPrefix: "80", nationalLength: 9 };
    expect(formatE164("80291234567", by)).toBe("+375291234567");
    expect(formatE164("375291234567", by)).toBe("+375291234567");
    expect(formatE164("+375 29 123-45-67", by)).toBe("+375291234567");
    expect(formatE164("291234567", by)).toBe("+375291234567");
    expect(formatE164("89001234567", by)).toBeNull();
    expect(formatE164("79001234567", { countryCode: "+7" })).toBe("+79001234567");
  });
  it("works without a national prefix", () => {
    const de = { countryCode: "49", nationalPrefix: "", nationalLength: 10 };
    expect(formatE164("3012345678", de)).toBe("+493012345678");
    expect(formatE164("493012345678", de)).toBe("+493012345678");
    expect(formatE164("03012345678", de)).toBeNull();
  });
  it("returns null for nonsensical options", () => {
    expect(formatE164("89001234567", { countryCode: "" })).toBeNull();
    expect(formatE164("89001234567", { nationalLength: 0 })).toBeNull();
    expect(formatE164("89001234567", { nationalLength: 10.5 })).toBeNull();
  });
});

describe("matchesAny", () => {
  const to = {
    base: "9001234567",
    custom: "89001234567",
    is_local: false,
    original: "+79001234567",
    variants: ["9001234567", "+74959001234567", "84959001234567", "+79001234567", "79001234567", "89001234567"],
  };

  it("matches a string against formatted list entries", () => {
    expect(matchesAny("+73432723033", ["+7 (343) 272-30-33"])).toBe(true);
    expect(matchesAny("7 343 272 30 33", ["+73432723033", "88007654321"])).toBe(true);
    expect(matchesAny("88007654321", ["+73432723033", "8 (800) 765-43-21"])).toBe(true);
    expect(matchesAny("+73432723033", ["83432723033"])).toBe(false);
  });
  it("matches number data through any of its forms", () => {
    expect(matchesAny(to, ["9001234567"])).toBe(true); // base
    expect(matchesAny(to, ["8 (900) 123-45-67"])).toBe(true); // custom, variant
    expect(matchesAny(to, ["+7 900 123 45 67"])).toBe(true); // original
    expect(matchesAny(to, ["84959001234567"])).toBe(true); // a prefixed variant only
    expect(matchesAny(to, ["9001234568", "101"])).toBe(false);
  });
  it("uses original and custom even when they are not among the variants", () => {
    const n = { base: "3033", custom: "+73432723033", is_local: false, original: "SIP/abc-42", variants: [] };
    expect(matchesAny(n, ["+7 (343) 272-30-33"])).toBe(true);
    expect(matchesAny(n, ["42"])).toBe(true); // the digits of original
    expect(matchesAny(n, ["3033"])).toBe(true); // base
  });
  it("matches extensions", () => {
    expect(matchesAny(ext("101"), ["101", "102"])).toBe(true);
    expect(matchesAny(ext("103"), ["101", "102"])).toBe(false);
    expect(matchesAny("102", ["101", "102"])).toBe(true);
  });
  it("never matches empty entries or empty numbers", () => {
    expect(matchesAny("", [""])).toBe(false);
    expect(matchesAny("abc", ["xyz"])).toBe(false);
    expect(matchesAny(none(), ["", "-", "()"])).toBe(false);
    expect(matchesAny(to, [])).toBe(false);
    expect(matchesAny(to, ["", " "])).toBe(false);
  });
  it("compares the last k digits with lastDigits", () => {
    expect(matchesAny("89001234567", ["+7 (900) 123-45-67"], { lastDigits: 10 })).toBe(true);
    expect(matchesAny("+79001234567", ["09001234567"], { lastDigits: 10 })).toBe(true);
    expect(matchesAny("89001234567", ["+7 (900) 123-45-68"], { lastDigits: 10 })).toBe(false);
    expect(matchesAny(client("9001234567"), ["8 900 123 45 67"], { lastDigits: 10 })).toBe(true);
  });
  it("with lastDigits, needs both sides to have at least k digits", () => {
    expect(matchesAny("101", ["101"], { lastDigits: 10 })).toBe(false);
    expect(matchesAny("89001234567", ["1234567"], { lastDigits: 10 })).toBe(false);
    expect(matchesAny("89001234567", ["1234567"], { lastDigits: 7 })).toBe(true);
    expect(matchesAny(ext("101"), ["79000000101"], { lastDigits: 3 })).toBe(true);
  });
  it("ignores a non-positive or invalid lastDigits", () => {
    expect(matchesAny("89001234567", ["79001234567"], { lastDigits: 0 })).toBe(false);
    expect(matchesAny("89001234567", ["89001234567"], { lastDigits: 0 })).toBe(true);
    expect(matchesAny("89001234567", ["79001234567"], { lastDigits: -1 })).toBe(false);
    expect(matchesAny("89001234567", ["79001234567"], { lastDigits: Number.NaN })).toBe(false);
  });
});
