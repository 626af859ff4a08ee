import type { FastifyRequest } from "fastify";
import { InvalidJsonError } from "../errors.js";
import { withIssues } from "./error-handler.js";
import { shared } from "./plugin.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The text the body was parsed from, for parseHookInput (undefined until then, or when it is not JSON). */
    bodyText: string | undefined;
  }
}

/**
 * Bodies are JSON whatever their Content-Type says (`curl -d @call.json` sends
 * application/x-www-form-urlencoded; some connectors send text/plain or nothing), parsed by
 * fastify's own parser (which refuses `__proto__` and `constructor.prototype` keys) within the
 * body limit. A body that is not JSON is a 400 that says where it breaks.
 */
export const jsonBodies = shared("callscript-json-body", async (app) => {
  // On the request, not in a WeakMap keyed by it: see hook-route.ts (per-request state).
  app.decorateRequest("bodyText", undefined);
  const parse = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (request: FastifyRequest, body: string | Buffer, done) => {
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim().length === 0) {
      done(withIssues(new InvalidJsonError("it is empty"), [{ path: "(body)", message: "empty; send the hook input as a JSON object" }]), undefined);
      return;
    }
    void parse(request, text, (error: Error | null, value?: unknown) => {
      if (!error) {
        // As the parser read it: without a byte order mark, which JSON.parse in a script refuses.
        request.bodyText = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
        done(null, value);
        return;
      }
      const reason = whyNotJson(text);
      done(withIssues(new InvalidJsonError(reason), [{ path: "(body)", message: reason }]), undefined);
    });
  });
});

/** The parser's own message, or the forbidden key when the text is JSON after all. */
function whyNotJson(text: string): string {
  try {
    JSON.parse(text);
  } catch (error) {
    return (error as Error).message;
  }
  return "it has a __proto__ or constructor.prototype key, which is refused";
}
