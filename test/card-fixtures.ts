/**
 * Shared fixtures of the card tests: a test CA key (generated once per test file) and a certificate over a
 * card's SubjectPublicKeyInfo, built with our DER encoder and signed by a SoftwareSigner, so the card's
 * personalisation checks (the certificate must certify the card's key) run against real X.509.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { bitString, explicit, integer, oid, seq, set, time, utf8 } from "../src/pki/der.js";
import { SHA256_WITH_RSA, SoftwareSigner } from "../src/pki/signer.js";

export function rsaKey(): KeyObject {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
}

function name(cn: string): Buffer {
  return seq(set(seq(oid("2.5.4.3"), utf8(cn))));
}

/** A certificate for `spki` issued by `caKey` (a CA signing its own certificate when spki is its own key). */
export async function certificateFor(p: { spki: Uint8Array; caKey: KeyObject; subject: string; issuer: string; serial: number }): Promise<Buffer> {
  const signer = new SoftwareSigner(p.caKey);
  const now = Date.UTC(2026, 0, 1);
  const tbs = seq(
    explicit(0, integer(2)),
    integer(p.serial),
    SHA256_WITH_RSA,
    name(p.issuer),
    seq(time(new Date(now)), time(new Date(now + 365 * 86400_000))),
    name(p.subject),
    Buffer.from(p.spki),
  );
  const sig = await signer.sign(tbs);
  return seq(tbs, SHA256_WITH_RSA, bitString(sig));
}
