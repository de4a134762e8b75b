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
import { bitString, explicit, extension, header, integer, seq, time, TAG } from "../pki/der.js";
import { encodeEntry, type CrlEntryInput, type EncodedEntries } from "../profile/crl-entry.js";
import { authorityKeyIdentifier } from "../profile/extensions.js";
import { EXT_OID } from "../profile/oids.js";

export interface CrlParams {
  /** DER Name of the issuer, byte for byte as in the CA certificate's subject */
  readonly issuerName: Buffer;
  readonly authorityKeyId: Buffer;
  readonly number: bigint;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /**
   * Revoked entries, in chunks: either entries to encode, or entries the store already holds encoded (its
   * revocation log), which are only concatenated.
   */
  readonly entries: AsyncIterable<readonly CrlEntryInput[] | EncodedEntries> | Iterable<readonly CrlEntryInput[] | EncodedEntries>;
  /**
   * The CA's signer, or its promise: it is needed only once every entry is in, so a key still being unlocked
   * (PBKDF2 on the thread pool) costs nothing while the entries stream.
   */
  readonly signer: Signer | PromiseLike<Signer>;
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

export type { CrlEntryInput, EncodedEntries };

export async function buildCrl(p: CrlParams): Promise<BuiltCrl> {
  if (p.nextUpdate.getTime() <= p.thisUpdate.getTime()) throw new RangeError("nextUpdate must be after thisUpdate");
  const packed: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let entriesBytes = 0;
  let count = 0;
  for await (const chunk of p.entries) {
    if (!Array.isArray(chunk)) {
      // Already encoded: big blocks go in as they are (no copy), small ones are packed with their neighbours.
      const { der, count: n } = chunk as EncodedEntries;
      count += n;
      if (der.length >= PACK_BYTES) {
        if (pendingBytes) {
          packed.push(Buffer.concat(pending, pendingBytes));
          entriesBytes += pendingBytes;
          pending = [];
          pendingBytes = 0;
        }
        packed.push(der);
        entriesBytes += der.length;
        continue;
      }
      pending.push(der);
      pendingBytes += der.length;
      if (pendingBytes >= PACK_BYTES) {
        packed.push(Buffer.concat(pending, pendingBytes));
        entriesBytes += pendingBytes;
        pending = [];
        pendingBytes = 0;
      }
      continue;
    }
    for (const e of chunk as readonly CrlEntryInput[]) {
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

  const signer = await p.signer;
  const crlExtensions = explicit(
    0,
    seq(
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(p.authorityKeyId)),
      extension(EXT_OID.cRLNumber, false, integer(p.number)),
      ...(p.extraExtensions ?? []),
    ),
  );
  const prefix = Buffer.concat([integer(1), signer.algorithmIdentifier, p.issuerName, time(p.thisUpdate), time(p.nextUpdate)]);
  // revokedCertificates is omitted entirely when empty (RFC 5280 §5.1.2.6).
  const revokedHeader = count > 0 ? header(TAG.SEQUENCE, entriesBytes) : Buffer.alloc(0);
  const tbsContentLength = prefix.length + revokedHeader.length + entriesBytes + crlExtensions.length;
  const tbsHeader = header(TAG.SEQUENCE, tbsContentLength);
  const tbsChunks = [tbsHeader, prefix, revokedHeader, ...packed, crlExtensions];

  const signature = await signer.sign(tbsChunks);
  const tail = Buffer.concat([signer.algorithmIdentifier, bitString(signature)]);
  const tbsLength = tbsHeader.length + tbsContentLength;
  const outer = header(TAG.SEQUENCE, tbsLength + tail.length);
  const chunks = [outer, ...tbsChunks, tail].filter((c) => c.length > 0);
  // The file's digest is computed when first asked for: a publisher asks once its writes are in flight.
  let sha256: string | undefined;
  return {
    chunks,
    byteLength: outer.length + tbsLength + tail.length,
    entries: count,
    get sha256(): string {
      if (sha256 === undefined) {
        const h = createHash("sha256");
        for (const c of chunks) h.update(c);
        sha256 = h.digest("hex");
      }
      return sha256;
    },
  };
}

/** Convenience for small CRLs and tests: the whole DER in one buffer. */
export function crlDer(built: BuiltCrl): Buffer {
  return Buffer.concat(built.chunks as Buffer[], built.byteLength);
}
