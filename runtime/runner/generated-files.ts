import path from "node:path";
import { packageRoot } from "../paths.js";
import { casesJsonSchema } from "./cases.js";
import { hooksReference } from "../schema/hooks-reference.js";
import { sdkTypesSource } from "../schema/sdk-types.js";

/**
 * Files of the repository written from the schemas, never by hand: the SDK's types, the hook
 * reference and the cases file's JSON Schema. `.ci/generate.mjs` (npm run generate) writes them; a test fails when one is behind.
 */
export function generatedFiles(): { file: string; content: string }[] {
  return [
    { file: path.join(packageRoot, "sdk", "hook-types.generated.ts"), content: sdkTypesSource() },
    { file: path.join(packageRoot, "docs", "hooks.md"), content: hooksReference() },
    { file: path.join(packageRoot, "examples", "cases.schema.json"), content: `${JSON.stringify(casesJsonSchema(), null, 2)}\n` },
  ];
}
