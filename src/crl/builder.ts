/**
 * CRL builder, RFC 5280 §5.1: a v2 CertificateList assembled as streamed DER chunks.
 *
 * Entries arrive in chunks from the store and are encoded into packed buffers as they come. Once the layout is
 * known — before the first entry when the store announces the entries' total, else after the last — the issuer's
 * public key settles the rest (signature algorithm and length), so the TBS (for the signature) and the whole DER
 * (for its digest) are hashed, and handed to a sink, chunk by chunk without joining them, before the signer is
 * needed: a key still being unlocked overlaps that work. Memory is at most the encoded entries (~40 bytes each;
 * one store page when streamed), never an object model per entry, so a million-entry CRL stays small. Callers
 * see only `buildCrl`, `streamCrl` and `CrlParams`.
 */
import { createHash } from "node:crypto";
import { JpkiError } from "../errors.js";
import { signatureOfDigestVerifies, signatureShape, type Signer } from "../pki/signer.js";
import { explicit, extension, header, integer, seq, time, TAG } from "../pki/der.js";
import { encodeEntry, isEntriesTotal, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
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
   * revocation log), which are only concatenated. The first item may be their total (EntriesTotal): then the CRL
   * is laid out before the first entry arrives, and the entries must add up to it (ERR_INTERNAL otherwise).
   * An encoded chunk's `der` is read before the next item is asked for and never kept by reference (what must
   * be kept is copied), so its producer may reuse that memory for the next chunk (crl/reuse.ts reads the previous
   * CRL through one window: memory touched for the first time costs more than the work done on it here).
   */
  readonly entries: AsyncIterable<readonly CrlEntryInput[] | EncodedEntries | EntriesTotal> | Iterable<readonly CrlEntryInput[] | EncodedEntries | EntriesTotal>;
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
  /**
   * Receives the CRL's DER chunk by chunk, in order, as each is settled (e.g. a staged file being written). A chunk
   * may be the store's memory as it came (a big log block), which its producer may reuse once the next entries are
   * asked for (CrlParams.entries): write it or copy it before returning.
   */
  readonly sink?: (chunk: Buffer) => void;
  /**
   * Called once everything but the signature has gone to `sink`, before the signer is awaited: e.g. to start
   * flushing the staged file to disk while the key unlocks.
   */
  readonly onUnsigned?: (layout: CrlLayout) => void;
  /** Extra CRL extensions (DER Extension TLVs), e.g. issuingDistributionPoint or deltaCRLIndicator. */
  readonly extraExtensions?: readonly Buffer[];
  /**
   * For a TBS larger than SIGN_WHOLE_BYTES: the SHA-256 of the TBS to sign, taken by the caller (called once
   * `onUnsigned` has returned), which the builder then does not hash itself. crl/publisher.ts gives the digest of
   * the TBS as read back from the staged file (crl/verify.ts), once it has checked those bytes are the ones written:
   * a 44 MB CRL is then hashed for its signature once, after it is written (while the file flushes to disk),
   * instead of twice, the first time while the store's blocks stream in.
   */
  readonly signedDigest?: () => Buffer;
  /**
   * false: the whole DER is not hashed here (`sha256` comes back empty), for a caller that reads the file back and
   * hashes it on the way (crl/publisher.ts, crl/verify.ts): one pass less over a CRL of tens of megabytes.
   */
  readonly hashFile?: boolean;
}

/** Where a built CRL's parts lie in its DER. */
export interface CrlLayout {
  readonly byteLength: number;
  readonly entries: number;
  /** the offset of the first revokedCertificates entry in the DER (crl/reuse.ts records blocks relative to the file) */
  readonly entriesOffset: number;
}

export interface BuiltCrl {
  /** the CRL's DER as consecutive chunks; write them in order */
  readonly chunks: readonly Buffer[];
  readonly byteLength: number;
  readonly entries: number;
  /** SHA-256 of the whole DER (hex); "" when built with `hashFile: false` */
  readonly sha256: string;
}

/** A CRL that went to its sink only (streamCrl): no chunks kept. */
export type StreamedCrl = Omit<BuiltCrl, "chunks">;

const PACK_BYTES = 64 * 1024;
/** A TBS up to this size is joined and handed to Signer.sign; a larger one is signed by its digest. */
export const SIGN_WHOLE_BYTES = 1 << 20;

export type { CrlEntryInput, EncodedEntries, EntriesTotal };

/** Builds a CRL and keeps its DER chunks (and hands them to `sink`, if any, as they settle). */
export async function buildCrl(p: CrlParams): Promise<BuiltCrl> {
  return (await build(p, true)) as BuiltCrl;
}

/**
 * Builds a CRL into `sink` alone, keeping none of its DER. When the entries announce their total first (a store's
 * crlEntries with `withTotal`), the CRL is laid out before the first entry and each chunk goes to the sink, hashed,
 * as it arrives: memory stays one store page, and each byte is hashed and written while it is still in the
 * processor's cache (a 1,000,000-entry CRL: 44 MB that were otherwise held, then walked three more times). Without
 * a total the entries are held until the last one, as buildCrl does.
 */
export async function streamCrl(p: CrlParams & { readonly sink: (chunk: Buffer) => void }): Promise<StreamedCrl> {
  return build(p, false);
}

async function build(p: CrlParams, keep: boolean): Promise<BuiltCrl | StreamedCrl> {
  if (p.nextUpdate.getTime() <= p.thisUpdate.getTime()) throw new RangeError("nextUpdate must be after thisUpdate");
  const it = (Symbol.asyncIterator in p.entries ? p.entries[Symbol.asyncIterator]() : (p.entries as Iterable<readonly CrlEntryInput[] | EncodedEntries | EntriesTotal>)[Symbol.iterator]()) as
    | AsyncIterator<readonly CrlEntryInput[] | EncodedEntries | EntriesTotal>
    | Iterator<readonly CrlEntryInput[] | EncodedEntries | EntriesTotal>;
  try {
    const first = await it.next();
    const total = !first.done && isEntriesTotal(first.value) ? first.value : undefined;

    // Entries arrive in chunks: encoded ones (the store's log) big enough go on as they are (no copy); small ones,
    // and entries to encode, are copied into a pack of about PACK_BYTES, a new one each time (the sink may keep
    // what it is given). A big chunk kept past this call is copied: by `keep`, by a build without the total (held
    // until the last entry), as a TBS piece of a small CRL (put).
    let pack: Buffer | undefined;
    let packBytes = 0;
    let entriesBytes = 0;
    let count = 0;
    const held = keep || !total;
    let emit: (block: Buffer) => void = () => undefined; // set below, once the layout is known or not
    const flushPending = () => {
      if (!pack || !packBytes) return;
      const block = pack.subarray(0, packBytes);
      pack = undefined;
      packBytes = 0;
      emit(block);
    };
    const packIn = (der: Buffer) => {
      if (packBytes + der.length > PACK_BYTES) flushPending();
      pack ??= Buffer.allocUnsafe(PACK_BYTES);
      der.copy(pack, packBytes);
      packBytes += der.length;
      if (packBytes >= PACK_BYTES) flushPending();
    };
    const add = (chunk: readonly CrlEntryInput[] | EncodedEntries | EntriesTotal) => {
      if (isEntriesTotal(chunk)) throw new JpkiError("ERR_INTERNAL", "the store announced the CRL's entries twice");
      if (!Array.isArray(chunk)) {
        const { der, count: n } = chunk as EncodedEntries;
        count += n;
        // A chunk's bytes are the store's only until the next chunk is asked for (CrlParams.entries).
        if (der.length >= PACK_BYTES) {
          flushPending();
          emit(held ? Buffer.from(der) : der);
          return;
        }
        packIn(der);
        return;
      }
      for (const e of chunk as readonly CrlEntryInput[]) {
        packIn(encodeEntry(e));
        count++;
      }
    };
    const rest = async () => {
      for (let r = await it.next(); !r.done; r = await it.next()) add(r.value);
      flushPending();
    };

    const shape = signatureShape(p.issuerKey ?? (await p.signer).spki);
    const crlExtensions = crlExtensionsElement(p);
    const prefix = Buffer.concat([integer(1), shape.algorithmIdentifier, p.issuerName, time(p.thisUpdate), time(p.nextUpdate)]);
    const signatureValue = header(TAG.BIT_STRING, shape.length + 1);
    const tailLength = shape.algorithmIdentifier.length + signatureValue.length + 1 + shape.length;
    const tbsHash = createHash("sha256");
    // Whether the TBS is hashed here: not when the caller gives the digest to sign (signedDigest, large CRLs only).
    let hashTbs = true;
    const fileHash = p.hashFile === false ? undefined : createHash("sha256");
    const chunks: Buffer[] = [];
    // The TBS's pieces while it is no larger than SIGN_WHOLE_BYTES (then it is signed whole), none beyond.
    let tbsPieces: Buffer[] | undefined = [];
    let tbsBytes = 0;
    const put = (c: Buffer, tbs: boolean) => {
      if (!c.length) return;
      if (tbs && hashTbs) {
        tbsHash.update(c);
        tbsBytes += c.length;
        if (tbsBytes > SIGN_WHOLE_BYTES) tbsPieces = undefined;
        tbsPieces?.push(held ? c : Buffer.from(c)); // kept until signed: a copy of a store's chunk (at most SIGN_WHOLE_BYTES)
      }
      fileHash?.update(c);
      p.sink?.(c);
      if (keep) chunks.push(c);
    };
    /** The CRL up to its entries; revokedCertificates is omitted entirely when empty (RFC 5280 §5.1.2.6). */
    const layout = (entries: number, bytes: number) => {
      const revokedHeader = entries > 0 ? header(TAG.SEQUENCE, bytes) : Buffer.alloc(0);
      const tbsContentLength = prefix.length + revokedHeader.length + bytes + crlExtensions.length;
      const tbsHeader = header(TAG.SEQUENCE, tbsContentLength);
      const tbsLength = tbsHeader.length + tbsContentLength;
      if (p.signedDigest && tbsLength > SIGN_WHOLE_BYTES) (hashTbs = false), (tbsPieces = undefined);
      const outer = header(TAG.SEQUENCE, tbsLength + tailLength);
      put(outer, false);
      for (const c of [tbsHeader, prefix, revokedHeader]) put(c, true);
      return { tbsLength, byteLength: outer.length + tbsLength + tailLength, entriesOffset: outer.length + tbsHeader.length + prefix.length + revokedHeader.length };
    };

    let laid: { tbsLength: number; byteLength: number; entriesOffset: number };
    if (total) {
      // Laid out now, by the store's word; every entry goes on as it comes, and must add up to that word.
      laid = layout(total.totalCount, total.totalBytes);
      emit = (block) => {
        entriesBytes += block.length;
        if (entriesBytes > total.totalBytes) throw new JpkiError("ERR_INTERNAL", `the store announced ${total.totalBytes} bytes of CRL entries and gave more: nothing was published`);
        put(block, true);
      };
      await rest();
      if (count !== total.totalCount || entriesBytes !== total.totalBytes) {
        throw new JpkiError("ERR_INTERNAL", `the store announced ${total.totalCount} CRL entries in ${total.totalBytes} bytes and gave ${count} in ${entriesBytes}: nothing was published`);
      }
    } else {
      const packed: Buffer[] = [];
      emit = (block) => {
        entriesBytes += block.length;
        packed.push(block);
      };
      if (!first.done) add(first.value);
      await rest();
      laid = layout(count, entriesBytes);
      for (const c of packed) put(c, true);
    }
    put(crlExtensions, true);
    // Everything but the signature is settled by the issuer's public key (the signature algorithm and the
    // signature's length): the TBS is hashed, and the file hashed and handed to the sink, before the signer
    // is awaited, so a key still unlocking (PBKDF2) overlaps that work instead of preceding it.
    put(Buffer.concat([shape.algorithmIdentifier, signatureValue, Buffer.of(0)]), false); // the signature goes after the 0 unused bits
    p.onUnsigned?.({ byteLength: laid.byteLength, entries: count, entriesOffset: laid.entriesOffset });

    const signer = await p.signer;
    if (p.issuerKey && !signer.spki.equals(p.issuerKey)) throw new JpkiError("ERR_INTERNAL", "the CRL signer holds another key than issuerKey: the CA's key and certificate do not belong together");
    if (!signer.algorithmIdentifier.equals(shape.algorithmIdentifier)) throw new JpkiError("ERR_INTERNAL", "the CRL signer uses another signature algorithm than its key implies");
    const digest = hashTbs ? tbsHash.digest() : p.signedDigest!();
    if (digest.length !== 32) throw new JpkiError("ERR_INTERNAL", "the digest given for the CRL's signature is no SHA-256");
    // A TBS up to SIGN_WHOLE_BYTES goes to the signer whole: a software key signs it on libuv's thread pool, where
    // signDigest's RSA operation runs on this thread (≈ 0.4 ms a CRL), so a run publishing hundreds of partition
    // CRLs builds the next ones meanwhile (the CRL phase of 100,000 notices at 1M residents: 0.85 s → 0.77 s). A
    // larger one is signed by its digest, never joined.
    const signature = tbsPieces ? await signer.sign(Buffer.concat(tbsPieces, laid.tbsLength)) : await signer.signDigest(digest);
    if (signature.length !== shape.length) throw new JpkiError("ERR_INTERNAL", `a ${shape.length}-byte signature was expected, the signer made ${signature.length} bytes`);
    // Check what you sign: a signer that does not verify its own output (a token) is checked here, against the
    // digest, before a byte of the signature reaches the sink (OpenSSL's RSA verifies inside the operation).
    if (!signer.selfVerifying && !signatureOfDigestVerifies(signer.spki, digest, signature)) {
      throw new JpkiError("ERR_PROFILE_VIOLATION", "the CRL's signature does not verify with the CA's public key: nothing was published; check the CA key");
    }
    put(signature, false);
    const out = { byteLength: laid.byteLength, entries: count, sha256: fileHash?.digest("hex") ?? "" };
    return keep ? { chunks, ...out } : out;
  } finally {
    // A failure part-way (or a total that did not add up) lets the store close its read (a cursor, a transaction).
    await it.return?.();
  }
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

/** Convenience for small CRLs and tests: the whole DER in one buffer. */
export function crlDer(built: BuiltCrl): Buffer {
  return Buffer.concat(built.chunks as Buffer[], built.byteLength);
}
