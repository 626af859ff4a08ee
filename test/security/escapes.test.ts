import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { compileScript } from "../../runtime/compile/compile.js";
import { dispatch } from "../../runtime/dispatch/dispatch.js";
import { BUILTIN_MAX_LIMITS } from "../../runtime/sandbox/limits.js";
import type { Invocation, SandboxOptions, ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { dataOf, failureOf, HEADER, loadFailure, pipelineScript, request, sandboxOptions, Sandboxes, script, scriptsFolder } from "../helpers/scripts.js";
import { payload, startServer, type TestServer } from "../server/helpers.js";

/**
 * Sandbox escape and interference attempts, one script each, with real isolates. Every attempt
 * asserts its exact outcome (the failure's reason and message, or the contained behaviour), then
 * that the same script's healthy hook answers (its isolate was rebuilt or never broken), that a
 * sibling script answers right after, and that nothing changed in the host: Object.prototype and
 * the other built-in prototypes have the keys they had, and `({}).polluted` is undefined.
 * docs/security.md lists every attempt with its outcome.
 */

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

/** Small limits, so the suite stays fast: 150 ms and 16 MB unless an attempt says otherwise. */
const OPTIONS = sandboxOptions({ timeoutMs: 150, memoryMb: 16 });

const prototypes = {
  Object: Object.prototype,
  Array: Array.prototype,
  Function: Function.prototype,
  String: String.prototype,
  Promise: Promise.prototype,
  Error: Error.prototype,
};
const keysOf = (value: object) => Reflect.ownKeys(value).map(String).sort();
const hostBefore = Object.fromEntries(Object.entries(prototypes).map(([name, proto]) => [name, keysOf(proto)]));

function expectHostUntouched(): void {
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  for (const [name, proto] of Object.entries(prototypes)) expect(keysOf(proto), `${name}.prototype`).toEqual(hostBefore[name]);
  expect((globalThis as Record<string, unknown>).polluted).toBeUndefined();
}

/** Another script, loaded once: it must answer right, with a clean isolate, after every attempt. */
let sibling: ScriptSandbox;
beforeAll(async () => {
  sibling = await sandboxes.load(
    `${HEADER}export default defineScript({ hooks: { need_registration(input: any) {
      return { result: input.n % 2 === 0, seen: typeof (globalThis as any).probe + "/" + typeof ({} as any).polluted + "/" + typeof (Array.prototype as any).polluted } as any;
    } } });\n`,
    OPTIONS,
    "sibling.ts",
  );
});

/**
 * A script whose need_registration runs `body` (with `input` and `ctx`), with `top` as top-level
 * code, and whose process_client_phone is healthy and counts its calls in this isolate.
 */
function attemptScript(body: string, top = "", definition = ""): string {
  return (
    `${HEADER}${top}\nlet calls = 0;\n` +
    `export default defineScript({ ${definition}\n` +
    `  hooks: {\n` +
    `    async need_registration(input: any, ctx: any): Promise<any> { ${body}\n },\n` +
    `    process_client_phone(input) { calls++; return { phone: input.phone + "#" + calls }; },\n` +
    `  },\n` +
    `});\n`
  );
}

interface Attempt {
  body: string;
  top?: string;
  definition?: string;
  input?: unknown;
  options?: SandboxOptions;
}

/** Load the attempt, run it once, check that everything around it is as it was; return its invocation. */
async function attempt({
  body,
  top = "",
  definition = "",
  input = {},
  options = OPTIONS,
}: Attempt): Promise<{ sandbox: ScriptSandbox; invocation: Invocation; next: Invocation }> {
  const sandbox = await sandboxes.load(attemptScript(body, top, definition), options, "attempt.ts");
  const invocation = await sandbox.invoke(request("need_registration", { input }));
  await expectContained();
  const next = await sandbox.invoke(request("process_client_phone", { input: { phone: "101" }, data: { phone: "101" } }));
  expect(next.outcome.kind).toBe("data");
  return { sandbox, invocation, next };
}

async function expectContained(): Promise<void> {
  const answer = await sibling.invoke(request("need_registration", { input: { n: 2 } }));
  expect(dataOf(answer)).toEqual({ result: true, seen: "undefined/undefined/undefined" });
  expectHostUntouched();
}

/** Where an invalid_output points: the attempt's return, on its handler's line 6 of attempt.ts. */
const AT_RETURN = { file: "attempt.ts", line: 6, column: expect.any(Number) as number };

/** The next healthy call found a fresh isolate (its counter starts again) or the same one. */
const REBUILT = { phone: "101#1" };

/**
 * The answer a script forges by replacing Object.prototype.toJSON: when the prelude serializes its
 * answer, the script's toJSON returns `answer` instead (then removes itself).
 */
const FORGE = `
const forge = (answer: unknown) => {
  (Object.prototype as any).toJSON = function (this: any, key: string) {
    if (key === "" && typeof this.kind === "string" && "logs" in this) { delete (Object.prototype as any).toJSON; return answer; }
    return this;
  };
};
const noLogs = { lines: [], bytes: 0, dropped: 0, droppedBytes: 0 };`;

describe("reaching the host: Function, process, require, globalThis", () => {
  it("1. the Function constructor through a constructor chain gives the isolate's own global, without process or require", async () => {
    const { invocation } = await attempt({
      body: `const g = ({} as any).constructor.constructor("return this")();
        return { own: g === globalThis, process: typeof g.process, require: typeof g.require, module: typeof g.module, global: typeof g.global, Buffer: typeof g.Buffer };`,
    });
    expect(dataOf(invocation)).toEqual({
      own: true,
      process: "undefined",
      require: "undefined",
      module: "undefined",
      global: "undefined",
      Buffer: "undefined",
    });
  });

  it("2. the async and generator function constructors build functions of the isolate only", async () => {
    const { invocation } = await attempt({
      body: `const AsyncFunction = (async function () {}).constructor as any;
        const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor as any;
        const fromAsync = await AsyncFunction("return typeof process + '/' + typeof require")();
        const fromGenerator = GeneratorFunction("yield typeof this.process + '/' + (this === globalThis)")().next().value;
        return { fromAsync, fromGenerator, sameFunction: AsyncFunction.constructor === Function };`,
    });
    // Functions made this way are sloppy: their \`this\` is the isolate's own global.
    expect(dataOf(invocation)).toEqual({ fromAsync: "undefined/undefined", fromGenerator: "undefined/true", sameFunction: true });
  });

  it("3. eval, direct and indirect, sees no host binding", async () => {
    const { invocation } = await attempt({
      body: `const names = ["process", "require", "module", "exports", "global", "Buffer", "setTimeout", "ivm", "_ivm", "isolatedVm"];
        return { direct: names.map((n) => eval("typeof " + n)).join(","), indirect: names.map((n) => (0, eval)("typeof " + n)).join(",") };`,
    });
    const undefinedTen = Array(10).fill("undefined").join(",");
    expect(dataOf(invocation)).toEqual({ direct: undefinedTen, indirect: undefinedTen });
  });

  it("4. Error.prepareStackTrace sees only the isolate's own frames, with no receiver or function and no host file", async () => {
    const { invocation } = await attempt({
      body: `const frames: string[] = [];
        (Error as any).prepareStackTrace = (_e: unknown, sites: any[]) => {
          for (const s of sites) frames.push([s.getFunctionName(), typeof s.getThis(), typeof s.getFunction(), String(s.getFileName()).startsWith("callscript://")].join(":"));
          return "";
        };
        new Error("probe").stack;
        (Error as any).prepareStackTrace = undefined;
        return { frames };`,
    });
    expect(dataOf(invocation)).toEqual({
      frames: ["need_registration:undefined:undefined:true", "run:undefined:undefined:true", "invoke:undefined:undefined:true"],
    });
  });

  it("5. an error's stack names no host path, no node: module and nothing of isolated-vm", async () => {
    const { invocation } = await attempt({ body: `(Error as any).stackTraceLimit = Infinity; return { stack: String(new Error("where am I").stack) };` });
    const { stack } = dataOf(invocation) as { stack: string };
    expect(stack).toMatch(/^Error: where am I\n {4}at need_registration \(callscript:\/\/attempt\.js:\d+:\d+\)/);
    expect(stack).not.toMatch(/node:|isolated-vm|\/work\/|node_modules|<isolated-vm boundary>/);
  });

  it("6. the caller chain of a sloppy function stops at the first strict one", async () => {
    const { invocation } = await attempt({
      body: `const sloppy = new Function("const out = []; let f = arguments.callee; for (let i = 0; f && i < 10; i++) { out.push(typeof f); f = f.caller; } return out;");
        return { chain: sloppy() };`,
    });
    // The sloppy function itself; its caller (the strict handler) reads as null.
    expect(dataOf(invocation)).toEqual({ chain: ["function"] });
  });

  it("7. import() of a Node built-in by a computed name is refused inside the isolate", async () => {
    const { invocation, next } = await attempt({ body: `const name = ["f", "s"].join(""); await import(name); return {};` });
    const failure = failureOf(invocation);
    // V8's own refusal when the embedder loads no modules ("Not supported" on isolated-vm 5).
    expect(failure).toMatchObject({ reason: "exception", script: "attempt" });
    expect(failure.message).toMatch(/not supported|import/i);
    expect(dataOf(next)).toEqual({ phone: "101#1" });
  });

  it("8. import and require of Node built-ins fail at compile time, naming the module", async () => {
    const dir = scriptsFolder({
      "imports.ts": `import { readFileSync } from "node:fs";\nexport const x = readFileSync;\n`,
      "requires.ts": `declare const require: any;\nexport const cp = require("child_process");\n`,
    });
    const imports = await compileScript(`${dir}/imports.ts`, dir);
    const requires = await compileScript(`${dir}/requires.ts`, dir);
    expect(imports.ok).toBe(false);
    expect(requires.ok).toBe(false);
    if (imports.ok || requires.ok) return;
    expect(imports.diagnostics[0]!.message).toContain("Node built-in module 'fs' is not available to scripts");
    expect(requires.diagnostics[0]!.message).toContain("Node built-in module 'child_process' is not available to scripts");
    expectHostUntouched();
  });

  it("9. no host or isolated-vm global is there: process, require, timers, fetch, TextEncoder, WebAssembly, Intl", async () => {
    const names = [
      "process",
      "require",
      "module",
      "global",
      "Buffer",
      "setTimeout",
      "setInterval",
      "setImmediate",
      "queueMicrotask",
      "fetch",
      "TextEncoder",
      "structuredClone",
      "WebAssembly",
      "Intl",
      "ivm",
      "_ivm",
    ];
    const { invocation } = await attempt({
      body: `return Object.fromEntries(${JSON.stringify(names)}.map((n: string) => [n, typeof (globalThis as any)[n]]));`,
    });
    expect(dataOf(invocation)).toEqual(Object.fromEntries(names.map((name) => [name, "undefined"])));
  });

  it("10. replacing Promise.prototype.then catches no callback of the host, only the isolate's own resolving functions", async () => {
    const { sandbox, invocation } = await attempt({
      top: `const seen: string[] = [];`,
      body: `if (input.report) return { seen };
        const then = Promise.prototype.then;
        (Promise.prototype as any).then = function (this: any, ...args: any[]) {
          seen.push(args.map((a) => [typeof a, a instanceof Function, Object.getPrototypeOf(a) === Function.prototype, String(a)].join(":")).join("|"));
          return then.apply(this, args as any);
        };
        await null;
        await Promise.resolve(1);
        return Promise.resolve({ result: false });`,
    });
    expect(dataOf(invocation)).toEqual({ result: false });
    // One call: the handler returned a promise, so the language resolved the handler's own promise
    // through its then, with two resolving functions of the isolate. Neither the prelude's awaits
    // nor isolated-vm's wait for the answer went through the property.
    const own = "function:true:true:function () { [native code] }";
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { report: true } })))).toEqual({ seen: [`${own}|${own}`] });
  });

  it("11. a returned thenable is resolved with the isolate's own resolving functions", async () => {
    const { invocation } = await attempt({
      body: `let kind = "";
        const thenable = { then(resolve: any) { kind = [typeof resolve, resolve instanceof Function, resolve.constructor === Function, String(resolve)].join("|"); resolve({ result: false }); } };
        const value: any = await (thenable as any);
        return { ...value, kind };`,
    });
    expect(dataOf(invocation)).toEqual({ result: false, kind: "function|true|true|function () { [native code] }" });
  });

  it("12. calling the prelude's own entry (the one global it adds) from a handler is refused without running: busy", async () => {
    const { invocation, next } = await attempt({
      body: `const entry = (globalThis as any).__callscript_entry.entry;
        const inner = await entry.invoke(1, "process_client_phone", JSON.stringify({ phone: "7" }), "{}", "{}", "inner", 100, 100);
        const settled = await entry.settle(1, true, "{}");
        const batch = await entry.invokeBatch(1, "process_client_phone", JSON.stringify({ phone: "7" }), "{}", "{}", "inner", 100, 100, false, 1, 2, "process_client_phone", "{}", "{}", "{}", "inner", 100, 100, false, 2);
        return { keys: Object.keys(entry).join(","), frozen: Object.isFrozen(entry), inner, settled, batch };`,
    });
    // settle: no request of that id is waiting, so it does nothing. A batch: each of its calls busy.
    expect(dataOf(invocation)).toEqual({ keys: "meta,connect,invoke,invokeBatch,settle", frozen: true, inner: "busy", settled: "", batch: "busy\u0000busy" });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("12a. the prelude's runtime global (its bindScript) cannot be replaced, deleted or changed", async () => {
    const { invocation } = await attempt({
      body: `const g = globalThis as any;
        const acts: [string, () => unknown][] = [
          ["assign", () => { g.__callscript_runtime = {}; }],
          ["delete", () => { delete g.__callscript_runtime; }],
          ["redefine", () => Object.defineProperty(g, "__callscript_runtime", { value: {} })],
          ["change", () => { g.__callscript_runtime.bindScript = () => 1; }],
        ];
        const tries = acts.map(([what, act]) => { try { act(); return what + ":done"; } catch (e) { return what + ":" + (e as Error).name; } });
        return { tries: tries.join(","), bindScript: typeof g.__callscript_runtime.bindScript };`,
    });
    expect(dataOf(invocation)).toEqual({ tries: "assign:TypeError,delete:TypeError,redefine:TypeError,change:TypeError", bindScript: "function" });
  });

  it("12b. a call of the prelude's entry left unsettled by the top-level code → every invocation refused with a clear error, the isolate rebuilt each time", async () => {
    // A microtask runs once the bundle has finished, when the entry global exists.
    const top = `void Promise.resolve().then(() => void (globalThis as any).__callscript_entry.entry.invoke(0, "need_registration", "{}", "{}", "{}", "top", 100, 100));`;
    const sandbox = await sandboxes.load(attemptScript(`await new Promise(() => {}); return {};`, top), OPTIONS, "attempt.ts");
    const invocation = await sandbox.invoke(request("process_client_phone", { input: { phone: "1" } }));
    await expectContained();
    const refused = {
      reason: "exception",
      script: "attempt",
      message:
        "The script's isolate refused the invocation: the script's own code left a call of the sandbox's entry unsettled; its isolate is rebuilt for the next call",
    };
    expect(failureOf(invocation)).toEqual(refused);
    expect(failureOf(await sandbox.invoke(request("need_registration")))).toEqual(refused);
  });
});

describe("returned values: proxies, getters, symbols, errors", () => {
  it("13. a Proxy as the returned data is read once per key, into a plain copy", async () => {
    const { invocation } = await attempt({
      body: `let reads = 0;
        return new Proxy({ result: false, USER_ID: 7 }, { get(target: any, key) { reads++; return key === "USER_ID" ? "changed-" + reads : target[key]; } });`,
    });
    // Reads: \`then\` (the await), the cancel mark, result, USER_ID; the copy is what was read.
    expect(dataOf(invocation)).toEqual({ result: false, USER_ID: "changed-4" });
  });

  it("14. a Proxy whose traps throw → invalid_output, not a host error", async () => {
    const { invocation } = await attempt({ body: `return new Proxy({ result: false }, { ownKeys() { throw new Error("no keys for you"); } });` });
    expect(failureOf(invocation)).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message: "The returned data could not be read: no keys for you",
      location: AT_RETURN,
    });
  });

  it("15. a getter in the returned data that throws → invalid_output", async () => {
    const { invocation } = await attempt({ body: `return { get result(): boolean { throw new TypeError("getter says no"); } };` });
    expect(failureOf(invocation)).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message: "The returned data could not be read: getter says no",
      location: AT_RETURN,
    });
  });

  it("16. a getter in the returned data that never returns → timeout, and the isolate is rebuilt", async () => {
    const { invocation, next } = await attempt({ body: `return { get result(): boolean { for (;;) {} } };` });
    expect(failureOf(invocation)).toMatchObject({
      reason: "timeout",
      script: "attempt",
      message: "The script ran past its time limit of 150 ms of CPU time (a loop that does not end, or one that does too much)",
      // Where isolated-vm interrupted it: the getter, on the handler's line of attempt.ts.
      location: { file: "attempt.ts", line: 6 },
    });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("17. symbol-keyed properties are left out of the data, symbol values are refused", async () => {
    const { sandbox, invocation } = await attempt({
      body: `if (input.value) return { tag: Symbol.for("host") };
        return { result: false, [Symbol.for("nodejs.util.inspect.custom")]: () => "x", [Symbol.toPrimitive]: () => 1 };`,
    });
    expect(dataOf(invocation)).toEqual({ result: false });
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { value: true } })))).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message: "data.tag is a Symbol",
      location: AT_RETURN,
    });
  });

  it("18. a thrown Proxy, or an Error whose message getter throws → exception without a value", async () => {
    const { sandbox, invocation } = await attempt({
      body: `if (input.error) { const e = new Error("x"); Object.defineProperty(e, "message", { get() { throw new Error("nope"); } }); throw e; }
        throw new Proxy({}, { get() { throw new Error("trap"); }, getPrototypeOf() { throw new Error("trap"); } });`,
    });
    const uninspectable = { reason: "exception", script: "attempt", message: "Thrown value: an uninspectable value was thrown" };
    expect(failureOf(invocation)).toEqual(uninspectable);
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { error: true } })))).toEqual(uninspectable);
  });

  it("19. an error with a 1 MB message → exception, its message and stack cut with a visible marker", async () => {
    const { invocation } = await attempt({ body: `throw new RangeError("x".repeat(1_000_000));` });
    const failure = failureOf(invocation);
    expect(failure.reason).toBe("exception");
    expect(failure.message).toBe(`RangeError: ${"x".repeat(4096)}… [${1_000_000 - 4096} more characters]`);
    // The stack's first line is cut the same way; its frames are kept, and mapped.
    expect(failure.stack!.split("\n")[0]).toBe(
      `RangeError: ${"x".repeat(4096 - "RangeError: ".length)}… [${1_000_000 + "RangeError: ".length - 4096} more characters]`,
    );
    expect(failure.stack!.split("\n")[1]).toMatch(/^ {4}at need_registration \(attempt\.ts:\d+:\d+\)$/);
    expect(failure.location).toMatchObject({ file: "attempt.ts" });
  });

  it("20. a stack of 5 000 frames (stackTraceLimit = Infinity) → exception with the stack cut", async () => {
    const { invocation } = await attempt({
      body: `(Error as any).stackTraceLimit = Infinity;
        const down = (n: number): number => (n === 0 ? (() => { throw new Error("deep"); })() : down(n - 1) + 1);
        return { n: down(5000) };`,
    });
    const failure = failureOf(invocation);
    expect(failure.message).toBe("deep");
    expect(failure.stack!.startsWith("Error: deep\n    at attempt.ts:")).toBe(true);
    expect(failure.stack!.length).toBeLessThan(16 * 1024 + 64);
    expect(failure.stack).toMatch(/… \[\d+ more characters\]$/);
  });
});

describe("values JSON cannot carry", () => {
  const cases: [string, string, string][] = [
    ["21. a cycle", `const a: any = { result: false }; a.self = a; return a;`, "data.self refers back to itself (a cycle)"],
    ["22. a BigInt", `return { count: 10n };`, "data.count is a BigInt; convert it with String() or Number()"],
    ["23. a Symbol", `return { list: [Symbol("s")] };`, "data.list[0] is a Symbol"],
    ["24. undefined in an array", `return { phones: ["101", undefined] };`, "data.phones[1] is undefined"],
    ["25. NaN", `return { duration: 0 / 0 };`, "data.duration is NaN; only finite numbers are JSON"],
    ["26. a function", `return { callback() { return process; } };`, "data.callback is a function"],
    [
      "27. a host-looking class instance",
      `class Reference { deref() {} } return { ref: new Reference() };`,
      "data.ref is a Reference; return plain objects, arrays and JSON values",
    ],
  ];
  for (const [what, body, message] of cases) {
    it(`${what} → invalid_output naming the path`, async () => {
      const { invocation, next } = await attempt({ body });
      expect(failureOf(invocation)).toEqual({ reason: "invalid_output", script: "attempt", message, location: AT_RETURN });
      // Not a broken isolate: its state is kept.
      expect(dataOf(next)).toEqual({ phone: "101#1" });
    });
  }
});

describe("prototype pollution", () => {
  it("28. a __proto__ key in the returned data (from JSON.parse) → invalid_output", async () => {
    const { invocation } = await attempt({ body: `return { result: false, nested: JSON.parse('{"__proto__": {"polluted": "yes"}}') };` });
    expect(failureOf(invocation)).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message: "data.nested.__proto__ is not allowed as a key",
      location: AT_RETURN,
    });
  });

  it("29. an own enumerable __proto__ made with defineProperty → invalid_output", async () => {
    const { invocation } = await attempt({
      body: `const data: any = { result: false }; Object.defineProperty(data, "__proto__", { value: { polluted: "yes" }, enumerable: true }); return data;`,
    });
    expect(failureOf(invocation)).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message: "data.__proto__ is not allowed as a key",
      location: AT_RETURN,
    });
  });

  it("30. constructor.prototype keys in the returned data stay plain data through the merge", async () => {
    const { sandbox, invocation } = await attempt({
      body: `return { constructor: { prototype: { polluted: "yes" } }, toString: "x", hasOwnProperty: 1 };`,
    });
    expect(dataOf(invocation)).toEqual({ constructor: { prototype: { polluted: "yes" } }, toString: "x", hasOwnProperty: 1 });
    // Through the dispatcher of a hook that keeps unknown keys: merged over the defaults, checked by zod.
    const merged = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { process_task_creation_params() { return { constructor: { prototype: { polluted: "yes" } }, __defineGetter__: 1 } as any; } } });\n`,
      OPTIONS,
      "merged.ts",
    );
    const result = await dispatch("process_task_creation_params", {}, { TITLE: "Missed call" }, [pipelineScript(merged)], {
      requestId: "r",
      policy: "error",
      deadlineMs: 2000,
    });
    expect(result.answer).toEqual({ state: "success", data: { TITLE: "Missed call", constructor: { prototype: { polluted: "yes" } }, __defineGetter__: 1 } });
    if (result.answer.state === "success") expect(Object.getPrototypeOf(result.answer.data)).toBe(Object.prototype);
    expectHostUntouched();
    void sandbox;
  });

  it("31. a __proto__ key in the input becomes an own property in the isolate, not its prototype", async () => {
    const { invocation } = await attempt({
      body: `return { own: Object.hasOwn(input, "__proto__"), plainPrototype: Object.getPrototypeOf(input) === Object.prototype, polluted: typeof input.polluted + "/" + typeof ({} as any).polluted };`,
      input: JSON.parse('{"__proto__": {"polluted": "yes"}}'),
    });
    expect(dataOf(invocation)).toEqual({ own: true, plainPrototype: true, polluted: "undefined/undefined" });
  });

  it("32. polluting the isolate's own Object and Array prototypes reaches neither the host nor the sibling", async () => {
    const { sandbox, invocation } = await attempt({
      body: `(Object.prototype as any).polluted = "yes"; (Array.prototype as any).polluted = "yes"; (globalThis as any).probe = 1;
        return { result: ({} as any).polluted === "yes" };`,
    });
    expect(dataOf(invocation)).toEqual({ result: true });
    // It stays in this script's own isolate (documented: globals persist between its calls).
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { again: true } })))).toEqual({ result: true });
  });

  it("33. replacing built-ins the prelude uses after load (JSON, Object.keys, Array.prototype.push) changes only the script's own answer", async () => {
    const { invocation } = await attempt({
      body: `(JSON as any).stringify = () => "{}"; (JSON as any).parse = () => ({ hacked: true }); (Object as any).keys = () => ["hacked"];
        (Array.prototype as any).push = function () { return 0; };
        return { result: false };`,
    });
    // The prelude kept its own JSON and Object.keys; Array.prototype.push is its copies' own business.
    expect(dataOf(invocation)).toEqual({ result: false });
  });
});

describe("forged answers: a script that replaces Object.prototype.toJSON decides what the prelude sends", () => {
  it("34. forged data with a __proto__ key → invalid_output, checked again on the host, isolate rebuilt", async () => {
    const { invocation, next } = await attempt({
      top: FORGE,
      body: `forge({ kind: "data", data: JSON.parse('{"__proto__": {"polluted": "yes"}, "result": false}'), outputBytes: 0, logs: noLogs }); return { result: true };`,
    });
    expect(failureOf(invocation)).toEqual({
      reason: "invalid_output",
      script: "attempt",
      message:
        "The sandbox could not use the script's answer (data.__proto__ is not allowed as a key): the script changed a built-in the sandbox relies on " +
        "(such as Object.prototype.toJSON); its isolate is rebuilt for the next call",
    });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("35. forged data nested 1 000 levels deep → invalid_output (host JSON.stringify would overflow further on)", async () => {
    const { invocation } = await attempt({
      top: FORGE,
      body: `forge({ kind: "data", data: { X: JSON.parse("[".repeat(1000) + "]".repeat(1000)) }, outputBytes: 0, logs: noLogs }); return { result: true };`,
    });
    const failure = failureOf(invocation);
    expect(failure.reason).toBe("invalid_output");
    expect(failure.message).toContain(`(data.X${"[0]".repeat(64)} is nested deeper than 64 levels)`);
  });

  it("36. forged data over the output limit, claiming 0 bytes → invalid_output with the real size", async () => {
    const { invocation } = await attempt({
      definition: "limits: { outputBytes: 1024 },",
      top: FORGE,
      body: `forge({ kind: "data", data: { pad: "x".repeat(100_000) }, outputBytes: 0, logs: noLogs }); return { result: true };`,
    });
    expect(failureOf(invocation).message).toContain("(the data is 100010 bytes of JSON, over the output limit of 1024 bytes)");
  });

  it("37. forged log lines past the log limit → cut to the limit on the host, the rest counted as dropped", async () => {
    const { invocation } = await attempt({
      definition: "limits: { logBytes: 1000 },",
      top: FORGE,
      body: `const lines = Array.from({ length: 1000 }, (_, i) => ({ level: "error", message: "y".repeat(99) + (i % 10), atMs: 0 }));
        forge({ kind: "data", data: { result: false }, outputBytes: 0, logs: { lines, bytes: 0, dropped: 0, droppedBytes: 0 } }); return { result: true };`,
    });
    expect(dataOf(invocation)).toEqual({ result: false });
    expect(invocation.logs.lines).toHaveLength(9);
    expect(invocation.logs).toMatchObject({ bytes: 909, dropped: 991, droppedBytes: 991 * 101 });
  });

  it("38. a toJSON that throws a host-looking 'timed out' or 'memory limit' error is not taken for one", async () => {
    const { sandbox, invocation } = await attempt({
      body: `const message = input.memory ? "Isolate was disposed during execution due to memory limit" : "Script execution timed out.";
        (Object.prototype as any).toJSON = function (this: any, key: string) { if (key === "" && "logs" in this) throw new Error(message); return this; };
        return { result: false };`,
    });
    const broken = {
      reason: "invalid_output",
      script: "attempt",
      message:
        "The sandbox could not read the script's answer: the script changed a built-in the sandbox relies on " +
        "(such as Object.prototype.toJSON or JSON.stringify); its isolate is rebuilt for the next call",
    };
    expect(failureOf(invocation)).toEqual(broken);
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { memory: true } })))).toEqual(broken);
  });
});

describe("one script, its own state: ctx, settings, console", () => {
  it("39. ctx, ctx.settings, ctx.log and console are frozen: writing to them throws in the script only", async () => {
    const { sandbox, invocation } = await attempt({
      body: `const tries: Record<string, string> = {};
        const attemptWrite = (name: string, write: () => void) => { try { write(); tries[name] = "written"; } catch (e) { tries[name] = (e as Error).name; } };
        attemptWrite("ctx", () => { ctx.data = { result: false }; });
        attemptWrite("settings", () => { ctx.settings.list.push("x"); });
        attemptWrite("log", () => { ctx.log.info = () => {}; });
        attemptWrite("console", () => { (console as any).log = () => {}; });
        return tries;`,
      definition: `settings: { list: ["101"] },`,
    });
    expect(dataOf(invocation)).toEqual({ ctx: "TypeError", settings: "TypeError", log: "TypeError", console: "TypeError" });
    void sandbox;
  });
});

describe("resources", () => {
  it("40. Atomics.wait on the isolate's only thread, forever → timeout, isolate rebuilt", async () => {
    const { invocation, next } = await attempt({ body: `Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); return {};` });
    expect(failureOf(invocation).reason).toBe("timeout");
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("41. a 1 GB SharedArrayBuffer or ArrayBuffer → exception: the allocator counts it against the heap", async () => {
    const { sandbox, invocation } = await attempt({
      body: `return { n: (input.shared ? new SharedArrayBuffer(2 ** 30) : new ArrayBuffer(2 ** 30)).byteLength };`,
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "RangeError: Array buffer allocation failed" });
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { shared: true } })))).toMatchObject({
      reason: "exception",
      message: "RangeError: Array buffer allocation failed",
    });
  });

  it("42. growing WebAssembly memory past the heap → there is no WebAssembly (its memory is outside the heap limit)", async () => {
    const { invocation } = await attempt({
      body: `const memory = new (globalThis as any).WebAssembly.Memory({ initial: 1, maximum: 65536 }); memory.grow(1600); return {};`,
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "TypeError: Cannot read properties of undefined (reading 'Memory')" });
  });

  it("43. Intl formatters held by the thousand (ICU memory, outside the heap) → there is no Intl; toLocaleString still works", async () => {
    const { sandbox, invocation } = await attempt({
      body: `if (input.locale) return { date: new Date(0).toLocaleString("de-DE", { timeZone: "UTC" }), number: (1234.5).toLocaleString("en-US"), order: "a".localeCompare("b") };
        const keep: unknown[] = []; for (let i = 0; i < 20000; i++) keep.push(new (globalThis as any).Intl.DateTimeFormat("en-US")); return {};`,
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "TypeError: Cannot read properties of undefined (reading 'DateTimeFormat')" });
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { locale: true } })))).toEqual({
      date: "1.1.1970, 00:00:00",
      number: "1,234.5",
      order: -1,
    });
  });

  it("44. deep recursion → exception with RangeError, the isolate keeps serving", async () => {
    const { invocation, next } = await attempt({ body: `const down = (n: number): number => down(n + 1) + 1; return { n: down(0) };` });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "RangeError: Maximum call stack size exceeded" });
    expect(dataOf(next)).toEqual({ phone: "101#1" });
  });

  it("45. a catastrophic regular expression → timeout", async () => {
    const { invocation, next } = await attempt({ body: `return { result: /^(a+)+$/.test("a".repeat(40) + "b") };` });
    expect(failureOf(invocation).reason).toBe("timeout");
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("46. a 128 MB string made in one allocation (past V8's own check) → memory, and the isolate goes", async () => {
    const { invocation, next } = await attempt({
      body: `const s = "x".repeat(2 ** 27); return { at: s.indexOf("y") };`,
      options: sandboxOptions({ timeoutMs: 2000, memoryMb: 16 }),
    });
    expect(failureOf(invocation)).toEqual({ reason: "memory", script: "attempt", message: "The script ran out of its heap of 16 MB" });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("47. a huge string returned as data → memory (copying it exhausts the heap)", async () => {
    const { invocation, next } = await attempt({ body: `return { s: "x".repeat(2 ** 27) };`, options: sandboxOptions({ timeoutMs: 2000, memoryMb: 16 }) });
    expect(failureOf(invocation)).toEqual({ reason: "memory", script: "attempt", message: "The script ran out of its heap of 16 MB" });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("48. a huge array → memory", async () => {
    const { invocation, next } = await attempt({
      body: `const a: number[] = []; for (;;) a.push(a.length);`,
      options: sandboxOptions({ timeoutMs: 5000, memoryMb: 16 }),
    });
    expect(failureOf(invocation)).toEqual({ reason: "memory", script: "attempt", message: "The script ran out of its heap of 16 MB" });
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("49. a 128 MB string held by the top-level code → the script does not load", async () => {
    const options: SandboxOptions = { ...sandboxOptions({ timeoutMs: 150, memoryMb: 16 }), max: { ...BUILTIN_MAX_LIMITS, memoryMb: 16 } };
    const failure = await loadFailure(attemptScript(`return {};`, `const table = "x".repeat(2 ** 27); table.indexOf("y");`), options);
    expect(failure.message).toBe("its top-level code ran out of its heap of 16 MB");
    await expectContained();
  });

  it("50. settings of 3 MB in defineScript → the script does not load, the definition's size is named", async () => {
    const failure = await loadFailure(attemptScript(`return {};`, ``, `settings: { table: "x".repeat(3 * 1024 * 1024) },`));
    expect(failure.message).toMatch(
      /^defineScript\(\): the definition is 31\d{5} characters of JSON \(settings and top-level log lines\), over the limit of 2097152/,
    );
    await expectContained();
  });

  it("51. a console flood (a million lines) → the data stands, the log is cut at its limit and the rest counted", async () => {
    const { invocation } = await attempt({
      body: `for (let i = 0; i < 1_000_000; i++) console.log("flood", i); return { result: false };`,
      options: sandboxOptions({ timeoutMs: 5000, memoryMb: 16 }),
    });
    expect(dataOf(invocation)).toEqual({ result: false });
    expect(invocation.logs.bytes).toBeLessThanOrEqual(8 * 1024);
    expect(invocation.logs.lines.length + invocation.logs.dropped).toBe(1_000_000);
  });

  it("52. console.log of proxies with throwing traps, a revoked proxy and a huge object → logged as uninspectable or cut", async () => {
    const { invocation } = await attempt({
      body: `console.log(new Proxy({}, { getPrototypeOf() { throw new Error("trap"); }, ownKeys() { throw new Error("trap"); } }));
        const revocable = Proxy.revocable({}, {}); revocable.revoke(); console.log(revocable.proxy);
        const wide: Record<string, number> = {}; for (let i = 0; i < 10_000; i++) wide["k" + i] = i; console.log(wide);
        return { result: false };`,
    });
    expect(dataOf(invocation)).toEqual({ result: false });
    expect(invocation.logs.lines.map((line) => line.message)).toEqual(["[Uninspectable]", "[Uninspectable]"]);
    expect(invocation.logs.dropped).toBe(1);
  });

  it("53. a microtask loop → timeout, isolate rebuilt", async () => {
    const { invocation, next } = await attempt({ body: `for (;;) await null;` });
    expect(failureOf(invocation).reason).toBe("timeout");
    expect(dataOf(next)).toEqual(REBUILT);
  });

  it("54. timers are not offered: setTimeout throws, a promise that waits for one never settles → timeout", async () => {
    const { sandbox, invocation } = await attempt({
      body: `if (input.wait) return new Promise(() => {}); (globalThis as any).setTimeout(() => {}, 1); return {};`,
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "TypeError: globalThis.setTimeout is not a function" });
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { wait: true } }))).reason).toBe("timeout");
  });

  it("55. a microtask loop started by the top-level code → the load stops at its 2 s limit", async () => {
    const failure = await loadFailure(attemptScript(`return {};`, `(async () => { for (;;) await null; })();`), OPTIONS);
    expect(failure.message).toBe("its top-level code ran past 2000 ms");
    await expectContained();
  });
});

describe("limits that hold: memory outside the heap, forged reasons, loops V8 would not stop (issue 12)", () => {
  /** The process's resident memory grew by less than this over an attempt that tried to take gigabytes. */
  const RSS_BOUND = 64 * 2 ** 20;

  it("62. resizable ArrayBuffers and growable SharedArrayBuffers (maxByteLength) → refused at the allocation; the host's memory does not grow", async () => {
    const rssBefore = process.memoryUsage.rss();
    const { sandbox, invocation } = await attempt({
      // Was: a 32 MB script held 256 MB + 256 MB and answered (V8's page allocator, not isolated-vm's counted one).
      body: `const held: unknown[] = [];
        if (input.shared) { const b = new SharedArrayBuffer(1, { maxByteLength: 2 ** 28 }); held.push(b); }
        else { const b = new ArrayBuffer(2 ** 28, { maxByteLength: 2 ** 28 }); held.push(b); }
        return { n: held.length };`,
      options: sandboxOptions({ timeoutMs: 2000, memoryMb: 32 }),
    });
    const refused = (name: string) => ({
      reason: "exception",
      script: "attempt",
      message: `RangeError: ${name}: resizable buffers (maxByteLength) are not available to scripts: their memory is outside the script's memory limit. Allocate the length you need`,
    });
    expect(failureOf(invocation)).toMatchObject(refused("ArrayBuffer"));
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { shared: true } })))).toMatchObject(refused("SharedArrayBuffer"));
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(RSS_BOUND);
  });

  it("63. the original constructors are out of reach: a subclass, Reflect.construct, a buffer's constructor; resize() and grow() are gone", async () => {
    const { invocation } = await attempt({
      body: `const tries: Record<string, string> = {};
        const attemptTo = (name: string, make: () => unknown) => { try { make(); tries[name] = "made"; } catch (e) { tries[name] = (e as Error).name; } };
        const options = { maxByteLength: 2 ** 28 };
        attemptTo("subclass", () => new (class Big extends ArrayBuffer { constructor() { super(8, options as any); } })());
        attemptTo("reflect", () => Reflect.construct(ArrayBuffer, [8, options]));
        attemptTo("viaBuffer", () => new ((new Uint8Array(8).buffer as any).constructor)(8, options));
        attemptTo("viaPrototype", () => new (Object.getPrototypeOf(new Uint8Array(8).buffer).constructor)(8, options));
        attemptTo("sharedViaBuffer", () => new ((new Int32Array(new SharedArrayBuffer(8)).buffer as any).constructor)(8, options));
        const fixed = new ArrayBuffer(16);
        return { tries, resize: typeof (fixed as any).resize, grow: typeof (new SharedArrayBuffer(8) as any).grow, resizable: (fixed as any).resizable,
          same: fixed.constructor === ArrayBuffer && new Uint8Array(4).buffer instanceof ArrayBuffer && ArrayBuffer.isView(new Uint8Array(1)),
          sliced: fixed.slice(4).byteLength, sub: new (class Sub extends ArrayBuffer {})(4) instanceof ArrayBuffer };`,
    });
    expect(dataOf(invocation)).toEqual({
      tries: { subclass: "RangeError", reflect: "RangeError", viaBuffer: "RangeError", viaPrototype: "RangeError", sharedViaBuffer: "RangeError" },
      resize: "undefined",
      grow: "undefined",
      resizable: false,
      same: true,
      sliced: 12,
      sub: true,
    });
  });

  it("64. fixed-length buffers over the heap limit, 8 MB at a time → exception at the allocation that crosses it; the host's memory stays bounded", async () => {
    const rssBefore = process.memoryUsage.rss();
    const { invocation, next } = await attempt({
      body: `const held: ArrayBuffer[] = []; for (let i = 0; i < 256; i++) held.push(new ArrayBuffer(8 * 2 ** 20)); return { n: held.length };`,
      options: sandboxOptions({ timeoutMs: 2000, memoryMb: 32 }),
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "RangeError: Array buffer allocation failed" });
    expect(dataOf(next)).toEqual({ phone: "101#1" });
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(RSS_BOUND);
  });

  it("65. Atomics.waitAsync in a loop (each waiter outside the heap; it aborted the whole process) → not offered", async () => {
    const { invocation } = await attempt({ body: `const i = new Int32Array(new SharedArrayBuffer(4)); for (;;) (Atomics as any).waitAsync(i, 0, 0);` });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "TypeError: Atomics.waitAsync is not a function" });
  });

  const cppLoops: [string, string][] = [
    ["JSON.parse", `const s = JSON.stringify(new Array(2e4).fill(1)); for (;;) JSON.parse(s);`],
    ["String.prototype.toUpperCase", `const s = "ab".repeat(1e5); for (;;) s.toUpperCase();`],
    ["String.prototype.normalize", `const s = "é".repeat(1e5); for (;;) s.normalize("NFD");`],
    ["encodeURIComponent", `const s = "é".repeat(1e5); for (;;) encodeURIComponent(s);`],
    ["Array.prototype.fill", `const a = new Array(1e6); for (;;) a.fill(1);`],
  ];
  for (const [builtin, body] of cppLoops) {
    it(`66. a loop of ${builtin} (V8 ran it past every request to stop; isolated-vm then reported a catastrophic error) → timeout at its line`, async () => {
      const { invocation, next } = await attempt({ body, options: sandboxOptions({ timeoutMs: 150, memoryMb: 64 }) });
      expect(failureOf(invocation)).toMatchObject({ reason: "timeout", location: { file: "attempt.ts", line: 6 } });
      expect(dataOf(next)).toEqual(REBUILT);
    });
  }

  it("67. an unhandled rejection that reads like the host's timeout or memory limit → the script's exception, not a forged reason; not rebuilt", async () => {
    const { sandbox, invocation, next } = await attempt({
      body: `Promise.reject(new Error(input.memory ? "Isolate was disposed during execution due to memory limit" : "Script execution timed out.")); return { result: false };`,
    });
    expect(failureOf(invocation)).toMatchObject({ reason: "exception", message: "Script execution timed out.", location: { file: "attempt.ts", line: 6 } });
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { memory: true } })))).toMatchObject({
      reason: "exception",
      message: "Isolate was disposed during execution due to memory limit",
    });
    // The isolate was kept: its counter goes on.
    expect(dataOf(next)).toEqual({ phone: "101#1" });
    expect(dataOf(await sandbox.invoke(request("process_client_phone", { input: { phone: "101" }, data: { phone: "101" } })))).toEqual({ phone: "101#2" });
  });

  it("68. a forged answer of 20 MB (replaced Object.prototype.toJSON) → not sent by the prelude: invalid_output, rebuilt", async () => {
    const { invocation, next } = await attempt({
      top: FORGE,
      body: `forge({ kind: "data", data: { big: "x".repeat(20 * 2 ** 20) }, outputBytes: 0, logs: noLogs }); return { result: false };`,
      options: sandboxOptions({ timeoutMs: 2000, memoryMb: 64 }),
    });
    expect(failureOf(invocation)).toMatchObject({
      reason: "invalid_output",
      message: expect.stringContaining("The sandbox could not read the script's answer"),
    });
    expect(dataOf(next)).toEqual(REBUILT);
  });
});

describe("published escapes, adapted (vm2, node:vm, safe-eval, sandbox, SandboxJS and n8n advisories)", () => {
  /** What `process`, `require` and the global look like from where an attack ends up. */
  const reached = `(f: any) => { const g = f("return this")(); return [f("return typeof process")(), typeof g.require, g === globalThis].join("/"); }`;

  it("69. vm2 GHSA-cchq-frgv-rjh5 (CVE-2023-37466): a Promise species whose reject handler receives a RangeError from a stack overflow → the isolate's own Function", async () => {
    const { invocation } = await attempt({
      body: `const reach = ${reached};
        let got = "not called";
        async function fn() { (function stack(): void { stack(); })(); }
        const p: any = fn();
        p.constructor = { [Symbol.species]: class FakePromise { constructor(executor: any) { executor((x: unknown) => x, (err: any) => { got = reach(err.constructor.constructor); }); } } };
        p.then();
        await null;
        return { got };`,
    });
    expect(dataOf(invocation)).toEqual({ got: "undefined/undefined/true" });
  });

  it("70. vm2 GHSA-ch3r-j5x3-6q2m (CVE-2023-30547): a thrown Proxy whose getPrototypeOf overflows the stack, caught as { constructor } → the isolate's own Function", async () => {
    const { invocation } = await attempt({
      body: `const reach = ${reached};
        const proxied = new Proxy({}, { getPrototypeOf() { (function stack(): void { stack(); })(); return null; } });
        try { throw proxied; } catch ({ constructor: c }: any) { return { got: reach(c.constructor) }; }`,
    });
    expect(dataOf(invocation)).toEqual({ got: "undefined/undefined/true" });
  });

  it("71. vm2 issue 174: a Proxy thrown out of the handler whose getPrototypeOf throws a function the host might call → never called", async () => {
    const { invocation, next } = await attempt({
      top: `(globalThis as any).called = false;`,
      body: `throw new Proxy({}, { getPrototypeOf() { throw (x: any) => { (globalThis as any).called = true; return x.constructor.constructor("return process")(); }; } });`,
    });
    expect(failureOf(invocation)).toEqual({ reason: "exception", script: "attempt", message: "Thrown value: an uninspectable value was thrown" });
    expect(dataOf(next)).toEqual({ phone: "101#1" });
  });

  it("72. vm2 GHSA-g644-9gfx-q4q4 (CVE-2023-37903) and issue 533: a custom inspect function (nodejs.util.inspect.custom, also made with Symbol.for({ toString })) logged, thrown and returned → never called", async () => {
    const { sandbox, invocation } = await attempt({
      top: `const inspected: string[] = [];`,
      body: `if (input.report) return { inspected };
        const inspect = Symbol.for({ toString: () => "nodejs.util.inspect.custom" } as any);
        const bait = { [inspect]: (_depth: unknown, _options: unknown, util: any) => { inspected.push("inspect"); return util.constructor("return process")(); }, valueOf: undefined, constructor: undefined };
        console.log(bait);
        ctx.log.error("bait", bait);
        if (input.thrown) throw bait;
        return { result: false, ...(bait as object) } as any;`,
    });
    // Symbol keys and keys set to undefined are left out of the data, as in JSON.
    expect(dataOf(invocation)).toEqual({ result: false });
    expect(failureOf(await sandbox.invoke(request("need_registration", { input: { thrown: true } }))).reason).toBe("exception");
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { report: true } })))).toEqual({ inspected: [] });
  });

  it("73. vm2 issue 225: a method planted on TypeError.prototype, reached through a TypeError from a frozen host-given object (ctx) → the isolate's own Function", async () => {
    const { invocation } = await attempt({
      body: `const reach = ${reached};
        (TypeError.prototype as any).getProcess = (f: any) => reach(f.constructor);
        try { (ctx as any).data = 1; return { got: "written" }; } catch (e: any) { return { got: e.getProcess(() => {}) }; }`,
    });
    expect(dataOf(invocation)).toEqual({ got: "undefined/undefined/true" });
    // The host's TypeError.prototype is untouched (and checked after every attempt).
    expect((TypeError.prototype as unknown as Record<string, unknown>).getProcess).toBeUndefined();
  });

  it("74. vm2 PR 547 / issue 562 (2026): an Error named with a Symbol, its stack read in an async function → the TypeError is the isolate's", async () => {
    const { invocation } = await attempt({
      body: `const reach = ${reached};
        const e: any = new Error("x"); e.name = Symbol("s");
        const got = await (async () => e.stack)().then(() => "no error", (err: any) => reach(err.constructor.constructor));
        return { got };`,
    });
    expect(dataOf(invocation).got).toMatch(/^(no error|undefined\/undefined\/true)$/);
  });

  it("75. safe-eval issue 28 and sandbox issue 65: Error.prepareStackTrace picking the first frame with a `this`, then polluting its prototype → nothing to pollute but the isolate's own", async () => {
    const { invocation } = await attempt({
      body: `(Error as any).prepareStackTrace = (_: unknown, sites: any[]) => sites.map((site) => site.getThis()).find((value) => value);
        const found = new Function("return (function () { return new Error().stack; })()")();
        (Error as any).prepareStackTrace = undefined;
        if (found && typeof found === "object") Object.getPrototypeOf(found).polluted = "yes";
        return { found: found === globalThis ? "the isolate's global" : typeof found, polluted: typeof ({} as any).polluted };`,
    });
    // A sloppy frame's this is the isolate's global object; its prototype chain is the isolate's.
    expect(dataOf(invocation)).toMatchObject({ found: expect.stringMatching(/^(the isolate's global|undefined)$/) });
  });

  it("76. sandbox issues 66-70: a TypeError from valueOf(), propertyIsEnumerable.call(undefined), __defineGetter__ and a `with` over Symbol.unscopables, in sloppy code → the isolate's", async () => {
    const { invocation } = await attempt({
      body: `const reach = ${reached};
        const sloppy = (code: string) => { try { new Function(code)(); return "no error"; } catch (e: any) { return reach(e.constructor.constructor); } };
        return {
          valueOf: sloppy("valueOf.call(undefined)"),
          propertyIsEnumerable: sloppy("propertyIsEnumerable.call(undefined)"),
          defineGetter: sloppy("__defineGetter__.call(undefined, 'x', function () {})"),
          with: sloppy("const proto = {}; proto[Symbol.unscopables] = {}; with (proto) { isPrototypeOf.call(undefined, {}); }"),
        };`,
    });
    const isolate = "undefined/undefined/true";
    expect(dataOf(invocation)).toEqual({ valueOf: isolate, propertyIsEnumerable: isolate, defineGetter: isolate, with: isolate });
  });

  it('77. SandboxJS CVE-2025-34146: a getter defined on Object.prototype through "".sub.__proto__.__proto__ → the isolate\'s own prototype only', async () => {
    const { sandbox, invocation } = await attempt({
      body: `if (input.check) return { seen: typeof ({} as any).polluted };
        ("".sub as any).__proto__.__proto__.__defineGetter__("polluted", ({} as any).constructor.constructor("return true"));
        return { polluted: ({} as any).polluted };`,
    });
    expect(dataOf(invocation)).toEqual({ polluted: true });
    // It stays in that script's isolate (documented: globals persist there); the host and the sibling see nothing.
    expect(dataOf(await sandbox.invoke(request("need_registration", { input: { check: true } })))).toEqual({ seen: "boolean" });
  });

  it("78. n8n CVE-2025-68613 and its template-literal bypass: this.constructor.constructor('return process')() from a sloppy function, and `constructor` written as a template literal", async () => {
    const { invocation } = await attempt({
      body: `const viaThis = new Function("return this.constructor.constructor('return typeof process')()")();
        const viaTemplate = ({} as any)[\`constructor\`][\`constructor\`](\`return typeof process + '/' + typeof this.process\`)();
        const viaExpression = new Function("return (function () { return this })().process")();
        return { viaThis, viaTemplate, viaExpression: typeof viaExpression };`,
    });
    expect(dataOf(invocation)).toEqual({ viaThis: "undefined", viaTemplate: "undefined/undefined", viaExpression: "undefined" });
  });

  it("79. vm2 issue 562 (Array species) and issue 533 (Array.prototype[Symbol.iterator]): species and iterators replaced before the answer is copied → the answer is the data, nothing else", async () => {
    const { invocation } = await attempt({
      body: `(Array.prototype as any).constructor = { [Symbol.species]: function () { return { evil: true }; } };
        (Array.prototype as any)[Symbol.iterator] = function () { throw new Error("iterated"); };
        return { list: [1, 2, 3].map((n) => n), nested: [[1]] } as any;`,
    });
    expect(dataOf(invocation)).toMatchObject({ nested: [[1]] });
  });
});

describe("forged definitions: the same trick at load time", () => {
  it("61. a definition forged by the top-level code (Object.prototype.toJSON), with log lines that are not lines → no hold: the real definition loads", async () => {
    // The prelude serializes a copy of the definition without a prototype (see 77), so a toJSON
    // put on Object.prototype is never consulted for it. (Before, the forged definition reached
    // the host, whose own check refused it: "defineScript(): logs.lines.0.level: …".)
    const sandbox = await sandboxes.load(
      attemptScript(
        `return { result: true };`,
        `(Object.prototype as any).toJSON = function (this: any, key: string) {
          if (key === "" && "hooks" in this) {
            return { hooks: ["need_registration"], settings: JSON.parse('{"__proto__": {"polluted": "yes"}}'), logs: { lines: [{ level: "fatal", message: { toString: 1 }, atMs: 0 }], bytes: 0, dropped: 0, droppedBytes: 0 } };
          }
          return this;
        };`,
        `settings: { list: ["101"] },`,
      ),
      OPTIONS,
      "attempt.ts",
    );
    expect(sandbox.meta).toMatchObject({ hooks: ["need_registration", "process_client_phone"], settings: { list: ["101"] }, logs: { lines: [] } });
    await expectContained();
  });
});

describe("through the HTTP API", () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({
      "echo.ts": script("process_task_creation_params", `return { constructor: { prototype: { polluted: "yes" } }, valueOf: "v" } as any;`),
      "forger.ts": `${HEADER}${FORGE}\nexport default defineScript({ hooks: { customize_activity() { forge({ kind: "data", data: JSON.parse('{"__proto__": {"polluted": "yes"}}'), outputBytes: 0, logs: noLogs }); return {}; } } });\n`,
      "healthy.ts": script("need_registration", `return { result: input.call_full.channel.type !== "internal" };`),
    });
  });
  afterAll(async () => server?.close());

  const callFull = () => JSON.stringify(payload("need_registration.incoming-answered").call_full);

  async function expectServerHealthy(): Promise<void> {
    const answer = await server.post("need_registration", payload("need_registration.incoming-answered"));
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ state: "success", data: { result: true } });
    expectHostUntouched();
  }

  it("56. __proto__ and constructor.prototype keys in the body, at any depth → 400 before any script runs", async () => {
    for (const body of [
      `{"call_full": ${callFull()}, "__proto__": {"polluted": "yes"}}`,
      `{"call_full": ${callFull()}, "deep": {"a": [{"__proto__": {"polluted": "yes"}}]}}`,
      `{"call_full": ${callFull()}, "constructor": {"prototype": {"polluted": "yes"}}}`,
    ]) {
      const answer = await server.post("process_task_creation_params", body);
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({
        code: "CS_ERR_INVALID_JSON",
        message: "The body is not JSON: it has a __proto__ or constructor.prototype key, which is refused",
      });
    }
    await expectServerHealthy();
  });

  it("57. constructor.prototype in a script's data → answered as plain data", async () => {
    const answer = await server.post("process_task_creation_params", `{"call_full": ${callFull()}, "TITLE": "t"}`);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toEqual({ state: "success", data: { TITLE: "t", constructor: { prototype: { polluted: "yes" } }, valueOf: "v" } });
    await expectServerHealthy();
  });

  it("58. a forged __proto__ key in a script's data → 200 with an invalid_output error", async () => {
    const answer = await server.post("customize_activity", `{"call_full": ${callFull()}, "activity": {"ID": "1"}}`);
    expect(answer.statusCode).toBe(200);
    expect(answer.json()).toMatchObject({ state: "error", error: { reason: "invalid_output", script: "forger" } });
    expect(answer.json().error.message).toContain("(data.__proto__ is not allowed as a key)");
    await expectServerHealthy();
  });

  it("59. a body nested 100 000 levels deep (200 KB) → 400 naming where, not a 500 from JSON.stringify", async () => {
    const deep = "[".repeat(100_000) + "]".repeat(100_000);
    for (const hook of ["process_task_creation_params", "customize_show_call_card", "need_registration"]) {
      const answer = await server.post(hook, `{"call_full": ${callFull()}, "x": ${deep}}`);
      expect(answer.statusCode).toBe(400);
      expect(answer.json()).toMatchObject({
        code: "CS_ERR_INVALID_INPUT",
        issues: [{ path: `x${".0".repeat(64)}`, message: "nested deeper than 64 levels" }],
      });
    }
    await expectServerHealthy();
  });

  it("60. a number JSON reads as Infinity (1e400) → 400, not a silent null in the answer", async () => {
    const answer = await server.post("process_task_creation_params", `{"call_full": ${callFull()}, "AMOUNT": -1e400}`);
    expect(answer.statusCode).toBe(400);
    expect(answer.json()).toMatchObject({
      code: "CS_ERR_INVALID_INPUT",
      issues: [{ path: "AMOUNT", message: "a number beyond the range of a double (it reads as -Infinity); send it as a string" }],
    });
    await expectServerHealthy();
  });
});

describe("the bridge of fetch and kv (capabilities)", () => {
  it("80. a script that connects the sandbox's entry to its own function first does not load", async () => {
    const top = `void Promise.resolve().then(() => (globalThis as any).__callscript_entry.entry.connect(() => undefined));`;
    const failure = await loadFailure(attemptScript(`return {};`, top), OPTIONS, "attempt.ts");
    expect(failure.message).toContain("called the sandbox's entry (connect)");
  });

  it("80b. the same with a hostile clock (a length of 64 MB of float64, not the host's shared memory): the same refusal, nothing allocated", async () => {
    const top = `void Promise.resolve().then(() => (globalThis as any).__callscript_entry.entry.connect(() => undefined, 2 ** 23));`;
    const failure = await loadFailure(attemptScript(`return {};`, top), OPTIONS, "attempt.ts");
    expect(failure.message).toContain("called the sandbox's entry (connect)");
  });

  it("81. no isolated-vm object and no host function is reachable from ctx: fetch, secret and kv are the guest's own functions", async () => {
    const { invocation } = await attempt({
      body: `const c = ctx as any;
        const kinds = [c.fetch, c.secret, c.kv.get, c.kv.set, c.kv.delete, c.kv.incr].map((f) => String(Function.prototype.toString.call(f)).includes("[native code]") ? "native" : "guest");
        return { kinds: kinds.join(","), kvFrozen: Object.isFrozen(c.kv), keys: Object.keys(c).sort().join(",") };`,
    });
    expect(dataOf(invocation)).toEqual({
      kinds: "guest,guest,guest,guest,guest,guest",
      kvFrozen: true,
      keys: "data,fetch,hook,kv,log,requestId,script,secret,settings",
    });
  });
});
