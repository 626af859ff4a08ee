import { readFileSync } from "node:fs";
import { UsageError } from "../errors.js";

/** A JSON file given on the command line, with a message that says which file and what is wrong. */
export function readJsonFile(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`${what} ${file} cannot be read: ${code === "ENOENT" ? "no such file" : code ?? (error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${what} ${file} is not valid JSON: ${(error as Error).message}`);
  }
}

export function readJsonObject(file: string, what: string): Record<string, unknown> {
  const value = readJsonFile(file, what);
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new UsageError(`${what} ${file} must hold a JSON object`);
  }
  return value as Record<string, unknown>;
}
