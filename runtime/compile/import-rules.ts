import { builtinModules } from "node:module";
import path from "node:path";
import type { Plugin } from "esbuild";
import { sdkDir, sdkEntry } from "../paths.js";

const builtins = new Set(builtinModules);

function isBuiltin(specifier: string): boolean {
  return specifier.startsWith("node:") || builtins.has(specifier) || builtins.has(specifier.split("/")[0]!);
}

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
}

/** An RE2 (Go) pattern for every path that does not start with "." but `word` (RE2 has no lookahead). */
function bareBut(word: string): string {
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const branches = [...word].map((char, i) => (i === 0 ? `[^.${escape(char)}]` : `${escape(word.slice(0, i))}(?:[^${escape(char)}]|$)`));
  return `^(?:${branches.join("|")}|${escape(word)}.)`;
}

/**
 * The import paths the rules look at, on esbuild's side: every one but a path starting with "./"
 * without a ".." segment (from a file of the folder, it stays in the folder) and `callscript`
 * (the alias below). Each path the filter lets through is a round trip to this process, served
 * by the event loop: with a filter of everything, a first start of 500 scripts was ready ≈ 0.1 s
 * later, as esbuild waited on a loop busy loading the server's modules (docs/benchmarks.md).
 */
const LOOKED_AT = new RegExp(`${bareBut("callscript")}|^\\.(?:[^/]|$)|^$|(?:^|/)\\.\\.(?:/|$)`);

/**
 * What a script may import: `callscript` (the SDK) and files inside the scripts folder. Anything
 * else fails at compile time, at the import's line, with what to do instead: the sandbox has no
 * module loader, so a missing rule here would only surface as a confusing runtime error.
 */
export function importRules(scriptsDir: string): Plugin {
  return {
    name: "callscript-import-rules",
    setup(build) {
      // The SDK is found by esbuild itself, as an alias: no round trip for every script's import of it.
      build.initialOptions.alias = { ...build.initialOptions.alias, callscript: sdkEntry() };
      build.onResolve({ filter: LOOKED_AT }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const specifier = args.path;
        if (isInside(args.importer, sdkDir)) return undefined;
        if (isBuiltin(specifier)) {
          const name = specifier.replace(/^node:/, "");
          return {
            errors: [
              {
                text:
                  `Node built-in module '${name}' is not available to scripts: they run in a sandbox ` +
                  `without file system, network or process access. Use the hook's input, ctx.settings ` +
                  `for configuration and ctx.log for output.`,
              },
            ],
          };
        }
        if (path.isAbsolute(specifier)) {
          return { errors: [{ text: `Import '${specifier}' uses an absolute path; import files of the scripts folder by relative path (./lib/numbers).` }] };
        }
        if (!specifier.startsWith(".")) {
          return {
            errors: [
              {
                text:
                  `Package '${specifier}' cannot be imported: scripts may import only 'callscript' ` +
                  `and files inside the scripts folder by relative path (./lib/numbers).`,
              },
            ],
          };
        }
        const target = path.resolve(args.resolveDir, specifier);
        if (!isInside(target, scriptsDir)) {
          return { errors: [{ text: `Import '${specifier}' leaves the scripts folder (${scriptsDir}); only files inside it are bundled.` }] };
        }
        return undefined;
      });
    },
  };
}
