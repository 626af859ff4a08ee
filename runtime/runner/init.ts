import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FilesExistError } from "../errors.js";
import { packageRoot } from "../paths.js";
import { CASES_SCHEMA_FILE, casesJsonSchema } from "./cases.js";
import { SANDBOX_GLOBALS, SANDBOX_GLOBALS_FILE, scriptsTsconfig } from "./check.js";

/**
 * `callscript init`: a scripts folder that works at once. `callscript test` and `check` pass on
 * it, and an editor resolves `callscript` to the SDK for completion. The script and the recorded
 * call are the bundled examples', so the starter is code that is itself tested.
 */

export interface InitFile {
  /** Relative to the folder. */
  file: string;
  what: string;
  content: string;
}

const STARTER = "blacklist-extensions";
const PAYLOAD = "payloads/need_registration.incoming-missed.json";

function example(file: string): string {
  const source = path.join(packageRoot, "examples", file);
  if (!existsSync(source)) throw new Error(`callscript is incomplete: ${source} is missing`);
  return readFileSync(source, "utf8");
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function initFiles(dir: string): InitFile[] {
  const cases = {
    $schema: `./${CASES_SCHEMA_FILE}`,
    cases: [
      {
        name: "a missed call to 102 is not registered",
        hook: "need_registration",
        inputFile: PAYLOAD,
        expect: { data: { result: false } },
      },
      {
        name: "with only 101 on the list, the same call is registered",
        hook: "need_registration",
        inputFile: PAYLOAD,
        settings: { extensions: ["101"] },
        expect: { data: { result: true } },
      },
    ],
  };
  const tsconfig = scriptsTsconfig(dir);
  return [
    { file: "tsconfig.json", what: `editor completion: callscript → ${(tsconfig.compilerOptions.paths as { callscript: string[] }).callscript[0]}`, content: json(tsconfig) },
    { file: SANDBOX_GLOBALS_FILE, what: "what a script has in its sandbox besides the SDK (console)", content: SANDBOX_GLOBALS },
    { file: CASES_SCHEMA_FILE, what: "the cases file format, for editor completion", content: json(casesJsonSchema()) },
    { file: `${STARTER}.ts`, what: "a script: calls in which extension 101 or 102 took part are not registered", content: example(`${STARTER}.ts`) },
    { file: `${STARTER}.cases.json`, what: "its cases: a recorded call and the answer expected", content: json(cases) },
    { file: PAYLOAD, what: "a recorded call: missed, on trunk +73432723033, to 102", content: example(PAYLOAD) },
  ];
}

/** Write the starter folder; existing files are left alone unless `force`. */
export function initFolder(dir: string, options: { force?: boolean } = {}): InitFile[] {
  const root = path.resolve(dir);
  const files = initFiles(root);
  const existing = files.filter((entry) => existsSync(path.join(root, entry.file))).map((entry) => entry.file);
  if (existing.length > 0 && !options.force) throw new FilesExistError(`${existing.join(", ")} in ${dir}`);
  for (const entry of files) {
    const target = path.join(root, entry.file);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, entry.content);
  }
  return files;
}
