import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { CaseExistsError, UsageError } from "../errors.js";
import { writeFileAtomic } from "../util/write-atomic.js";
import { CASES_SCHEMA_FILE, casesFilesOf, testCase } from "./cases.js";

export interface NewCase {
  name: string;
  hook: string;
  input: Record<string, unknown>;
  expect: { data: Record<string, unknown> } | { cancel: true } | { error: string };
}

/**
 * The cases file a new case goes to: the script's own (`NAME.cases.json` beside `NAME.ts`), or the
 * folder's `pipeline.cases.json` for a case of a hook's whole pipeline.
 */
export function casesFileFor(scriptsDir: string, script: string | undefined): string {
  if (script === undefined) return path.join(scriptsDir, "pipeline.cases.json");
  const existing = casesFilesOf(path.join(scriptsDir, `${script}.ts`));
  const yaml = existing.find((file) => !file.endsWith(".json"));
  if (yaml) throw new UsageError(`${path.basename(yaml)} is YAML: add the case there by hand (the console writes JSON cases files only)`);
  return path.join(scriptsDir, `${script}.cases.json`);
}

/**
 * Add one case at the end of a JSON cases file, creating the file when there is none; a case of
 * the same name already there is refused. The file is written aside and renamed over, so a test
 * run never reads half of it.
 * @returns the cases file and the number of cases it now holds.
 */
export async function appendCase(file: string, newCase: NewCase): Promise<{ file: string; cases: number }> {
  const checked = testCase.safeParse(newCase);
  if (!checked.success)
    throw new UsageError(`Not a valid case: ${checked.error.issues.map((issue) => `${issue.path.join(".") || "(case)"}: ${issue.message}`).join("; ")}`);
  let document: { $schema?: string; cases: unknown[] } | unknown[];
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(await readFile(file, "utf8"));
    } catch (error) {
      throw new UsageError(`${path.basename(file)} is not valid JSON (${(error as Error).message}); fix it before adding cases`);
    }
    if (Array.isArray(parsed)) document = parsed;
    else if (parsed !== null && typeof parsed === "object" && Array.isArray((parsed as { cases?: unknown }).cases)) document = parsed as { cases: unknown[] };
    else throw new UsageError(`${path.basename(file)} does not hold { "cases": [...] }; fix it before adding cases`);
  } else {
    const schema = existsSync(path.join(path.dirname(file), CASES_SCHEMA_FILE)) ? { $schema: `./${CASES_SCHEMA_FILE}` } : {};
    document = { ...schema, cases: [] };
  }
  const cases = Array.isArray(document) ? document : document.cases;
  if (cases.some((entry) => (entry as { name?: unknown } | null)?.name === newCase.name)) {
    throw new CaseExistsError(`${path.basename(file)} already has a case named "${newCase.name}"`);
  }
  cases.push(newCase);
  await writeFileAtomic(file, `${JSON.stringify(document, null, 2)}\n`);
  return { file, cases: cases.length };
}
