import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { packageRoot } from "../../runtime/paths.js";
import { generatedFiles } from "../../runtime/runner/generated-files.js";
import { hookNames } from "../../runtime/schema/hooks.js";

/** Issue 13: docs that are true. */

describe("files generated from the schemas", () => {
  for (const { file, content } of generatedFiles()) {
    it(`${path.relative(packageRoot, file)} is up to date (npm run generate writes it)`, () => {
      expect(readFileSync(file, "utf8"), `${path.relative(packageRoot, file)} is behind the schemas: run npm run generate`).toBe(content);
    });
  }

  it("docs/hooks.md has every hook of the catalog, its fields and its defaults", () => {
    const reference = readFileSync(path.join(packageRoot, "docs", "hooks.md"), "utf8");
    for (const hook of hookNames) expect(reference).toContain(`\n## ${hook}\n`);
    expect(reference).toContain("Defaults (the data when no script changes anything): `{ result: true }`.");
    expect(reference).toContain("Defaults (the data when no script changes anything): `{ phone: input.phone }`.");
    expect(reference).toContain("| `call_stage`? | `CallStage` |");
    expect(reference).toContain(
      '### CallStage\n\nWhich moment of the call this invocation is for.\n\nOne of "conversation_requested", "conversation_accepted", "conversation_ended", "call_ended".',
    );
  });

  it("docs/ ships in the package, so that README's links work where it is installed", () => {
    const pkg = JSON.parse(readFileSync(path.join(packageRoot, "package.json"), "utf8")) as { files: string[] };
    expect(pkg.files).toEqual(expect.arrayContaining(["docs/", "README.md", "examples/", "dist/"]));
  });
});

/** Paths a doc names in `code` or as a link: each must be a file or folder of the repository (or the built dist/). */
function namedPaths(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/`([^`\s]+)`/g)) names.add(match[1]!);
  for (const match of text.matchAll(/\]\(([^)\s#]+)(?:#[^)]*)?\)/g)) names.add(match[1]!);
  return [...names].filter(
    (name) =>
      name.includes("/") &&
      !/[<>*…{}$|()=;,]|:\/\/|^\/|^\.\.?\//.test(name) &&
      /^[\w.-]+(\/[\w.-]+)*\/?$/.test(name) &&
      !name.startsWith("my-scripts/") &&
      !/^(debug|info)\//.test(name),
  );
}

/** Where a doc's relative names are looked up: the repository, and the folders docs talk from. */
const BASES = ["", "docs", "examples", "runtime/sandbox"];

describe("README.md and docs/ name only files that are there", () => {
  const docs = [
    "README.md",
    ...readdirSync(path.join(packageRoot, "docs"))
      .filter((name) => name.endsWith(".md"))
      .map((name) => `docs/${name}`),
  ];
  for (const doc of docs) {
    it(doc, () => {
      const text = readFileSync(path.join(packageRoot, doc), "utf8");
      const missing = namedPaths(text).filter((name) => !BASES.some((base) => existsSync(path.join(packageRoot, base, name))));
      expect(missing, `${doc} names files that are neither in the repository nor in the package`).toEqual([]);
    });
  }
});
