/**
 * DER reading for path validation (X.690 §8, §10): just enough to take certificates and CRLs apart without
 * re-encoding them, so signatures are checked over the exact bytes received and names are compared as sent.
 * Any structural error throws RangeError; the callers turn that into a validation result.
 */
import { head, headAt } from "../pki/der.js";
import { civilFieldsValid, daysFromCivil } from "./civil-time.js";

export interface Tlv {
  readonly tag: number;
  /** the whole TLV */
  readonly der: Buffer;
  /** the contents octets */
  readonly content: Buffer;
}

/**
 * A TLV read in place: offsets into the buffer it was read from, the `der` and `content` views made only when
 * asked for (Buffer.subarray is the dearest step of reading a certificate; most TLVs are only walked through).
 */
class Span implements Tlv {
  readonly tag: number;
  readonly buf: Buffer;
  /** where the TLV begins (its tag), where its contents begin, where it ends */
  readonly at: number;
  readonly start: number;
  readonly end: number;
  #der: Buffer | undefined;
  #content: Buffer | undefined;

  constructor(buf: Buffer, tag: number, at: number, start: number, end: number) {
    this.buf = buf;
    this.tag = tag;
    this.at = at;
    this.start = start;
    this.end = end;
  }

  get der(): Buffer {
    // the whole buffer (a certificate parsed from its own Buffer) needs no view of its own
    return (this.#der ??= this.at === 0 && this.end === this.buf.length ? this.buf : this.buf.subarray(this.at, this.end));
  }

  get content(): Buffer {
    return (this.#content ??= this.buf.subarray(this.start, this.end));
  }
}

/**
 * The TLV at `offset`, which must end by `limit` (der.ts headAt's lenient rules: definite lengths). Read in place:
 * crl-index.ts walks a million CRL entries with it.
 */
export function spanAt(b: Buffer, offset: number, limit: number): Span {
  const fault = headAt(b, offset, limit);
  if (fault) throw new RangeError(fault);
  const tag = head.tag;
  const start = offset + head.headerLength;
  const len = head.length;
  const end = start + len;
  if (end > limit) throw new RangeError(limit === b.length ? "truncated DER" : "DER child overruns its parent");
  return new Span(b, tag, offset, start, end);
}

const asSpan = (t: Tlv): Span => (t instanceof Span ? t : spanAt(t.der, 0, t.der.length));

export function tlvAt(buf: Uint8Array, offset = 0): Tlv {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  return spanAt(b, offset, b.length);
}

/** The first TLV within `t`'s contents (an extension's value within its extnValue OCTET STRING), read in place. */
export function firstWithin(t: Tlv): Tlv {
  const s = asSpan(t);
  return spanAt(s.buf, s.start, s.end);
}

/** The children of a constructed TLV, each as a Tlv. */
export function items(t: Tlv | Uint8Array): Tlv[] {
  const s = "tag" in t ? asSpan(t) : (tlvAt(t) as Span);
  const out: Tlv[] = [];
  for (let off = s.start; off < s.end; ) {
    const c = spanAt(s.buf, off, s.end);
    out.push(c);
    off = c.end;
  }
  return out;
}

/** The contents octets as a latin1 string, without making a view of them first. */
export function contentKey(t: Tlv): string {
  const s = asSpan(t);
  return s.buf.toString("latin1", s.start, s.end);
}

/** The contents octets as hex, without making a view of them first. */
export function contentHex(t: Tlv): string {
  const s = asSpan(t);
  return s.buf.toString("hex", s.start, s.end);
}

/**
 * Values by the exact octets they were decoded from (OIDs, names, algorithm identifiers: the same few recur in
 * every certificate and CRL). A 32-bit hash of the octets picks a bucket; an entry answers only when its octets
 * equal the ones read, octet for octet — no string made per lookup, no trust in the hash alone. Bounded: at most
 * `max` entries, the oldest buckets dropped first. Entries hold a copy of their octets, never a view into a
 * large buffer (a CRL) or one the caller may change.
 */
export class ByteTable<V> {
  readonly #max: number;
  readonly #sample: number;
  readonly #buckets = new Map<number, Array<{ readonly bytes: Buffer; readonly value: V }>>();
  #size = 0;

  /**
   * `sample`: hash only the length and the last `sample` octets (for long keys whose tail varies, such as a
   * certificate ending in its signature); equality is still checked over every octet.
   */
  constructor(max: number, sample = Infinity) {
    this.#max = max;
    this.#sample = sample;
  }

  /** the value for `t`'s whole TLV (`whole`) or its contents octets */
  get(t: Tlv, whole: boolean): V | undefined {
    const s = asSpan(t);
    const b = s.buf;
    const from = whole ? s.at : s.start;
    const n = s.end - from;
    const bucket = this.#buckets.get(this.#hash(b, from, s.end));
    if (!bucket) return undefined;
    for (const e of bucket) {
      const x = e.bytes;
      if (x.length !== n) continue;
      if (n > 256) {
        if (x.compare(b, from, s.end) === 0) return e.value;
        continue;
      }
      let k = 0;
      while (k < n && x[k] === b[from + k]) k++;
      if (k === n) return e.value;
    }
    return undefined;
  }

  #hash(b: Buffer, from: number, to: number): number {
    return to - from > this.#sample ? hashOf(b, to - this.#sample, to) ^ (to - from) : hashOf(b, from, to);
  }

  set(t: Tlv, whole: boolean, value: V): void {
    const s = asSpan(t);
    const from = whole ? s.at : s.start;
    const h = this.#hash(s.buf, from, s.end);
    while (this.#size >= this.#max) {
      const [oldest, entries] = this.#buckets.entries().next().value!;
      this.#buckets.delete(oldest);
      this.#size -= entries.length;
    }
    const entry = { bytes: Buffer.from(s.buf.subarray(from, s.end)), value };
    const bucket = this.#buckets.get(h);
    if (bucket) bucket.push(entry);
    else this.#buckets.set(h, [entry]);
    this.#size++;
  }
}

/** FNV-1a, 32 bits */
function hashOf(b: Buffer, from: number, to: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) h = Math.imul(h ^ b[i]!, 0x01000193);
  return h >>> 0;
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new RangeError(`${what}: expected tag 0x${tag.toString(16)}`);
  return t;
}

/** OIDs by their contents octets: the same few dozen recur in every certificate and CRL. */
const OIDS = new ByteTable<string>(1024);

/** id-ce (2.5.29, RFC 5280 §4.2) arcs below 128, the extensions every certificate and CRL carries: 55 1D xx. */
const ID_CE = Array.from({ length: 128 }, (_, k) => `2.5.29.${k}`);

export function decodeOid(t: Tlv): string {
  if (t.tag !== 0x06) throw new RangeError("expected an OBJECT IDENTIFIER");
  const s = asSpan(t);
  if (s.end - s.start === 3 && s.buf[s.start] === 0x55 && s.buf[s.start + 1] === 0x1d && s.buf[s.start + 2]! < 0x80) return ID_CE[s.buf[s.start + 2]!]!;
  let oid = OIDS.get(t, false);
  if (oid === undefined) {
    oid = decodeOidContents(t.content);
    OIDS.set(t, false, oid);
  }
  return oid;
}

function decodeOidContents(c: Buffer): string {
  const arcs: bigint[] = [];
  let v = 0n;
  for (const byte of c) {
    v = (v << 7n) | BigInt(byte & 0x7f);
    if ((byte & 0x80) === 0) {
      arcs.push(v);
      v = 0n;
    }
  }
  const first = arcs.shift() ?? 0n;
  const a = first < 40n ? 0n : first < 80n ? 1n : 2n;
  return [a, first - a * 40n, ...arcs].join(".");
}

export function decodeBoolean(t: Tlv): boolean {
  const s = asSpan(t);
  return s.end > s.start && s.buf[s.start] !== 0;
}

/** How many contents octets `t` has, without making a view of them. */
export function contentLength(t: Tlv): number {
  const s = asSpan(t);
  return s.end - s.start;
}

/**
 * `a` and `b` are the same octets, TLV for TLV, compared where they lie: a byte loop over the few octets of an
 * AlgorithmIdentifier, without the two views `a.der.equals(b.der)` makes (each view costs more than the compare).
 */
export function sameTlv(a: Tlv, b: Tlv): boolean {
  const x = asSpan(a);
  const y = asSpan(b);
  const n = x.end - x.at;
  if (n !== y.end - y.at) return false;
  const xb = x.buf;
  const yb = y.buf;
  for (let k = 0; k < n; k++) if (xb[x.at + k] !== yb[y.at + k]) return false;
  return true;
}

/**
 * An INTEGER as a number when it has at most 6 contents octets (pathLenConstraint, SkipCerts, the version),
 * else clamped to ±`limit`: no bigint arithmetic for the small values certificates carry.
 */
export function decodeSmallInteger(t: Tlv, limit = 1_000_000): number {
  const s = asSpan(t);
  const n = s.end - s.start;
  if (n === 0) return 0;
  if (n > 6) return s.buf[s.start]! & 0x80 ? -limit : limit;
  let v = 0;
  for (let i = s.start; i < s.end; i++) v = v * 256 + s.buf[i]!;
  if (s.buf[s.start]! & 0x80) v -= 2 ** (n * 8);
  return Math.min(limit, v);
}

/** A non-negative INTEGER small enough for a number (pathLenConstraint, SkipCerts, CRL numbers as bigint). */
export function decodeInteger(t: Tlv): bigint {
  const c = t.content;
  if (c.length === 0) return 0n;
  let v = 0n;
  for (const b of c) v = (v << 8n) | BigInt(b);
  if (c[0]! & 0x80) v -= 1n << BigInt(c.length * 8);
  return v;
}

/**
 * BIT STRING named bits (X.690 §8.6) as a set of bit numbers, bit 0 first. The bits the initial octet declares
 * unused are not bits of the value (DER sets them to zero; OpenSSL clears them as it reads): a keyUsage whose
 * keyCertSign sits among them does not grant it.
 */
export function decodeNamedBits(t: Tlv): Set<number> {
  const bits = new Set<number>();
  // read in place (a keyUsage in every certificate: no view of its two or three octets)
  const s = asSpan(t);
  const c = s.buf;
  const o = s.start;
  const length = s.end - o;
  if (length === 0) throw new RangeError("BIT STRING: no initial octet");
  const unused = c[o]!;
  if (unused > 7 || (length === 1 && unused !== 0)) throw new RangeError(`BIT STRING: ${unused} unused bits`);
  const total = (length - 1) * 8 - unused;
  for (let i = 1; i < length; i++) for (let b = 0; b < 8; b++) if (c[o + i]! & (0x80 >> b) && (i - 1) * 8 + b < total) bits.add((i - 1) * 8 + b);
  return bits;
}

/** The bytes of a BIT STRING without its unused-bits octet. */
export function bitStringBytes(t: Tlv): Buffer {
  if (t.tag !== 0x03) throw new RangeError("expected a BIT STRING");
  const s = asSpan(t);
  return s.buf.subarray(Math.min(s.start + 1, s.end), s.end);
}

/**
 * UTCTime / GeneralizedTime (RFC 5280 §4.1.2.5): UTCTime years 50–99 are 19xx, 00–49 are 20xx.
 */
/** Two decimal digits at `i`, or -1. */
function digits2(b: Buffer, i: number): number {
  const x = b[i]! - 48;
  const y = b[i + 1]! - 48;
  return x >= 0 && x <= 9 && y >= 0 && y <= 9 ? x * 10 + y : -1;
}

export function decodeTime(t: Tlv): Date {
  const sp = asSpan(t);
  // the form RFC 5280 §4.1.2.5.1 requires, YYMMDDHHMMSSZ, read in place without a regex (certificates carry four times)
  if (t.tag === 0x17 && sp.end - sp.start === 13 && sp.buf[sp.end - 1] === 0x5a) {
    const b = sp.buf;
    const o = sp.start;
    const yy = digits2(b, o);
    const mo = digits2(b, o + 2);
    const d = digits2(b, o + 4);
    const h = digits2(b, o + 6);
    const mi = digits2(b, o + 8);
    const sec = digits2(b, o + 10);
    if ((yy | mo | d | h | mi | sec) >= 0) {
      const year = yy >= 50 ? 1900 + yy : 2000 + yy;
      if (!civilFieldsValid(year, mo, d, h, mi, sec)) throw new RangeError(`bad UTCTime ${contentKey(t)}: no such date or time`);
      return new Date(daysFromCivil(year, mo, d) * 86_400_000 + ((h * 60 + mi) * 60 + sec) * 1000);
    }
  }
  const s = contentKey(t);
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(s);
    if (!m) throw new RangeError(`bad UTCTime ${s}`);
    const yy = Number(m[1]);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    if (!civilFieldsValid(year, Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0))) throw new RangeError(`bad UTCTime ${s}: no such date or time`);
    return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
  }
  if (t.tag === 0x18) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(s);
    if (!m) throw new RangeError(`bad GeneralizedTime ${s}`);
    if (!civilFieldsValid(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))) throw new RangeError(`bad GeneralizedTime ${s}: no such date or time`);
    const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  }
  throw new RangeError("expected a Time");
}

/** Context-specific tag number of a TLV (class bits and constructed bit stripped). */
export function contextNumber(t: Tlv): number | undefined {
  return (t.tag & 0xc0) === 0x80 ? t.tag & 0x1f : undefined;
}
