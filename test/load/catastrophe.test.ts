/**
 * A real catastrophic error of isolated-vm in a real `callscript serve`: one native call that V8
 * cannot interrupt (a regular-expression replace over a 128 MB string) runs on past the script's
 * time limit; isolated-vm gives up terminating it 5 s later, parks the isolate's thread for good and
 * calls onCatastrophicError. The server must answer every request in flight with an error envelope,
 * stop, and end the process (SIGABRT, as isolated-vm advises; a plain exit would hang in its
 * teardown) for the service manager to restart it.
 */
import { performance } from "node:perf_hooks";
import { describe, expect, it } from "vitest";
import { script, scriptsFolder, writeConfigFile } from "../helpers/scripts.js";
import { payload } from "../server/helpers.js";
import { listening, serve } from "../server/serve-process.js";

const scripts = {
  // Runs one uninterruptible native call far past its 250 ms limit.
  "stuck.ts": script("process_final_params", `const big = "a".repeat(2 ** 27).replace(/a/g, "bb"); return { CALL_ID: String(big.length) };`),
  // Never answers within the 5 s between the stuck script's timeout and the catastrophic error:
  // its requests are certainly in flight when it comes.
  "waiting.ts": script("process_record_file_path", `return new Promise<{ path: string }>(() => {});`, `limits: { timeoutMs: 9_000 },`),
  "healthy.ts": script("need_registration", `return { result: false };`),
};

async function call(address: string, hook: string, body: unknown) {
  const response = await fetch(`${address}/hooks/${hook}`, {
    method: "POST",
    body: JSON.stringify(body),
    headers: { "content-type": "application/json" },
    signal: AbortSignal.timeout(20_000),
  });
  return { status: response.status, body: (await response.json()) as { state: string; data?: unknown; error?: Record<string, unknown> } };
}

describe("a catastrophic error inside isolated-vm", () => {
  it("answers every request in flight with an error envelope, then ends the process (SIGABRT) for the supervisor to restart", async () => {
    const config = writeConfigFile({
      scriptsDir: scriptsFolder(scripts),
      port: 0,
      watch: false,
      limits: { max: { timeoutMs: 10_000 } },
      hooks: { process_record_file_path: { deadlineMs: 9_500 } },
    });
    const served = serve(["--config", config], {}, { noCoreDump: true });
    const address = await listening(served);
    expect(await call(address, "need_registration", payload("need_registration.incoming-answered"))).toEqual({
      status: 200,
      body: { state: "success", data: { result: false } },
    });

    // The stuck script times out as any other (the server's own limit answers it)...
    const stuckAt = performance.now();
    const stuck = await call(address, "process_final_params", payload("process_final_params.answered"));
    expect(stuck).toMatchObject({ status: 200, body: { state: "error", error: { reason: "timeout", script: "stuck" } } });
    // ...but its native call goes on; meanwhile three requests are in flight on another script.
    const inFlight = [1, 2, 3].map((i) => call(address, "process_record_file_path", { path: `/r${i}.wav` }).catch((error: Error) => error));

    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([
      served.exit,
      new Promise<"still running">((resolve) => (timer = setTimeout(() => resolve("still running"), 25_000))),
    ]).finally(() => clearTimeout(timer));
    const endedMs = performance.now() - stuckAt;
    const answers = await Promise.all(inFlight);

    expect(exit).toEqual({ code: null, signal: "SIGABRT" });
    for (const answer of answers) {
      expect(answer).toMatchObject({ status: 200, body: { state: "error", error: { reason: "exception", script: "stuck" } } });
      const message = answer instanceof Error ? answer.message : String(answer.body.error?.message);
      expect(message).toContain("catastrophic error");
      expect(message).toContain("Script failed to terminate");
    }
    const fatal = served.lines.filter((line) => line.level === 60);
    expect(fatal).toHaveLength(1);
    expect(fatal[0]).toMatchObject({ script: "stuck" });
    expect(String(fatal[0]!.error)).toContain("Script failed to terminate");
    // Ended once the answers were out, not by the backstop.
    expect(served.lines.map((line) => line.msg)).toContain("stopped after a catastrophic error; ending the process");
    const fatalAt = fatal[0]!.time as number;
    console.log(`[catastrophe] ${JSON.stringify({ stuckToEndMs: Math.round(endedMs), inFlightAnswered: answers.length, fatalLoggedAt: fatalAt })}`);
  }, 45_000);
});
