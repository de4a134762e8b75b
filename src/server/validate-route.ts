/**
 * `POST /v1/validate`: the validation API for registered verifiers (署名検証者), issue 11 point 1. The caller is
 * the verifier access.ts admitted (a bearer token or a client certificate of a live registration; 401
 * otherwise, before this route runs); the service (verifier/validation-service.ts) validates and answers in the
 * caller's view, after recording the answer in the disclosure log.
 *
 * Request (application/json, at most BODY_LIMIT bytes): `{ certificate, chain?, purpose, at?, legalBasis? }` —
 * certificate and chain entries as PEM or base64 DER, purpose "signature" | "authentication", at an ISO 8601
 * time with its zone, legalBasis a code of verifier/legal-basis.ts that the caller's kind may name (government
 * bodies only: a private provider's is refused, legal-basis-not-allowed). Unknown fields are refused.
 * Errors: `{ "error": <HTTP word>, "code": <typed code>, "message": <what to fix> }` — codes in
 * VALIDATE_ERRORS; never a stack trace, never a piece of the certificate, never personal data.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks"; // not the global: app.ts says why
import { apiErrorBody, BODY_TOO_DEEP, JSON_TYPE, STORE_UNRESPONSIVE, UNSUPPORTED_MEDIA_TYPE, bodyErrorHandler, isBodyTooDeep, sendApiError, storeErrorCode } from "./api-errors.js";
import { readHeader } from "../pki/der.js";
import { readIsoTime } from "../pki/iso-time.js";
import { parsePemBlocks } from "../pki/pem.js";
import { isLegalBasisCode, LEGAL_BASIS_CODES, type LegalBasisCode } from "../verifier/legal-basis.js";
import type { ValidationQuery, VerifierValidationService } from "../verifier/validation-service.js";
import { parseCertificate } from "../validation/certificate.js";
import { JPKI_PURPOSES, type JpkiPurpose } from "../validation/jpki.js";
import type { VerifierAccess } from "./access.js";

/** Request body limit, bytes: a certificate and a chain of a few CA certificates fit many times over. */
export const BODY_LIMIT = 64 * 1024;
/** At most this many chain certificates. */
export const MAX_CHAIN = 8;

/**
 * A legal basis from a verifier whose kind may not name one (legal-basis.ts checkLegalBasis; today every private
 * provider): a field the request must not carry, refused as the other bad fields are, with nothing answered or recorded.
 */
export const LEGAL_BASIS_NOT_ALLOWED = Object.freeze({
  status: 400,
  message: "legalBasis is for government bodies (行政機関) only: a private certification provider (民間認証事業者) asks without it",
} as const);

/** The typed error codes of the validation API, with their HTTP status. */
export const VALIDATE_ERRORS = Object.freeze({
  "body-not-json": { status: 400, message: "the body is not JSON" },
  "body-too-deep": BODY_TOO_DEEP,
  "body-too-large": { status: 413, message: `the body is larger than ${BODY_LIMIT} bytes` },
  "unsupported-media-type": UNSUPPORTED_MEDIA_TYPE,
  "body-invalid": { status: 400, message: "the body must be a JSON object" },
  "field-unknown": { status: 400, message: "the body has a field the API does not know: certificate, chain, purpose, at, legalBasis" },
  "certificate-missing": { status: 400, message: "give the certificate: PEM or base64 DER" },
  "certificate-malformed": { status: 400, message: "the certificate is not an X.509 certificate in PEM or base64 DER" },
  "chain-malformed": { status: 400, message: `chain must be a list of at most ${MAX_CHAIN} certificates, each PEM or base64 DER` },
  "purpose-invalid": { status: 400, message: `purpose must be one of ${JPKI_PURPOSES.join(", ")}` },
  "time-invalid": { status: 400, message: "at must be an ISO 8601 time with its zone, e.g. 2026-04-01T09:00:00Z" },
  "legal-basis-unknown": { status: 400, message: `legalBasis must be one of ${LEGAL_BASIS_CODES.join(", ")}` },
  "legal-basis-not-allowed": LEGAL_BASIS_NOT_ALLOWED,
  unauthorized: { status: 401, message: "a registered verifier's credential is needed" },
  "store-unavailable": { status: 503, message: "the store did not answer (reading the certificate or resident, or writing the disclosure log), so no answer was given: try again" },
  "store-unresponsive": STORE_UNRESPONSIVE,
  internal: { status: 500, message: "the validation failed unexpectedly" },
} as const);

export type ValidateErrorCode = keyof typeof VALIDATE_ERRORS;


class RequestError extends Error {
  constructor(readonly code: ValidateErrorCode) {
    super(VALIDATE_ERRORS[code].message);
  }
}

function sendError(reply: FastifyReply, code: ValidateErrorCode): FastifyReply {
  return sendApiError(reply, VALIDATE_ERRORS, code);
}

const FIELDS = new Set(["certificate", "chain", "purpose", "at", "legalBasis"]);
/** A time the API takes (`at`, `since`): ISO 8601 with its zone, read strictly (readIsoTime); undefined otherwise. */
export function apiTime(v: unknown): Date | undefined {
  if (typeof v !== "string") return undefined;
  const t = readIsoTime(v);
  return t instanceof Date ? t : undefined;
}
/**
 * Base64 text, whitespace allowed anywhere, padding at the end. Linear on any input: the former
 * /^[A-Za-z0-9+/\s]+=*\s*$/ let trailing whitespace match two ways, so "A", a run of spaces and one other
 * character backtracked quadratically (16 000 spaces: 0.7 s; a 64 KiB body ~11 s, a 2 MiB signed-file body
 * hours) on the server's one thread. Here `=` is outside the first class, so each position is tried once.
 */
export const BASE64 = /^[A-Za-z0-9+/\s]+(?:=\s*){0,2}$/;

/**
 * One certificate from PEM or base64 DER; undefined when it is neither or (`parse`) does not parse as X.509.
 * The certificate asked about is not parsed here: the engine reads it anyway and says when it cannot.
 */
function certificateOf(s: unknown, parse = true): Buffer | undefined {
  if (typeof s !== "string" || !s.length) return undefined;
  let der: Buffer | undefined;
  if (s.includes("-----BEGIN")) {
    let blocks;
    try {
      blocks = parsePemBlocks(s).filter((b) => b.label === "CERTIFICATE");
    } catch {
      return undefined; // a block whose body is not base64: the caller's error, not an internal failure
    }
    if (blocks.length !== 1) return undefined;
    der = blocks[0]!.der;
  } else if (BASE64.test(s)) der = Buffer.from(s, "base64");
  if (!der || der.length < 16) return undefined;
  if (!parse) return wholeSequence(der) ? der : undefined;
  try {
    // The engine's own reader (what validation will read), and a fraction of node's X509Certificate's cost.
    parseCertificate(der);
  } catch {
    return undefined;
  }
  return der;
}

/** True when the bytes are one DER SEQUENCE and nothing after it: the shape of a certificate, read in a moment. */
function wholeSequence(der: Buffer): boolean {
  try {
    const h = readHeader(der, 0);
    return h.tag === 0x30 && h.headerLength + h.length === der.length;
  } catch {
    return false;
  }
}

/** The query a body asks, or the RequestError saying what is wrong with it. */
export function parseValidateBody(body: unknown): ValidationQuery {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new RequestError("body-invalid");
  const b = body as Record<string, unknown>;
  if (Object.keys(b).some((k) => !FIELDS.has(k))) throw new RequestError("field-unknown");
  if (b.certificate === undefined) throw new RequestError("certificate-missing");
  const certificate = certificateOf(b.certificate, false);
  if (!certificate) throw new RequestError("certificate-malformed");
  let chain: Buffer[] | undefined;
  if (b.chain !== undefined) {
    if (!Array.isArray(b.chain) || b.chain.length > MAX_CHAIN) throw new RequestError("chain-malformed");
    chain = [];
    for (const c of b.chain) {
      const der = certificateOf(c);
      if (!der) throw new RequestError("chain-malformed");
      chain.push(der);
    }
  }
  if (typeof b.purpose !== "string" || !JPKI_PURPOSES.includes(b.purpose as JpkiPurpose)) throw new RequestError("purpose-invalid");
  let at: Date | undefined;
  if (b.at !== undefined) {
    at = apiTime(b.at);
    if (!at) throw new RequestError("time-invalid");
  }
  if (b.legalBasis !== undefined && !isLegalBasisCode(b.legalBasis)) throw new RequestError("legal-basis-unknown");
  // Built field by field, no spreads: an object spread after other properties takes V8's slow path (CopyDataProperties),
  // once per request here. Absent fields stay absent, as the spreads left them.
  const q: { certificate: Buffer; chain?: Buffer[]; purpose: JpkiPurpose; at?: Date; legalBasis?: LegalBasisCode } = { certificate, purpose: b.purpose as JpkiPurpose };
  if (chain) q.chain = chain;
  if (at) q.at = at;
  if (b.legalBasis !== undefined) q.legalBasis = b.legalBasis as LegalBasisCode;
  return q;
}

export interface ValidateRouteOptions {
  readonly prefix: string;
  readonly service: VerifierValidationService;
  readonly access: VerifierAccess;
  /** counts and logs each answer (app.ts's per-route hook) */
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  readonly onError?: (e: unknown, what: string) => void;
}

/** An answer of the route: its status and JSON body (every answer is uncacheable), and Retry-After, seconds. */
interface Answer {
  readonly status: number;
  readonly body: unknown;
  readonly retryAfterSeconds?: number;
}

function errorAnswer(code: ValidateErrorCode): Answer {
  const e: { readonly status: number; readonly retryAfterSeconds?: number } = VALIDATE_ERRORS[code];
  return { status: e.status, body: apiErrorBody(VALIDATE_ERRORS, code), ...(e.retryAfterSeconds !== undefined ? { retryAfterSeconds: e.retryAfterSeconds } : {}) };
}

/**
 * What the route answers a parsed body, whichever layer carried it (fastify's route, or validateFastPath on
 * bare node:http): the caller's credential, the body's fields, then the service's answer or its typed error.
 */
async function answerValidate(o: Pick<ValidateRouteOptions, "service" | "access" | "onError">, req: IncomingMessage, body: unknown): Promise<Answer> {
  const caller = o.access.callerOf(req);
  if (!caller) return errorAnswer("unauthorized");
  let query: ValidationQuery;
  try {
    query = parseValidateBody(body);
  } catch (e) {
    if (e instanceof RequestError) return errorAnswer(e.code);
    throw e;
  }
  try {
    return { status: 200, body: await o.service.validate(caller, query) };
  } catch (e) {
    // The message of a store error may name the store, never the certificate or the items: still, only the code goes out.
    const code = (e as { code?: string }).code ?? "";
    if (code === "ERR_DER_MALFORMED") return errorAnswer("certificate-malformed");
    if (code === "ERR_LEGAL_BASIS_NOT_ALLOWED") return errorAnswer("legal-basis-not-allowed");
    const storeCode = storeErrorCode(e);
    // a store that does not answer is reported once per stall, by the watchdog (app.ts), not per request
    if (storeCode !== "store-unresponsive") o.onError?.(e, "answering POST /v1/validate (no answer given)");
    return errorAnswer(storeCode ?? "internal");
  }
}

/** Registers POST /v1/validate, with its own body limit and an error handler that answers typed codes only. */
export async function registerValidate(app: FastifyInstance, o: ValidateRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.setErrorHandler(bodyErrorHandler(sendError, o.onError, "answering POST /v1/validate"));
    scope.route({
      method: "POST",
      url: `${o.prefix}/v1/validate`,
      bodyLimit: BODY_LIMIT,
      onResponse: o.onResponse,
      handler: async (req, reply) => {
        const a = await answerValidate(o, req.raw, req.body);
        if (a.retryAfterSeconds !== undefined) reply.header("Retry-After", String(a.retryAfterSeconds));
        return reply.code(a.status).header("Cache-Control", "no-store").send(a.body);
      },
    });
  });
}

export interface ValidateFastPathOptions {
  readonly prefix: string;
  readonly service: VerifierValidationService;
  readonly access: VerifierAccess;
  /**
   * The JSON body parser fastify's route uses (app.ts: the nesting bound, then JSON.parse or fastify's own
   * parser), called the same way; an error means 400 body-too-deep or body-not-json, as the route's error handler says.
   */
  readonly parseJson: (req: IncomingMessage, text: string, done: (err: Error | null, value?: unknown) => void) => void;
  /** counts and logs each answer, as the route's hook does; `aborted`: its connection was gone when it was written */
  readonly onResponse: (req: IncomingMessage, status: number, startedAt: number, aborted: boolean) => void;
  /** counts and logs a request whose client went away while its body was still coming (no answer given) */
  readonly onAbandoned?: (req: IncomingMessage) => void;
  readonly onError?: (e: unknown, what: string) => void;
}

/** The fast path's headers but the length: JSON_TYPE's and no-store, as name, value, name, value. */
const FAST_PATH_HEADERS: readonly string[] = Object.freeze([...Object.entries(JSON_TYPE).flat(), "cache-control", "no-store"]);

/** The media types the fast path takes; any other (or none) goes to fastify, which refuses or parses it as before. */
const PLAIN_JSON = /^application\/json(?:\s*;\s*charset=utf-8)?$/i;

/**
 * POST /v1/validate on bare node:http, before fastify routes anything (app.ts, as published-route.ts serves
 * CRLs): fastify's request and reply objects, hooks, body stream and serializer took ≈ 10–15 µs of the serving
 * thread per answer (bench api), a tenth of what it spends. Only the plain request is taken: POST to the exact
 * path, Content-Type application/json, a Content-Length within BODY_LIMIT, no Transfer-Encoding nor Content-Encoding.
 * Everything else — a query string, chunked, coded or oversized bodies, other media types — returns false and goes to fastify's
 * route, which answers as it always has. Taken requests get the same answers: the same parser, checks, service
 * and error table (answerValidate), the same headers.
 */
export function validateFastPath(o: ValidateFastPathOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const path = `${o.prefix}/v1/validate`;
  const send = (req: IncomingMessage, res: ServerResponse, a: Answer, startedAt: number) => {
    const json = JSON.stringify(a.body);
    // The headers as a flat list of names and values (node's raw form): no object made, copied and walked per answer.
    const headers = [...FAST_PATH_HEADERS, "content-length", String(Buffer.byteLength(json))];
    if (a.retryAfterSeconds !== undefined) headers.push("retry-after", String(a.retryAfterSeconds));
    res.writeHead(a.status, headers);
    res.end(json);
    // the client may have gone while its validation ran: the answer went nowhere, logged "aborted" as fastify's route's
    o.onResponse(req, a.status, startedAt, req.socket.destroyed);
  };
  return (req, res) => {
    if (req.method !== "POST" || req.url !== path) return false;
    const h = req.headers;
    const length = Number(h["content-length"]);
    // A Content-Encoding (even identity) goes on too: app.ts refuses a coded body before fastify reads it.
    if (h["transfer-encoding"] !== undefined || h["content-encoding"] !== undefined || !(length <= BODY_LIMIT) || !PLAIN_JSON.test(h["content-type"] ?? "")) return false;
    const startedAt = performance.now();
    // The body's bytes, decoded once at the end (a body comes in one chunk but for the rare large one): a
    // StringDecoder per request (setEncoding) and a string per chunk cost more than the one decode.
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    req.on("data", (chunk: Buffer) => {
      if (!first) first = chunk;
      else (more ??= [first]).push(chunk);
    });
    // An aborted upload: node ends the connection; nothing is answered or recorded, but it is counted and logged
    // (as fastify's routes' abandoned requests, app.ts onRequestAbort). An error after the body ended (the client
    // gone while the validation runs) is left to send(), which logs the answer the validation gives as cut.
    let ended = false;
    req.on("error", () => {
      if (!ended) o.onAbandoned?.(req);
    });
    req.on("end", () => {
      ended = true;
      const fail = (e: unknown) => {
        o.onError?.(e, "answering POST /v1/validate (no answer given)");
        if (!res.headersSent) send(req, res, errorAnswer("internal"), startedAt);
      };
      const text = more ? Buffer.concat(more).toString("utf8") : first ? first.toString("utf8") : "";
      try {
        o.parseJson(req, text, (err, body) => {
          if (err) return send(req, res, errorAnswer(isBodyTooDeep(err) ? "body-too-deep" : "body-not-json"), startedAt);
          answerValidate(o, req, body).then((a) => send(req, res, a, startedAt), fail);
        });
      } catch (e) {
        fail(e);
      }
    });
    return true;
  };
}
