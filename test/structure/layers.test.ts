import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

/**
 * The runtime's layers, lowest first: a module imports only from its own layer or a lower one, so
 * a change low down never has to know what is built on it. README's "How it works" tells the same
 * story. Each import is resolved to its file (a lint pattern would see only the import's text).
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["runtime/errors.ts", "runtime/paths.ts", "runtime/util"],
  ["runtime/schema", "runtime/capabilities"],
  ["runtime/compile"],
  ["runtime/sandbox"],
  [
    "runtime/config.ts",
    "runtime/config-capabilities.ts",
    "runtime/config-scripts.ts",
    "runtime/config-sources.ts",
    "runtime/mask-secrets.ts",
    "runtime/dispatch",
    "runtime/record",
  ],
  ["runtime/registry"],
  ["runtime/runner"],
  ["runtime/server"],
  ["runtime/cli"],
];

/** What runs inside the isolate may import only what is bundled into it: no host module. */
const GUEST = "runtime/sandbox/guest";
const GUEST_MAY_IMPORT = ["runtime/sandbox/guest", "runtime/sandbox/protocol.ts", "runtime/capabilities/placeholder.ts"];

const root = path.resolve(import.meta.dirname, "../..");

function filesUnder(dir: string): string[] {
  return readdirSync(path.join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => path.relative(root, path.join(entry.parentPath, entry.name)));
}

function within(file: string, place: string): boolean {
  return place.endsWith(".ts") ? file === place : file.startsWith(`${place}/`);
}

function layerOf(file: string): number | undefined {
  const index = LAYERS.findIndex((places) => places.some((place) => within(file, place)));
  return index < 0 ? undefined : index;
}

/** Relative imports of a file (static, dynamic and type-only), resolved to repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(path.join(root, file), "utf8");
  const specifiers = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^"'`;]*?from\s+["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g)].map(
    (m) => m[1] ?? m[2]!,
  );
  return specifiers.map((specifier) => path.relative(root, path.resolve(path.dirname(path.join(root, file)), specifier.replace(/\.js$/, ".ts"))));
}

const runtimeFiles = filesUnder("runtime").filter((file) => !file.startsWith("runtime/console-ui/"));

describe("layers", () => {
  it("every runtime module belongs to a layer", () => {
    expect(runtimeFiles.filter((file) => layerOf(file) === undefined)).toEqual([]);
  });

  it("imports go only downward (or within a layer)", () => {
    const upward: string[] = [];
    for (const file of runtimeFiles) {
      const from = layerOf(file)!;
      for (const target of importsOf(file)) {
        const to = layerOf(target);
        if (to !== undefined && to > from) upward.push(`${file} → ${target}`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("the guest code (bundled into every isolate) imports nothing of the host", () => {
    const reaching = runtimeFiles
      .filter((file) => file.startsWith(`${GUEST}/`))
      .flatMap((file) =>
        importsOf(file)
          .filter((target) => !GUEST_MAY_IMPORT.some((place) => within(target, place)))
          .map((target) => `${file} → ${target}`),
      );
    expect(reaching).toEqual([]);
  });

  it("the SDK (bundled into every script) imports nothing of the runtime", () => {
    const reaching = filesUnder("sdk").flatMap((file) =>
      importsOf(file)
        .filter((target) => !target.startsWith("sdk/"))
        .map((target) => `${file} → ${target}`),
    );
    expect(reaching).toEqual([]);
  });

  it("the check itself sees imports: a known downward import is found", () => {
    expect(importsOf("runtime/sandbox/sandbox.ts")).toContain("runtime/sandbox/protocol.ts");
    expect(importsOf("runtime/server/app.ts").length).toBeGreaterThan(3);
  });
});
