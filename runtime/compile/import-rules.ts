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

/**
 * What a script may import: `callscript` (the SDK) and files inside the scripts folder. Anything
 * else fails at compile time, at the import's line, with what to do instead: the sandbox has no
 * module loader, so a missing rule here would only surface as a confusing runtime error.
 */
export function importRules(scriptsDir: string): Plugin {
  return {
    name: "callscript-import-rules",
    setup(build) {
      build.onResolve({ filter: /.*/ }, (args) => {
        if (args.kind === "entry-point") return undefined;
        const specifier = args.path;
        if (specifier === "callscript") return { path: sdkEntry() };
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
