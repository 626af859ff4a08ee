import { STATUS_CODES } from "node:http";
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { BodyTooLargeError, InternalServerError, InvalidJsonError, RouteNotFoundError } from "../errors.js";
import type { InputIssue } from "../schema/hook-input.js";
import { shared } from "./plugin.js";
import type { HttpErrorBody } from "./schemas.js";

/** An error that names the bad fields of an input (CS_ERR_INVALID_INPUT, CS_ERR_INVALID_JSON). */
export function withIssues<E extends Error>(error: E, issues: InputIssue[]): E & { issues: InputIssue[] } {
  return Object.assign(error, { issues });
}

interface Coded {
  code?: string;
  statusCode?: number;
  message: string;
  issues?: unknown;
}

/**
 * Every error as `{ statusCode, code, error, message, issues? }`. fastify's own errors that the
 * connector can cause get a CS_ERR code and a message that says what to do; anything unexpected is
 * a 500 that names the request id and no internals (the log has the stack).
 */
export function httpErrorBody(error: Coded, requestId: string, bodyLimit: number): HttpErrorBody {
  let coded: Coded = error;
  switch (error.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      coded = new BodyTooLargeError(bodyLimit);
      break;
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_JSON_BODY":
      coded = withIssues(new InvalidJsonError("it does not parse"), [{ path: "(body)", message: "not JSON" }]);
      break;
  }
  let statusCode = typeof coded.statusCode === "number" && coded.statusCode >= 400 && coded.statusCode < 600 ? coded.statusCode : 500;
  if (statusCode >= 500 && !coded.code?.startsWith("CS_ERR_")) {
    coded = new InternalServerError(requestId);
    statusCode = 500;
  }
  const body: HttpErrorBody = {
    statusCode,
    code: coded.code ?? "CS_ERR_HTTP",
    error: STATUS_CODES[statusCode] ?? "Error",
    message: coded.message,
  };
  if (Array.isArray(coded.issues)) body.issues = coded.issues as InputIssue[];
  return body;
}

export interface ErrorHandlingOptions {
  bodyLimit: number;
}

/** One error shape for the whole app, not-found included. */
export const errorHandling = shared<ErrorHandlingOptions>("callscript-errors", async (app, { bodyLimit }) => {
  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const body = httpErrorBody(error, request.id, bodyLimit);
    if (body.statusCode >= 500) request.log.error({ err: error }, "request failed");
    return reply.code(body.statusCode).send(body);
  });

  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) => {
    const body = httpErrorBody(new RouteNotFoundError(request.method, (request.url.split("?")[0] ?? "").slice(0, 200)), request.id, bodyLimit);
    return reply.code(404).send(body);
  });
});
