// @ts-check
// The baseline of bench/http.mjs, run in its own process: a bare fastify route that parses the
// same JSON body and answers a JSON of the same size as callscript's answer for that hook, with no
// logger, no schema, no sandbox. The answers come in BARE_ANSWERS (JSON: { "<hook>": answer }).
// Prints `listening <url>` on stdout once it listens.
import Fastify from "fastify";

const answers = JSON.parse(process.env.BARE_ANSWERS ?? "{}");
const app = Fastify({ logger: false, bodyLimit: Number(process.env.BARE_BODY_LIMIT ?? 1048576) });

app.post("/hooks/:hook", async (request, reply) => {
  const answer = answers[/** @type {{ hook: string }} */ (request.params).hook];
  if (answer === undefined || request.body === null || typeof request.body !== "object") {
    reply.code(404);
    return { error: "unknown hook" };
  }
  // A fresh object each time, serialized by fastify, as a handler that built its answer would.
  return { state: answer.state, data: { ...answer.data } };
});

const address = await app.listen({ host: "127.0.0.1", port: 0 });
console.log(`listening ${address}`);
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => app.close().then(() => process.exit(0)));
