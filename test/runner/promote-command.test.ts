import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { callscript } from "../helpers/build.js";
import { listening, serve } from "../server/serve-process.js";
import { brokenScript, script } from "../helpers/scripts.js";
import { payload } from "../server/helpers.js";
import { folder, lastLine } from "./fixtures.js";
import { waitFor } from "../helpers/wait.js";

/** The live version writes +7XXXXXXXXXX; the next one, in the shadow, 8XXXXXXXXXX. */
const LIVE = script("process_client_phone", `return input.phone === "101" ? undefined : { phone: "+7" + input.phone.slice(-10) };`);
const NEXT = script("process_client_phone", `return input.phone === "101" ? undefined : { phone: "8" + input.phone.slice(-10) };`);
const BROKEN = brokenScript("process_client_phone").broken;

type ScriptsResponse = {
  scripts: Array<{
    name: string;
    version: string | null;
    previousVersion: string | null;
    shadow?: { version: string | null; calls: number; different: number };
  }>;
};

const casesOf = (phone: string) => ({
  cases: [
    { name: "an 8-format client number", hook: "process_client_phone", input: payload("process_client_phone.incoming-8-format"), expect: { data: { phone } } },
  ],
});

describe("shadows on a real `serve`, and callscript promote", () => {
  it("a saved NAME.shadow.ts runs beside NAME; promote swaps it in as any save, keeping NAME.previous.ts", async () => {
    const dir = folder({ "phone.ts": LIVE });
    const served = serve(["--scripts", dir, "--port", "0"]);
    const address = await listening(served);
    const scripts = async () => ((await (await fetch(`${address}/scripts`)).json()) as ScriptsResponse).scripts;
    const post = async () =>
      (
        await fetch(`${address}/hooks/process_client_phone`, {
          method: "POST",
          body: JSON.stringify(payload("process_client_phone.incoming-8-format")),
          headers: { "content-type": "application/json" },
        })
      ).json();
    const liveVersion = (await scripts())[0]!.version;

    writeFileSync(path.join(dir, "phone.shadow.ts"), NEXT);
    await waitFor(async () => (await scripts())[0]!.shadow?.version != null, "the shadow to load");
    const shadowVersion = (await scripts())[0]!.shadow!.version;
    expect(await post()).toEqual({ state: "success", data: { phone: "+79001234567" } });
    await waitFor(async () => (await scripts())[0]!.shadow?.different === 1, "the shadow's comparison");
    const logged = await served.line((line) => line.msg === "shadow answered differently", "the difference");
    expect(logged).toMatchObject({
      script: "phone",
      hook: "process_client_phone",
      differences: [{ path: "data.phone", active: "+79001234567", shadow: "89001234567" }],
    });

    const promoted = callscript(["promote", "phone", "--scripts", dir]);
    expect(promoted.status, promoted.stderr).toBe(0);
    expect(promoted.stdout.trim()).toBe(`promoted phone in ${dir}: phone.ts → phone.previous.ts, phone.shadow.ts → phone.ts`);
    expect(readFileSync(path.join(dir, "phone.ts"), "utf8")).toBe(NEXT);
    expect(readFileSync(path.join(dir, "phone.previous.ts"), "utf8")).toBe(LIVE);
    expect(existsSync(path.join(dir, "phone.shadow.ts"))).toBe(false);

    // A version id hashes the bundle, which carries the script's name: phone.ts has an id of its own.
    await waitFor(async () => {
      const [phone] = await scripts();
      return phone!.previousVersion === liveVersion && phone!.shadow === undefined;
    }, "the promoted version to serve, and its shadow gone");
    const [state, ...others] = await scripts();
    expect(others).toEqual([]); // phone.previous.ts is never a script
    expect(state!.version).not.toBe(liveVersion);
    expect(state!.version).not.toBe(shadowVersion);
    expect(state).not.toHaveProperty("shadow");
    expect(await post()).toEqual({ state: "success", data: { phone: "89001234567" } });
    expect(served.lines.filter((line) => line.msg === "script unloaded")).toEqual([]);
    served.child.kill("SIGTERM");
    expect((await served.exit).code).toBe(0);
  });

  it("refuses a shadow that does not load (nothing renamed, exit 1) and a name without a shadow (exit 2); moves the shadow's own cases", () => {
    const dir = folder({ "phone.ts": LIVE, "phone.shadow.ts": BROKEN, "phone.cases.json": casesOf("+79001234567") });
    const refused = callscript(["promote", "phone", "--scripts", dir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("not promoted: phone.shadow.ts does not compile");
    expect(refused.stderr).toContain("phone.shadow.ts:3:");
    expect(readdirSync(dir).sort()).toEqual(["phone.cases.json", "phone.shadow.ts", "phone.ts"]);

    const none = callscript(["promote", "nothing", "--scripts", dir]);
    expect(none.status).toBe(2);
    expect(none.stderr).toContain("There is no nothing.shadow.ts in");

    writeFileSync(path.join(dir, "phone.shadow.ts"), NEXT);
    writeFileSync(path.join(dir, "phone.shadow.cases.json"), JSON.stringify(casesOf("89001234567")));
    const moved = callscript(["promote", "phone.shadow.ts", "--scripts", dir]);
    expect(moved.status, moved.stderr).toBe(0);
    expect(moved.stdout).toContain("phone.cases.json → phone.previous.cases.json, phone.shadow.cases.json → phone.cases.json");
    expect(readdirSync(dir).sort()).toEqual(["phone.cases.json", "phone.previous.cases.json", "phone.previous.ts", "phone.ts"]);
    // The promoted script passes its cases; the replaced version's cases are not run.
    const tested = callscript(["test", dir]);
    expect(tested.status, tested.stdout).toBe(0);
    expect(lastLine(tested.stdout)).toBe("1 passed, 0 failed");
  });

  it("check compiles shadows and leaves previous versions alone; test runs NAME's cases against its shadow unless it has its own", () => {
    const dir = folder({ "phone.ts": LIVE, "phone.shadow.ts": BROKEN, "phone.previous.ts": BROKEN });
    const checked = callscript(["check", dir]);
    expect(checked.status).toBe(1);
    expect(checked.stdout).toContain("phone.shadow.ts:3:");
    expect(checked.stdout).not.toContain("phone.previous.ts");
    expect(lastLine(checked.stdout)).toMatch(/2 scripts, 2 files checked$/);

    writeFileSync(path.join(dir, "phone.shadow.ts"), NEXT);
    writeFileSync(path.join(dir, "phone.cases.json"), JSON.stringify(casesOf("+79001234567")));
    writeFileSync(path.join(dir, "phone.previous.cases.json"), JSON.stringify(casesOf("nothing like it")));
    const shared = callscript(["test", dir]);
    expect(shared.status).toBe(1);
    expect(shared.stdout).toMatch(/phone\.cases\.json {2}· phone\n {2}✓ an 8-format client number/);
    expect(shared.stdout).toMatch(/phone\.cases\.json {2}· phone\.shadow\n {2}✗ an 8-format client number/);
    expect(lastLine(shared.stdout)).toBe("1 passed, 1 failed");

    writeFileSync(path.join(dir, "phone.shadow.cases.json"), JSON.stringify(casesOf("89001234567")));
    const own = callscript(["test", dir]);
    expect(own.status, own.stdout).toBe(0);
    expect(own.stdout).toMatch(/phone\.shadow\.cases\.json {2}· phone\.shadow\n {2}✓/);
    expect(lastLine(own.stdout)).toBe("2 passed, 0 failed");
  });
});
