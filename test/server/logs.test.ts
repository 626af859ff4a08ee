import { afterEach, describe, expect, it } from "vitest";
import { script } from "../helpers/scripts.js";
import { LEVEL, payload, recordInput, startServer, type TestServer } from "./helpers.js";
import { waitFor } from "../helpers/wait.js";

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});
async function serve(...args: Parameters<typeof startServer>) {
  const server = await startServer(...args);
  servers.push(server);
  return server;
}

const talkative = script(
  "need_registration",
  `ctx.log.debug("looking at", input.call_full.channel.id);
      ctx.log.info("checking extensions");
      console.warn("a warning", { n: 1 });
      ctx.log.error("an error line");
      return undefined;`,
);

describe("logs", () => {
  it("one line per hook request, and each script line tagged with request, script and version at its level", async () => {
    const server = await serve({ "talkative.ts": talkative });
    const res = await server.post("need_registration", payload("need_registration.incoming-answered"), { "x-request-id": "call-42" });
    expect(res.json()).toEqual({ state: "success", data: { result: true } });
    expect(res.headers["x-request-id"]).toBe("call-42");
    const version = server.registry.states()[0]?.version;

    const scriptLines = server.logs.filter((line) => line.source === "script");
    expect(scriptLines.map((line) => [line.level, line.msg])).toEqual([
      [LEVEL.info, "checking extensions"],
      [LEVEL.warn, "a warning { n: 1 }"],
      [LEVEL.error, "an error line"],
    ]);
    for (const line of scriptLines) {
      expect(line).toMatchObject({ reqId: "call-42", hook: "need_registration", script: "talkative", version, atMs: expect.any(Number) });
    }

    const requestLines = server.logs.filter((line) => line.reqId === "call-42" && line.source !== "script");
    expect(requestLines).toHaveLength(1);
    expect(requestLines[0]).toMatchObject({
      level: LEVEL.info,
      msg: "hook answered",
      hook: "need_registration",
      status: 200,
      outcome: "success",
      scripts: ["talkative"],
      ms: expect.any(Number),
    });

    // No payload at info level: the caller's number and the channel id appear nowhere.
    const text = JSON.stringify(server.logs);
    expect(text).not.toContain("79001234567");
    expect(text).not.toContain("1732612345.1234");
  });

  it("at debug level the input and the answer are logged, and debug lines of scripts too", async () => {
    const server = await serve({ "talkative.ts": talkative }, { logLevel: "debug" });
    await server.post("need_registration", payload("need_registration.incoming-answered"));
    const input = server.logs.find((line) => line.msg === "hook input");
    expect((input?.input as { call_full: { channel: { id: string } } }).call_full.channel.id).toBe("1732612345.1234");
    expect(server.logs.find((line) => line.msg === "hook answer")?.answer).toEqual({ state: "success", data: { result: true } });
    expect(server.logs.find((line) => line.source === "script" && line.level === LEVEL.debug)?.msg).toBe("looking at 1732612345.1234");
  });

  it("lines over the script's log limit are dropped with a visible marker", async () => {
    const server = await serve({
      "chatty.ts": script(
        "process_record_file_path",
        `for (let i = 0; i < 40; i++) console.log("line " + i + " " + "x".repeat(20)); return undefined;`,
        "limits: { logBytes: 300 },",
      ),
    });
    const res = await server.post("process_record_file_path", recordInput());
    expect(res.json()).toEqual({ state: "success", data: { path: recordInput().path } });
    const kept = server.logs.filter((line) => line.source === "script" && line.level === LEVEL.info);
    const marker = server.logs.find((line) => line.source === "script" && line.level === LEVEL.warn);
    expect(kept.length).toBeGreaterThan(0);
    expect(kept.length).toBeLessThan(40);
    expect(kept[0]?.msg).toBe(`line 0 ${"x".repeat(20)}`);
    expect(marker).toMatchObject({ script: "chatty", dropped: 40 - kept.length, droppedBytes: expect.any(Number) });
    expect(marker?.msg).toMatch(new RegExp(`^… ${40 - kept.length} lines dropped \\(\\d+ bytes\\): over the script's log limit$`));
  });

  it("an error answer is a warning line with the failure, and a refused request names its code", async () => {
    const server = await serve({ "thrower.ts": script("process_record_file_path", `throw new RangeError("out of range");`) });
    await server.post("process_record_file_path", recordInput(), { "x-request-id": "r-1" });
    await server.post("process_record_file_path", "{}", { "x-request-id": "r-2" });
    const failed = server.logs.find((line) => line.reqId === "r-1");
    expect(failed).toMatchObject({
      level: LEVEL.warn,
      msg: "hook answered with an error",
      outcome: "exception",
      error: { reason: "exception", script: "thrower", message: "RangeError: out of range", location: { file: "thrower.ts", line: 6 } },
    });
    expect(failed?.error).not.toHaveProperty("stack");
    expect(server.logs.find((line) => line.reqId === "r-2")).toMatchObject({
      level: LEVEL.warn,
      msg: "hook request refused",
      status: 400,
      outcome: "CS_ERR_INVALID_INPUT",
    });
  });
});

describe("recording (config `record`)", () => {
  it("saves each valid hook input as the connector sent it, named by hook and request id", async () => {
    const { mkdtempSync, readdirSync, readFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const path = await import("node:path");
    const dir = mkdtempSync(path.join(tmpdir(), "callscript-recorded-"));
    const server = await serve(
      { "recordings.ts": script("process_record_file_path", `return { path: "/r" + input.path };`) },
      { record: { dir, anonymize: false } },
    );
    const body = { ...recordInput("/rec.wav"), extra_field_from_a_newer_connector: [null] };
    await server.post("process_record_file_path", body, { "x-request-id": "rec-1" });
    await server.post("process_record_file_path", { nope: 1 }, { "x-request-id": "rec-2" });
    // A recording is a pair: the input, then `.answer.json` beside it (written second).
    await waitFor(() => readdirSync(dir).some((name) => name.endsWith(".answer.json")), "the answer's file");
    const files = readdirSync(dir).filter((name) => name.endsWith(".json") && !name.endsWith(".answer.json"));
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^process_record_file_path\..+-rec-1\.json$/);
    expect(JSON.parse(readFileSync(path.join(dir, files[0]!), "utf8"))).toEqual(body);
    const answer = JSON.parse(readFileSync(path.join(dir, files[0]!.replace(/\.json$/, ".answer.json")), "utf8"));
    expect(answer).toMatchObject({
      hook: "process_record_file_path",
      requestId: "rec-1",
      status: 200,
      answer: { state: "success", data: { path: "/r/rec.wav" } },
    });
    expect(Object.keys(answer.scripts)).toEqual(["recordings"]);
  });
});
