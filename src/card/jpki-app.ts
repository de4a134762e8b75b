/**
 * The JPKI card application (公的個人認証AP) as a DF: its AID and EF layout (shared/spec/JPKI.md "The card",
 * facts from OpenSC's JPKI driver), and the DigestInfo shapes its sign instruction accepts. The instructions
 * themselves are the card's (card.ts); this module is the application's data.
 */
import { ALWAYS, NEVER, afterPin, type Df, type Ef } from "./file-system.js";

/** AID D3 92 F0 00 26 01 00 00 00 01 */
export const JPKI_AID: Uint8Array = Uint8Array.from([0xd3, 0x92, 0xf0, 0x00, 0x26, 0x01, 0x00, 0x00, 0x00, 0x01]);

/** The EFs of the JPKI application, by the names the spec gives them. */
export const JPKI_EF = Object.freeze({
  /** 署名用電子証明書 — reading it needs the signature PIN */
  signatureCertificate: 0x0001,
  /** 署名用 CA certificate */
  signatureCaCertificate: 0x0002,
  /** 利用者証明用電子証明書 */
  authenticationCertificate: 0x000a,
  /** 利用者証明用 CA certificate */
  authenticationCaCertificate: 0x000b,
  /** token information, 160 bytes */
  tokenInfo: 0x0006,
  /** 3 bytes: which certificates are present */
  certificatesPresent: 0x0008,
  authenticationKey: 0x0017,
  authenticationPin: 0x0018,
  signatureKey: 0x001a,
  signaturePin: 0x001b,
});

/** The token label of a 住基カード (a My Number card says JPKIAPICCTOKEN2). */
export const JPKI_TOKEN_LABEL = "JPKIAPICCTOKEN";
export const TOKEN_INFO_SIZE = 160;
/** A certificate EF's size limit: a JPKI certificate with its four items is well under 2 KiB. */
export const CERTIFICATE_EF_SIZE = 4096;

export const JPKI_DF: Df = Object.freeze({
  name: "jpki",
  aid: JPKI_AID,
  efs: Object.freeze<Ef[]>([
    { kind: "binary", fid: JPKI_EF.signatureCertificate, name: "signature certificate", read: afterPin("signature"), update: NEVER, maxSize: CERTIFICATE_EF_SIZE },
    { kind: "binary", fid: JPKI_EF.signatureCaCertificate, name: "signature CA certificate", read: ALWAYS, update: NEVER, maxSize: CERTIFICATE_EF_SIZE },
    { kind: "binary", fid: JPKI_EF.authenticationCertificate, name: "authentication certificate", read: ALWAYS, update: NEVER, maxSize: CERTIFICATE_EF_SIZE },
    { kind: "binary", fid: JPKI_EF.authenticationCaCertificate, name: "authentication CA certificate", read: ALWAYS, update: NEVER, maxSize: CERTIFICATE_EF_SIZE },
    { kind: "binary", fid: JPKI_EF.tokenInfo, name: "token info", read: ALWAYS, update: NEVER, maxSize: TOKEN_INFO_SIZE },
    { kind: "binary", fid: JPKI_EF.certificatesPresent, name: "certificates present", read: ALWAYS, update: NEVER, maxSize: 3 },
    { kind: "key", fid: JPKI_EF.authenticationKey, name: "authentication key", key: "authentication", pin: "authentication" },
    { kind: "pin", fid: JPKI_EF.authenticationPin, name: "authentication PIN", pin: "authentication" },
    { kind: "key", fid: JPKI_EF.signatureKey, name: "signature key", key: "signature", pin: "signature" },
    { kind: "pin", fid: JPKI_EF.signaturePin, name: "signature PIN", pin: "signature" },
  ]),
});

/** The certificate EFs, by the slot names of the personalisation API. */
export type CertificateSlot = "signature" | "signatureCa" | "authentication" | "authenticationCa";
export const CERTIFICATE_SLOTS: Readonly<Record<CertificateSlot, { fid: number; key?: "signature" | "authentication"; bit: number }>> = Object.freeze({
  signature: { fid: JPKI_EF.signatureCertificate, key: "signature", bit: 0x01 },
  signatureCa: { fid: JPKI_EF.signatureCaCertificate, bit: 0x02 },
  authentication: { fid: JPKI_EF.authenticationCertificate, key: "authentication", bit: 0x04 },
  authenticationCa: { fid: JPKI_EF.authenticationCaCertificate, bit: 0x08 },
});

/**
 * EF 0006: the label in ASCII, padded with spaces to 160 bytes. (The real card's bytes after the label are not
 * in the spec; OpenSC reads only the label.)
 */
export function tokenInfo(label: string): Uint8Array {
  if (!/^[\x20-\x7e]{1,160}$/.test(label)) throw new RangeError("a token label is 1–160 printable ASCII characters");
  const out = new Uint8Array(TOKEN_INFO_SIZE).fill(0x20);
  out.set(Buffer.from(label, "latin1"), 0);
  return out;
}

/** The label in a token-info EF (trailing spaces and NULs dropped). */
export function tokenLabelOf(info: Uint8Array): string {
  return Buffer.from(info).toString("latin1").replace(/[\x00 ]+$/, "");
}

/**
 * EF 0008 (ours; the spec gives only its size): byte 0 is a bit set of the certificates present — 01 signature,
 * 02 signature CA, 04 authentication, 08 authentication CA — and bytes 1–2 are zero.
 */
export function certificatesPresent(present: ReadonlySet<CertificateSlot>): Uint8Array {
  let bits = 0;
  for (const s of present) bits |= CERTIFICATE_SLOTS[s].bit;
  return Uint8Array.from([bits, 0, 0]);
}

/**
 * The DER DigestInfo (RFC 8017 §9.2 note 1) prefixes the sign instruction accepts: SHA-1, SHA-256, SHA-384 and
 * SHA-512 with NULL parameters, each followed by exactly its digest's length. Anything else is 6A 80: the card
 * pads what it is given, so accepting any bytes would make it a raw RSA oracle.
 */
export const DIGEST_INFO_PREFIXES: ReadonlyArray<{ readonly hash: string; readonly prefix: Uint8Array; readonly digestLength: number }> = Object.freeze([
  { hash: "sha1", prefix: Buffer.from("3021300906052b0e03021a05000414", "hex"), digestLength: 20 },
  { hash: "sha256", prefix: Buffer.from("3031300d060960864801650304020105000420", "hex"), digestLength: 32 },
  { hash: "sha384", prefix: Buffer.from("3041300d060960864801650304020205000430", "hex"), digestLength: 48 },
  { hash: "sha512", prefix: Buffer.from("3051300d060960864801650304020305000440", "hex"), digestLength: 64 },
]);

/** The hash a DigestInfo names, or undefined when its bytes are not exactly one of the accepted shapes. */
export function digestInfoHash(di: Uint8Array): string | undefined {
  for (const s of DIGEST_INFO_PREFIXES) {
    if (di.length === s.prefix.length + s.digestLength && s.prefix.every((b, i) => di[i] === b)) return s.hash;
  }
  return undefined;
}

/** The DigestInfo of a digest (the host side builds it; the card checks it). */
export function digestInfo(hash: "sha1" | "sha256" | "sha384" | "sha512", digest: Uint8Array): Uint8Array {
  const s = DIGEST_INFO_PREFIXES.find((p) => p.hash === hash)!;
  if (digest.length !== s.digestLength) throw new RangeError(`a ${hash} digest is ${s.digestLength} bytes`);
  return Buffer.concat([s.prefix, digest]);
}
