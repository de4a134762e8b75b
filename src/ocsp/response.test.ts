// signedResponse's encoding (RFC 6960 §4.2.1), written out by hand: the extended revoke extension (§2.2) goes into
// responseExtensions only for a status marked notIssued, and every other answer is encoded exactly as before it.
import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { children, enumerated, explicit, generalizedTime, oid, octetString, readHeader, seq, tlv } from "../pki/der.js";
import { SoftwareSigner } from "../pki/signer.js";
import { keyIdentifier } from "../profile/extensions.js";
import { OCSP_OID } from "./request.js";
import { signedResponse, type CertStatus } from "./response.js";

const signer = new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
const certId = seq(seq(oid("1.3.14.3.2.26"), tlv(0x05, Buffer.alloc(0))), octetString(Buffer.alloc(20)), octetString(Buffer.alloc(20, 1)), tlv(0x02, Buffer.from([0x77, 0x77])));
const t = new Date("2030-01-01T00:00:00Z");
const n = new Date("2030-01-01T01:00:00Z");
const nonce = octetString(Buffer.from("nonce-12345678"));

async function tbsOf(statuses: CertStatus[], withNonce: boolean): Promise<Buffer> {
  const der = await signedResponse({
    responder: { certificateDer: seq(), signer },
    producedAt: t,
    answers: statuses.map((status) => ({ certIdDer: certId, status, thisUpdate: t, nextUpdate: n })),
    nonce: withNonce ? nonce : undefined,
  });
  const [, bytes] = children(der);
  const [, octets] = children(children(bytes!)[0]!);
  return children(octets!.subarray(readHeader(octets!).headerLength))[0]!;
}

/** ResponseData as RFC 6960 §4.2.1 has it, with responseExtensions holding `exts` (none: left out). */
function expected(certStatuses: Buffer[], exts: Buffer[]): Buffer {
  const single = (s: Buffer) => seq(certId, s, generalizedTime(t), explicit(0, generalizedTime(n)));
  return seq(explicit(2, octetString(keyIdentifier(signer.spki))), generalizedTime(t), seq(...certStatuses.map(single)), ...(exts.length ? [explicit(1, seq(...exts))] : []));
}

const GOOD = Buffer.from([0x80, 0x00]);
const revoked = (reason: number) => tlv(0xa1, Buffer.concat([generalizedTime(t), ...(reason ? [explicit(0, enumerated(reason))] : [])]));
const NONCE_EXT = seq(oid(OCSP_OID.nonce), octetString(nonce));
const EXTENDED_REVOKE = seq(oid(OCSP_OID.extendedRevoke), octetString(Buffer.from([0x05, 0x00])));

describe("signedResponse", () => {
  it("encodes genuine answers without responseExtensions, or with the nonce alone", async () => {
    const genuine: CertStatus = { kind: "revoked", revokedAt: t, reason: 2 };
    expect(await tbsOf([{ kind: "good" }], false)).toEqual(expected([GOOD], []));
    expect(await tbsOf([genuine], false)).toEqual(expected([revoked(2)], []));
    expect(await tbsOf([genuine, { kind: "revoked", revokedAt: t, reason: 0 }], true)).toEqual(expected([revoked(2), revoked(0)], [NONCE_EXT]));
  });

  it("adds the extended revoke extension (RFC 6960 §4.4.8: extnValue NULL, not critical) when an answer is about a serial never issued, once, after the nonce", async () => {
    const forged: CertStatus = { kind: "revoked", revokedAt: t, reason: 2, notIssued: true };
    expect(await tbsOf([forged], false)).toEqual(expected([revoked(2)], [EXTENDED_REVOKE]));
    expect(await tbsOf([{ kind: "revoked", revokedAt: t, reason: 2 }, forged, forged], true)).toEqual(expected([revoked(2), revoked(2), revoked(2)], [NONCE_EXT, EXTENDED_REVOKE]));
  });
});
