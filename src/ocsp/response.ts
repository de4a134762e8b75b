/**
 * OCSPResponse and BasicOCSPResponse, RFC 6960 §4.2.1, written with our DER writer (pki/der.ts):
 *
 *   OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, responseBytes [0] EXPLICIT ResponseBytes OPTIONAL }
 *   ResponseBytes ::= SEQUENCE { responseType id-pkix-ocsp-basic, response OCTET STRING (BasicOCSPResponse) }
 *   BasicOCSPResponse ::= SEQUENCE { tbsResponseData ResponseData, signatureAlgorithm, signature BIT STRING,
 *                                    certs [0] EXPLICIT SEQUENCE OF Certificate OPTIONAL }
 *   ResponseData ::= SEQUENCE { version [0] DEFAULT v1 (left out), responderID (byKey [2]: SHA-1 of the
 *                               responder's public key), producedAt GeneralizedTime, responses SEQUENCE OF
 *                               SingleResponse, responseExtensions [1] EXPLICIT Extensions OPTIONAL (the nonce;
 *                               extended revoke) }
 *   SingleResponse ::= SEQUENCE { certID (echoed as received), certStatus, thisUpdate, nextUpdate [0] EXPLICIT }
 *   CertStatus ::= CHOICE { good [0] IMPLICIT NULL, revoked [1] IMPLICIT RevokedInfo, unknown [2] IMPLICIT NULL }
 *   RevokedInfo ::= SEQUENCE { revocationTime GeneralizedTime, revocationReason [0] EXPLICIT CRLReason OPTIONAL }
 *
 * The reason is left out for unspecified (0), as our CRL entries do (crl/reason.ts, profile/crl-entry.ts).
 *
 * RFC 6960 §2.2: a response that says "revoked" about a serial the CA never issued MUST carry the extended revoke
 * extension (§4.4.8, extnValue NULL, not critical) in responseExtensions. Ours do so only then (a status marked
 * `notIssued`: a compromised CA's answer about a serial it has no certificate of, ocsp/responder.ts); an answer
 * about genuine certificates is encoded as it always was.
 */
import { createHash } from "node:crypto";
import { bitString, encodeTree, enumerated, explicit, generalizedTime, octetString, oid, seq, TAG, tree, type Tree } from "../pki/der.js";
import type { Signer } from "../pki/signer.js";
import { keyIdentifier } from "../profile/extensions.js";
import { OCSP_OID } from "./request.js";

/** OCSPResponseStatus (RFC 6960 §4.2.1); 4 is not used. */
export const RESPONSE_STATUS = {
  successful: 0,
  malformedRequest: 1,
  internalError: 2,
  tryLater: 3,
  sigRequired: 5,
  unauthorized: 6,
} as const;
export type ResponseStatusName = keyof typeof RESPONSE_STATUS;

export type CertStatus =
  | { readonly kind: "good" }
  | { readonly kind: "unknown" }
  | {
      readonly kind: "revoked";
      readonly revokedAt: Date;
      readonly reason: number;
      /** about a serial the CA never issued: the response carries the extended revoke extension (RFC 6960 §2.2) */
      readonly notIssued?: true;
    };

export interface SingleAnswer {
  /** the request's CertID, DER, echoed */
  readonly certIdDer: Buffer;
  readonly status: CertStatus;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
}

/** The delegated responder: its certificate (sent in `certs`) and the signer holding its key. */
export interface ResponderIdentity {
  readonly certificateDer: Buffer;
  readonly signer: Signer;
}

/** An unsigned answer with only a status (malformedRequest, internalError, tryLater, unauthorized). */
export function errorResponse(status: Exclude<ResponseStatusName, "successful">): Buffer {
  return seq(enumerated(RESPONSE_STATUS[status]));
}

const GOOD = Buffer.from([0x80, 0x00]);
/** the extended revoke extension's extnValue content: NULL (RFC 6960 §4.4.8) */
const EXTENDED_REVOKE_VALUE = Buffer.from([0x05, 0x00]);
const UNKNOWN = Buffer.from([0x82, 0x00]);

function certStatus(s: CertStatus): Uint8Array | Tree {
  if (s.kind === "good") return GOOD;
  if (s.kind === "unknown") return UNKNOWN;
  return tree(0xa1, generalizedTime(s.revokedAt), ...(s.reason !== 0 ? [explicit(0, enumerated(s.reason))] : []));
}

/** Builds and signs a successful response. `nonce` is the request's nonce extnValue content, echoed as it came. */
export async function signedResponse(p: {
  readonly responder: ResponderIdentity;
  readonly producedAt: Date;
  readonly answers: readonly SingleAnswer[];
  readonly nonce?: Buffer | undefined;
}): Promise<Buffer> {
  const responderKeyHash = keyIdentifier(p.responder.signer.spki);
  const responses = p.answers.map((a) =>
    tree(TAG.SEQUENCE, a.certIdDer, certStatus(a.status), generalizedTime(a.thisUpdate), tree(0xa0, generalizedTime(a.nextUpdate))),
  );
  const exts = [
    ...(p.nonce ? [tree(TAG.SEQUENCE, oid(OCSP_OID.nonce), octetString(p.nonce))] : []),
    ...(p.answers.some((a) => a.status.kind === "revoked" && a.status.notIssued) ? [tree(TAG.SEQUENCE, oid(OCSP_OID.extendedRevoke), octetString(EXTENDED_REVOKE_VALUE))] : []),
  ];
  const extensions = exts.length ? [tree(0xa1, tree(TAG.SEQUENCE, ...exts))] : [];
  const tbs = encodeTree(
    tree(TAG.SEQUENCE, explicit(2, octetString(responderKeyHash)), generalizedTime(p.producedAt), tree(TAG.SEQUENCE, ...responses), ...extensions),
  );
  const signature = await p.responder.signer.sign(tbs);
  const basic = encodeTree(
    tree(TAG.SEQUENCE, tbs, p.responder.signer.algorithmIdentifier, bitString(signature), tree(0xa0, tree(TAG.SEQUENCE, p.responder.certificateDer))),
  );
  return seq(enumerated(RESPONSE_STATUS.successful), explicit(0, seq(oid(OCSP_OID.basic), octetString(basic))));
}

/** A strong ETag for a response body. */
export function responseEtag(der: Uint8Array): string {
  return `"${createHash("sha256").update(der).digest("base64url").slice(0, 32)}"`;
}
