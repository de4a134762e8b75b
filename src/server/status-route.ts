/**
 * `POST /v1/status` and `GET /v1/status/history`: liveness checks (現況確認) for registered verifiers, with the
 * old/new certificate link (新旧証明書の紐付け) where it may be given — issue 11 point 4. The caller is the
 * verifier access.ts admitted (401 otherwise, before these routes run); verifier/liveness.ts decides and records.
 *
 * POST body (application/json, at most STATUS_BODY_LIMIT bytes): `{ items: [...], link?: boolean }`, 1 to
 * MAX_STATUS_ITEMS items, each `{ caId, serial }` (hex serial) or `{ certificateId }` (hex SHA-256 of the DER).
 * A malformed item is answered with its own `{ index, error, message }` and the rest of the batch is checked;
 * a malformed body fails as a whole with a typed code (STATUS_ERRORS). A batch costs the verifier's rate limit
 * one request per item (access.ts charge), so batching does not multiply the configured rate.
 * GET query: `since` (ISO 8601 with zone), `limit` (1–1000, default 100), `cursor` (a page's nextCursor).
 * Errors: `{ "error": <HTTP word>, "code": <typed code>, "message": <what to fix> }`, as validate-route.ts.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BODY_TOO_DEEP, STORE_UNRESPONSIVE, UNSUPPORTED_MEDIA_TYPE, bodyErrorHandler, hasUnknownParameter, sendApiError, storeErrorCode } from "./api-errors.js";
import { apiTime } from "./validate-route.js";
import { isJpkiError } from "../errors.js";
import { checkStatus, MAX_HISTORY_LIMIT, MAX_STATUS_ITEMS, parseCursor, statusHistory, type StatusAnswer } from "../verifier/liveness.js";
import type { Workspace } from "../workspace/workspace.js";
import type { VerifierAccess } from "./access.js";
import type { StoreWatchdog } from "../store/watchdog.js";
import type { UnknownWrites } from "../store/write-outcome.js";

/** Request body limit, bytes: 1000 items of a CA id and a 40-digit serial, or a 64-digit id, fit with room. */
export const STATUS_BODY_LIMIT = 256 * 1024;

/** The typed error codes of the liveness-check routes, with their HTTP status. */
export const STATUS_ERRORS = Object.freeze({
  "body-not-json": { status: 400, message: "the body is not JSON" },
  "body-too-deep": BODY_TOO_DEEP,
  "body-too-large": { status: 413, message: `the body is larger than ${STATUS_BODY_LIMIT} bytes` },
  "unsupported-media-type": UNSUPPORTED_MEDIA_TYPE,
  "body-invalid": { status: 400, message: "the body must be a JSON object: { items: [...], link?: boolean }" },
  "field-unknown": { status: 400, message: "the body has a field the API does not know: items, link" },
  "items-missing": { status: 400, message: "items must be a non-empty list of certificates: { caId, serial } or { certificateId }" },
  "batch-too-large": { status: 400, message: `at most ${MAX_STATUS_ITEMS} items in one check: split the list into batches` },
  "link-invalid": { status: 400, message: "link must be true or false" },
  "query-invalid": { status: 400, message: `the query takes since (ISO 8601 time with its zone), limit (1 to ${MAX_HISTORY_LIMIT}) and cursor (a page's nextCursor)` },
  unauthorized: { status: 401, message: "a registered verifier's credential is needed" },
  "store-unavailable": { status: 503, message: "the store did not answer (reading the certificates, or recording the checks and disclosures), so no answer was given: try again" },
  "store-unresponsive": STORE_UNRESPONSIVE,
  internal: { status: 500, message: "the liveness check failed unexpectedly" },
} as const);

export type StatusErrorCode = keyof typeof STATUS_ERRORS;


class RequestError extends Error {
  constructor(readonly code: StatusErrorCode) {
    super(STATUS_ERRORS[code].message);
  }
}

function sendError(reply: FastifyReply, code: StatusErrorCode): FastifyReply {
  return sendApiError(reply, STATUS_ERRORS, code);
}

const FIELDS = new Set(["items", "link"]);

/** The request a POST body makes, or the RequestError saying what is wrong with the body as a whole. Items are parsed later, one by one. */
export function parseStatusBody(body: unknown): { items: unknown[]; link: boolean } {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new RequestError("body-invalid");
  const b = body as Record<string, unknown>;
  if (Object.keys(b).some((k) => !FIELDS.has(k))) throw new RequestError("field-unknown");
  if (!Array.isArray(b.items) || b.items.length === 0) throw new RequestError("items-missing");
  if (b.items.length > MAX_STATUS_ITEMS) throw new RequestError("batch-too-large");
  if (b.link !== undefined && typeof b.link !== "boolean") throw new RequestError("link-invalid");
  return { items: b.items, link: b.link === true };
}

const HISTORY_PARAMETERS: ReadonlySet<string> = new Set(["since", "limit", "cursor"]);

/** The history query, or the RequestError. */
export function parseHistoryQuery(q: unknown): { since?: Date; limit?: number; cursor?: string } {
  const o = (q ?? {}) as Record<string, unknown>;
  if (hasUnknownParameter(o, HISTORY_PARAMETERS)) throw new RequestError("query-invalid");
  const out: { since?: Date; limit?: number; cursor?: string } = {};
  if (o.since !== undefined) {
    const since = apiTime(o.since);
    if (!since) throw new RequestError("query-invalid");
    out.since = since;
  }
  if (o.limit !== undefined) {
    const n = typeof o.limit === "string" && /^\d{1,4}$/.test(o.limit) ? Number(o.limit) : NaN;
    if (!(n >= 1 && n <= MAX_HISTORY_LIMIT)) throw new RequestError("query-invalid");
    out.limit = n;
  }
  if (o.cursor !== undefined) {
    if (typeof o.cursor !== "string") throw new RequestError("query-invalid");
    try {
      parseCursor(o.cursor);
    } catch {
      throw new RequestError("query-invalid");
    }
    out.cursor = o.cursor;
  }
  return out;
}

export interface StatusRouteOptions {
  readonly prefix: string;
  readonly ws: Workspace;
  readonly access: VerifierAccess;
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  readonly onError?: (e: unknown, what: string) => void;
  /** bounds the waits for the store (store/watchdog.ts): 503 store-unresponsive past it */
  readonly watchdog?: StoreWatchdog;
  /** counts the liveness checks in writes whose outcome is not known (jpki serve's stop says them) */
  readonly unknownWrites?: UnknownWrites;
}

/** Registers POST /v1/status and GET /v1/status/history, with their own body limit and typed errors. */
export async function registerStatus(app: FastifyInstance, o: StatusRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.setErrorHandler(bodyErrorHandler(sendError, o.onError, "answering a liveness check"));
    const storeFailure = (reply: FastifyReply, e: unknown, what: string) => {
      // Only the code goes out: a store's message may name the store. One that does not answer is reported once
      // per stall, by the watchdog (app.ts), not per request.
      const code = storeErrorCode(e);
      if (code !== "store-unresponsive") o.onError?.(e, `${what} (no answer given)`);
      return sendError(reply, code ?? "internal");
    };
    scope.route({
      method: "POST",
      url: `${o.prefix}/v1/status`,
      bodyLimit: STATUS_BODY_LIMIT,
      onResponse: o.onResponse,
      handler: async (req, reply) => {
        const caller = o.access.callerOf(req.raw);
        if (!caller) return sendError(reply, "unauthorized");
        let body;
        try {
          body = parseStatusBody(req.body);
        } catch (e) {
          if (e instanceof RequestError) return sendError(reply, e.code);
          throw e;
        }
        // The request took one from the rate limit when admitted; each further item costs one more (access.ts charge).
        o.access.charge(req.raw, body.items.length - 1);
        let answer: StatusAnswer;
        try {
          answer = await checkStatus(o.ws, caller, body, { ...(o.watchdog ? { watchdog: o.watchdog } : {}), ...(o.unknownWrites ? { unknownWrites: o.unknownWrites } : {}) });
        } catch (e) {
          return storeFailure(reply, e, "answering POST /v1/status");
        }
        return reply.header("Cache-Control", "no-store").send(answer);
      },
    });
    scope.route({
      method: "GET",
      url: `${o.prefix}/v1/status/history`,
      onResponse: o.onResponse,
      handler: async (req, reply) => {
        const caller = o.access.callerOf(req.raw);
        if (!caller) return sendError(reply, "unauthorized");
        let q;
        try {
          q = parseHistoryQuery(req.query);
        } catch (e) {
          if (e instanceof RequestError) return sendError(reply, e.code);
          throw e;
        }
        try {
          return reply.header("Cache-Control", "no-store").send(await statusHistory(o.ws, caller, q, o.watchdog ? { watchdog: o.watchdog } : {}));
        } catch (e) {
          if (isJpkiError(e, "ERR_USAGE")) return sendError(reply, "query-invalid");
          return storeFailure(reply, e, "answering GET /v1/status/history");
        }
      },
    });
  });
}
