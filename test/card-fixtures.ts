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

/**
 * Card key `n` of a test: the public key `spki` (DER, or PEM) with 16 octets of its RSA modulus changed by `n` —
 * a distinct 2048-bit public key per card and type without generating hundreds of key pairs (a workspace
 * certifies a key to one resident and one type: ERR_KEY_IN_USE). Key 0 is `spki` itself, the one whose private
 * key the test holds; nobody holds the others'. Returned as `spki` came (PEM in, PEM out).
 */
export function cardKeyVariant<T extends string | Buffer>(spki: T, n: number): T {
  const pem = typeof spki === "string";
  const der = pem ? Buffer.from(spki.replace(/-----[^-]+-----|\s+/g, ""), "base64") : Buffer.from(spki);
  // octets 100–115 lie inside an RSA-2048 SubjectPublicKeyInfo's modulus (it runs from octet 33 to 288)
  for (let i = 0, v = n; i < 6 && v > 0; i++, v = Math.floor(v / 256)) der[115 - i] = der[115 - i]! ^ (v & 255);
  if (!pem) return der as T;
  const b64 = der.toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN PUBLIC KEY-----\n${b64}${b64.endsWith("\n") ? "" : "\n"}-----END PUBLIC KEY-----\n` as T;
}
