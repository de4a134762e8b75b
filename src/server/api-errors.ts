/**
 * The verifier API's error answers, shared by its routes (validate-route.ts, verify-signature-route.ts,
 * status-route.ts): `{ "error": <HTTP word>, "code": <typed code>, "message": <what to fix> }` from each route's
 * own table of codes, never a stack trace or a store's message; and the scope error handler that turns
 * fastify's own refusals of a body (too large, wrong media type, not JSON) into those codes.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { STORE_RETRY_AFTER_SECONDS } from "../store/watchdog.js";

/**
 * The type of every JSON answer of the server, with nosniff: a body echoes names from certificates and requests,
 * and no browser may take one for HTML or script whatever it holds. As header fields (writeHead) and as the lines
 * of an answer written straight to the socket.
 */
export const JSON_TYPE = Object.freeze({ "Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff" } as const);
export const JSON_TYPE_LINES = "Content-Type: application/json; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n";

const HTTP_WORD: Readonly<Record<number, string>> = { 400: "bad_request", 401: "unauthorized", 405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type", 500: "internal_error", 503: "unavailable" };

/**
 * Every route's answer to a request that arrives while the server stops (app.ts): 503, and its connection
 * closes. The client may send it again at once, on a new connection (another instance, or this one once back).
 */
export const STOPPING_ERROR = Object.freeze({ code: "stopping", status: 503, message: "the server is stopping: send the request again, on a new connection" } as const);

/**
 * A connection past the server's cap on concurrent connections (app.ts): answered at once, before any request is
 * read, and closed. Retry-After: the cap frees as other clients' connections end.
 */
export const TOO_MANY_CONNECTIONS = Object.freeze({
  code: "too-many-connections",
  status: 503,
  message: "the server holds as many connections as it takes: try again in a moment",
  retryAfterSeconds: 1,
} as const);

/** What node's HTTP server refuses before any route, by typed code (app.ts clientErrorHandler, refuseExpectation). */
export const PARSER_REFUSALS = Object.freeze({
  timeout: { status: 408, message: "the request was not complete in time" },
  "headers-too-large": { status: 431, message: "the request's headers are too large" },
  // node's own answer (and RFC 9110 §15.5.14's word for a request larger than the server takes): a body's chunk
  // extensions past node's bound (16 KiB) are part of the content it refuses, not a malformed request.
  "chunk-extensions-too-large": { status: 413, message: "the request's chunk extensions are too large" },
  "bad-request": { status: 400, message: "the request is not valid HTTP/1.1" },
  "expectation-failed": { status: 417, message: "the only Expect this server meets is 100-continue" },
} as const);

/**
 * A method the target does not take: 405 with Allow (RFC 9110 §15.5.6), on the published files, the fastify
 * routes and CONNECT (this server is no proxy) alike. One body for the one code, wherever it is sent.
 */
export const METHOD_NOT_ALLOWED = Object.freeze({
  code: "method-not-allowed",
  status: 405,
  // The shape of every other error answer (it had no message, and its error word was spelt apart from the others).
  body: '{"error":"method_not_allowed","code":"method-not-allowed","message":"this path does not take that method: the Allow header lists those it takes"}',
} as const);

/**
 * A request body in a content coding (RFC 9110 §8.4: gzip, deflate, br, …): no route decodes one, and each read
 * it as if it were plain — a gzipped JSON body was answered body-not-json, a plain one labelled gzip was taken.
 * Refused before any route reads the body (app.ts), with Accept-Encoding: identity (RFC 9110 §15.5.16).
 */
export const UNSUPPORTED_CONTENT_ENCODING = Object.freeze({
  code: "unsupported-content-encoding",
  status: 415,
  message: "send the body without a Content-Encoding (or identity): the server decodes no content coding",
} as const);

/**
 * Whether a parsed query names a parameter outside `known` (case counts: `?Days=7` is not `days`). The API's GET
 * routes refuse such a query 400 `query-invalid` rather than ignore the parameter: a misspelt one (`?day=7`,
 * `?limits=5`) answered with the default reads as the answer to what was asked.
 */
export function hasUnknownParameter(query: unknown, known: ReadonlySet<string>): boolean {
  if (query === undefined || query === null) return false;
  for (const k of Object.keys(query)) if (!known.has(k)) return true;
  return false;
}

/** One entry of a route's error table. */
export interface ApiError {
  readonly status: number;
  readonly message: string;
  /** sent as Retry-After, seconds */
  readonly retryAfterSeconds?: number;
}

/**
 * The store did not answer within the bound the API waits for it (store/watchdog.ts: a hung database server, a
 * SQLite write lock held elsewhere), or an earlier call past it has not been answered yet: no answer was given,
 * nothing is in the disclosure log for it (but, on PostgreSQL, a write already sent: disclosure-log.ts). In
 * every table of a route that reads or writes the store for its answer; its own code, apart from
 * store-unavailable (the store answered, with an error), so a client can tell a hung store from a failing one.
 */
export const STORE_UNRESPONSIVE: ApiError = Object.freeze({
  status: 503,
  message: "the store did not answer in time, so no answer was given: try again after Retry-After",
  retryAfterSeconds: STORE_RETRY_AFTER_SECONDS,
});

/** The code of a store's error for the API: store-unresponsive, store-unavailable, or undefined for any other error. */
export function storeErrorCode(e: unknown): "store-unresponsive" | "store-unavailable" | undefined {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === "ERR_STORE_UNRESPONSIVE") return "store-unresponsive";
  return typeof code === "string" && (code.startsWith("ERR_STORE") || code === "ERR_WORKSPACE_LOCKED") ? "store-unavailable" : undefined;
}

/** The body of `code`'s answer. */
export function apiErrorBody<C extends string>(table: Readonly<Record<C, ApiError>>, code: C): { readonly error: string; readonly code: C; readonly message: string } {
  const e = table[code];
  return { error: HTTP_WORD[e.status] ?? "error", code, message: e.message };
}

/** Answers `code` of `table`, uncacheable, with its Retry-After if it has one. */
export function sendApiError<C extends string>(reply: FastifyReply, table: Readonly<Record<C, ApiError>>, code: C): FastifyReply {
  const e = table[code];
  if (e.retryAfterSeconds !== undefined) reply.header("Retry-After", String(e.retryAfterSeconds));
  return reply.code(e.status).header("Cache-Control", "no-store").send(apiErrorBody(table, code));
}

/**
 * A body that is not application/json, or is in a charset other than UTF-8 (RFC 8259 §8.1: JSON exchanged between
 * systems is UTF-8; a latin1 body was read as UTF-8 all the same). In every body-taking route's table.
 */
export const UNSUPPORTED_MEDIA_TYPE: ApiError = Object.freeze({ status: 415, message: "send Content-Type: application/json, in UTF-8 (no charset, or charset=utf-8)" });

/**
 * A body nested deeper than app.ts's bound (MAX_JSON_DEPTH): refused before JSON.parse, with its own code — it
 * is JSON, so "body-not-json" named the wrong thing. In every body-taking route's table.
 */
export const BODY_TOO_DEEP: ApiError = Object.freeze({ status: 400, message: "the body nests arrays and objects too deeply: no body of this API nests deeper than 3 levels" });

/** Whether a body parser's error is the nesting bound's refusal (app.ts parseJson). */
export function isBodyTooDeep(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "body-too-deep";
}

/** fastify's limit on a body where no route sets its own (an unknown path, the CRL index, /metrics, the page). */
export const DEFAULT_BODY_LIMIT = 1_048_576;

/**
 * The app-wide error handler's table for fastify's refusals of a body on a route without a table of its own (app.ts):
 * a POST of over 1 MiB to an unknown path got fastify's own body (`FST_ERR_CTP_BODY_TOO_LARGE`, its status
 * text as `error`), not the API's shape.
 */
export const DEFAULT_BODY_ERRORS: Readonly<Record<Exclude<BodyErrorCode, "internal">, ApiError>> = Object.freeze({
  "body-too-large": { status: 413, message: `the body is larger than ${DEFAULT_BODY_LIMIT} bytes` },
  "unsupported-media-type": UNSUPPORTED_MEDIA_TYPE,
  "body-not-json": { status: 400, message: "the body is not JSON" },
  "body-too-deep": BODY_TOO_DEEP,
});

/** The code of fastify's refusal of a body (too large, wrong media type, not JSON, too deep); undefined for any other error. */
export function bodyRefusalCode(err: { statusCode?: number; code?: string }): Exclude<BodyErrorCode, "internal"> | undefined {
  if (err.statusCode === 413) return "body-too-large";
  if (err.statusCode === 415) return "unsupported-media-type";
  if (isBodyTooDeep(err)) return "body-too-deep";
  if (err.statusCode === 400 && (err.code ?? "").startsWith("FST_ERR_CTP_")) return "body-not-json";
  return undefined;
}

/** The codes every body-taking route's table has for what fastify refuses before the handler runs. */
export type BodyErrorCode = "body-too-large" | "unsupported-media-type" | "body-not-json" | "body-too-deep" | "internal";

/** A scope error handler: fastify's refusals of the body as typed codes; anything else reported and answered as internal. */
export function bodyErrorHandler(send: (reply: FastifyReply, code: BodyErrorCode) => FastifyReply, onError: ((e: unknown, what: string) => void) | undefined, what: string) {
  return (err: FastifyError, _req: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (err.statusCode === 413) return send(reply, "body-too-large");
    if (err.statusCode === 415) return send(reply, "unsupported-media-type");
    if (isBodyTooDeep(err)) return send(reply, "body-too-deep");
    if (err.statusCode === 400) return send(reply, "body-not-json");
    onError?.(err, what);
    return send(reply, "internal");
  };
}
