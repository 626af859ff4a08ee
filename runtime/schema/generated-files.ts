import path from "node:path";
import { packageRoot } from "../paths.js";
import { hooksReference } from "./hooks-reference.js";
import { sdkTypesSource } from "./sdk-types.js";

/**
 * Files of the repository written from the schemas, never by hand: the SDK's types and the hook
 * reference. `.ci/generate.mjs` (npm run generate) writes them; a test fails when one is behind.
 */
export function generatedFiles(): { file: string; content: string }[] {
  return [
    { file: path.join(packageRoot, "sdk", "hook-types.generated.ts"), content: sdkTypesSource() },
    { file: path.join(packageRoot, "docs", "hooks.md"), content: hooksReference() },
  ];
}
