/**
 * Check what you sign (STYLE.md §9), on the bytes that will be served: a staged CRL file is read back from
 * disk, its structure walked as RFC 5280 §5.1 lays it out (CertificateList, TBSCertList, every
 * revokedCertificates entry), compared with what was meant (issuer, algorithm, entry count, the exact
 * crlExtensions: number, AKI, issuingDistributionPoint), and its signature verified with the CA's public key
 * from its certificate, before it is renamed into place. Anything else is ERR_CRL_UNVERIFIED and nothing
 * is installed.
 *
 * Streamed: the file is read in 4 MiB pieces, the TBS hashed as it passes and each entry's header checked in
 * place (no copy, no object per entry), so a 1,000,000-entry CRL (44 MB) costs one read of the page cache and
 * two SHA-256 passes (the TBS, the whole file), with memory bounded by the piece size.
 *
 * Begun by the publisher (beginStagedCrlCheck with `written`), the check also proves that the bytes read back are
 * those written (crl/written-mac.ts) before the TBS's digest taken here may be signed (crl/builder.ts
 * signedDigest): the TBS is then hashed once for the signature and its check together.
 */
import { createHash, type Hash } from "node:crypto";
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { JpkiError } from "../errors.js";
import { HEAD_LENGTH_TRUNCATED, head, headAt, headerLengthAt, TAG } from "../pki/der.js";
import { signatureOfDigestVerifies } from "../pki/signer.js";
import type { WrittenMac } from "./written-mac.js";

export interface ExpectedCrl {
  /** the issuer's Name, byte for byte */
  readonly issuerName: Buffer;
  /** the issuer's SubjectPublicKeyInfo, from its certificate */
  readonly issuerKey: Buffer;
  readonly algorithmIdentifier: Buffer;
  /** the whole crlExtensions [0] element as built */
  readonly crlExtensions: Buffer;
  readonly entries: number;
  readonly byteLength: number;
}

/**
 * The read-back window of a large CRL. 1 MiB, not larger: the window is a fresh allocation, and on these virtual
 * machines touching a fresh page costs ≈ 13 µs (a minor fault). With 4 MiB the check of a 1M-entry CRL (44 MB) took
 * ≈ 1,340 faults and 122 ms, with 1 MiB ≈ 610 and 98 ms (medians of 4 alternated crl generate runs; 256 KiB was no
 * faster). The reads are 45 instead of 11: nothing next to the hashing.
 */
const PIECE = 1 << 20;

function unverified(path: string, why: string): never {
  throw new JpkiError("ERR_CRL_UNVERIFIED", `the CRL staged as ${path} failed its check before publication (${why}): nothing was published; report it`);
}

/** A check begun on a staged CRL whose TBS is written: `finish` once the signature is written too. */
export interface StagedCrlCheck {
  /**
   * The SHA-256 of the TBS as read back (walked and compared already; with `written`, proven to be the bytes
   * written): what the CRL's signature must be over.
   */
  tbsDigest(): Buffer;
  /**
   * Reads the signature part, verifies the signature; throws ERR_CRL_UNVERIFIED. Closes the file. Returns the
   * SHA-256 (hex) of the whole file as read back: the digest of what is on disk, taken on the way.
   */
  finish(): string;
  /** Closes the file (after a failure elsewhere); harmless after finish. */
  close(): void;
}

/**
 * Starts checking the staged CRL at `path` while only its signature is still to come: the TBS (all but the
 * last few hundred bytes) is read back, walked and hashed now, so this overlaps the wait for the signer (a
 * key still unlocking), and `finish` has only the signature left.
 *
 * `written`: the MAC of every byte written to the file so far (all but the signature). The bytes on disk must be
 * exactly those (the same count, the same tag under a twin of its key), or ERR_CRL_UNVERIFIED before anything
 * is signed.
 */
export function beginStagedCrlCheck(path: string, exp: ExpectedCrl, written?: WrittenMac): StagedCrlCheck {
  const fd = openSync(path, "r");
  let open = true;
  const close = () => {
    if (open) (closeSync(fd), (open = false));
  };
  try {
    const reader = new StagedCrlReader(fd, path, exp, written);
    reader.checkTbs();
    return {
      tbsDigest: () => reader.tbsDigest(),
      finish: () => {
        try {
          return reader.checkSignature();
        } finally {
          close();
        }
      },
      close,
    };
  } catch (e) {
    close();
    throw e;
  }
}

/** Re-reads the whole staged CRL at `path` and checks it against `exp`; throws ERR_CRL_UNVERIFIED. */
export function verifyStagedCrl(path: string, exp: ExpectedCrl): string {
  return beginStagedCrlCheck(path, exp).finish();
}

class StagedCrlReader {
  readonly #fd: number;
  readonly #path: string;
  readonly #exp: ExpectedCrl;
  /** the CRL's size as built */
  readonly #size: number;
  /** bytes of the file that may be read now (the signature may not be written yet) */
  #limit: number;
  /**
   * One reusable window of the file, no larger than the CRL: a partition CRL of a few kilobytes took a 4 MiB
   * window, and 400 of them in one ingestion run (1.6 GB of Buffers V8 counts as external memory) forced a full
   * collection every 64 MB: ≈ 25 of the run's 56 mark-compacts, ≈ 0.15 s of its CRL phase on this thread.
   */
  readonly #window: Buffer<ArrayBuffer>;
  #buf = Buffer.alloc(0);
  #base = 0;
  /** next byte of the file not yet read */
  #read = 0;
  /** the parse position (file offset) */
  pos = 0;
  /** the TBS's bytes, as read */
  readonly #tbsHash: Hash = createHash("sha256");
  #tbsDigest: Buffer | undefined;
  /** what was written (the publisher's), and the same MAC of what is read of it */
  readonly #written: WrittenMac | undefined;
  readonly #readMac: WrittenMac | undefined;
  /** the tags were compared: what is read from now on (the signature) is past what was written then */
  #compared = false;
  /** every byte read, in order: the file's SHA-256 once the last is read (checkSignature) */
  readonly #fileHash: Hash = createHash("sha256");
  #tbsStart = -1;
  #tbsEnd = -1;
  /** TBS bytes before this offset went into #tbsHash */
  #hashed = -1;

  constructor(fd: number, path: string, exp: ExpectedCrl, written?: WrittenMac) {
    this.#fd = fd;
    this.#path = path;
    this.#exp = exp;
    this.#size = exp.byteLength;
    this.#window = Buffer.allocUnsafe(Math.max(1, Math.min(PIECE, exp.byteLength)));
    this.#limit = fstatSync(fd).size;
    if (this.#limit > this.#size) this.#fail(`${this.#limit} bytes on disk, ${exp.byteLength} built`);
    this.#written = written;
    this.#readMac = written?.twin();
    if (written && this.#limit !== written.bytes) this.#fail(`${this.#limit} bytes on disk, ${written.bytes} written`);
  }

  #fail(why: string): never {
    return unverified(this.#path, why);
  }

  /** Hashes the TBS bytes up to `to` (they must still be in the buffer). */
  #hashTo(to: number): void {
    if (this.#hashed < 0) return;
    const end = Math.min(to, this.#tbsEnd);
    if (end <= this.#hashed) return;
    this.#tbsHash.update(this.#buf.subarray(this.#hashed - this.#base, end - this.#base));
    this.#hashed = end;
  }

  /** Makes sure file bytes [pos, upTo) are in the buffer. */
  #fill(upTo: number): void {
    if (upTo > this.#limit) this.#fail("truncated");
    while (this.#base + this.#buf.length < upTo) {
      this.#hashTo(this.pos);
      // What is not parsed yet moves to the front of the window, the rest of the window is read into.
      const keep = this.#buf.length - (this.pos - this.#base);
      let win = this.#window;
      if (upTo - this.pos > win.length) win = Buffer.allocUnsafe(upTo - this.pos); // an element larger than the window
      this.#buf.copy(win, 0, this.pos - this.#base);
      const n = Math.min(win.length - keep, this.#limit - this.#read);
      for (let got = 0; got < n; ) {
        const r = readSync(this.#fd, win, keep + got, n - got, this.#read + got);
        if (r === 0) this.#fail("file shorter than its size");
        got += r;
      }
      this.#fileHash.update(win.subarray(keep, keep + n));
      // Only bytes below the limit set at the start are read before the written tag is compared (checkTbs).
      if (this.#readMac && !this.#compared) this.#readMac.update(win.subarray(keep, keep + n));
      this.#read += n;
      this.#buf = win.subarray(0, keep + n);
      this.#base = this.pos;
    }
  }

  /**
   * The TLV header at pos: tag, header length, content length (pos unchanged). der.ts headAt's `der` rules, over what
   * the window holds: two octets first, then the length octets it says the header needs.
   */
  #header(): { tag: number; hl: number; len: number } {
    this.#fill(this.pos + 2);
    let fault = headAt(this.#buf, this.pos - this.#base, this.#buf.length, true);
    if (fault === HEAD_LENGTH_TRUNCATED) {
      this.#fill(this.pos + head.headerLength);
      fault = headAt(this.#buf, this.pos - this.#base, this.#buf.length, true);
    }
    if (fault) this.#fail(`${fault} at byte ${this.pos}`);
    return { tag: head.tag, hl: head.headerLength, len: head.length };
  }

  /** The whole element at pos (copied out: small elements only), pos moved past it. */
  #element(tags: readonly number[], what: string): Buffer {
    const h = this.#header();
    if (!tags.includes(h.tag)) this.#fail(`${what}: tag 0x${h.tag.toString(16)}`);
    this.#fill(this.pos + h.hl + h.len);
    const i = this.pos - this.#base;
    const out = Buffer.from(this.#buf.subarray(i, i + h.hl + h.len));
    this.pos += h.hl + h.len;
    return out;
  }

  /** Everything up to the end of the TBS: walked, compared, hashed. */
  checkTbs(): void {
    const exp = this.#exp;
    const outer = this.#header();
    if (outer.tag !== TAG.SEQUENCE || outer.hl + outer.len !== this.#size) this.#fail("CertificateList does not span the file");
    this.pos += outer.hl;
    const tbs = this.#header();
    if (tbs.tag !== TAG.SEQUENCE) this.#fail("TBSCertList is not a SEQUENCE");
    this.#tbsStart = this.#hashed = this.pos;
    this.#tbsEnd = this.pos + tbs.hl + tbs.len;
    this.pos += tbs.hl;
    if (!this.#element([TAG.INTEGER], "version").equals(Buffer.from([2, 1, 1]))) this.#fail("not a v2 CRL");
    if (!this.#element([TAG.SEQUENCE], "signature").equals(exp.algorithmIdentifier)) this.#fail("signature algorithm");
    if (!this.#element([TAG.SEQUENCE], "issuer").equals(exp.issuerName)) this.#fail("issuer");
    this.#element([TAG.UTC_TIME, TAG.GENERALIZED_TIME], "thisUpdate");
    this.#element([TAG.UTC_TIME, TAG.GENERALIZED_TIME], "nextUpdate");
    let count = 0;
    if (this.#header().tag === TAG.SEQUENCE) {
      const list = this.#header();
      const end = this.pos + list.hl + list.len;
      if (end > this.#tbsEnd) this.#fail("revokedCertificates overruns the TBS");
      this.pos += list.hl;
      count = this.#entries(end);
      if (count === 0) this.#fail("an empty revokedCertificates must be omitted");
    }
    if (count !== exp.entries) this.#fail(`${count} entries on disk, ${exp.entries} built`);
    if (!this.#element([0xa0], "crlExtensions").equals(exp.crlExtensions)) this.#fail("crlExtensions differ from those built");
    if (this.pos !== this.#tbsEnd) this.#fail("bytes after crlExtensions");
    this.#fill(this.#tbsEnd);
    this.#hashTo(this.#tbsEnd);
    if (this.#written) {
      // Everything written so far (up to the signature) read, and the same bytes as written, before the TBS's
      // digest taken here is signed.
      this.#fill(this.#limit);
      if (!this.#written.matches(this.#readMac!)) this.#fail("the bytes read back differ from those written");
      this.#compared = true;
    }
  }

  /** The SHA-256 of the TBS as read (checkTbs first). */
  tbsDigest(): Buffer {
    if (this.#hashed !== this.#tbsEnd || this.#tbsEnd < 0) throw new JpkiError("ERR_INTERNAL", "the staged CRL's TBS was not read back before its digest was asked for");
    if (this.#written && !this.#compared) throw new JpkiError("ERR_INTERNAL", "the staged CRL's bytes were not compared with those written");
    return (this.#tbsDigest ??= this.#tbsHash.digest());
  }

  /** The signature part, once written: the algorithm again, the BIT STRING, the signature verified. */
  checkSignature(): string {
    this.#limit = fstatSync(this.#fd).size;
    if (this.#limit !== this.#size) this.#fail(`${this.#limit} bytes on disk, ${this.#size} built`);
    if (!this.#element([TAG.SEQUENCE], "signatureAlgorithm").equals(this.#exp.algorithmIdentifier)) this.#fail("signatureAlgorithm differs from signature");
    const sig = this.#element([TAG.BIT_STRING], "signatureValue");
    if (this.pos !== this.#size) this.#fail("bytes after the signature");
    const hl = headerLengthAt(sig);
    if (sig[hl] !== 0) this.#fail("signature BIT STRING with unused bits");
    if (!signatureOfDigestVerifies(this.#exp.issuerKey, this.tbsDigest(), sig.subarray(hl + 1))) this.#fail("the signature does not verify with the CA's public key");
    if (this.#read !== this.#size) this.#fail(`${this.#read} bytes read back, ${this.#size} built`);
    return this.#fileHash.digest("hex");
  }

  /** Walks revokedCertificates entries up to `end`: SEQUENCE { INTEGER, Time, Extensions OPTIONAL }. */
  #entries(end: number): number {
    let count = 0;
    while (this.pos < end) {
      // Fast path: a whole short entry already in the buffer (every entry we encode is under 128 bytes).
      const b = this.#buf;
      const i = this.pos - this.#base;
      const len = b[i + 1];
      if (b[i] === TAG.SEQUENCE && len !== undefined && len < 0x80 && i + 2 + len <= b.length) {
        const stop = i + 2 + len;
        let k = i + 2;
        if (b[k] !== TAG.INTEGER || b[k + 1]! >= 0x80 || b[k + 1] === 0) this.#fail(`entry ${count}: serialNumber`);
        k += 2 + b[k + 1]!;
        if ((b[k] !== TAG.UTC_TIME && b[k] !== TAG.GENERALIZED_TIME) || b[k + 1]! >= 0x80) this.#fail(`entry ${count}: revocationDate`);
        k += 2 + b[k + 1]!;
        if (k < stop) {
          if (b[k] !== TAG.SEQUENCE || b[k + 1]! >= 0x80) this.#fail(`entry ${count}: crlEntryExtensions`);
          k += 2 + b[k + 1]!;
        }
        if (k !== stop) this.#fail(`entry ${count}: inner lengths do not add up`);
        this.pos += 2 + len;
      } else {
        const h = this.#header();
        if (h.tag !== TAG.SEQUENCE) this.#fail(`entry ${count}: not a SEQUENCE`);
        const stop = this.pos + h.hl + h.len;
        this.pos += h.hl;
        this.#element([TAG.INTEGER], `entry ${count}: serialNumber`);
        this.#element([TAG.UTC_TIME, TAG.GENERALIZED_TIME], `entry ${count}: revocationDate`);
        if (this.pos < stop) this.#element([TAG.SEQUENCE], `entry ${count}: crlEntryExtensions`);
        if (this.pos !== stop) this.#fail(`entry ${count}: inner lengths do not add up`);
      }
      count++;
      if (this.pos > end) this.#fail(`entry ${count}: overruns revokedCertificates`);
    }
    return count;
  }
}
