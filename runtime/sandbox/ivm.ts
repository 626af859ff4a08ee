import { createRequire } from "node:module";
import type IsolatedVm from "isolated-vm";
import { IsolatedVmMissingError } from "../errors.js";

export type Ivm = typeof IsolatedVm;

const require = createRequire(import.meta.url);
let loaded: Ivm | undefined;

/**
 * isolated-vm, loaded once. Kept behind this one function so that the choice of build (which
 * release line suits this Node) lives in one place, and so that nothing but the host sandbox
 * ever holds the module: script code must never reach an isolated-vm object.
 */
export function isolatedVm(): Ivm {
  if (loaded) return loaded;
  try {
    loaded = require("isolated-vm") as Ivm;
  } catch (error) {
    throw new IsolatedVmMissingError(process.versions.node, (error as Error).message);
  }
  return loaded;
}
