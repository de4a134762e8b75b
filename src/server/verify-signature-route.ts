/**
 * `POST /v1/verify-signature`: a signed file for registered verifiers (署名検証者), issue 11 point 3 — the status
 * page's form takes a certificate or a signed file, and this is the second. The service
 * (verifier/validation-service.ts verifySignature) checks the CMS SignedData (RFC 5652: digest, signature, the
 * signer's path at the signing time and now) and validates the signer's certificate as POST /v1/validate does,
 * in the caller's view, recorded in the disclosure log.
 *
 * A route of its own rather than a field of /v1/validate: the body is larger (a signed document, not a
 * certificate), the answer has another shape (the signature and the certificate), and /v1/validate's contract
 * — refusing unknown fields — stays as published.
 *
 * Request (application/json, at most BODY_LIMIT bytes): `{ signedData, content?, at?, legalBasis? }` —
 * signedData the CMS ContentInfo as PEM or base64 DER, content the signed document (base64) for a detached
 * signature, at and legalBasis as for /v1/validate. Errors: `{ error, code, message }` with the codes of
 * SIGNATURE_ERRORS; never a piece of the file, never personal data.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BODY_TOO_DEEP, UNSUPPORTED_MEDIA_TYPE, bodyErrorHandler, sendApiError, STORE_UNRESPONSIVE, storeErrorCode } from "./api-errors.js";
import { isJpkiError } from "../errors.js";
import { isLegalBasisCode, LEGAL_BASIS_CODES } from "../verifier/legal-basis.js";
import { SignedDataRefused, type SignatureQuery, type VerifierValidationService } from "../verifier/validation-service.js";
import type { VerifierAccess } from "./access.js";
import { apiTime, BASE64, LEGAL_BASIS_NOT_ALLOWED } from "./validate-route.js";

/** Request body limit, bytes: a signed application form with its certificates, base64, fits with room. */
export const SIGNATURE_BODY_LIMIT = 2 * 1024 * 1024;

export const SIGNATURE_ERRORS = Object.freeze({
  "body-not-json": { status: 400, message: "the body is not JSON" },
  "body-too-deep": BODY_TOO_DEEP,
  "body-too-large": { status: 413, message: `the body is larger than ${SIGNATURE_BODY_LIMIT} bytes` },
  "unsupported-media-type": UNSUPPORTED_MEDIA_TYPE,
  "body-invalid": { status: 400, message: "the body must be a JSON object" },
  "field-unknown": { status: 400, message: "the body has a field the API does not know: signedData, content, at, legalBasis" },
  "signed-data-missing": { status: 400, message: "give the signed file (signedData): CMS SignedData as PEM or base64 DER" },
  "signed-data-malformed": { status: 400, message: "the file is not a CMS SignedData (RFC 5652) with one signer we can read" },
  "content-malformed": { status: 400, message: "content must be the signed document in base64" },
  "content-missing": { status: 400, message: "the signature is detached: send the signed document as content (base64)" },
  "time-invalid": { status: 400, message: "at must be an ISO 8601 time with its zone, e.g. 2026-04-01T09:00:00Z" },
  "legal-basis-unknown": { status: 400, message: `legalBasis must be one of ${LEGAL_BASIS_CODES.join(", ")}` },
  "legal-basis-not-allowed": LEGAL_BASIS_NOT_ALLOWED,
  unauthorized: { status: 401, message: "a registered verifier's credential is needed" },
  "store-unavailable": { status: 503, message: "the store did not answer (reading the certificate or resident, or writing the disclosure log), so no answer was given: try again" },
  "store-unresponsive": STORE_UNRESPONSIVE,
  internal: { status: 500, message: "the verification failed unexpectedly" },
} as const);

export type SignatureErrorCode = keyof typeof SIGNATURE_ERRORS;

const FIELDS = new Set(["signedData", "content", "at", "legalBasis"]);

class RequestError extends Error {
  constructor(readonly code: SignatureErrorCode) {
    super(SIGNATURE_ERRORS[code].message);
  }
}

function sendError(reply: FastifyReply, code: SignatureErrorCode): FastifyReply {
  return sendApiError(reply, SIGNATURE_ERRORS, code);
}

/** The query a body asks, or the RequestError saying what is wrong with it. */
export function parseSignatureBody(body: unknown): SignatureQuery {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new RequestError("body-invalid");
  const b = body as Record<string, unknown>;
  if (Object.keys(b).some((k) => !FIELDS.has(k))) throw new RequestError("field-unknown");
  if (b.signedData === undefined) throw new RequestError("signed-data-missing");
  if (typeof b.signedData !== "string" || !b.signedData.length) throw new RequestError("signed-data-malformed");
  // PEM goes to the CMS reader as text (it takes PEM or DER); anything else must be base64.
  let signedData: Buffer;
  if (b.signedData.includes("-----BEGIN")) signedData = Buffer.from(b.signedData, "utf8");
  else if (BASE64.test(b.signedData)) signedData = Buffer.from(b.signedData, "base64");
  else throw new RequestError("signed-data-malformed");
  let content: Buffer | undefined;
  if (b.content !== undefined) {
    if (typeof b.content !== "string" || (b.content.length > 0 && !BASE64.test(b.content))) throw new RequestError("content-malformed");
    content = Buffer.from(b.content, "base64");
  }
  let at: Date | undefined;
  if (b.at !== undefined) {
    at = apiTime(b.at);
    if (!at) throw new RequestError("time-invalid");
  }
  if (b.legalBasis !== undefined && !isLegalBasisCode(b.legalBasis)) throw new RequestError("legal-basis-unknown");
  return {
    signedData,
    ...(content ? { content } : {}),
    ...(at ? { at } : {}),
    ...(b.legalBasis !== undefined ? { legalBasis: b.legalBasis as SignatureQuery["legalBasis"] & string } : {}),
  };
}

export interface VerifySignatureRouteOptions {
  readonly prefix: string;
  readonly service: VerifierValidationService;
  readonly access: VerifierAccess;
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  readonly onError?: (e: unknown, what: string) => void;
}

export async function registerVerifySignature(app: FastifyInstance, o: VerifySignatureRouteOptions): Promise<void> {
  await app.register(async (scope) => {
    scope.setErrorHandler(bodyErrorHandler(sendError, o.onError, "answering POST /v1/verify-signature"));
    scope.route({
      method: "POST",
      url: `${o.prefix}/v1/verify-signature`,
      bodyLimit: SIGNATURE_BODY_LIMIT,
      onResponse: o.onResponse,
      handler: async (req, reply) => {
        const caller = o.access.callerOf(req.raw);
        if (!caller) return sendError(reply, "unauthorized");
        let query: SignatureQuery;
        try {
          query = parseSignatureBody(req.body);
        } catch (e) {
          if (e instanceof RequestError) return sendError(reply, e.code);
          throw e;
        }
        try {
          return reply.header("Cache-Control", "no-store").send(await o.service.verifySignature(caller, query));
        } catch (e) {
          if (e instanceof SignedDataRefused) return sendError(reply, e.code);
          if (isJpkiError(e, "ERR_LEGAL_BASIS_NOT_ALLOWED")) return sendError(reply, "legal-basis-not-allowed");
          const code = storeErrorCode(e);
          // reported once per stall, by the watchdog (app.ts)
          if (code !== "store-unresponsive") o.onError?.(e, "answering POST /v1/verify-signature (no answer given)");
          return sendError(reply, code ?? "internal");
        }
      },
    });
  });
}
