/**
 * A CRL read in pieces, RFC 5280 §5.1, so a national CRL of millions of entries is inspected in one pass with
 * memory that does not grow with it (issue 8):
 *
 *   CertificateList ::= SEQUENCE { tbsCertList TBSCertList, signatureAlgorithm, signatureValue BIT STRING }
 *   TBSCertList ::= SEQUENCE { version INTEGER OPTIONAL, signature, issuer Name, thisUpdate Time,
 *       nextUpdate Time OPTIONAL, revokedCertificates SEQUENCE OF SEQUENCE { userCertificate INTEGER,
 *       revocationDate Time, crlEntryExtensions Extensions OPTIONAL } OPTIONAL, crlExtensions [0] Extensions OPTIONAL }
 *
 * `open` reads the frame with positional reads: every field of the TBSCertList but the entries, whose length is
 * skipped, then the crlExtensions and the signature; all lengths must add up to the input's size. What it read
 * is re-encoded as the CRL without its entries (the skeleton), small enough for the asn1-schema decoder that
 * describe.ts and check.ts use. `entries` then reads the revokedCertificates in 1 MiB blocks and decodes each
 * entry by hand, strictly (DER lengths in their shortest form, the tags §5.1 gives, valid times, nothing left
 * over), into a small plain object; the bytes are hashed as they pass and each entry goes through the profile's
 * entry rules (CrlEntryCheck). Any structural fault is ERR_DER_MALFORMED naming the entry and its byte offset.
 */
import { createHash } from "node:crypto";
import { closeSync, readSync } from "node:fs";
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, openRegularFile } from "../pki/regular-file.js";
import { children, HEAD_LENGTH_TRUNCATED, HEAD_TRUNCATED, head, headAt, oid, readHeader, seq, TAG } from "../pki/der.js";
import { assertDer } from "../pki/der-strict.js";
import { CrlEntryCheck, type CrlEntryFacts, type Violation } from "./check.js";
import { EXT_OID } from "./oids.js";

/** Bytes to read from: a file (positional reads) or a buffer already in memory. */
export interface CrlSource {
  readonly size: number;
  /** `length` bytes at `position`, fewer only past the end */
  read(position: number, length: number): Buffer;
  close(): void;
}

/** A file read with positional reads; `what` names it in errors ("input file x.crl"). */
export function crlFileSource(path: string, what: string): CrlSource {
  const unusable = (e: unknown) =>
    new JpkiError("ERR_FILE_UNUSABLE", `${what}: cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`, { cause: e });
  let fd: number;
  let size: number;
  try {
    // Non-blocking, and judged by the descriptor (pki/regular-file.ts): opening a FIFO put at the path after the
    // caller's check by path (or at an installed CRL's) waited for a writer for ever.
    ({ fd, stat: { size } } = openRegularFile(path));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === NOT_REGULAR) throw new JpkiError("ERR_FILE_UNUSABLE", `${what}: is not a regular file`, { cause: e });
    throw unusable(e);
  }
  return {
    size,
    read(position, length) {
      const n = Math.max(0, Math.min(length, size - position));
      const buf = Buffer.allocUnsafe(n);
      let got = 0;
      try {
        while (got < n) {
          const r = readSync(fd, buf, got, n - got, position + got);
          if (r === 0) break;
          got += r;
        }
      } catch (e) {
        throw unusable(e);
      }
      if (got < n) throw new JpkiError("ERR_FILE_UNUSABLE", `${what}: the file shrank while it was being read`);
      return buf;
    },
    close() {
      if (fd < 0) return;
      closeSync(fd);
      fd = -1;
    },
  };
}

export function crlBytesSource(bytes: Uint8Array): CrlSource {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { size: b.length, read: (position, length) => b.subarray(position, position + length), close: () => {} };
}

/** One revokedCertificates entry, ready to print. */
export interface CrlEntryDescription {
  /** unsigned hex, lower case, without leading zero octets */
  readonly serialNumber: string;
  /** ISO 8601, UTC */
  readonly revocationDate: string;
  /** CRLReason name (RFC 5280 §5.3.1), or "invalid (n)"; absent without a reasonCode */
  readonly reason?: string;
  /** the invalidityDate's GeneralizedTime text as written */
  readonly invalidityDate?: string;
}

/** What is known once every entry has been read. */
export interface CrlReadTotals {
  readonly entryCount: number;
  /** entries per `reason` value; "none" counts the entries without a reasonCode */
  readonly reasonCounts: Readonly<Record<string, number>>;
  /** SHA-256 of the whole input, hex */
  readonly sha256: string;
  /** the entry rules' findings (check.ts), one per rule */
  readonly entryViolations: readonly Violation[];
}

/** CRLReason names (RFC 5280 §5.3.1); 7 is unused. */
const REASON_NAME: Readonly<Record<number, string>> = Object.freeze({
  0: "unspecified",
  1: "keyCompromise",
  2: "cACompromise",
  3: "affiliationChanged",
  4: "superseded",
  5: "cessationOfOperation",
  6: "certificateHold",
  8: "removeFromCRL",
  9: "privilegeWithdrawn",
  10: "aACompromise",
});

const BLOCK = 1 << 20;
/** A field of the frame (issuer, extensions, signature) larger than this is not a CRL we read. */
const MAX_FIELD = 1 << 24;
const MAX_ENTRY = 1 << 20;

const malformed = (what: string) => new JpkiError("ERR_DER_MALFORMED", `CRL: ${what}`);

/** Where the content of the last header `tlv` parsed starts and ends (reused: the entry loop allocates nothing for it). */
const H = { start: 0, end: 0 };

/**
 * Parses the DER header at `off` of `b` strictly (der.ts headAt with its `der` rules: low tag number, definite
 * length in its shortest form, at most four length octets): returns the tag and leaves where the content starts
 * and ends in H; -1 when `b` ends inside the header (the stream reader then reads on). Throws (via `fail`) on bad DER.
 */
function tlv(b: Uint8Array, off: number, fail: (why: string) => never): number {
  const fault = headAt(b, off, b.length, true);
  if (fault === HEAD_TRUNCATED || fault === HEAD_LENGTH_TRUNCATED) return -1;
  if (fault) fail(fault);
  H.start = off + head.headerLength;
  H.end = H.start + head.length;
  return head.tag;
}

const OID_TEXT = new Map<string, string>();

/** Dotted text of an OBJECT IDENTIFIER's content (X.690 §8.19), cached: entries repeat the same few. */
function oidText(b: Buffer, start: number, end: number): string {
  // id-ce arcs (2.5.29.x, x < 128: 55 1D x), the entry extensions RFC 5280 §5.3 defines, without a lookup
  if (end - start === 3 && b[start] === 0x55 && b[start + 1] === 0x1d && b[start + 2]! < 0x80) return ID_CE[b[start + 2]!]!;
  const key = b.toString("latin1", start, end);
  let text = OID_TEXT.get(key);
  if (text === undefined) {
    if (end === start || b[end - 1]! & 0x80) throw new RangeError("a truncated OBJECT IDENTIFIER");
    const arcs: bigint[] = [];
    let v = 0n;
    for (let i = start; i < end; i++) {
      v = (v << 7n) | BigInt(b[i]! & 0x7f);
      if (!(b[i]! & 0x80)) {
        arcs.push(v);
        v = 0n;
      }
    }
    const first = arcs[0]!;
    const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
    text = [...head, ...arcs.slice(1)].join(".");
    if (OID_TEXT.size < 1024) OID_TEXT.set(key, text);
  }
  return text;
}

const ID_CE = Array.from({ length: 128 }, (_, x) => `2.5.29.${x}`);
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, "0"));
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

/** Reused result of decodeTime (the entry loop allocates nothing for it). */
const TIME = { iso: "", year: 0 };

/** UTCTime YYMMDDhhmmssZ or GeneralizedTime YYYYMMDDhhmmssZ (the DER forms RFC 5280 §4.1.2.5 allows) → ISO text and year in TIME. */
function decodeTime(b: Buffer, tag: number, start: number, end: number, fail: (why: string) => never): void {
  const utc = tag === TAG.UTC_TIME;
  if (!utc && tag !== TAG.GENERALIZED_TIME) fail("revocationDate is not a UTCTime or GeneralizedTime");
  if (end - start !== (utc ? 13 : 15) || b[end - 1] !== 0x5a) fail("revocationDate is not in the DER form YYMMDDhhmmssZ / YYYYMMDDhhmmssZ");
  for (let i = start; i < end - 1; i++) if (b[i]! < 0x30 || b[i]! > 0x39) fail("revocationDate has a non-digit");
  const two = (i: number) => (b[i]! - 0x30) * 10 + b[i + 1]! - 0x30;
  let year = two(start);
  let d = start + 2;
  if (utc) year += year < 50 ? 2000 : 1900;
  else {
    year = year * 100 + two(start + 2);
    d += 2;
  }
  const month = two(d);
  const day = two(d + 2);
  const hour = two(d + 4);
  const minute = two(d + 6);
  const second = two(d + 8);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12 || day < 1 || day > DAYS[month - 1]! + (month === 2 && leap ? 1 : 0) || hour > 23 || minute > 59 || second > 59) {
    fail("revocationDate is not a valid date and time");
  }
  TIME.year = year;
  TIME.iso = `${year < 1000 ? String(year).padStart(4, "0") : year}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T${TWO_DIGITS[hour]}:${TWO_DIGITS[minute]}:${TWO_DIGITS[second]}.000Z`;
}

/** What the entry rules read of the last entry decodeEntry decoded (reused; CrlEntryCheck copies what it keeps). */
const FACTS: { -readonly [K in keyof CrlEntryFacts]-?: CrlEntryFacts[K] } = { serial: new Uint8Array(0), revocationYear: 0, revocationEncoding: "UTCTime", extensions: [], extensionsPresent: false };

/** The fields of one entry at `off` (whose TLV ends at `end`); the facts the entry rules read go to FACTS. */
function decodeEntry(b: Buffer, off: number, end: number, fail: (why: string) => never): CrlEntryDescription {
  tlv(b, off, fail);
  let p = H.start;
  // userCertificate INTEGER, minimal (X.690 §8.3.2)
  if (p >= end || tlv(b, p, fail) !== TAG.INTEGER || H.end > end) fail("an entry does not start with its serial number (INTEGER)");
  const s0 = H.start;
  const s1 = H.end;
  if (s1 === s0) fail("an empty serial number");
  if (s1 - s0 > 1 && ((b[s0] === 0 && !(b[s0 + 1]! & 0x80)) || (b[s0] === 0xff && b[s0 + 1]! & 0x80))) fail("a serial number not in its minimal form");
  let z = s0;
  while (z < s1 - 1 && b[z] === 0) z++;
  const serialNumber = b.toString("hex", z, s1);
  p = s1;
  // revocationDate Time
  const dateTag = p < end ? tlv(b, p, fail) : -1;
  if (dateTag < 0 || H.end > end) fail("an entry has no revocationDate");
  const revocationEncoding = dateTag === TAG.UTC_TIME ? "UTCTime" : "GeneralizedTime";
  decodeTime(b, dateTag, H.start, H.end, fail);
  const revocationDate = TIME.iso;
  p = H.end;
  // crlEntryExtensions SEQUENCE OF Extension, optional
  const extensions: Array<{ extnID: string; critical: boolean; value: Buffer }> = [];
  let reason: string | undefined;
  let invalidityDate: string | undefined;
  const extensionsPresent = p < end;
  if (p < end) {
    if (tlv(b, p, fail) !== TAG.SEQUENCE || H.end !== end) fail("an entry has something other than crlEntryExtensions after its date");
    let q = H.start; // an empty list breaks SIZE (1..MAX) but is common (@peculiar/x509 writes it): read, and reported by the entry rules
    while (q < end) {
      if (tlv(b, q, fail) !== TAG.SEQUENCE || H.end > end) fail("a crlEntryExtension is not a SEQUENCE");
      const xEnd = H.end;
      let r = H.start;
      if (r >= xEnd || tlv(b, r, fail) !== TAG.OID || H.end > xEnd) fail("a crlEntryExtension does not start with its OID");
      const oidStart = H.start;
      const oidEnd = H.end;
      r = H.end;
      let critical = false;
      if (r < xEnd && b[r] === TAG.BOOLEAN) {
        if (tlv(b, r, fail) < 0 || H.end > xEnd || H.end - H.start !== 1 || (b[H.start] !== 0 && b[H.start] !== 0xff)) fail("a crlEntryExtension's critical flag is not a DER BOOLEAN");
        critical = b[H.start] === 0xff;
        r = H.end;
      }
      if (r >= xEnd || tlv(b, r, fail) !== TAG.OCTET_STRING || H.end !== xEnd) fail("a crlEntryExtension's value is not one OCTET STRING");
      const value = b.subarray(H.start, H.end);
      let extnID: string;
      try {
        extnID = oidText(b, oidStart, oidEnd);
      } catch {
        fail("a crlEntryExtension has a truncated OID");
      }
      if (extnID === EXT_OID.cRLReason) {
        const code = value[0] === TAG.ENUMERATED && value[1] === 1 ? value[2]! : -1;
        reason = REASON_NAME[code] ?? `invalid (${code})`;
      } else if (extnID === EXT_OID.invalidityDate) {
        try {
          const h = readHeader(value, 0);
          invalidityDate = value.toString("latin1", h.headerLength, Math.min(value.length, h.headerLength + h.length));
        } catch {
          invalidityDate = "undecodable";
        }
      }
      extensions.push({ extnID, critical, value });
      q = xEnd;
    }
  }
  FACTS.serial = b.subarray(s0, s1);
  FACTS.revocationYear = TIME.year;
  FACTS.revocationEncoding = revocationEncoding;
  FACTS.extensions = extensions;
  FACTS.extensionsPresent = extensionsPresent;
  // one literal per shape, so every entry of a shape shares a hidden class
  if (invalidityDate === undefined) return reason === undefined ? { serialNumber, revocationDate } : { serialNumber, revocationDate, reason };
  return reason === undefined ? { serialNumber, revocationDate, invalidityDate } : { serialNumber, revocationDate, reason, invalidityDate };
}

/** A CRL read from a source: the frame on `open`, the entries as they are iterated, the totals after them. */
export class CrlReader {
  /** the CRL re-encoded without its revokedCertificates: every other field, byte for byte */
  readonly skeleton: Buffer;
  private readonly source: CrlSource;
  /** [entriesStart, entriesEnd): the content of revokedCertificates (empty when it is absent) */
  private readonly entriesStart: number;
  private readonly entriesEnd: number;
  /** whether revokedCertificates is there at all: present with no entry is a finding (§5.1.2.6) */
  private readonly revokedPresent: boolean;
  private state: "open" | "reading" | "read" | "closed" = "open";
  private totalsRead: CrlReadTotals | undefined;

  private constructor(source: CrlSource, skeleton: Buffer, entriesStart: number, entriesEnd: number, revokedPresent: boolean) {
    this.source = source;
    this.revokedPresent = revokedPresent;
    this.skeleton = skeleton;
    this.entriesStart = entriesStart;
    this.entriesEnd = entriesEnd;
  }

  /** Reads and checks the frame. Throws ERR_DER_MALFORMED (closing the source) when it is not one DER CertificateList. */
  static open(source: CrlSource): CrlReader {
    try {
      return CrlReader.frame(source);
    } catch (e) {
      source.close();
      throw e;
    }
  }

  private static frame(src: CrlSource): CrlReader {
    const size = src.size;
    const fail = (why: string): never => {
      throw malformed(why);
    };
    /** The header at `pos`, which must end by `limit`; returns a copy of H. */
    const headerAt = (pos: number, limit: number, what: string) => {
      if (pos >= limit) fail(`${what} is missing`);
      const tag = tlv(src.read(pos, 6), 0, (why) => fail(`${what}: ${why}`));
      if (tag < 0) fail(`${what}: the DER header is truncated`);
      const h = { tag, start: pos + H.start, end: pos + H.end };
      if (h.end > limit) fail(`${what} runs past ${limit === size ? "the end of the input" : "its container"} (truncated?)`);
      return h;
    };
    const whole = (h: { start: number; end: number }, pos: number, what: string): Buffer => {
      if (h.end - pos > MAX_FIELD) fail(`${what} is ${h.end - pos} bytes, too large`);
      return src.read(pos, h.end - pos);
    };
    if (size === 0) fail("the input is empty");
    const outer = headerAt(0, Number.MAX_SAFE_INTEGER, "CertificateList");
    if (outer.tag !== TAG.SEQUENCE) fail("the DER must start with a SEQUENCE");
    if (outer.end !== size) fail(`the DER length (${outer.end} bytes) does not match the input (${size} bytes)`);
    const tbs = headerAt(outer.start, size, "tbsCertList");
    if (tbs.tag !== TAG.SEQUENCE) fail("tbsCertList is not a SEQUENCE");
    const fields: Buffer[] = [];
    let p = tbs.start;
    let f = headerAt(p, tbs.end, "the TBSCertList signature");
    if (f.tag === TAG.INTEGER) {
      fields.push(whole(f, p, "version"));
      p = f.end;
    }
    for (const what of ["the TBSCertList signature", "issuer"]) {
      f = headerAt(p, tbs.end, what);
      if (f.tag !== TAG.SEQUENCE) fail(`${what} is not a SEQUENCE`);
      fields.push(whole(f, p, what));
      p = f.end;
    }
    const isTime = (tag: number) => tag === TAG.UTC_TIME || tag === TAG.GENERALIZED_TIME;
    f = headerAt(p, tbs.end, "thisUpdate");
    if (!isTime(f.tag)) fail("thisUpdate is not a UTCTime or GeneralizedTime: not a CRL");
    fields.push(whole(f, p, "thisUpdate"));
    p = f.end;
    if (p < tbs.end) {
      f = headerAt(p, tbs.end, "nextUpdate");
      if (isTime(f.tag)) {
        fields.push(whole(f, p, "nextUpdate"));
        p = f.end;
      }
    }
    let entriesStart = p;
    let entriesEnd = p;
    let revokedPresent = false;
    if (p < tbs.end) {
      f = headerAt(p, tbs.end, "revokedCertificates");
      if (f.tag === TAG.SEQUENCE) {
        revokedPresent = true;
        entriesStart = f.start;
        entriesEnd = f.end;
        p = f.end;
      }
    }
    if (p < tbs.end) {
      f = headerAt(p, tbs.end, "crlExtensions");
      if (f.tag !== 0xa0) fail("the TBSCertList has a field after its entries that is not crlExtensions [0]");
      fields.push(whole(f, p, "crlExtensions"));
      p = f.end;
    }
    if (p !== tbs.end) fail("the TBSCertList has fields past crlExtensions");
    const alg = headerAt(tbs.end, size, "signatureAlgorithm");
    if (alg.tag !== TAG.SEQUENCE) fail("signatureAlgorithm is not a SEQUENCE");
    const sig = headerAt(alg.end, size, "signatureValue");
    if (sig.tag !== TAG.BIT_STRING) fail("signatureValue is not a BIT STRING");
    if (sig.end !== size) fail("bytes follow the signatureValue");
    const skeleton = seq(seq(...fields), whole(alg, tbs.end, "signatureAlgorithm"), whole(sig, alg.end, "signatureValue"));
    try {
      assertDer(skeleton);
    } catch (e) {
      throw new JpkiError("ERR_DER_MALFORMED", `CRL: not DER (${(e as Error).message})`, { cause: e });
    }
    return new CrlReader(src, skeleton, entriesStart, entriesEnd, revokedPresent);
  }

  /**
   * The entries in order, each decoded and checked as it is read; once, and before `totals`. Throws
   * ERR_DER_MALFORMED at the first entry that is not DER of the §5.1 shape.
   */
  *entries(): Generator<CrlEntryDescription, void, undefined> {
    if (this.state !== "open") throw new Error("CrlReader.entries() runs once, before totals()");
    this.state = "reading";
    const src = this.source;
    const hash = createHash("sha256").update(src.read(0, this.entriesStart));
    const check = new CrlEntryCheck();
    const reasons = new Map<string, number>();
    let count = 0;
    let block: Buffer = Buffer.alloc(0);
    let blockAt = this.entriesStart; // input offset of block[0]
    let off = 0;
    let next = this.entriesStart; // next input byte to read
    const fail = (why: string): never => {
      throw malformed(`entry #${count + 1} (at byte ${blockAt + off}): ${why}`);
    };
    for (;;) {
      const tag = tlv(block, off, fail);
      if (tag < 0 || H.end > block.length) {
        if (next === this.entriesEnd) {
          if (off === block.length) break;
          fail("revokedCertificates ends inside this entry");
        }
        const need = tag < 0 ? 0 : H.end - off;
        if (need > MAX_ENTRY) fail(`an entry of ${need} bytes`);
        const chunk = src.read(next, Math.min(Math.max(BLOCK, need), this.entriesEnd - next));
        hash.update(chunk);
        next += chunk.length;
        blockAt += off;
        block = off < block.length ? Buffer.concat([block.subarray(off), chunk]) : chunk;
        off = 0;
        continue;
      }
      if (tag !== TAG.SEQUENCE) fail("an entry is not a SEQUENCE");
      const end = H.end;
      const entry = decodeEntry(block, off, end, fail);
      check.add(FACTS);
      const key = entry.reason ?? "none";
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
      count++;
      off = end;
      yield entry;
    }
    hash.update(src.read(this.entriesEnd, src.size - this.entriesEnd));
    this.totalsRead = Object.freeze({
      entryCount: count,
      reasonCounts: Object.freeze(Object.fromEntries(reasons)),
      sha256: hash.digest("hex"),
      entryViolations: Object.freeze(check.violations(this.revokedPresent)),
    });
    this.state = "read";
  }

  /** Count, counts per reason, fingerprint and entry findings; reads the entries first if nobody has. */
  totals(): CrlReadTotals {
    if (this.state === "open") for (const _ of this.entries());
    if (!this.totalsRead) throw new Error("CrlReader.totals() before the entries were read to the end");
    return this.totalsRead;
  }

  /**
   * The number of entries, by their headers alone (no decoding, no checks): for a listing that must print the
   * count before the entries. A second read of the entries' bytes, not of their contents.
   */
  countEntries(): number {
    const src = this.source;
    let n = 0;
    let pos = this.entriesStart;
    let block: Buffer = Buffer.alloc(0);
    let blockAt = pos;
    const fail = (why: string): never => {
      throw malformed(`entry #${n + 1} (at byte ${pos}): ${why}`);
    };
    while (pos < this.entriesEnd) {
      const tag = tlv(block, pos - blockAt, fail);
      if (tag < 0) {
        if (blockAt === pos && block.length > 0) fail("revokedCertificates ends inside this entry");
        block = src.read(pos, Math.min(BLOCK, this.entriesEnd - pos));
        blockAt = pos;
        continue;
      }
      if (tag !== TAG.SEQUENCE) fail("an entry is not a SEQUENCE");
      if (blockAt + H.end > this.entriesEnd) fail("revokedCertificates ends inside this entry");
      pos = blockAt + H.end;
      n++;
    }
    return n;
  }

  close(): void {
    if (this.state === "closed") return;
    this.state = "closed";
    this.source.close();
  }
}

const CRL_NUMBER_OID = oid(EXT_OID.cRLNumber);
const AKI_OID = oid(EXT_OID.authorityKeyIdentifier);
const isTime = (b: Buffer | undefined) => b?.[0] === TAG.UTC_TIME || b?.[0] === TAG.GENERALIZED_TIME;

/** The content of the single TLV `b` (RangeError when `b` is not exactly one TLV of tag `tag`). */
function contentOf1(b: Buffer, tag: number): Buffer {
  const h = readHeader(b);
  if (h.tag !== tag || h.headerLength + h.length !== b.length) throw new RangeError("unexpected DER element");
  return b.subarray(h.headerLength);
}

/**
 * The cRLNumber and the authorityKeyIdentifier's keyIdentifier (hex) of a CRL frame (CrlReader.skeleton), read
 * by walking the DER: the publisher reads the installed CRL's on every publication, and describing the frame
 * (profile/describe.ts) loaded asn1-x509 and asn1-schema, ≈ 45 ms of every `jpki crl generate`. The frame must
 * have a CertificateList's shape (RFC 5280 §5.1); a RangeError says it has not.
 */
export function crlFrameIdentity(skeleton: Buffer): { crlNumber?: bigint; keyId?: string } {
  const top = children(skeleton);
  if (top.length !== 3 || top[0]![0] !== TAG.SEQUENCE || top[1]![0] !== TAG.SEQUENCE || top[2]![0] !== TAG.BIT_STRING) throw new RangeError("not a CertificateList");
  const fields = children(top[0]!);
  let i = fields[0]?.[0] === TAG.INTEGER ? 1 : 0; // version
  if (fields[i++]?.[0] !== TAG.SEQUENCE || fields[i++]?.[0] !== TAG.SEQUENCE || !isTime(fields[i++])) throw new RangeError("not a TBSCertList");
  if (isTime(fields[i])) i++; // nextUpdate
  if (fields[i]?.[0] === TAG.SEQUENCE) i++; // revokedCertificates (absent from a skeleton)
  const wrapped = fields[i]?.[0] === 0xa0 ? fields[i++] : undefined;
  if (i !== fields.length) throw new RangeError("not a TBSCertList");
  const out: { crlNumber?: bigint; keyId?: string } = {};
  if (!wrapped) return out;
  const list = contentOf1(wrapped, 0xa0);
  contentOf1(list, TAG.SEQUENCE); // exactly one SEQUENCE OF Extension
  for (const ext of children(list)) {
    if (ext[0] !== TAG.SEQUENCE) throw new RangeError("not an Extension");
    const parts = children(ext);
    const id = parts[0];
    const value = parts[parts.length - 1];
    if (parts.length < 2 || parts.length > 3 || id?.[0] !== TAG.OID || !value) throw new RangeError("not an Extension");
    const inner = contentOf1(value, TAG.OCTET_STRING);
    if (id.equals(CRL_NUMBER_OID)) {
      const n = contentOf1(inner, TAG.INTEGER);
      if (!n.length || n[0]! & 0x80) throw new RangeError("cRLNumber is not a non-negative INTEGER");
      out.crlNumber = BigInt(`0x${n.toString("hex")}`);
    } else if (id.equals(AKI_OID)) {
      contentOf1(inner, TAG.SEQUENCE);
      const key = children(inner).find((f) => f[0] === 0x80); // keyIdentifier [0] IMPLICIT OCTET STRING
      if (key) out.keyId = contentOf1(key, 0x80).toString("hex");
    }
  }
  return out;
}
