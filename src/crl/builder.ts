/**
 * CRL builder, RFC 5280 §5.1: a v2 CertificateList assembled as streamed DER chunks.
 *
 * Entries arrive in chunks from the store and are encoded into packed buffers as they come. Once they are
 * in, the issuer's public key settles the rest of the layout (signature algorithm and length), so the TBS
 * (for the signature) and the whole DER (for its digest) are hashed, and handed to a sink, chunk by chunk
 * without joining them, before the signer is needed: a key still being unlocked overlaps that work. Memory
 * is the encoded entries (~40 bytes each), never an object model per entry, so a million-entry CRL stays
 * small. Callers see only `buildCrl` and `CrlParams`: the core can change (e.g. to a two-pass, disk-spilled
 * builder) without touching them.
 */
import { constants, createHash, createPublicKey, publicDecrypt } from "node:crypto";
import { JpkiError } from "../errors.js";
import { SHA256_DIGEST_INFO_PREFIX, signatureShape, type Signer } from "../pki/signer.js";
import { explicit, extension, header, integer, seq, time, TAG } from "../pki/der.js";
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
   * The CA's signer, or its promise: with `issuerKey`, it is needed only for the signature itself, so a key
   * still being unlocked (PBKDF2 on the thread pool) costs nothing while the entries stream and are hashed.
   */
  readonly signer: Signer | PromiseLike<Signer>;
  /**
   * The issuer's SubjectPublicKeyInfo, as in its certificate. With it, the CRL is laid out, hashed and given to
   * `sink` up to its signature while `signer` is still pending (and the signer must hold this key); without
   * it, the signer is awaited first.
   */
  readonly issuerKey?: Buffer;
  /** Receives the CRL's DER chunk by chunk, in order, as each is settled (e.g. a staged file being written). */
  readonly sink?: (chunk: Buffer) => void;
  /**
   * Called once everything but the signature has gone to `sink`, before the signer is awaited: e.g. to start
   * flushing the staged file to disk while the key unlocks.
   */
  readonly onUnsigned?: (layout: { readonly byteLength: number; readonly entries: number }) => void;
  /** Extra CRL extensions (DER Extension TLVs), e.g. issuingDistributionPoint or deltaCRLIndicator. */
  readonly extraExtensions?: readonly Buffer[];
}

export interface BuiltCrl {
  /** the CRL's DER as consecutive chunks; write them in order */
  readonly chunks: readonly Buffer[];
  readonly byteLength: number;
  readonly entries: number;
  /** SHA-256 of the whole DER (hex) */
  readonly sha256: string;
}

const PACK_BYTES = 64 * 1024;
/** A TBS up to this size is joined and handed to Signer.sign; a larger one is signed by its digest. */
export const SIGN_WHOLE_BYTES = 1 << 20;

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

  // Everything but the signature is settled by the issuer's public key (the signature algorithm and the
  // signature's length): the TBS is hashed, and the file hashed and handed to the sink, before the signer
  // is awaited, so a key still unlocking (PBKDF2) overlaps that work instead of preceding it.
  const shape = signatureShape(p.issuerKey ?? (await p.signer).spki);
  const crlExtensions = crlExtensionsElement(p);
  const prefix = Buffer.concat([integer(1), shape.algorithmIdentifier, p.issuerName, time(p.thisUpdate), time(p.nextUpdate)]);
  // revokedCertificates is omitted entirely when empty (RFC 5280 §5.1.2.6).
  const revokedHeader = count > 0 ? header(TAG.SEQUENCE, entriesBytes) : Buffer.alloc(0);
  const tbsContentLength = prefix.length + revokedHeader.length + entriesBytes + crlExtensions.length;
  const tbsHeader = header(TAG.SEQUENCE, tbsContentLength);
  const tbsLength = tbsHeader.length + tbsContentLength;
  const signatureValue = header(TAG.BIT_STRING, shape.length + 1);
  const tailLength = shape.algorithmIdentifier.length + signatureValue.length + 1 + shape.length;
  const outer = header(TAG.SEQUENCE, tbsLength + tailLength);

  const tbsHash = createHash("sha256");
  const fileHash = createHash("sha256");
  const chunks: Buffer[] = [];
  const put = (c: Buffer, tbs: boolean) => {
    if (!c.length) return;
    if (tbs) tbsHash.update(c);
    fileHash.update(c);
    p.sink?.(c);
    chunks.push(c);
  };
  put(outer, false);
  const tbsPieces = [tbsHeader, prefix, revokedHeader, ...packed, crlExtensions];
  for (const c of tbsPieces) put(c, true);
  put(Buffer.concat([shape.algorithmIdentifier, signatureValue, Buffer.of(0)]), false); // the signature goes after the 0 unused bits
  p.onUnsigned?.({ byteLength: outer.length + tbsLength + tailLength, entries: count });

  const signer = await p.signer;
  if (p.issuerKey && !signer.spki.equals(p.issuerKey)) throw new JpkiError("ERR_INTERNAL", "the CRL signer holds another key than issuerKey: the CA's key and certificate do not belong together");
  if (!signer.algorithmIdentifier.equals(shape.algorithmIdentifier)) throw new JpkiError("ERR_INTERNAL", "the CRL signer uses another signature algorithm than its key implies");
  const digest = tbsHash.digest();
  // A TBS up to SIGN_WHOLE_BYTES goes to the signer whole: a software key signs it on libuv's thread pool, where
  // signDigest's RSA operation runs on this thread (≈ 0.4 ms a CRL), so a run publishing hundreds of partition CRLs
  // builds the next ones meanwhile (the CRL phase of 100,000 notices at 1M residents: 0.85 s → 0.77 s). A larger
  // one is signed by its digest, never joined.
  const signature = tbsLength <= SIGN_WHOLE_BYTES ? await signer.sign(Buffer.concat(tbsPieces, tbsLength)) : await signer.signDigest(digest);
  if (signature.length !== shape.length) throw new JpkiError("ERR_INTERNAL", `a ${shape.length}-byte signature was expected, the signer made ${signature.length} bytes`);
  // Check what you sign: a signer that does not verify its own output (a token) is checked here, against the
  // digest, before a byte of the signature reaches the sink (OpenSSL's RSA verifies inside the operation).
  if (!signer.selfVerifying && !signatureVerifies(signer.spki, digest, signature)) {
    throw new JpkiError("ERR_PROFILE_VIOLATION", "the CRL's signature does not verify with the CA's public key: nothing was published; check the CA key");
  }
  put(signature, false);
  return {
    chunks,
    byteLength: outer.length + tbsLength + tailLength,
    entries: count,
    sha256: fileHash.digest("hex"),
  };
}

/** TBSCertList's crlExtensions [0]: AKI, CRL number (RFC 5280 §5.2.1, §5.2.3), then the extra ones in order. */
export function crlExtensionsElement(p: Pick<CrlParams, "authorityKeyId" | "number" | "extraExtensions">): Buffer {
  return explicit(
    0,
    seq(
      extension(EXT_OID.authorityKeyIdentifier, false, authorityKeyIdentifier(p.authorityKeyId)),
      extension(EXT_OID.cRLNumber, false, integer(p.number)),
      ...(p.extraExtensions ?? []),
    ),
  );
}

/** Whether `signature` is an RSA PKCS#1 v1.5 signature of the SHA-256 `digest` under `spki`. */
function signatureVerifies(spki: Buffer, digest: Buffer, signature: Buffer): boolean {
  try {
    const key = createPublicKey({ key: spki, format: "der", type: "spki" });
    return publicDecrypt({ key, padding: constants.RSA_PKCS1_PADDING }, signature).equals(Buffer.concat([SHA256_DIGEST_INFO_PREFIX, digest]));
  } catch {
    return false;
  }
}

/** Convenience for small CRLs and tests: the whole DER in one buffer. */
export function crlDer(built: BuiltCrl): Buffer {
  return Buffer.concat(built.chunks as Buffer[], built.byteLength);
}
