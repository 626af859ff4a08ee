import path from "node:path";

/**
 * Files beside a script that are versions of it, never live scripts themselves:
 *
 * - `NAME.shadow.ts`: NAME's shadow. The server runs it on NAME's live calls after the answer is
 *   sent and compares its answer with NAME's (runtime/registry/shadow-runner.ts); `callscript promote
 *   NAME` makes it the live version.
 * - `NAME.previous.ts`: what the last promote replaced, kept to roll back by renaming it back.
 *
 * Their cases files follow the same rule: `NAME.shadow.cases.json` holds the shadow's own cases,
 * `NAME.previous.cases.json` the replaced version's.
 */
export type Variant = "shadow" | "previous";

const VARIANT = /\.(shadow|previous)\.m?ts$/;
const VARIANT_CASES = /\.(shadow|previous)\.cases\.(json|ya?ml)$/i;

/** `shadow` or `previous` for such a file (a script or its cases file), else undefined. */
export function variantOf(file: string): Variant | undefined {
  const name = path.basename(file);
  const match = VARIANT.exec(name) ?? VARIANT_CASES.exec(name);
  return match ? (match[1] as Variant) : undefined;
}

/** A shadow script at the top level of the scripts folder. */
export function isShadowFile(file: string, scriptsDir: string): boolean {
  const relative = path.relative(scriptsDir, file);
  if (relative.includes(path.sep) || relative.startsWith("..") || relative.startsWith(".")) return false;
  return /\.shadow\.m?ts$/.test(relative);
}

/** `NAME.shadow.ts` → `NAME`: the script a shadow stands beside, whose config it runs with. */
export function liveNameOf(shadowFile: string): string {
  return path.basename(shadowFile).replace(/\.shadow\.m?ts$/, "");
}

/** The name a script file is configured under (`scripts.<name>` in the config): a shadow's is its live script's. */
export function configNameOf(file: string, name: string): string {
  return isShadowName(file) ? liveNameOf(file) : name;
}

function isShadowName(file: string): boolean {
  return /\.shadow\.m?ts$/.test(path.basename(file));
}

/** `NAME.ts` → `NAME.shadow.ts` (and `.mts` alike). */
export function shadowFileOf(scriptFile: string): string {
  return scriptFile.replace(/(\.m?ts)$/, ".shadow$1");
}

/** `NAME.ts` → `NAME.previous.ts`. */
export function previousFileOf(scriptFile: string): string {
  return scriptFile.replace(/(\.m?ts)$/, ".previous$1");
}

/**
 * Files of the scripts folder that are scripts: `*.ts` at its top level. Subfolders hold helpers;
 * `NAME.shadow.ts` and `NAME.previous.ts` are versions of NAME, never live (see variants.ts).
 */
export function isScriptFile(file: string, scriptsDir: string): boolean {
  const relative = path.relative(scriptsDir, file);
  if (relative.includes(path.sep) || relative.startsWith("..")) return false;
  return /\.m?ts$/.test(relative) && !/\.d\.m?ts$/.test(relative) && !relative.startsWith(".") && variantOf(relative) === undefined;
}
