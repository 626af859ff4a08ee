import { readFileSync } from "node:fs";
import path from "node:path";
import { repoRoot } from "../helpers/build.js";
import { scriptsFolder } from "../helpers/scripts.js";

export const examplesDir = path.join(repoRoot, "examples");
export const payloadsDir = path.join(examplesDir, "payloads");

/**
 * The examples' config (examples/callscript.config.json) without any fetch grant: a `serve` of the
 * examples would otherwise send vip-client's lookups to the real portal it names, for every
 * incoming call's registration. Without the grant the lookup is refused at once (and the script
 * registers the call as usual), on the server and in the runner alike.
 */
export function examplesConfigOffline(): Record<string, unknown> {
  const config = JSON.parse(readFileSync(path.join(examplesDir, "callscript.config.json"), "utf8")) as { scripts: Record<string, Record<string, unknown>> };
  for (const entry of Object.values(config.scripts)) delete entry.fetch;
  return config;
}

/** A recorded hook input of the examples, as text. */
export function payload(name: string): string {
  return readFileSync(path.join(payloadsDir, name), "utf8");
}

/** A scripts folder with the given files; values that are not strings are written as JSON. */
export function folder(files: Record<string, unknown>): string {
  const text: Record<string, string> = {};
  for (const [name, value] of Object.entries(files)) text[name] = typeof value === "string" ? value : JSON.stringify(value, null, 2);
  return scriptsFolder(text);
}

/** The last non-empty line of an output: where the summary is. */
export function lastLine(output: string): string {
  const lines = output.trimEnd().split("\n");
  return lines[lines.length - 1] ?? "";
}

/** Blocks the client numbers of its settings; logs the client it saw. */
export const BLOCK_CLIENTS = `import { defineScript } from "callscript";

export default defineScript({
  settings: { block: ["+79124567890"] },
  hooks: {
    need_registration({ call_full }, { settings, log }) {
      const client = call_full.channel.from.original;
      log.info("client " + client);
      return settings.block.includes(client) ? { result: false } : undefined;
    },
  },
});
`;

/** Incoming missed from +79124567890 to 102 on +73432723033; incoming answered from +79001234567 by 101 on 74951234567. */
export const MISSED = "payloads/need_registration.incoming-missed.json";
export const ANSWERED = "payloads/need_registration.incoming-answered.json";
export const PAYLOADS = {
  [MISSED]: payload("need_registration.incoming-missed.json"),
  [ANSWERED]: payload("need_registration.incoming-answered.json"),
};
