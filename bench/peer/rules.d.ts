// The module `./rules.js` that bench/peer.mjs writes beside the Worker when the bench starts
// (bundleRules: the examples' scripts and what the Worker reads of their config, bundled by
// esbuild), declared so that worker.js is type-checked (bench/tsconfig.json). Its shapes are the
// JSDoc typedefs of worker.js.
import type { RulesConfig, Script } from "./worker.js";

/** The examples' top-level scripts (each file's default export), by name. */
export declare const scripts: Record<string, Script>;
export declare const config: RulesConfig;
