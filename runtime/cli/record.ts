import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { parseHookInput } from "../schema/hook-input.js";
import { anonymizeRecording } from "../record/anonymize.js";
import { answerFileOf, inputFileOf, readAnswerFile, type AnswerFile } from "../record/recording.js";
import { isHookName } from "../schema/hooks.js";
import { displayPath, green, red, yellow } from "./format.js";
import { readJsonObject } from "./inputs.js";

interface AnonymizeOptions {
  out?: string;
  key?: string;
}

/**
 * `callscript record`: real calls as test inputs. The server records hook inputs itself (config
 * `record: { dir, anonymize }`); this cleans payloads that were saved some other way.
 */
export function registerRecord(program: Command): void {
  const record = program.command("record").description("Turn real calls into test inputs");
  record
    .command("anonymize")
    .description("Replace client numbers, names and e-mail addresses in saved hook inputs (extensions and trunks are kept)")
    .argument("<files...>", "hook input JSON files, e.g. need_registration.<something>.json (a recording's answer file beside one is anonymized with it)")
    .option("--out <dir>", "write the anonymized files here instead of in place")
    .option("--key <text>", "derive the fakes from this key: the same key gives the same fakes (default: a random key per run)")
    .action((files: string[], options: AnonymizeOptions) => {
      process.exitCode = anonymizeFiles(files, options);
    });
}

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** The inputs named (an answer file names its input), each once, in the order given. */
function inputsOf(files: readonly string[]): string[] {
  return [...new Set(files.map(inputFileOf))];
}

function anonymizeFiles(files: string[], options: AnonymizeOptions): number {
  let failed = 0;
  if (options.out) mkdirSync(options.out, { recursive: true });
  for (const file of inputsOf(files)) {
    try {
      const input = readJsonObject(file, "Input file");
      // A recording's answer is anonymized with its input, so that both get the same fakes.
      const answerPath = answerFileOf(file);
      let recorded: AnswerFile | undefined;
      if (existsSync(answerPath)) {
        const read = readAnswerFile(file);
        if (!read.ok) throw new Error(read.message);
        recorded = read.value;
      }
      const { input: value, answer, report } = anonymizeRecording(input, recorded?.answer, options.key !== undefined ? { key: options.key } : {});
      // The hook, from the name the server records under (`<hook>.<...>.json`): check the result still fits it.
      const hook = recorded?.hook ?? path.basename(file).split(".")[0] ?? "";
      let note = "";
      if (isHookName(hook)) {
        const after = parseHookInput(hook, value);
        if (!after.ok && parseHookInput(hook, input).ok) {
          throw new Error(`the anonymized input no longer fits ${hook}: ${after.error.message}`);
        }
        note = after.ok ? `, still a valid ${hook} input` : yellow(` (not a valid ${hook} input, before or after)`);
      }
      const target = options.out ? path.join(options.out, path.basename(file)) : file;
      writeFileSync(target, `${JSON.stringify(value, null, 2)}\n`);
      if (recorded && answer) writeFileSync(answerFileOf(target), `${JSON.stringify({ ...recorded, answer }, null, 2)}\n`);
      const where = target === file ? displayPath(file) : `${displayPath(file)} → ${displayPath(target)}`;
      const counts = [count(report.numbers, "number"), count(report.names, "name"), count(report.emails, "e-mail address", "e-mail addresses")];
      const pair = recorded ? " (with its answer)" : "";
      console.log(`${green("anonymized")} ${where}${pair}: ${counts.join(", ")} replaced${note}`);
    } catch (error) {
      failed++;
      console.error(`${red("not anonymized")} ${displayPath(file)}: ${(error as Error).message}`);
    }
  }
  return failed > 0 ? 1 : 0;
}
