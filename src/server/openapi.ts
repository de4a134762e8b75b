/**
 * The OpenAPI 3.1 document of the validation API (`GET /openapi.json` on `jpki serve`): POST /v1/validate, its
 * request, the two views (government body 行政機関, private certification provider 民間認証事業者), the typed
 * errors and the bearer authentication. Built from the same tables the route and the views use (purposes, legal
 * bases, statuses, error codes), so the document cannot drift from them.
 *
 * Who may read it (ours): like every route of `jpki serve`, registered verifiers only unless the workspace's
 * `openRoutes` lists "/openapi.json". The document holds nothing secret, but the API is for registered verifiers,
 * and by default the server tells nobody else what it serves; an operator who wants it public opens it.
 */
import { CRL_REASON } from "../crl/reason.js";
import { JPKI_FAILURE_REASONS, JPKI_PURPOSES } from "../validation/jpki.js";
import { FAILURE_REASONS } from "../validation/types.js";
import { LEGAL_BASES, LEGAL_BASIS_CODES } from "../verifier/legal-basis.js";
import { PRIVATE_STATUS_OF } from "../verifier/views.js";
import { ACCESS_REFUSALS } from "./access.js";
import { METHOD_NOT_ALLOWED, PARSER_REFUSALS, STOPPING_ERROR, TOO_MANY_CONNECTIONS, UNSUPPORTED_CONTENT_ENCODING } from "./api-errors.js";
import { BODY_LIMIT, MAX_CHAIN, VALIDATE_ERRORS } from "./validate-route.js";
import { MAX_HISTORY_LIMIT, MAX_STATUS_ITEMS, STATUS_ITEM_ERRORS } from "../verifier/liveness.js";
import { STATUS_BODY_LIMIT, STATUS_ERRORS } from "./status-route.js";
import { SIGNATURE_BODY_LIMIT, SIGNATURE_ERRORS } from "./verify-signature-route.js";
import { DOCUMENT_STATUSES } from "../verifier/validation-service.js";
import { MAX_OVERVIEW_DAYS } from "../verifier/overview.js";
import { DEFAULT_OVERVIEW_DAYS, OVERVIEW_ERROR_CODES } from "./overview-route.js";

export function validationApiDocument(prefix: string): Record<string, unknown> {
  const errorCodes = [...new Set([...Object.keys(VALIDATE_ERRORS), ...Object.keys(STATUS_ERRORS), ...Object.keys(SIGNATURE_ERRORS), ...OVERVIEW_ERROR_CODES, STOPPING_ERROR.code, METHOD_NOT_ALLOWED.code, UNSUPPORTED_CONTENT_ENCODING.code, TOO_MANY_CONNECTIONS.code, ...Object.keys(ACCESS_REFUSALS), ...Object.keys(PARSER_REFUSALS)])];
  const json = (schema: unknown) => ({ "application/json": { schema } });
  const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
  // The GET routes refuse a query parameter they do not take (api-errors.ts hasUnknownParameter): said in their 400.
  const unknownParameter = (parameters: ReadonlyArray<{ readonly name: string }>) => {
    const names = parameters.map((p) => p.name);
    return `the query has a parameter other than ${names.length > 1 ? `${names.slice(0, -1).join(", ")} and ${names.at(-1)}` : names[0]} (query-invalid)`;
  };
  const historyParameters = [
    { name: "since", in: "query", required: false, schema: { type: "string", format: "date-time" }, description: "only checks answered at or after this time" },
    { name: "limit", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: MAX_HISTORY_LIMIT, default: 100 } },
    { name: "cursor", in: "query", required: false, schema: { type: "string" }, description: "the nextCursor of the previous page (opaque)" },
  ];
  const overviewParameters = [{ name: "days", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: MAX_OVERVIEW_DAYS, default: DEFAULT_OVERVIEW_DAYS }, description: "the window, in days ending today (JST)" }];
  const unsupportedBody = errorResponse(
    `The body is not application/json in UTF-8 (code unsupported-media-type), or comes in a Content-Encoding other than identity (code ${UNSUPPORTED_CONTENT_ENCODING.code}, with Accept-Encoding: identity)`,
  );
  return {
    openapi: "3.1.0",
    info: {
      title: "jpki validation API (公的個人認証サービス 署名検証者向け)",
      version: "1",
      description:
        "Certificate validation for registered signature verifiers (署名検証者). A government body (行政機関) sees the status, the failure reason, which certificate failed and the revocation; with a legal basis (住民基本台帳法 別表) it also receives the resident's current four items. A private certification provider (民間認証事業者) sees only valid / revoked / unknown. Every answer is recorded in the disclosure log the resident may read.",
    },
    servers: [{ url: prefix || "/" }],
    security: [{ bearer: [] }, { clientCertificate: [] }],
    paths: {
      "/v1/validate": {
        post: {
          operationId: "validate",
          summary: "Validate a JPKI certificate for a purpose, at a time",
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/ValidateRequest" } } } },
          responses: {
            "200": {
              description: "The answer in the caller's view (by its registered kind)",
              content: { "application/json": { schema: { oneOf: [{ $ref: "#/components/schemas/GovernmentView" }, { $ref: "#/components/schemas/PrivateView" }], discriminator: { propertyName: "view" } } } },
            },
            "400": errorResponse("The body is malformed: the code says which part; a private provider's legalBasis is refused too (legal-basis-not-allowed), with nothing answered or recorded"),
            "401": errorResponse("No credential, or one that names no live registration (unknown or revoked verifier)"),
            "403": errorResponse("The credential's kind may not use this route"),
            "413": errorResponse(`The body is larger than ${BODY_LIMIT} bytes`),
            "415": unsupportedBody,
            "429": errorResponse("Past the verifier's rate limit (code rate-limited), or a client address past its refused requests (code too-many-refusals): Retry-After says when to come back"),
            "503": errorResponse("The store failed (code store-unavailable), or did not answer in time (code store-unresponsive, with Retry-After), so the disclosure log could not be written: no answer was given"),
          },
        },
      },
      "/v1/status": {
        post: {
          operationId: "status",
          summary: "Liveness check (現況確認): is each certificate still good? With link: which certificate replaced it (新旧証明書の紐付け)",
          description:
            `Up to ${MAX_STATUS_ITEMS} certificates per call, each named by { caId, serial } or by { certificateId } — the lower-case hex SHA-256 of the certificate's DER, which a verifier computes from the certificate it stored. ` +
            "The answer comes from the CA's own records (what the next CRL will say; a revocation shows here as soon as it is committed). Per item: good, revoked, or unknown (not issued by this service under that CA, or expired). " +
            "A government body also sees the revocation time and reason and why a status is unknown; a private provider sees the status only. " +
            "With link: true, for a certificate revoked as superseded or affiliationChanged (renewal, move, name change), replacedBy names the current certificate of the same resident and purpose at the end of the chain of replacements — given to government bodies, and to private providers only where the resident's consent to that provider is recorded in the registry; otherwise the item is exactly what it would be without link. " +
            "Every checked item is kept in the caller's check history (GET /v1/status/history), and every answer about one of our certificates is recorded in the disclosure log the resident may read, before the answer is given. A malformed item gets its own error and does not fail the batch.",
          requestBody: { required: true, content: json({ $ref: "#/components/schemas/StatusRequest" }) },
          responses: {
            "200": { description: "One answer per item, in the order asked", content: json({ $ref: "#/components/schemas/StatusAnswer" }) },
            "400": errorResponse(`The body is malformed as a whole, or has more than ${MAX_STATUS_ITEMS} items (batch-too-large)`),
            "401": errorResponse("No credential, or one that names no live registration"),
            "413": errorResponse(`The body is larger than ${STATUS_BODY_LIMIT} bytes`),
            "415": unsupportedBody,
            "429": errorResponse("Past the verifier's rate limit (code rate-limited), or a client address past its refused requests (code too-many-refusals): Retry-After says when to come back; a batch counts one request per item"),
            "503": errorResponse("The store failed (code store-unavailable), or did not answer in time (code store-unresponsive, with Retry-After), so the checks could not be recorded: no answer was given"),
          },
        },
      },
      "/v1/status/history": {
        get: {
          operationId: "statusHistory",
          summary: "The caller's own liveness-check history, oldest first, paged",
          parameters: historyParameters,
          responses: {
            "200": { description: "A page of the caller's checks, as it was told them", content: json({ $ref: "#/components/schemas/StatusHistoryPage" }) },
            "400": errorResponse(`since, limit or cursor is malformed (query-invalid), or ${unknownParameter(historyParameters)}`),
            "401": errorResponse("No credential, or one that names no live registration"),
            "429": errorResponse("Past the verifier's rate limit (code rate-limited), or a client address past its refused requests (code too-many-refusals)"),
            "503": errorResponse("The store failed (code store-unavailable), or did not answer in time (code store-unresponsive, with Retry-After)"),
          },
        },
      },
      "/v1/verify-signature": {
        post: {
          operationId: "verifySignature",
          summary: "Verify a signed file (CMS SignedData, RFC 5652) and its signer's certificate",
          requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/VerifySignatureRequest" } } } },
          responses: {
            "200": { description: "The signature's status and the signer's certificate in the caller's view", content: { "application/json": { schema: { $ref: "#/components/schemas/SignatureAnswer" } } } },
            "400": errorResponse(`The body is malformed, the file is not a CMS SignedData, or a detached signature came without its document: codes ${Object.keys(SIGNATURE_ERRORS).join(", ")}`),
            "401": errorResponse("No credential, or one that names no live registration"),
            "413": errorResponse(`The body is larger than ${SIGNATURE_BODY_LIMIT} bytes`),
            "415": unsupportedBody,
            "429": errorResponse("Past the verifier's rate limit (code rate-limited), or a client address past its refused requests (code too-many-refusals)"),
            "503": errorResponse("The store failed (code store-unavailable), or did not answer in time (code store-unresponsive, with Retry-After): no answer was given"),
          },
        },
      },
      "/v1/overview": {
        get: {
          operationId: "overview",
          summary: "Each CA with its latest CRLs and its revocations per JST day, as its latest full CRL lists them (the status page reads it)",
          parameters: overviewParameters,
          responses: {
            "200": {
              description: "The CAs at a glance",
              content: json({
                type: "object",
                required: ["generatedAt", "from", "to", "cas"],
                properties: {
                  generatedAt: { type: "string", format: "date-time" },
                  from: { type: "string", format: "date" },
                  to: { type: "string", format: "date" },
                  cas: {
                    type: "array",
                    items: {
                      type: "object",
                      required: ["id", "prefectureCode", "prefecture", "purpose", "crls", "revocationsPerDay"],
                      properties: {
                        id: { type: "string" },
                        prefectureCode: { type: "string" },
                        prefecture: { type: "string" },
                        purpose: { enum: [...JPKI_PURPOSES] },
                        crls: {
                          type: "array",
                          items: {
                            type: "object",
                            properties: {
                              kind: { enum: ["full", "delta", "partition", "arl"] },
                              municipality: { type: "string" },
                              number: { type: "string" },
                              baseNumber: { type: "string" },
                              thisUpdate: { type: "string", format: "date-time" },
                              nextUpdate: { type: "string", format: "date-time" },
                              ageSeconds: { type: "number" },
                              stale: { type: "boolean" },
                              ended: { type: "boolean", description: "present (true) on a stale CRL no run will replace: a retired key generation that publishes it no more, as /crl/index.json says" },
                              entries: { type: "integer" },
                            },
                          },
                        },
                        revocationsPerDay: { type: "array", items: { type: "object", properties: { day: { type: "string", format: "date" }, count: { type: "integer" } } } },
                        revocationsFrom: { type: "string", description: "the number of the full CRL the counts come from" },
                        fullCrlProblem: {
                          type: "string",
                          enum: ["missing", "unreadable", "not-this-crl"],
                          description: "what is wrong with the latest full CRL's file, where something is: gone, damaged, or another file than the CRL the store published (verifiers fetching it do not get that CRL)",
                        },
                      },
                    },
                  },
                },
              }),
            },
            "400": errorResponse(`days is not a whole number from 1 to ${MAX_OVERVIEW_DAYS} (days-invalid), or ${unknownParameter(overviewParameters)}`),
            "401": errorResponse("No credential, or one that names no live registration"),
            "429": errorResponse("Past the verifier's rate limit (code rate-limited), or a client address past its refused requests (code too-many-refusals)"),
            "503": errorResponse("The store failed (code store-unavailable), or did not answer in time (code store-unresponsive, with Retry-After)"),
          },
        },
      },
    },
    components: {
      securitySchemes: {
        bearer: { type: "http", scheme: "bearer", description: "the token 'jpki verifier add' issued" },
        clientCertificate: { type: "mutualTLS", description: "a client certificate from the workspace's verifier CA (HTTPS only)" },
      },
      schemas: {
        ValidateRequest: {
          type: "object",
          additionalProperties: false,
          required: ["certificate", "purpose"],
          properties: {
            certificate: { type: "string", description: "the end-entity certificate, PEM or base64 DER" },
            chain: { type: "array", maxItems: MAX_CHAIN, items: { type: "string" }, description: "further certificates to build the path from, PEM or base64 DER" },
            purpose: { enum: [...JPKI_PURPOSES], description: "signature (署名用) or authentication (利用者証明用)" },
            at: { type: "string", format: "date-time", description: "the validation time (default now)" },
            legalBasis: {
              enum: [...LEGAL_BASIS_CODES],
              description: `the affair under the Basic Resident Registration Act's appended tables for which current identity information is asked (government bodies only: a private provider's request naming one is refused 400 legal-basis-not-allowed): ${LEGAL_BASIS_CODES.map((c) => `${c} (${LEGAL_BASES[c].ja})`).join(", ")}`,
            },
          },
        },
        PrivateView: {
          type: "object",
          required: ["view", "status", "validationTime"],
          additionalProperties: false,
          properties: {
            view: { const: "private" },
            status: { enum: [...new Set(Object.values(PRIVATE_STATUS_OF))], description: "every status other than valid and revoked is unknown" },
            validationTime: { type: "string", format: "date-time" },
          },
        },
        GovernmentView: {
          type: "object",
          required: ["view", "status", "purpose", "validationTime", "serial", "issuer"],
          properties: {
            view: { const: "government" },
            status: { enum: Object.keys(PRIVATE_STATUS_OF) },
            purpose: { enum: [...JPKI_PURPOSES] },
            validationTime: { type: "string", format: "date-time" },
            serial: { type: "string", description: "lower-case hex" },
            issuer: { type: "string", description: "our CA id (e.g. 13-sig), or the issuer's name" },
            reason: { enum: [...Object.keys(FAILURE_REASONS), ...Object.keys(JPKI_FAILURE_REASONS)], description: "why the path failed (issuer-compromised: signed by the key of a CA generation declared compromised, 鍵危殆化)" },
            message: { type: "string" },
            failedCertificate: { type: "object", properties: { index: { type: "integer" }, subject: { type: "string" }, issuer: { type: "string" }, serial: { type: "string" } } },
            revocation: { type: "object", properties: { time: { type: "string", format: "date-time" }, reason: { enum: Object.keys(CRL_REASON) } } },
            legalBasis: { enum: [...LEGAL_BASIS_CODES] },
            currentItems: {
              type: "object",
              description: "the resident's current four items (基本4情報) from the registry: only with an allowed legal basis",
              properties: { name: { type: "string" }, address: { type: "string" }, birthDate: { type: "string", format: "date" }, gender: { enum: ["male", "female", "unknown"] } },
            },
            itemsWithheld: { enum: ["certificate-not-ours", "no-registry-record"] },
          },
        },
        StatusItemRef: {
          oneOf: [
            { type: "object", additionalProperties: false, required: ["caId", "serial"], properties: { caId: { type: "string", description: "the issuing CA's id, e.g. 13-sig" }, serial: { type: "string", description: "the serial number, hex" } } },
            {
              type: "object",
              additionalProperties: false,
              required: ["certificateId"],
              properties: { certificateId: { type: "string", pattern: "^[0-9a-fA-F]{64}$", description: "certificate id: hex SHA-256 of the certificate's DER (answers echo it lower-case)" } },
            },
          ],
        },
        StatusRequest: {
          type: "object",
          additionalProperties: false,
          required: ["items"],
          properties: {
            items: { type: "array", minItems: 1, maxItems: MAX_STATUS_ITEMS, items: { $ref: "#/components/schemas/StatusItemRef" } },
            link: { type: "boolean", default: false, description: "ask for replacedBy (新旧証明書の紐付け) where the caller may receive it" },
          },
        },
        ReplacedBy: {
          type: "object",
          required: ["caId", "serial", "certificateId"],
          properties: { caId: { type: "string" }, serial: { type: "string" }, certificateId: { type: "string" } },
        },
        Revocation: { type: "object", properties: { time: { type: "string", format: "date-time" }, reason: { enum: [...Object.keys(CRL_REASON), "unknown"] } } },
        StatusItemAnswer: {
          oneOf: [
            {
              type: "object",
              required: ["index", "item", "status"],
              properties: {
                index: { type: "integer", description: "the item's position in the request" },
                item: { $ref: "#/components/schemas/StatusItemRef" },
                status: { enum: ["good", "revoked", "unknown"] },
                revocation: { $ref: "#/components/schemas/Revocation", description: "government bodies only" },
                unknownReason: { enum: ["not-ours", "expired"], description: "government bodies only" },
                replacedBy: { $ref: "#/components/schemas/ReplacedBy" },
              },
            },
            { type: "object", required: ["index", "error", "message"], properties: { index: { type: "integer" }, error: { enum: Object.keys(STATUS_ITEM_ERRORS) }, message: { type: "string" } } },
          ],
        },
        StatusAnswer: {
          type: "object",
          required: ["view", "checkedAt", "items"],
          properties: { view: { enum: ["government", "private"] }, checkedAt: { type: "string", format: "date-time" }, items: { type: "array", items: { $ref: "#/components/schemas/StatusItemAnswer" } } },
        },
        StatusHistoryPage: {
          type: "object",
          required: ["items"],
          properties: {
            items: {
              type: "array",
              items: {
                type: "object",
                required: ["at", "status"],
                properties: {
                  at: { type: "string", format: "date-time" },
                  caId: { type: "string" },
                  serial: { type: "string" },
                  certificateId: { type: "string" },
                  status: { enum: ["good", "revoked", "unknown"] },
                  revocation: { $ref: "#/components/schemas/Revocation" },
                  replacedBy: { type: "object", properties: { caId: { type: "string" }, serial: { type: "string" } } },
                },
              },
            },
            nextCursor: { type: "string", description: "absent on the last page" },
          },
        },
        VerifySignatureRequest: {
          type: "object",
          additionalProperties: false,
          required: ["signedData"],
          properties: {
            signedData: { type: "string", description: "the CMS ContentInfo (SignedData), PEM or base64 DER" },
            content: { type: "string", contentEncoding: "base64", description: "the signed document, for a detached signature" },
            at: { type: "string", format: "date-time", description: "the verification time (default now)" },
            legalBasis: { enum: [...LEGAL_BASIS_CODES], description: "as for /v1/validate: the signer's current four items for a government body; a private provider's request naming one is refused 400 legal-basis-not-allowed" },
          },
        },
        SignatureAnswer: {
          type: "object",
          required: ["view", "signature"],
          properties: {
            view: { enum: ["government", "private"] },
            signature: {
              type: "object",
              required: ["status"],
              properties: {
                status: { type: "string", description: `${DOCUMENT_STATUSES.join(", ")} (about the file, for every verifier), or a path status of the signer's certificate (a private provider reads revoked or unknown)` },
                reason: { type: "string" },
                message: { type: "string" },
                signingTime: { type: "string", format: "date-time", description: "the signer's claim (signing-time attribute), not a trusted time" },
              },
            },
            certificate: { oneOf: [{ $ref: "#/components/schemas/GovernmentView" }, { $ref: "#/components/schemas/PrivateView" }], description: "the signer's certificate validated for the signature purpose, as /v1/validate answers" },
          },
        },
        Error: {
          type: "object",
          required: ["error"],
          description:
            `Every error answer. Any route may also answer ${STOPPING_ERROR.status} with code "${STOPPING_ERROR.code}" while the server stops: the connection then closes; send the request again on a new one. ` +
            `A connection past the server's cap on open connections is answered ${TOO_MANY_CONNECTIONS.status} with code "${TOO_MANY_CONNECTIONS.code}" and Retry-After before its request is read, and closed.`,
          properties: { error: { type: "string" }, code: { enum: errorCodes }, message: { type: "string" } },
        },
      },
    },
  };
}
