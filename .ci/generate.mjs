// Write the files generated from the schemas (the SDK's types, docs/hooks.md) from the built dist/.
// Run: npm run generate (builds first). test/sdk/generated-types.test.ts and
// test/schema/hooks-reference.test.ts fail when a committed file is behind.
import { writeFileSync } from "node:fs";
import path from "node:path";
import { generatedFiles } from "../dist/runtime/runner/generated-files.js";

for (const { file, content } of generatedFiles()) {
  writeFileSync(file, content);
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
}
