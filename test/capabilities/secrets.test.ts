import { describe, expect, it } from "vitest";
import { checkGrants, scriptGrantsSchema, secretNameSchema } from "../../runtime/capabilities/config.js";
import { maskSecretValues, placeholderOf, placeholdersIn, resolveSecretValues, substituteSecrets } from "../../runtime/capabilities/secrets.js";

describe("secret names in the config", () => {
  it("are upper case words joined by single underscores, so that a placeholder reads one way only", () => {
    for (const name of ["BITRIX_TOKEN", "A", "KOMMO_TOKEN_2"]) expect(secretNameSchema.safeParse(name).success, name).toBe(true);
    for (const name of ["bitrix_token", "A_", "MY__TOKEN", "_A", "1A", "A".repeat(65)]) expect(secretNameSchema.safeParse(name).success, name).toBe(false);
  });
});

describe("secret values", () => {
  it("come from secrets.NAME of the config, and CALLSCRIPT_SECRET_NAME of the environment wins", () => {
    const values = resolveSecretValues(
      { BITRIX_TOKEN: "from-file", KOMMO_TOKEN: "kommo" },
      {
        CALLSCRIPT_SECRET_BITRIX_TOKEN: "from-env",
        CALLSCRIPT_SECRET_ONLY_ENV: "env",
        CALLSCRIPT_SECRET_EMPTY: "",
        CALLSCRIPT_SECRET_lower: "ignored",
        OTHER: "x",
      },
    );
    expect(Object.fromEntries(values)).toEqual({
      BITRIX_TOKEN: { value: "from-env", from: "CALLSCRIPT_SECRET_BITRIX_TOKEN" },
      KOMMO_TOKEN: { value: "kommo", from: "secrets.KOMMO_TOKEN" },
      ONLY_ENV: { value: "env", from: "CALLSCRIPT_SECRET_ONLY_ENV" },
    });
  });

  it("granted without a value is a config error; granted without fetch is a warning", () => {
    const scripts = {
      "vip-client": scriptGrantsSchema.parse({ fetch: { allow: ["https://crm.example"] }, secrets: ["BITRIX_TOKEN", "MISSING"] }),
      lonely: scriptGrantsSchema.parse({ secrets: ["BITRIX_TOKEN"] }),
    };
    expect(checkGrants(scripts, resolveSecretValues({ BITRIX_TOKEN: "t" }, {}))).toEqual({
      errors: [
        "scripts.vip-client.secrets.1: secret MISSING has no value: set secrets.MISSING in the config file or CALLSCRIPT_SECRET_MISSING in the environment",
      ],
      warnings: ["scripts.lonely.secrets: granted, but the script has no scripts.lonely.fetch.allow, so its secrets can never be used"],
    });
  });
});

describe("placeholders", () => {
  it("are found exactly for granted names, and the others named", () => {
    const text = `${placeholderOf("A_B")} ${placeholderOf("A")} ${placeholderOf("MY_TOKEN_2")}`;
    expect(placeholdersIn(text, ["A", "A_B", "MY_TOKEN_2"])).toEqual({ granted: ["MY_TOKEN_2", "A_B", "A"], other: [] });
    expect(placeholdersIn(text, ["A"])).toEqual({ granted: ["A"], other: ["A_B", "MY_TOKEN_2"] });
    expect(placeholdersIn("no placeholder", ["A"])).toEqual({ granted: [], other: [] });
    expect(placeholdersIn("__callscript_secret_lowercase__", [])).toEqual({ granted: [], other: ["(malformed)"] });
  });

  it("are replaced by values encoded for where they stand", () => {
    const values = new Map([["T", 'a "b"/c?d&e=f ё']]);
    const placeholder = placeholderOf("T");
    expect(substituteSecrets(`x${placeholder}y`, values, "raw")).toBe('xa "b"/c?d&e=f ёy');
    expect(substituteSecrets(`/rest/1/${placeholder}/`, values, "url")).toBe("/rest/1/a%20%22b%22%2Fc%3Fd%26e%3Df%20%D1%91/");
    expect(JSON.parse(substituteSecrets(JSON.stringify({ token: placeholder }), values, "json"))).toEqual({ token: 'a "b"/c?d&e=f ё' });
  });

  it("mask a value back in any of those forms, the longest value first", () => {
    const values = new Map([
      ["SHORT", "abc"],
      ["LONG", "abcdef"],
      ["ODD", 'a"b c'],
    ]);
    expect(maskSecretValues("abcdef abc", values)).toBe(`${placeholderOf("LONG")} ${placeholderOf("SHORT")}`);
    expect(maskSecretValues('{"v":"a\\"b c"} a%22b%20c a"b c', values)).toBe(`{"v":"${placeholderOf("ODD")}"} ${placeholderOf("ODD")} ${placeholderOf("ODD")}`);
    // A form (a+b), JSON in JSON, base64 (an echoed Basic credential).
    const echoed = `a%22b+c ${JSON.stringify(JSON.stringify('a"b c'))} ${Buffer.from('a"b c').toString("base64")}`;
    expect(maskSecretValues(echoed, values)).toBe(`${placeholderOf("ODD")} "\\"${placeholderOf("ODD")}\\"" ${placeholderOf("ODD")}`);
  });
});
