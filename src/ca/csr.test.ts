/**
 * verifyCsr: a card's PKCS#10 request (RFC 2986) is DER, signed with sha256WithRSAEncryption (parameters
 * NULL or absent, RFC 4055 §5) and carries an RSA-2048 key with e = 65537. Requests from openssl and
 * hand-built ones for each defect.
 */
import { execFileSync } from "node:child_process";
import { createPublicKey, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bitString, explicit, integer, nul, octetString, oid, printable, seq, set, tlv } from "../pki/der.js";
import { verifyCsr } from "./csr.js";
import { errorCodeOf } from "../../test/error-code.js";

const dir = mkdtempSync(join(tmpdir(), "jpki-csr-"));
const SHA256_RSA = "1.2.840.113549.1.1.11";
const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const goodSpki = publicKey.export({ type: "spki", format: "der" });
const name = seq(set(seq(oid("2.5.4.3"), printable("card"))));

/** A request built by hand: `info` is what is signed; every part can be replaced. */
function csr(o: { spki?: Buffer; alg?: Buffer; hash?: string; key?: KeyObject; tamper?: boolean; version?: number } = {}): Buffer {
  const info = seq(integer(o.version ?? 0), name, o.spki ?? goodSpki, explicit(0, Buffer.alloc(0)));
  const sig = sign(o.hash ?? "sha256", info, o.key ?? privateKey);
  if (o.tamper) sig[10]! ^= 1;
  return seq(info, o.alg ?? seq(oid(SHA256_RSA), nul()), bitString(sig));
}
const code = errorCodeOf;

function opensslCsr(file: string, digest: string, keyArgs: string[] = ["-pkeyopt", "rsa_keygen_bits:2048"]): Buffer {
  const key = join(dir, `${file}.key`);
  execFileSync("openssl", ["genpkey", "-algorithm", "RSA", ...keyArgs, "-out", key], { stdio: "ignore" });
  const out = join(dir, `${file}.csr`);
  execFileSync("openssl", ["req", "-new", "-key", key, "-subj", "/CN=card", `-${digest}`, "-out", out], { stdio: "ignore" });
  return readFileSync(out);
}

describe("verifyCsr", () => {
  it("accepts an openssl request signed with SHA-256 and returns the request's own SPKI bytes", () => {
    const pem = opensslCsr("good", "sha256");
    const spki = verifyCsr(pem);
    expect(createPublicKey({ key: spki, format: "der", type: "spki" }).asymmetricKeyType).toBe("rsa");
  });

  it("accepts sha256WithRSAEncryption with NULL parameters and with none (RFC 4055 §5)", () => {
    expect(verifyCsr(csr()).equals(goodSpki)).toBe(true);
    expect(verifyCsr(csr({ alg: seq(oid(SHA256_RSA)) })).equals(goodSpki)).toBe(true);
  });

  it.each(["sha1", "sha384", "sha512"])("refuses an openssl request signed with %s (ERR_CSR_UNSUPPORTED)", (digest) => {
    expect(code(() => verifyCsr(opensslCsr(digest, digest)))).toBe("ERR_CSR_UNSUPPORTED");
  });

  it("refuses other algorithms by code, before looking at the signature", () => {
    expect(code(() => verifyCsr(csr({ hash: "sha1", alg: seq(oid("1.2.840.113549.1.1.5"), nul()) })))).toBe("ERR_CSR_UNSUPPORTED");
    expect(code(() => verifyCsr(csr({ alg: seq(oid("1.2.840.113549.1.1.10"), seq()) })))).toBe("ERR_CSR_UNSUPPORTED");
    expect(code(() => verifyCsr(csr({ alg: seq(oid("1.2.840.10045.4.3.2")) })))).toBe("ERR_CSR_UNSUPPORTED");
  });

  it("refuses sha256WithRSAEncryption with parameters other than NULL", () => {
    expect(code(() => verifyCsr(csr({ alg: seq(oid(SHA256_RSA), octetString(Buffer.from([0]))) })))).toBe("ERR_CSR_MALFORMED");
  });

  it("refuses a request whose key is not RSA-2048 with e = 65537, even when its signature verifies", () => {
    expect(code(() => verifyCsr(opensslCsr("e3", "sha256", ["-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3"])))).toBe("ERR_KEY_UNSUPPORTED");
    expect(code(() => verifyCsr(opensslCsr("short", "sha256", ["-pkeyopt", "rsa_keygen_bits:1024"])))).toBe("ERR_KEY_UNSUPPORTED");
    // the same key with its exponent written non-minimally (02 04 00 01 00 01): DER outside, not inside
    const jwk = publicKey.export({ format: "jwk" });
    const n = Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n!, "base64url")]);
    const berKey = seq(seq(oid("1.2.840.113549.1.1.1"), nul()), bitString(seq(tlv(0x02, n), tlv(0x02, Buffer.from("00010001", "hex")))));
    expect(createPublicKey({ key: berKey, format: "der", type: "spki" }).export({ format: "jwk" }).e).toBe("AQAB"); // OpenSSL would take it
    expect(code(() => verifyCsr(csr({ spki: berKey })))).toBe("ERR_KEY_MALFORMED");
  });

  it("refuses a request that is not DER", () => {
    const der = csr();
    expect(der.subarray(0, 2).toString("hex")).toBe("3082");
    const longer = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]); // non-minimal outer length
    expect(code(() => verifyCsr(longer))).toBe("ERR_CSR_MALFORMED");
    const indefinite = Buffer.concat([Buffer.from([0x30, 0x80]), der.subarray(4), Buffer.from([0, 0])]);
    expect(code(() => verifyCsr(indefinite))).toBe("ERR_CSR_MALFORMED");
    expect(code(() => verifyCsr(Buffer.concat([der, Buffer.from([0])])))).toBe("ERR_CSR_MALFORMED");
    // a long-form length inside the signed info (the signature covers the BER bytes and still verifies)
    const berName = Buffer.concat([Buffer.from([0x30, 0x81, name.length - 2]), name.subarray(2)]);
    const info = seq(integer(0), berName, goodSpki, explicit(0, Buffer.alloc(0)));
    const berInfo = seq(info, seq(oid(SHA256_RSA), nul()), bitString(sign("sha256", info, privateKey)));
    expect(code(() => verifyCsr(berInfo))).toBe("ERR_CSR_MALFORMED");
    expect(code(() => verifyCsr(csr({ version: 1 })))).toBe("ERR_CSR_MALFORMED");
  });

  it("refuses a request whose signature does not verify", () => {
    expect(code(() => verifyCsr(csr({ tamper: true })))).toBe("ERR_CSR_SIGNATURE");
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
    expect(code(() => verifyCsr(csr({ key: other })))).toBe("ERR_CSR_SIGNATURE");
  });
});
