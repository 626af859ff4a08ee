import { describe, expect, it } from "vitest";
import { loadScript } from "../helpers/scripts.js";

describe("smoke", () => {
  it("runs a handler", async () => {
    const sandbox = await loadScript(`
      import { defineScript, cancel } from "callscript";
      export default defineScript({
        hooks: {
          need_registration(input, ctx) {
            console.log("hello", { a: 1 }, input.call_full.result);
            return { result: false };
          },
        },
      });`);
    const r = await sandbox.invoke({ hook: "need_registration", inputJson: JSON.stringify({ call_full: { result: 200 } }), dataJson: '{"result":true}', settingsJson: "{}", requestId: "r1" }, { heap: true });
    console.log(JSON.stringify(r, null, 1));
    const loop = await loadScript(`
      import { defineScript } from "callscript";
      export default defineScript({ limits: { timeoutMs: 50 }, hooks: { need_registration() { while (true) {} } } });`);
    let t = Date.now();
    const r2 = await loop.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r2" });
    console.log(Date.now() - t, JSON.stringify(r2.outcome));
    const never = await loadScript(`
      import { defineScript } from "callscript";
      export default defineScript({ limits: { timeoutMs: 50 }, hooks: { need_registration() { return new Promise(() => {}); } } });`);
    t = Date.now();
    const r3 = await never.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r3" });
    console.log(Date.now() - t, JSON.stringify(r3.outcome));
    const micro = await loadScript(`
      import { defineScript } from "callscript";
      export default defineScript({ limits: { timeoutMs: 50 }, hooks: { async need_registration() { while (true) await null; } } });`);
    t = Date.now();
    const r4 = await micro.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r3" });
    console.log(Date.now() - t, JSON.stringify(r4.outcome));
    const r5 = await micro.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r3" });
    console.log(Date.now() - t, JSON.stringify(r5.outcome));
    const bomb = await loadScript(`
      import { defineScript } from "callscript";
      export default defineScript({ limits: { memoryMb: 16 }, hooks: { need_registration() { const a = []; while (true) a.push("x".repeat(1000) + a.length); } } });`);
    t = Date.now();
    const r6 = await bomb.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r3" });
    console.log(Date.now() - t, JSON.stringify(r6.outcome));
    const thrower = await loadScript(`
      import { defineScript } from "callscript";
      function helper(x: number): number {
        throw new TypeError("bad " + x);
      }
      export default defineScript({ hooks: { need_registration() { return { result: helper(3) > 1 }; } } });`);
    const r7 = await thrower.invoke({ hook: "need_registration", inputJson: "{}", dataJson: "{}", settingsJson: "{}", requestId: "r3" });
    console.log(JSON.stringify(r7.outcome, null, 1));
    expect(r.outcome.kind).toBe("data");
  });
});
