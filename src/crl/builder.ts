/**
 * CRL builder, RFC 5280 §5.1: a v2 CertificateList assembled as streamed DER chunks.
 *
 * Entries arrive in chunks from the store and are encoded into packed buffers as they come; the signer
 * hashes the chunks without joining them. Memory is the encoded entries (~40 bytes each), never an
 * object model per entry, so a million-entry CRL stays small. Callers see only `buildCrl` and `CrlParams`:
 * the core can change (e.g. to a two-pass, disk-spilled builder) without touching them.
 */
import { createHash } from "node:crypto";
import type { Signer } from "../pki/signer.js";
import {
  bitString,
  enumerated,
  explicit,
  extension,
  header,
  integer,
  integerFromUnsigned,
  seq,
  time,
  TAG,
} from "../pki/der.js";
import { authorityKeyIdentifier } from "../profile/extensions.js";
import { EXT_OID } from "../profile/oids.js";

export interface CrlEntryInput {
  /** serial as lower-case hex */
  readonly serial: string;
  readonly revokedAt: Date;
  /** CRLReason code; 0 (unspecified) is encoded by leaving the extension out (RFC 5280 §5.3.1) */
  readonly reason: number;
}

export interface CrlParams {
  /** DER Name of the issuer, byte for byte as in the CA certificate's subject */
  readonly issuerName: Buffer;
  readonly authorityKeyId: Buffer;
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** revoked entries, in chunks */
  readonly entries: AsyncIterable<readonly CrlEntryInput[]> | Iterable<readonly CrlEntryInput[]>;
  readonly signer: Signer;
  /** Extra CRL extensions (DER Extension TLVs), e.g. issuingDistributionPoint or deltaCRLIndicator. */
  readonly extraExtensions?: readonly Buffer[];
}

export interface BuiltCrl {
  /** the CRL's DER as consecutive chunks; write them in order */
  readonly chunks: readonly Buffer[];
  readonly byteLength: number;
  readonly entries: number;
  readonly sha256: string;
}

const PACK_BYTES = 64 * 1024;

const reasonExtensions = new Map<number, Buffer>();
function reasonExtension(code: number): Buffer {
  let ext = reasonExtensions.get(code);
  if (!ext) {
    ext = seq(extension(EXT_OID.cRLReason, false, enumerated(code)));
    reasonExtensions.set(code, ext);
  }
  return ext;
}

/** revokedCertificates entry: SEQUENCE { userCertificate, revocationDate, crlEntryExtensions OPTIONAL }. */
export function encodeEntry(e: CrlEntryInput): Buffer {
  const parts = [integerFromUnsigned(Buffer.from(e.serial, "hex")), time(e.revokedAt)];
  if (e.reason !== 0) parts.push(reasonExtension(e.reason));
  return seq(...parts);
}

export async function buildCrl(p: CrlParams): Promise<BuiltCrl> {
  if (p.nextUpdate.getTime() <= p.thisUpdate.getTime()) throw new RangeError("nextUpdate must be after thisUpdate");
  const packed: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let entriesBytes = 0;
  let count = 0;
  for await (const chunk of p.entries) {
    for (const e of chunk) {
      const enc = encodeEntry(e);
      pending.push(enc);
      pendingBytes += enc.length;
      count++;
      if (pendingBytes >= PACK_BYTES) {
        packed.push(Buffer.concat(pending, pendingBytes));
        entriesBytes += pendingBytes;
        pending = [];
        pendingBytes = 0;
      }
    }
  }
  if (pendingBytes) {
    packed.push(Buffer.concat(pending, pendingBytes));
    entriesBytes += pendingBytes;
  }

  const crlExtensions = explicit(
    0,
    seq(
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(p.authorityKeyId)),
      extension(EXT_OID.cRLNumber, false, integer(p.number)),
      ...(p.extraExtensions ?? []),
    ),
  );
  const prefix = Buffer.concat([integer(1), p.signer.algorithmIdentifier, p.issuerName, time(p.thisUpdate), time(p.nextUpdate)]);
  // revokedCertificates is omitted entirely when empty (RFC 5280 §5.1.2.6).
  const revokedHeader = count > 0 ? header(TAG.SEQUENCE, entriesBytes) : Buffer.alloc(0);
  const tbsContentLength = prefix.length + revokedHeader.length + entriesBytes + crlExtensions.length;
  const tbsHeader = header(TAG.SEQUENCE, tbsContentLength);
  const tbsChunks = [tbsHeader, prefix, revokedHeader, ...packed, crlExtensions];

  const signature = await p.signer.sign(tbsChunks);
  const tail = Buffer.concat([p.signer.algorithmIdentifier, bitString(signature)]);
  const tbsLength = tbsHeader.length + tbsContentLength;
  const outer = header(TAG.SEQUENCE, tbsLength + tail.length);
  const chunks = [outer, ...tbsChunks, tail].filter((c) => c.length > 0);
  const h = createHash("sha256");
  for (const c of chunks) h.update(c);
  return { chunks, byteLength: outer.length + tbsLength + tail.length, entries: count, sha256: h.digest("hex") };
}

/** Convenience for small CRLs and tests: the whole DER in one buffer. */
export function crlDer(built: BuiltCrl): Buffer {
  return Buffer.concat(built.chunks as Buffer[], built.byteLength);
}
