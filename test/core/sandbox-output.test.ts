import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ScriptSandbox } from "../../runtime/sandbox/sandbox.js";
import { compiled, dataOf, failureOf, HEADER, request, sandboxOptions, Sandboxes, scriptsFolder } from "../helpers/scripts.js";

const sandboxes = new Sandboxes();
afterAll(() => sandboxes.disposeAll());

describe("output validation", () => {
  /** One script that returns, for `input.case`, a value that must or must not cross the boundary. */
  const returner = `${HEADER}class Point { constructor(public x: number) {} }
const cases: Record<string, () => unknown> = {
  null: () => null,
  array: () => [{ result: false }],
  number: () => 1,
  string: () => "false",
  boolean: () => false,
  fn: () => () => ({ result: false }),
  fnValue: () => ({ result: false, callback() {} }),
  bigint: () => ({ count: 10n }),
  nan: () => ({ duration: NaN }),
  infinity: () => ({ duration: Infinity }),
  nestedNegInfinity: () => ({ a: { b: [1, -Infinity] } }),
  symbol: () => ({ tag: Symbol("x") }),
  cycle: () => { const a: any = { result: false }; a.self = a; return a; },
  deepCycle: () => { const a: any = { list: [{}] }; a.list[0].parent = a; return a; },
  map: () => ({ users: new Map([["a", 1]]) }),
  set: () => ({ users: new Set([1]) }),
  date: () => ({ at: new Date(0) }),
  instance: () => ({ where: new Point(1) }),
  error: () => ({ error: new Error("x") }),
  undefinedInArray: () => ({ phones: ["101", undefined] }),
  holeInArray: () => { const phones: string[] = ["101"]; phones[2] = "103"; return { phones }; },
  oddKey: () => ({ "USER-ID": { x: NaN } }),
  protoKey: () => JSON.parse('{"__proto__": {"result": false}}'),
  deep: () => { let v: any = 1; for (let i = 0; i < 100; i++) v = { v }; return v; },
  promiseValue: () => ({ later: Promise.resolve(1) }),
  undefinedKeys: () => ({ result: false, USER_ID: undefined, nested: { a: undefined, b: 1 } }),
  shared: () => { const user = { id: "7" }; return { first: user, second: user }; },
  nullProto: () => Object.assign(Object.create(null), { result: false }),
  nullValue: () => ({ USER_ID: null }),
  cancel: () => cancel(),
  cancelSpread: () => ({ ...cancel() }),
  undefined: () => undefined,
  empty: () => ({}),
  asyncData: async () => ({ result: false }),
  asyncUndefined: async () => undefined,
};
export default defineScript({ hooks: { need_registration(input: any) { return cases[input.case]!() as any; } } });
`;

  let sandbox: ScriptSandbox;
  beforeAll(async () => {
    sandbox = await sandboxes.load(returner);
  });
  const run = (name: string) => sandbox.invoke(request("need_registration", { input: { case: name } }));

  const returns = "Return an object of changes, undefined for no change, or cancel()";
  const invalid: [string, string][] = [
    ["null", `The handler returned null. ${returns}`],
    ["array", `The handler returned an array. ${returns}`],
    ["number", `The handler returned a number. ${returns}`],
    ["string", `The handler returned a string. ${returns}`],
    ["boolean", `The handler returned a boolean. ${returns}`],
    ["fn", `The handler returned a function. ${returns}`],
    ["fnValue", "data.callback is a function"],
    ["bigint", "data.count is a BigInt; convert it with String() or Number()"],
    ["nan", "data.duration is NaN; only finite numbers are JSON"],
    ["infinity", "data.duration is Infinity; only finite numbers are JSON"],
    ["nestedNegInfinity", "data.a.b[1] is -Infinity; only finite numbers are JSON"],
    ["symbol", "data.tag is a Symbol"],
    ["cycle", "data.self refers back to itself (a cycle)"],
    ["deepCycle", "data.list[0].parent refers back to itself (a cycle)"],
    ["map", "data.users is a Map; return plain objects, arrays and JSON values"],
    ["set", "data.users is a Set; return plain objects, arrays and JSON values"],
    ["date", "data.at is a Date; return plain objects, arrays and JSON values"],
    ["instance", "data.where is a Point; return plain objects, arrays and JSON values"],
    ["error", "data.error is a Error; return plain objects, arrays and JSON values"],
    ["undefinedInArray", "data.phones[1] is undefined"],
    ["holeInArray", "data.phones[1] is undefined"],
    ["oddKey", 'data["USER-ID"].x is NaN; only finite numbers are JSON'],
    ["protoKey", "data.__proto__ is not allowed as a key"],
    [
      "deep",
      "data.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v.v is nested deeper than 64 levels",
    ],
    ["promiseValue", "data.later is a Promise; return plain objects, arrays and JSON values"],
  ];
  // Where: the handler's one `return` (the value comes from a helper, so the return is the place).
  const returnLine = returner.split("\n").findIndex((line) => line.startsWith("export default")) + 1;
  const returnAt = { file: "script.ts", line: returnLine, column: returner.split("\n")[returnLine - 1]!.indexOf("return cases") + 1 };
  for (const [name, message] of invalid) {
    it(`${name} → invalid_output naming the path, at the handler's return`, async () => {
      expect(failureOf(await run(name))).toEqual({ reason: "invalid_output", script: "script", message, location: returnAt });
    });
  }

  describe("where the invalid data was returned", () => {
    const source =
      `${HEADER}` + // 1
      `function elsewhere(): any { return { result: 1n }; }\n` + // 2
      `export default defineScript({ hooks: {\n` + // 3
      `  need_registration(input: any): any {\n` + // 4
      `    if (input.a) return { result: false };\n` + // 5
      `    if (input.b) return { count: 10n };\n` + // 6
      `    return { tag: Symbol("x") };\n` + // 7
      `  },\n` + // 8
      `  process_client_phone: (input: any): any => ({ phone: input.phone, extra: 10n }),\n` + // 9
      `  customize_autodistribution: elsewhere,\n` + // 10
      `} });\n`; // 11
    let several: ScriptSandbox;
    beforeAll(async () => {
      several = await sandboxes.load(source, sandboxOptions(), "several.ts");
    });

    it("of several returns, the one whose object has the bad key", async () => {
      expect(failureOf(await several.invoke(request("need_registration", { input: { b: true } }))).location).toEqual({
        file: "several.ts",
        line: 6,
        column: 18,
      });
      expect(failureOf(await several.invoke(request("need_registration", { input: {} }))).location).toEqual({ file: "several.ts", line: 7, column: 5 });
    });

    it("an arrow function's expression body", async () => {
      const failure = failureOf(await several.invoke(request("process_client_phone", { input: { phone: "1" }, data: { phone: "1" } })));
      expect(failure).toMatchObject({ message: "data.extra is a BigInt; convert it with String() or Number()", location: { file: "several.ts", line: 9 } });
    });

    it("a handler written elsewhere: the hook's entry in defineScript names it", async () => {
      const failure = failureOf(await several.invoke(request("customize_autodistribution", { input: { call_full: {} }, data: {} })));
      expect(failure.location).toEqual({ file: "several.ts", line: 10, column: 3 });
    });
  });

  it("drops keys set to undefined, as JSON does", async () => {
    const data = dataOf(await run("undefinedKeys"));
    expect(data).toEqual({ result: false, nested: { b: 1 } });
    expect(Object.keys(data)).toEqual(["result", "nested"]);
  });

  it("keeps null values, shared (non-cyclic) references and null-prototype objects", async () => {
    expect(dataOf(await run("nullValue"))).toEqual({ USER_ID: null });
    expect(dataOf(await run("shared"))).toEqual({ first: { id: "7" }, second: { id: "7" } });
    expect(dataOf(await run("nullProto"))).toEqual({ result: false });
  });

  it("cancel() → cancel, also when spread into a new object", async () => {
    expect((await run("cancel")).outcome).toEqual({ kind: "cancel" });
    expect((await run("cancelSpread")).outcome).toEqual({ kind: "cancel" });
  });

  it("undefined → no change; {} → empty changes; async handlers the same", async () => {
    expect((await run("undefined")).outcome).toEqual({ kind: "none" });
    expect((await run("asyncUndefined")).outcome).toEqual({ kind: "none" });
    expect((await run("empty")).outcome).toEqual({ kind: "data", data: {} });
    expect((await run("asyncData")).outcome).toEqual({ kind: "data", data: { result: false } });
  });

  it("the returned data is read when the handler's result settles, not when it is returned", async () => {
    // Observed, documented: the prelude awaits the handler's result before copying it, so changes
    // made by microtasks that the handler queued before returning are in the data.
    const leaky = await sandboxes.load(
      `${HEADER}let last: any;\nexport default defineScript({ hooks: {\n` +
        `  need_registration() { last = { result: false, list: [1] }; Promise.resolve().then(() => { last.list.push(2); last.result = true; }); return last; },\n` +
        `} });\n`,
    );
    expect(dataOf(await leaky.invoke(request()))).toEqual({ result: true, list: [1, 2] });
  });
});

describe("a script that breaks the sandbox's own built-ins", () => {
  it("answers invalid_output (never a host error) and its next call finds a fresh isolate", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: {\n` +
        `  need_registration() { (Object.prototype as any).toJSON = () => 1; return { result: false }; },\n` +
        `  process_client_phone() { return { phone: typeof (Object.prototype as any).toJSON }; },\n` +
        `} });\n`,
    );
    const failure = failureOf(await sandbox.invoke(request()));
    expect(failure.reason).toBe("invalid_output");
    expect(failure.message).toContain("the script changed a built-in the sandbox relies on");
    expect(dataOf(await sandbox.invoke(request("process_client_phone", { input: { phone: "1" } })))).toEqual({ phone: "undefined" });
  });

  it("replacing JSON or Date after load does not change what the sandbox sends", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { need_registration(input, ctx) {\n` +
        `  (JSON as any).stringify = () => "{}"; (JSON as any).parse = () => ({}); (Date as any).now = () => "soon";\n` +
        `  ctx.log.info("still logged");\n` +
        `  return { result: false };\n` +
        `} } });\n`,
    );
    for (let i = 0; i < 2; i++) {
      const invocation = await sandbox.invoke(request());
      expect(dataOf(invocation)).toEqual({ result: false });
      expect(invocation.logs.lines).toEqual([{ level: "info", message: "still logged", atMs: expect.any(Number) }]);
    }
  });
});

describe("exceptions and stack mapping", () => {
  const files = {
    "script.ts":
      `${HEADER}` + // line 1
      `import { normalize } from "./lib/numbers";\n` + // 2
      `\n` + // 3
      `export default defineScript({\n` + // 4
      `  hooks: {\n` + // 5
      `    need_registration(input: any) {\n` + // 6
      `      if (input.where === "script") throw new RangeError("bad extension " + input.ext);\n` + // 7
      `      if (input.where === "string") throw "plain string";\n` + // 8
      `      return { result: normalize(input.ext).length > 3 };\n` + // 9
      `    },\n` + // 10
      `    async process_client_phone(input) {\n` + // 11
      `      await null;\n` + // 12
      `      const phone: string = (input as any).missing.phone;\n` + // 13
      `      return { phone };\n` + // 14
      `    },\n` + // 15
      `  },\n` + // 16
      `});\n`, // 17
    "lib/numbers.ts":
      `// Number helpers shared by the scripts.\n` + // 1
      `export function normalize(ext: string): string {\n` + // 2
      `  if (!/^\\d+$/.test(ext)) {\n` + // 3
      `    throw new Error(\`not a number: \${ext}\`);\n` + // 4
      `  }\n` + // 5
      `  return ext;\n` + // 6
      `}\n`, // 7
  };

  let sandbox: ScriptSandbox;
  let dir: string;
  beforeAll(async () => {
    dir = scriptsFolder(files);
    sandbox = sandboxes.add(await ScriptSandbox.load(await compiled(dir, "script.ts"), sandboxOptions()));
  });

  it("maps an exception in a helper to the helper's .ts line, with a relative file", async () => {
    const failure = failureOf(await sandbox.invoke(request("need_registration", { input: { where: "helper", ext: "1x" } })));
    expect(failure.reason).toBe("exception");
    expect(failure.script).toBe("script");
    expect(failure.message).toBe("not a number: 1x");
    expect(failure.location).toEqual({ file: path.join("lib", "numbers.ts"), line: 4, column: 11 });
    expect(failure.stack!.split("\n")).toEqual([
      "Error: not a number: 1x",
      `    at normalize (${path.join("lib", "numbers.ts")}:4:11)`,
      "    at need_registration (script.ts:9:24)",
    ]);
  });

  it("maps an exception in the script to its line, with the error's name in the message", async () => {
    const failure = failureOf(await sandbox.invoke(request("need_registration", { input: { where: "script", ext: "5" } })));
    expect(failure.message).toBe("RangeError: bad extension 5");
    const line = files["script.ts"].split("\n")[6]!;
    expect(failure.location).toEqual({ file: "script.ts", line: 7, column: line.indexOf("new RangeError") + 1 });
  });

  it("maps a TypeError after an await in an async handler", async () => {
    const failure = failureOf(await sandbox.invoke(request("process_client_phone", { input: { phone: "1" } })));
    expect(failure.message).toBe("TypeError: Cannot read properties of undefined (reading 'phone')");
    const line = files["script.ts"].split("\n")[12]!;
    expect(failure.location).toEqual({ file: "script.ts", line: 13, column: line.indexOf("phone;") + 1 });
  });

  it("shows no bundle positions and no host paths in the stack", async () => {
    const failure = failureOf(await sandbox.invoke(request("need_registration", { input: { where: "helper", ext: "x" } })));
    expect(failure.stack).not.toContain("callscript://");
    expect(failure.stack).not.toContain(dir);
    expect(failure.stack).not.toContain("prelude");
    expect(failure.stack).not.toContain("isolated-vm");
  });

  it("reports a thrown non-Error value without a location", async () => {
    const failure = failureOf(await sandbox.invoke(request("need_registration", { input: { where: "string" } })));
    expect(failure).toEqual({
      reason: "exception",
      script: "script",
      message: 'Thrown value: a non-Error value was thrown: "plain string"',
    });
  });

  it("maps files whose names are not ASCII or have spaces", async () => {
    const odd = scriptsFolder({
      "my script.ts": `${HEADER}import { f } from "./lib dir/numéros";\nexport default defineScript({ hooks: { need_registration() { return { result: f() }; } } });\n`,
      "lib dir/numéros.ts": `export function f(): boolean {\n  throw new Error("é");\n}\n`,
    });
    const oddSandbox = sandboxes.add(await ScriptSandbox.load(await compiled(odd, "my script.ts"), sandboxOptions()));
    const failure = failureOf(await oddSandbox.invoke(request()));
    expect(failure.script).toBe("my script");
    expect(failure.location).toEqual({ file: path.join("lib dir", "numéros.ts"), line: 2, column: 9 });
    expect(failure.stack).toContain("at need_registration (my script.ts:3:");
  });

  it("an exception is not the end of the isolate: module state survives it", async () => {
    const counting = await sandboxes.load(
      `${HEADER}let n = 0;\nexport default defineScript({ hooks: { need_registration() { n++; if (n === 1) throw new Error("first"); return { n } as any; } } });\n`,
    );
    expect(failureOf(await counting.invoke(request())).message).toBe("first");
    expect(dataOf(await counting.invoke(request()))).toEqual({ n: 2 });
  });
});

describe("logging", () => {
  it("formats console and ctx.log lines by level, values as an inspector would", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { need_registration(input, ctx) {\n` +
        `  const circular: any = { name: "c" }; circular.self = circular;\n` +
        `  console.log("plain", 1, true, null, undefined, { a: [1, "two"], b: { c: 3 } });\n` +
        `  console.info(10n, Symbol("s"), function named() {}, () => 1);\n` +
        `  console.warn(circular);\n` +
        `  console.error(new TypeError("bad"));\n` +
        `  console.debug({ deep: { a: { b: { c: { d: { e: 1 } } } } } });\n` +
        `  console.trace("traced");\n` +
        `  ctx.log.info("from ctx", ctx.hook, ctx.requestId, ctx.script);\n` +
        `  ctx.log.warn("é");\n` +
        `} } });\n`,
    );
    const { logs, stats } = await sandbox.invoke(request("need_registration", { requestId: "req-42" }));
    const lines = logs.lines.map(({ level, message }) => [level, message]);
    expect(lines.slice(0, 4)).toEqual([
      ["info", 'plain 1 true null undefined { a: [1, "two"], b: { c: 3 } }'],
      ["info", "10n Symbol(s) [Function named] [Function anonymous]"],
      ["warn", '{ name: "c", self: [Circular] }'],
      ["error", expect.stringMatching(/^TypeError: bad\n {4}at need_registration/)],
    ]);
    expect(lines.slice(4)).toEqual([
      ["debug", "{ deep: { a: { b: { c: { d: [Object] } } } } }"],
      ["debug", "traced"],
      ["info", "from ctx need_registration req-42 script"],
      ["warn", "é"],
    ]);
    // Bytes are UTF-8, one newline per line.
    const bytes = logs.lines.reduce((sum, line) => sum + Buffer.byteLength(line.message) + 1, 0);
    expect(logs.bytes).toBe(bytes);
    expect(stats.logBytes).toBe(bytes);
    expect(logs.lines.every((line) => line.atMs >= 0)).toBe(true);
  });

  it("does not let lines written after the answer leak into the next invocation", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}let call = 0;\nexport default defineScript({ hooks: { need_registration(input, ctx) {\n` +
        `  call++; const mine = call;\n` +
        `  ctx.log.info("call " + mine);\n` +
        `  Promise.resolve().then(() => Promise.resolve()).then(() => ctx.log.info("late " + mine));\n` +
        `} } });\n`,
    );
    expect((await sandbox.invoke(request())).logs.lines.map((l) => l.message)).toEqual(["call 1"]);
    expect((await sandbox.invoke(request())).logs.lines.map((l) => l.message)).toEqual(["call 2"]);
  });
});

describe("ctx", () => {
  it("carries the hook, the data so far, deep-frozen settings, the request id and the script's name", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { process_client_phone(input, ctx) {\n` +
        `  const s = ctx.settings as any;\n` +
        `  return { phone: JSON.stringify({\n` +
        `    hook: ctx.hook, data: ctx.data, settings: s, requestId: ctx.requestId, script: ctx.script, input,\n` +
        `    frozen: [Object.isFrozen(ctx), Object.isFrozen(s), Object.isFrozen(s.nested), Object.isFrozen(s.nested.list)],\n` +
        `  }) };\n` +
        `} } });\n`,
    );
    const invocation = await sandbox.invoke(
      request("process_client_phone", {
        input: { phone: "+7 900", extra: { kept: true } },
        data: { phone: "7900" },
        settings: { mode: "strict", nested: { list: ["101"] } },
        requestId: "req-7",
      }),
    );
    expect(JSON.parse(dataOf(invocation).phone as string)).toEqual({
      hook: "process_client_phone",
      data: { phone: "7900" },
      settings: { mode: "strict", nested: { list: ["101"] } },
      requestId: "req-7",
      script: "script",
      input: { phone: "+7 900", extra: { kept: true } },
      frozen: [true, true, true, true],
    });
  });

  it("settings cannot be changed by a script: a write throws, and the next call sees them unchanged", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: {\n` +
        `  need_registration(input: any, ctx) { const s = ctx.settings as any; if (input.how === "set") s.mode = "loose"; else s.list.push("999"); },\n` +
        `  process_client_phone(input, ctx) { return { phone: JSON.stringify(ctx.settings) }; },\n` +
        `} });\n`,
    );
    const settings = { mode: "strict", list: ["101"] };
    const set = failureOf(await sandbox.invoke(request("need_registration", { input: { how: "set" }, settings })));
    expect(set.message).toBe("TypeError: Cannot assign to read only property 'mode' of object '#<Object>'");
    expect(set.location).toMatchObject({ file: "script.ts", line: 3 });
    const push = failureOf(await sandbox.invoke(request("need_registration", { input: { how: "push" }, settings })));
    expect(push.message).toBe("TypeError: Cannot add property 1, object is not extensible");
    const after = await sandbox.invoke(request("process_client_phone", { input: { phone: "1" }, settings }));
    expect(JSON.parse(dataOf(after).phone as string)).toEqual(settings);
  });

  it("ctx.data is the script's own copy: changing it changes nothing", async () => {
    const sandbox = await sandboxes.load(
      `${HEADER}export default defineScript({ hooks: { need_registration(input, ctx) { (ctx.data as any).result = false; } } });\n`,
    );
    expect((await sandbox.invoke(request("need_registration", { data: { result: true } }))).outcome).toEqual({ kind: "none" });
  });
});
