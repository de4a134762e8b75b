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
import { JPKI_PURPOSES } from "../validation/jpki.js";
import { LEGAL_BASES, LEGAL_BASIS_CODES } from "../verifier/legal-basis.js";
import { PRIVATE_STATUS_OF } from "../verifier/views.js";
import { BODY_LIMIT, MAX_CHAIN, VALIDATE_ERRORS } from "./validate-route.js";
import { SIGNATURE_BODY_LIMIT, SIGNATURE_ERRORS } from "./verify-signature-route.js";
import { DOCUMENT_STATUSES } from "../verifier/validation-service.js";

export function validationApiDocument(prefix: string): Record<string, unknown> {
  const errorCodes = Object.keys(VALIDATE_ERRORS);
  const errorResponse = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
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
            "400": errorResponse("The body is malformed: the code says which part"),
            "401": errorResponse("No credential, or one that names no live registration (unknown or revoked verifier)"),
            "403": errorResponse("The credential's kind may not use this route"),
            "413": errorResponse(`The body is larger than ${BODY_LIMIT} bytes`),
            "415": errorResponse("The body is not application/json"),
            "429": errorResponse("Past the verifier's rate limit (Retry-After says when to come back)"),
            "503": errorResponse("The store did not answer (or the disclosure log could not be written): no answer was given"),
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
            "415": errorResponse("The body is not application/json"),
            "429": errorResponse("Past the verifier's rate limit"),
            "503": errorResponse("The store did not answer: no answer was given"),
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
              description: `the affair under the Basic Resident Registration Act's appended tables for which current identity information is asked (government bodies only): ${LEGAL_BASIS_CODES.map((c) => `${c} (${LEGAL_BASES[c].ja})`).join(", ")}`,
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
            reason: { type: "string", description: "why the path failed" },
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
        VerifySignatureRequest: {
          type: "object",
          additionalProperties: false,
          required: ["signedData"],
          properties: {
            signedData: { type: "string", description: "the CMS ContentInfo (SignedData), PEM or base64 DER" },
            content: { type: "string", contentEncoding: "base64", description: "the signed document, for a detached signature" },
            at: { type: "string", format: "date-time", description: "the verification time (default now)" },
            legalBasis: { enum: [...LEGAL_BASIS_CODES], description: "as for /v1/validate: the signer's current four items for a government body" },
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
          properties: { error: { type: "string" }, code: { enum: errorCodes }, message: { type: "string" } },
        },
      },
    },
  };
}
