import { waitFor } from "../helpers/wait.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { busy, script } from "../helpers/scripts.js";
import { originateInput, recordInput, startServer, type TestServer } from "./helpers.js";

let server: TestServer;
let base: string;
beforeAll(async () => {
  server = await startServer(
    {
      "slow.ts": script("process_record_file_path", `${busy(400)} return { path: "/slow" + input.path };`, "limits: { timeoutMs: 3000 },"),
      "fast.ts": script("process_originate_params", `return { context: "fast-" + input.params.extension };`),
    },
    { deadlineMs: 10_000 },
  );
  base = await server.app.listen({ host: "127.0.0.1", port: 0 });
});
afterAll(async () => server?.close());

const post = (hook: string, body: unknown) =>
  fetch(`${base}/hooks/${hook}`, { method: "POST", body: JSON.stringify(body), headers: { "content-type": "application/json" } });

describe("concurrency over a loopback port", () => {
  it("a slow script's queue does not hold up another script's requests", async () => {
    const finished: string[] = [];
    const slow = [1, 2, 3].map((n) =>
      post("process_record_file_path", recordInput(`/${n}.wav`)).then(async (res) => {
        finished.push(`slow-${n}`);
        return { status: res.status, body: await res.json() };
      }),
    );
    const slowState = () => server.registry.states().find((state) => state.name === "slow");
    // All three are in: one running in the slow isolate, two waiting behind it.
    await waitFor(() => slowState()?.queueDepth === 3, "three slow requests in the slow script's queue", 10_000, 2);

    const fast = [1, 2, 3, 4, 5].map((n) =>
      post("process_originate_params", { params: { ...originateInput().params, extension: String(n) } }).then(async (res) => {
        finished.push(`fast-${n}`);
        return { status: res.status, body: (await res.json()) as { data: { context: string } } };
      }),
    );
    const fastAnswers = await Promise.all(fast);
    const slowAnswers = await Promise.all(slow);

    expect(fastAnswers.map((answer) => [answer.status, answer.body.data.context])).toEqual([1, 2, 3, 4, 5].map((n) => [200, `fast-${n}`]));
    expect(slowAnswers.map((answer) => [answer.status, answer.body])).toEqual(
      [1, 2, 3].map((n) => [200, { state: "success", data: { path: `/slow/${n}.wav` } }]),
    );
    // Every fast answer came before the first slow one finished.
    const firstSlow = finished.findIndex((name) => name.startsWith("slow-"));
    expect(finished.slice(0, firstSlow).sort()).toEqual(["fast-1", "fast-2", "fast-3", "fast-4", "fast-5"]);
    expect(slowState()?.outcomes).toEqual({ data: 3 });
  });
});
