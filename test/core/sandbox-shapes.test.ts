import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { dataOf, HEADER, request, Sandboxes } from "../helpers/scripts.js";

/**
 * Inputs of 1 KB or more reach a script's isolate as external strings, which isolated-vm counts
 * against the memory limit until a full collection frees them; at the limit it asks V8 for one
 * (`LowMemoryNotification`). A full collection that finds no live object of the hidden classes
 * JSON.parse gave the inputs frees them, and V8 deoptimizes every function optimized against them
 * ("marking dependent code … reason: weak objects"): the script's own functions were compiled
 * again after each such collection, 19 µs more per call at 32 MB (docs/benchmarks.md, "A script's
 * call, on its isolate's side"). The guest now holds one call's objects in many
 * (runtime/sandbox/guest/prelude.ts, shapesHolder). V8's own trace shows it, not a timing.
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** Functions of the example's handler and of the SDK it calls, which run only in the script's isolate. */
const SCRIPT_FUNCTIONS = ["need_registration", "channelOf", "conversationsOf", "externalParty", "internalParty", "isCallFull", "participants"];

describe("a script's optimized code across its isolate's full collections", () => {
  it("the example's functions are not deoptimized when isolated-vm asks for a full collection (20 000 calls at 32 MB)", (context) => {
    const calls = 20_000;
    const run = spawnSync(
      process.execPath,
      ["--no-node-snapshot", "--trace-deopt", "--trace-gc", path.join(root, "test", "helpers", "guest-shapes.mjs"), String(calls)],
      {
        cwd: root,
        encoding: "utf8",
        maxBuffer: 256 * 1024 * 1024,
      },
    );
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.split("\n");
    const summary = JSON.parse(lines.find((line) => line.startsWith('{"calls"')) ?? "null") as { calls: number; data: number; failure?: unknown } | null;
    expect(summary).toEqual({ calls, data: calls });
    // The condition: isolated-vm asked for full collections (8 such in this run with isolated-vm 5 on
    // Node 20, before the change and after). An isolated-vm that does not ask for them has nothing
    // to show here: said as a skip, not passed silently.
    const notifications = lines.filter((line) => line.includes("low memory notification")).length;
    if (notifications === 0) context.skip("isolated-vm asked for no full collection in 20 000 calls: the condition did not arise");
    // 17 of the 21 such deoptimizations before the change were these functions'.
    const deoptimized = lines
      .filter((line) => line.includes("reason: weak objects"))
      .map((line) => /SharedFunctionInfo (\w+)>/.exec(line)?.[1] ?? "")
      .filter((name) => SCRIPT_FUNCTIONS.includes(name));
    expect(deoptimized).toEqual([]);
  });
});

describe("the objects the guest holds between calls, against a hostile script", () => {
  const sandboxes = new Sandboxes();
  afterAll(() => sandboxes.disposeAll());

  it("setters a script puts on Object.prototype under the holder's names never see what is held (the calls held: the 1st and the 1 025th)", async () => {
    // Were the holder an ordinary object, assigning its input, data, ctx and answer would call these.
    const sandbox = await sandboxes.load(
      `${HEADER}const caught: string[] = [];
for (const key of ["input", "data", "ctx", "envelope", "shapes"]) {
  Object.defineProperty(Object.prototype, key, { set() { caught.push(key); }, get() { return undefined; }, configurable: true });
}
export default defineScript({ hooks: { need_registration() { return { result: caught.length === 0 }; } } });
`,
    );
    const results = [];
    for (let i = 0; i < 1_030; i++) results.push(dataOf(await sandbox.invoke(request())));
    expect(results.filter((data) => JSON.stringify(data) !== JSON.stringify({ result: true }))).toEqual([]);
  });
});
