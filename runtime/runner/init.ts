import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { FilesExistError } from "../errors.js";
import { packageRoot } from "../paths.js";
import { CASES_SCHEMA_FILE, casesJsonSchema } from "./cases.js";
import { SANDBOX_GLOBALS, SANDBOX_GLOBALS_FILE, scriptsTsconfig } from "./check.js";

/**
 * `callscript init`: a scripts folder that works at once, and changes nothing until the admin
 * edits it. `callscript test` and `check` pass on it, an editor resolves `callscript` to the SDK
 * for completion, and `serve` on it answers every hook as the connector would without it: the
 * starter's black list is empty (a comment says what to put there), so the folder is a place to
 * start, not a production rule. A handful of the bundled recorded calls come with it; the output
 * says where the rest are.
 */

export interface InitFile {
  /** Relative to the folder. */
  file: string;
  what: string;
  content: string;
}

const STARTER = "blacklist-extensions";

/** Recorded calls copied into the folder's payloads/, from the package's examples/payloads/. */
export const STARTER_PAYLOADS: { file: string; what: string }[] = [
  { file: "need_registration.incoming-missed.json", what: "missed, on trunk +73432723033, to 102" },
  { file: "need_registration.incoming-answered.json", what: "incoming, answered by 101" },
  { file: "need_registration.outgoing.json", what: "outgoing, from 103 to a client" },
  { file: "process_client_phone.incoming-8-format.json", what: "a client number written 89001234567" },
  { file: "process_final_params.missed-trunk-3432723033.json", what: "the end of a call missed on trunk +73432723033" },
];

/** Where the rest of the recorded calls are: the package's own examples. */
export const payloadsDir = path.join(packageRoot, "examples", "payloads");

const STARTER_SCRIPT = `/**
 * Black list of extensions: calls in which a listed extension took part are not registered in the
 * CRM. The list starts empty, so this script changes nothing until you fill it, here or in the
 * server's config (scripts.${STARTER}.settings.extensions), which overrides this default.
 */
import { defineScript, participants } from "callscript";

export default defineScript({
  settings: {
    // The extensions whose calls are not registered, e.g. ["101", "102"].
    extensions: [] as string[],
  },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      const blocked = participants(call_full).filter((ext) => settings.extensions.includes(ext));
      if (blocked.length === 0) return undefined; // change nothing
      log.info(\`not registering: extension \${blocked.join(", ")} took part\`);
      return { result: false };
    },
  },
});
`;

function payload(file: string): string {
  const source = path.join(payloadsDir, file);
  if (!existsSync(source)) throw new Error(`callscript is incomplete: ${source} is missing`);
  return readFileSync(source, "utf8");
}

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

export function initFiles(dir: string): InitFile[] {
  const missed = `payloads/${STARTER_PAYLOADS[0]!.file}`;
  const cases = {
    $schema: `./${CASES_SCHEMA_FILE}`,
    cases: [
      {
        name: "with the empty list, a missed call to 102 is registered as usual",
        hook: "need_registration",
        inputFile: missed,
        expect: { changes: {} },
      },
      {
        name: "with 102 on the list, the same call is not registered",
        hook: "need_registration",
        inputFile: missed,
        settings: { extensions: ["102"] },
        expect: { changes: { result: false } },
      },
    ],
  };
  const tsconfig = scriptsTsconfig(dir);
  return [
    {
      file: "tsconfig.json",
      what: `editor completion: callscript → ${(tsconfig.compilerOptions.paths as { callscript: string[] }).callscript[0]}`,
      content: json(tsconfig),
    },
    { file: SANDBOX_GLOBALS_FILE, what: "what a script has in its sandbox besides the SDK (console)", content: SANDBOX_GLOBALS },
    { file: CASES_SCHEMA_FILE, what: "the cases file format, for editor completion", content: json(casesJsonSchema()) },
    { file: `${STARTER}.ts`, what: "a script: a black list of extensions, empty: it changes nothing until you fill it", content: STARTER_SCRIPT },
    { file: `${STARTER}.cases.json`, what: "its cases: a recorded call, with the list empty and with 102 on it", content: json(cases) },
    ...STARTER_PAYLOADS.map((entry) => ({ file: `payloads/${entry.file}`, what: `a recorded call: ${entry.what}`, content: payload(entry.file) })),
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
