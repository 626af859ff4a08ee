import path from "node:path";
import { describe, expect, it } from "vitest";
import { deadlineFor, effectiveLimits, loadConfig } from "../../runtime/config.js";
import { BUILTIN_DEFAULT_LIMITS, BUILTIN_MAX_LIMITS } from "../../runtime/sandbox/limits.js";
import { scriptsFolder } from "../helpers/scripts.js";

/** A config file in a fresh folder; returns its path. */
function configFile(name: string, text: string): string {
  const dir = scriptsFolder({ [name]: text });
  return path.join(dir, name);
}

/** The ConfigError's message, or a test failure if the config loads. */
function configError(load: () => unknown): { message: string; code: string } {
  try {
    load();
  } catch (error) {
    return error as { message: string; code: string };
  }
  throw new Error("the configuration loaded, but it should not have");
}

const NO_ENV = {};

describe("files", () => {
  it("reads JSON and fills in the defaults", () => {
    const file = configFile(
      "callscript.json",
      JSON.stringify({
        port: 9001,
        maxQueue: 4,
        limits: { defaults: { timeoutMs: 100 } },
        hooks: { need_registration: { failurePolicy: "skip" } },
        scripts: { blacklist: { order: 2, settings: { list: ["101"] } } },
      }),
    );
    const config = loadConfig({ file, env: NO_ENV });
    expect(config).toMatchObject({
      host: "127.0.0.1",
      port: 9001,
      maxQueue: 4,
      deadlineMs: 2000,
      watch: true,
      logLevel: "info",
      limits: { defaults: { timeoutMs: 100 }, max: {} },
      hooks: { need_registration: { enabled: true, failurePolicy: "skip" } },
      scripts: { blacklist: { enabled: true, order: 2, settings: { list: ["101"] } } },
    });
    expect(config.token).toBeUndefined();
  });

  for (const extension of ["yaml", "yml"]) {
    it(`reads YAML (.${extension})`, () => {
      const file = configFile(
        `callscript.${extension}`,
        [
          "port: 9002",
          "watch: false",
          "hooks:",
          "  process_record_file_path:",
          "    deadlineMs: 12000",
          "scripts:",
          "  blacklist:",
          "    settings:",
          "      extensions: ['101', '102']",
          "",
        ].join("\n"),
      );
      const config = loadConfig({ file, env: NO_ENV });
      expect(config.port).toBe(9002);
      expect(config.watch).toBe(false);
      expect(config.hooks.process_record_file_path).toEqual({ enabled: true, deadlineMs: 12000, failurePolicy: "error" });
      expect(config.scripts.blacklist!.settings).toEqual({ extensions: ["101", "102"] });
    });
  }

  it("an empty YAML file is all defaults", () => {
    const config = loadConfig({ file: configFile("empty.yaml", "# nothing yet\n"), env: NO_ENV });
    expect(config).toMatchObject({ port: 8787, maxQueue: 32, hooks: {}, scripts: {} });
  });

  it("without a file, is all defaults", () => {
    const config = loadConfig({ env: NO_ENV });
    expect(config).toMatchObject({ host: "127.0.0.1", port: 8787, scriptsDir: path.resolve("scripts"), bodyLimitBytes: 1024 * 1024 });
  });
});

describe("precedence", () => {
  const file = () => configFile("c.json", JSON.stringify({ host: "0.0.0.0", port: 9000, logLevel: "warn", watch: true, token: "t".repeat(16) }));

  it("the environment overrides the file", () => {
    const config = loadConfig({
      file: file(),
      env: { CALLSCRIPT_PORT: "9100", CALLSCRIPT_LOG_LEVEL: "debug", CALLSCRIPT_WATCH: "0", CALLSCRIPT_TOKEN: "e".repeat(20), CALLSCRIPT_HOST: "" },
    });
    expect(config).toMatchObject({ host: "0.0.0.0", port: 9100, logLevel: "debug", watch: false, token: "e".repeat(20) });
  });

  it("the command line overrides the environment and the file", () => {
    const config = loadConfig({
      file: file(),
      env: { CALLSCRIPT_PORT: "9100", CALLSCRIPT_HOST: "10.0.0.1" },
      overrides: { port: 9200, host: "127.0.0.1", logLevel: undefined },
    });
    expect(config).toMatchObject({ host: "127.0.0.1", port: 9200, logLevel: "warn" });
  });

  it("CALLSCRIPT_INLINE_CALLS takes true/false/1/0; anything else is named, with the variable it came from", () => {
    expect(loadConfig({ env: {} }).inlineCalls).toBe(true);
    expect(loadConfig({ env: { CALLSCRIPT_INLINE_CALLS: "0" } }).inlineCalls).toBe(false);
    expect(loadConfig({ env: { CALLSCRIPT_INLINE_CALLS: "true" } }).inlineCalls).toBe(true);
    const error = configError(() => loadConfig({ env: { CALLSCRIPT_INLINE_CALLS: "off" } })).message;
    expect(error).toContain("inlineCalls: Invalid input: expected boolean, received string");
    expect(error).toContain("CALLSCRIPT_INLINE_CALLS");
  });

  it("CALLSCRIPT_BATCH_CALLS takes true/false/1/0; anything else is named, with the variable it came from", () => {
    expect(loadConfig({ env: {} }).batchCalls).toBe(true);
    expect(loadConfig({ env: { CALLSCRIPT_BATCH_CALLS: "0" } }).batchCalls).toBe(false);
    expect(loadConfig({ env: { CALLSCRIPT_BATCH_CALLS: "1" } }).batchCalls).toBe(true);
    const error = configError(() => loadConfig({ env: { CALLSCRIPT_BATCH_CALLS: "yes" } })).message;
    expect(error).toContain("batchCalls: Invalid input: expected boolean, received string");
    expect(error).toContain("CALLSCRIPT_BATCH_CALLS");
  });

  it("bootIsolates: afterLoad unless set; CALLSCRIPT_BOOT_ISOLATES sets it, and anything else is named with the values it takes", () => {
    expect(loadConfig({ env: {} }).bootIsolates).toBe("afterLoad");
    expect(loadConfig({ env: { CALLSCRIPT_BOOT_ISOLATES: "onFirstCall" } }).bootIsolates).toBe("onFirstCall");
    expect(loadConfig({ env: { CALLSCRIPT_BOOT_ISOLATES: "atLoad" } }).bootIsolates).toBe("atLoad");
    const error = configError(() => loadConfig({ env: { CALLSCRIPT_BOOT_ISOLATES: "lazy" } })).message;
    expect(error).toContain('bootIsolates: Invalid option: expected one of "afterLoad"|"onFirstCall"|"atLoad"');
    expect(error).toContain("CALLSCRIPT_BOOT_ISOLATES");
  });

  it("CALLSCRIPT_WATCH takes true/false/1/0", () => {
    expect(loadConfig({ env: { CALLSCRIPT_WATCH: "false" } }).watch).toBe(false);
    expect(loadConfig({ env: { CALLSCRIPT_WATCH: "1" } }).watch).toBe(true);
    expect(configError(() => loadConfig({ env: { CALLSCRIPT_WATCH: "yes" } })).message).toContain("watch: Invalid input: expected boolean, received string");
  });
});

describe("bad values", () => {
  const cases: [string, unknown, string][] = [
    ["a port that is not a number", { port: "http" }, "port: Invalid input: expected number, received string"],
    ["a port out of range", { port: 70000 }, "port: Too big: expected number to be <=65535"],
    ["a short token", { token: "secret" }, "token: token must be at least 16 characters"],
    ["an unknown key", { prot: 1 }, 'Unrecognized key: "prot"'],
    ["a bad hook deadline", { hooks: { need_registration: { deadlineMs: -5 } } }, "hooks.need_registration.deadlineMs: Too small"],
    ["an unknown hook", { hooks: { need_registraton: {} } }, `hooks.need_registraton: unknown hook (did you mean 'need_registration'?)`],
    ["a bad failure policy", { hooks: { need_registration: { failurePolicy: "ignore" } } }, "hooks.need_registration.failurePolicy: Invalid option"],
    ["a heap under the minimum", { limits: { max: { memoryMb: 4 } } }, "limits.max.memoryMb: Too small: expected number to be >=8"],
    [
      "script settings that are not an object",
      { scripts: { blacklist: { settings: ["101"] } } },
      "scripts.blacklist.settings: Invalid input: expected record, received array",
    ],
  ];
  for (const [what, value, message] of cases) {
    it(`${what} is named by its field`, () => {
      const file = configFile("c.json", JSON.stringify(value));
      const error = configError(() => loadConfig({ file, env: NO_ENV }));
      expect(error.code).toBe("CS_ERR_CONFIG");
      expect(error.message).toContain(`Invalid configuration in ${file}: `);
      expect(error.message).toContain(message);
    });
  }

  it("a bad value from the environment is named by its field", () => {
    const error = configError(() => loadConfig({ env: { CALLSCRIPT_PORT: "eighty" } }));
    // Named with where it came from (issue 13): the environment, not a file.
    expect(error.message).toBe(
      "Invalid configuration in the configuration: port: Invalid input: expected number, received string (from the environment variable CALLSCRIPT_PORT)",
    );
  });

  it("every bad field is named, not only the first", () => {
    const file = configFile("c.json", JSON.stringify({ port: -1, maxQueue: "many" }));
    const { message } = configError(() => loadConfig({ file, env: NO_ENV }));
    expect(message).toContain("port: Too small");
    expect(message).toContain("maxQueue: Invalid input");
  });

  it("console.callsPerSecond: zero, negative, fractional, past 100 000 or not a number is refused, by its field", () => {
    for (const bad of [0, -5, 2.5, 100_001, "50", null]) {
      const file = configFile("c.json", JSON.stringify({ console: { callsPerSecond: bad } }));
      expect(configError(() => loadConfig({ file, env: NO_ENV })).message).toMatch(/console\.callsPerSecond: /);
    }
    const file = configFile("c.json", JSON.stringify({ console: { callsPerSecond: 1 } }));
    expect(loadConfig({ file, env: NO_ENV }).console.callsPerSecond).toBe(1);
  });

  it("a file that is missing, not JSON, not YAML or not an object says so", () => {
    const missing = path.join(scriptsFolder({}), "nope.json");
    expect(configError(() => loadConfig({ file: missing, env: NO_ENV })).message).toBe(`Invalid configuration in ${missing}: cannot be read (ENOENT)`);
    const json = configFile("c.json", "{ port: 1 }");
    expect(configError(() => loadConfig({ file: json, env: NO_ENV })).message).toMatch(new RegExp(`^Invalid configuration in ${json}: is not valid JSON: `));
    const yaml = configFile("c.yaml", "port: [1\n");
    expect(configError(() => loadConfig({ file: yaml, env: NO_ENV })).message).toMatch(new RegExp(`^Invalid configuration in ${yaml}: is not valid YAML: `));
    const list = configFile("c.json", "[1, 2]");
    expect(configError(() => loadConfig({ file: list, env: NO_ENV })).message).toBe(`Invalid configuration in ${list}: must hold an object`);
  });
});

describe("paths", () => {
  it("a relative scriptsDir and record.dir in the file are relative to the file", () => {
    const file = configFile("conf/callscript.json", JSON.stringify({ scriptsDir: "../scripts", record: { dir: "recorded" } }));
    const config = loadConfig({ file, env: NO_ENV });
    expect(config.scriptsDir).toBe(path.resolve(path.dirname(file), "..", "scripts"));
    expect(config.record).toEqual({ dir: path.join(path.dirname(file), "recorded"), anonymize: true });
  });

  it("without a scriptsDir, the default `scripts` is beside the file", () => {
    const file = configFile("conf/callscript.json", JSON.stringify({ port: 9000 }));
    expect(loadConfig({ file, env: NO_ENV }).scriptsDir).toBe(path.join(path.dirname(file), "scripts"));
  });

  it("the environment's scriptsDir is relative to the working directory even when it equals the file's", () => {
    const file = configFile("conf/callscript.json", JSON.stringify({ scriptsDir: "same" }));
    expect(loadConfig({ file, env: { CALLSCRIPT_SCRIPTS: "same" } }).scriptsDir).toBe(path.resolve("same"));
  });

  it("an absolute scriptsDir is kept", () => {
    const file = configFile("c.json", JSON.stringify({ scriptsDir: "/srv/callscript/scripts" }));
    expect(loadConfig({ file, env: NO_ENV }).scriptsDir).toBe("/srv/callscript/scripts");
  });

  it("a scriptsDir from the environment or the command line is relative to the working directory", () => {
    const file = configFile("c.json", JSON.stringify({ scriptsDir: "from-file" }));
    expect(loadConfig({ file, env: { CALLSCRIPT_SCRIPTS: "from-env" } }).scriptsDir).toBe(path.resolve("from-env"));
    expect(loadConfig({ file, env: NO_ENV, overrides: { scriptsDir: "from-cli" } }).scriptsDir).toBe(path.resolve("from-cli"));
  });
});

describe("derived values", () => {
  it("limits: the config's over the built-in ones", () => {
    const config = loadConfig({ file: configFile("c.json", JSON.stringify({ limits: { defaults: { timeoutMs: 100 }, max: { memoryMb: 64 } } })), env: NO_ENV });
    expect(effectiveLimits(config)).toEqual({
      defaults: { ...BUILTIN_DEFAULT_LIMITS, timeoutMs: 100 },
      max: { ...BUILTIN_MAX_LIMITS, memoryMb: 64 },
    });
  });

  it("deadlines: the hook's own, else the server's; the recording path hook gets at least 9 s", () => {
    const config = loadConfig({
      file: configFile("c.json", JSON.stringify({ deadlineMs: 1500, hooks: { need_registration: { deadlineMs: 300 } } })),
      env: NO_ENV,
    });
    expect(deadlineFor(config, "need_registration")).toBe(300);
    expect(deadlineFor(config, "process_client_phone")).toBe(1500);
    expect(deadlineFor(config, "process_record_file_path")).toBe(9000);
  });
});
