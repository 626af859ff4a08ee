import { createRequire } from "node:module";

/**
 * YAML, parsed by the `yaml` package loaded at its first use: configs and cases are mostly JSON,
 * and loading the parser cost every start of the server 25–40 ms.
 */
let yaml: typeof import("yaml") | undefined;

export function parseYaml(text: string): unknown {
  yaml ??= createRequire(import.meta.url)("yaml") as typeof import("yaml");
  return yaml.parse(text);
}
