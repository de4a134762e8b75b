/**
 * One CRL entry (revokedCertificates element, RFC 5280 §5.1.2.6) as DER: encoded once, when the certificate is
 * revoked, and kept in the store's revocation log, so building a CRL of any size only concatenates what the
 * store already holds. The builder and both store backends use this one encoder.
 */
import { reasonName } from "../crl/reason.js";
import { JpkiError } from "../errors.js";
import { enumerated, extension, generalizedTime, head, headAt, headerLengthAt, integerFromUnsigned, seq, time } from "../pki/der.js";
import { EXT_OID } from "./oids.js";

export interface CrlEntryInput {
  /** serial as lower-case hex */
  readonly serial: string;
  readonly revokedAt: Date;
  /** CRLReason code; 0 (unspecified) is encoded by leaving the extension out (RFC 5280 §5.3.1) */
  readonly reason: number;
  /**
   * invalidityDate (RFC 5280 §5.3.2): when the certificate became invalid, if earlier than it is known to be by
   * revocationDate. The provider's CRL (provider/workspace.ts) carries the public certificate's revocation time in it.
   */
  readonly invalidityDate?: Date;
}

/** Encoded entries as they stream from the store into the builder. */
export interface EncodedEntries {
  /** `count` revokedCertificates elements, concatenated */
  readonly der: Buffer;
  readonly count: number;
  /**
   * Set when these are one whole block of the store's revocation log (store/revocation-log.ts), unfiltered: its id
   * and SHA-256, so a publisher can note where the block lies in the CRL it writes and hand it back next time
   * (crl/reuse.ts, the store's `known`).
   */
  readonly block?: { readonly id: string; readonly digest: Buffer };
}

/**
 * What a store announces before the entries when asked (crlEntries' `withTotal`): exactly how many entries and
 * DER bytes follow, so the builder lays the CRL out before the first entry and hands each chunk on as it comes
 * (crl/builder.ts streamCrl) instead of holding them all until the last one tells it the length.
 */
export interface EntriesTotal {
  readonly totalBytes: number;
  readonly totalCount: number;
}

export function isEntriesTotal(x: unknown): x is EntriesTotal {
  return typeof x === "object" && x !== null && typeof (x as EntriesTotal).totalBytes === "number" && !Array.isArray(x);
}

const reasonExtensions = new Map<number, Buffer>();
function reasonExtension(code: number): Buffer {
  let ext = reasonExtensions.get(code);
  if (!ext) {
    // Every revoking path encodes its entry here, inside its transaction: a reason that is no CRLReason code (1.5
    // was stored as such by SQLite and written into the entry as 1; 7 is unassigned) fails it, and nothing is revoked.
    if (reasonName(code) === undefined) throw new JpkiError("ERR_INTERNAL", `revocation reason ${String(code)} is no CRLReason code (RFC 5280 §5.3.1): nothing was revoked`);
    ext = seq(extension(EXT_OID.cRLReason, false, enumerated(code)));
    reasonExtensions.set(code, ext);
  }
  return ext;
}

// The revocationDate of the last entry encoded: the entries of one transaction share it, and formatting the
// time was a good part of encoding an entry. seq() copies it into the entry, so sharing the buffer is safe.
let lastRevokedAt = Number.NaN;
let lastRevocationDate: Buffer = Buffer.alloc(0);

/** revokedCertificates entry: SEQUENCE { userCertificate, revocationDate, crlEntryExtensions OPTIONAL }. */
export function encodeEntry(e: CrlEntryInput): Buffer {
  const at = e.revokedAt.getTime();
  if (at !== lastRevokedAt) {
    lastRevocationDate = time(e.revokedAt);
    lastRevokedAt = at;
  }
  const parts = [integerFromUnsigned(Buffer.from(e.serial, "hex")), lastRevocationDate];
  if (e.invalidityDate) {
    reasonExtension(e.reason); // the same check of the code
    // the reason last, so decodeEntries still finds it as the entry's last TLV
    parts.push(seq(extension(EXT_OID.invalidityDate, false, generalizedTime(e.invalidityDate)), ...(e.reason !== 0 ? [extension(EXT_OID.cRLReason, false, enumerated(e.reason))] : [])));
  } else if (e.reason !== 0) parts.push(reasonExtension(e.reason));
  return seq(...parts);
}

/** The byte length of the DER element starting at `at` (header included); throws RangeError on a bad header (der.ts headAt). */
export function elementLength(buf: Uint8Array, at: number): number {
  const fault = headAt(buf, at, buf.length);
  if (fault) throw new RangeError(`DER element at ${at}: ${fault}`);
  return head.headerLength + head.length;
}

/** Byte offsets of the consecutive entries in `der` (one more than the count: the end). */
export function entryOffsets(der: Uint8Array): number[] {
  const out = [0];
  for (let at = 0; at < der.length; ) {
    at += elementLength(der, at);
    if (at > der.length) throw new RangeError("CRL entries: last element runs past the end");
    out.push(at);
  }
  return out;
}

/**
 * Decodes entries this module encoded (serial, date, reason): for tests and for stores that compare what a log
 * holds. Not a general CRL parser; profile/crl-reader.ts reads CRLs from outside.
 */
export function decodeEntries(der: Uint8Array): CrlEntryInput[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const offsets = entryOffsets(buf);
  const out: CrlEntryInput[] = [];
  for (let i = 0; i + 1 < offsets.length; i++) {
    const start = offsets[i]!;
    const inner = start + headerLengthAt(buf, start);
    // serial INTEGER
    const sLen = elementLength(buf, inner);
    const sHdr = headerLengthAt(buf, inner);
    let serial = buf.subarray(inner + sHdr, inner + sLen);
    if (serial.length > 1 && serial[0] === 0) serial = serial.subarray(1);
    // revocationDate: UTCTime (0x17) or GeneralizedTime (0x18)
    const tAt = inner + sLen;
    const tHdr = headerLengthAt(buf, tAt);
    const tLen = elementLength(buf, tAt);
    const text = buf.toString("latin1", tAt + tHdr, tAt + tLen);
    const full = buf[tAt] === 0x17 ? (Number(text.slice(0, 2)) >= 50 ? "19" : "20") + text : text;
    const revokedAt = new Date(Date.UTC(+full.slice(0, 4), +full.slice(4, 6) - 1, +full.slice(6, 8), +full.slice(8, 10), +full.slice(10, 12), +full.slice(12, 14)));
    // crlEntryExtensions: the reason code, when written, is the last TLV (an ENUMERATED of one octet); an
    // invalidityDate may come before it
    let reason = 0;
    const end = offsets[i + 1]!;
    if (tAt + tLen < end && buf[end - 3] === 0x0a && buf[end - 2] === 0x01) reason = buf[end - 1]!;
    out.push({ serial: serial.toString("hex"), revokedAt, reason });
  }
  return out;
}
