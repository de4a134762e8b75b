/**
 * DER reading for path validation (X.690 §8, §10): just enough to take certificates and CRLs apart without
 * re-encoding them, so signatures are checked over the exact bytes received and names are compared as sent.
 * Any structural error throws RangeError; the callers turn that into a validation result.
 */
import { children, readHeader } from "../pki/der.js";

export interface Tlv {
  readonly tag: number;
  /** the whole TLV */
  readonly der: Buffer;
  /** the contents octets */
  readonly content: Buffer;
}

export function tlvAt(buf: Uint8Array, offset = 0): Tlv {
  const b = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const h = readHeader(b, offset);
  const end = offset + h.headerLength + h.length;
  if (end > b.length) throw new RangeError("truncated DER");
  return { tag: h.tag, der: b.subarray(offset, end), content: b.subarray(offset + h.headerLength, end) };
}

/** The children of a constructed TLV, each as a Tlv. */
export function items(t: Tlv | Uint8Array): Tlv[] {
  const der = "der" in t ? t.der : t;
  return children(der).map((c) => tlvAt(c));
}

export function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new RangeError(`${what}: expected tag 0x${tag.toString(16)}`);
  return t;
}

/** OIDs by their contents octets: the same few dozen recur in every certificate and CRL. */
const OIDS = new Map<string, string>();
const MAX_OIDS = 1024;

export function decodeOid(t: Tlv): string {
  if (t.tag !== 0x06) throw new RangeError("expected an OBJECT IDENTIFIER");
  const id = t.content.toString("latin1");
  let oid = OIDS.get(id);
  if (oid === undefined) {
    oid = decodeOidContents(t.content);
    if (OIDS.size < MAX_OIDS) OIDS.set(id, oid);
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
  return t.content.length > 0 && t.content[0] !== 0;
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

/** BIT STRING named bits (X.690 §8.6) as a set of bit numbers, bit 0 first. */
export function decodeNamedBits(t: Tlv): Set<number> {
  const bits = new Set<number>();
  const c = t.content;
  for (let i = 1; i < c.length; i++) for (let b = 0; b < 8; b++) if (c[i]! & (0x80 >> b)) bits.add((i - 1) * 8 + b);
  return bits;
}

/** The bytes of a BIT STRING without its unused-bits octet. */
export function bitStringBytes(t: Tlv): Buffer {
  if (t.tag !== 0x03) throw new RangeError("expected a BIT STRING");
  return t.content.subarray(1);
}

/**
 * UTCTime / GeneralizedTime (RFC 5280 §4.1.2.5): UTCTime years 50–99 are 19xx, 00–49 are 20xx.
 */
export function decodeTime(t: Tlv): Date {
  const c = t.content;
  // the form RFC 5280 §4.1.2.5.1 requires, YYMMDDHHMMSSZ, read without a regex (certificates carry four times)
  if (t.tag === 0x17 && c.length === 13 && c[12] === 0x5a) {
    let ok = true;
    const d2 = (i: number) => {
      const x = c[i]! - 48;
      const y = c[i + 1]! - 48;
      if (x < 0 || x > 9 || y < 0 || y > 9) ok = false;
      return x * 10 + y;
    };
    const yy = d2(0);
    const ms = Date.UTC(yy >= 50 ? 1900 + yy : 2000 + yy, d2(2) - 1, d2(4), d2(6), d2(8), d2(10));
    if (ok) return new Date(ms);
  }
  const s = c.toString("latin1");
  let m: RegExpMatchArray | null;
  if (t.tag === 0x17) {
    m = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/.exec(s);
    if (!m) throw new RangeError(`bad UTCTime ${s}`);
    const yy = Number(m[1]);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6] ?? 0)));
  }
  if (t.tag === 0x18) {
    m = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d+))?Z$/.exec(s);
    if (!m) throw new RangeError(`bad GeneralizedTime ${s}`);
    const ms = m[7] ? Math.floor(Number(`0.${m[7]}`) * 1000) : 0;
    return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]), ms));
  }
  throw new RangeError("expected a Time");
}

/** Context-specific tag number of a TLV (class bits and constructed bit stripped). */
export function contextNumber(t: Tlv): number | undefined {
  return (t.tag & 0xc0) === 0x80 ? t.tag & 0x1f : undefined;
}
