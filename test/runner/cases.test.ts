import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { Ajv } from "ajv";
import { describe, expect, it } from "vitest";
import { casesJsonSchema, isCasesFile, isPipelineCasesFile, readCasesFile, scriptFileOf } from "../../runtime/runner/cases.js";
import { diffValues, showValue } from "../../runtime/util/diff.js";
import { examplesDir, folder } from "./fixtures.js";

describe("the cases file format", () => {
  const casesFiles = readdirSync(examplesDir).filter(isCasesFile);

  it("names: NAME.cases.json|yaml beside NAME.ts; pipeline.cases.json and NAME.pipeline.cases.json for pipelines", () => {
    expect(isCasesFile("a.cases.json") && isCasesFile("a.cases.yaml") && isCasesFile("a.cases.yml")).toBe(true);
    expect(isCasesFile("a.json") || isCasesFile("cases.schema.json")).toBe(false);
    expect(scriptFileOf("/s/working-hours.cases.yaml")).toBe("/s/working-hours.ts");
    expect(isPipelineCasesFile("/s/pipeline.cases.json") && isPipelineCasesFile("/s/need_registration.pipeline.cases.yaml")).toBe(true);
    expect(isPipelineCasesFile("/s/no-pipeline.cases.json")).toBe(false);
  });

  it.each(casesFiles)("examples/%s is valid for the JSON Schema editors get, and for the runner", (name) => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(casesJsonSchema());
    const value = JSON.parse(readFileSync(path.join(examplesDir, name), "utf8")) as unknown;
    expect(validate(value) ? [] : validate.errors).toEqual([]);
    const read = readCasesFile(path.join(examplesDir, name));
    expect(read.ok && read.entries.every((entry) => entry.ok)).toBe(true);
  });

  it("the JSON Schema rejects what the runner rejects: both input and inputFile, two expectations, an unknown hook", () => {
    const validate = new Ajv({ strict: false }).compile(casesJsonSchema());
    const base = { name: "x", hook: "need_registration", inputFile: "a.json", expect: { data: { result: true } } };
    expect(validate({ cases: [base] })).toBe(true);
    expect(validate([base])).toBe(true);
    expect(validate({ cases: [{ ...base, input: {} }] })).toBe(false);
    expect(validate({ cases: [{ ...base, expect: { data: {}, cancel: true } }] })).toBe(false);
    expect(validate({ cases: [{ ...base, hook: "need_registraton" }] })).toBe(false);
    expect(validate({ cases: [{ ...base, expect: { error: "timeot" } }] })).toBe(false);
  });

  it("examples/cases.schema.json is the schema of today's format", () => {
    expect(JSON.parse(readFileSync(path.join(examplesDir, "cases.schema.json"), "utf8"))).toEqual(casesJsonSchema());
  });

  it("reads each case on its own: a bad one is reported by its path, the good ones are kept", () => {
    const dir = folder({
      "s.cases.json": {
        cases: [
          { name: "good", hook: "need_registration", input: { call_full: {} }, expect: { cancel: true } },
          { hook: "need_registration", expect: { data: {} } },
          "not a case",
        ],
      },
    });
    const read = readCasesFile(path.join(dir, "s.cases.json"));
    if (!read.ok) throw new Error("expected the file to read");
    expect(read.entries.map((entry) => [entry.name, entry.ok])).toEqual([
      ["good", true],
      ["case #2", false],
      ["case #3", false],
    ]);
    const problems = read.entries.flatMap((entry) => (entry.ok ? [] : entry.problems.map((problem) => `${problem.path}: ${problem.message}`)));
    expect(problems).toEqual(["cases[1].name: required: the case's name", "cases[2]: Invalid input: expected object, received string"]);
  });

  it("a misspelt hook gets a suggestion; a name that is nothing like one gets the list", () => {
    const dir = folder({
      "s.cases.json": [
        { name: "typo", hook: "proces_final_params", input: {}, expect: { cancel: true } },
        { name: "nothing like it", hook: "banana", input: {}, expect: { cancel: true } },
      ],
    });
    const read = readCasesFile(path.join(dir, "s.cases.json"));
    const messages = read.ok ? read.entries.flatMap((entry) => (entry.ok ? [] : entry.problems.map((problem) => problem.message))) : [];
    expect(messages[0]).toBe("Unknown hook 'proces_final_params'. Did you mean 'process_final_params'?");
    expect(messages[1]).toMatch(/^Unknown hook 'banana'\. Known hooks: need_registration, process_client_phone, /);
  });
});

describe("diffValues", () => {
  it("names every difference by its path, with both sides", () => {
    const expected = { data: { USER_ID: "5", list: [1, 2, 3], nested: { a: 1 }, "odd key": true } };
    const actual = { data: { USER_ID: "1", list: [1, 4], nested: { a: 1, b: 2 }, "odd key": true, extra: null } };
    expect(diffValues(expected, actual)).toEqual([
      { path: "data.USER_ID", expected: "5", actual: "1", kind: "changed" },
      { path: "data.list[1]", expected: 2, actual: 4, kind: "changed" },
      { path: "data.list[2]", expected: 3, kind: "missing" },
      { path: "data.nested.b", actual: 2, kind: "unexpected" },
      { path: "data.extra", actual: null, kind: "unexpected" },
    ]);
    expect(diffValues({ a: { "x-y": 1 } }, { a: { "x-y": "1" } })).toEqual([{ path: 'a["x-y"]', expected: 1, actual: "1", kind: "changed" }]);
    expect(diffValues([1], { 0: 1 })).toEqual([{ path: "(value)", expected: [1], actual: { 0: 1 }, kind: "changed" }]);
    expect(diffValues({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] })).toEqual([]);
  });

  it("shows a value as one line of JSON, shortened with a marker", () => {
    expect(showValue({ a: "x" })).toBe('{"a":"x"}');
    expect(showValue("x".repeat(400))).toMatch(/^"x{299}… \(402 characters\)$/);
  });
});
