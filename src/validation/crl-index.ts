/**
 * A compact index of a CRL's revokedCertificates, RFC 5280 §5.1.2.6 and the entry extensions of §5.3
 * (reasonCode §5.3.1, invalidityDate §5.3.2, certificateIssuer §5.3.3).
 *
 * A 1,000,000-entry CRL is read once into a few typed arrays, never one JS object per entry:
 * - `keys`: one Buffer of fixed-width records (1 octet length + the serial's contents octets, zero-padded to the
 *   widest serial), sorted by (length, octets) for binary search — 21 bytes an entry for 20-octet serials;
 * - `revokedAt`: Float64Array of revocation times (ms), 8 bytes an entry;
 * - `reasons`: Uint8Array of CRLReason codes (255: absent), 1 byte an entry;
 * - `issuers`: Uint16Array into a table of certificateIssuer names, only for indirect CRLs (§5.3.3), 2 bytes;
 * - invalidityDate: a sparse map (rare).
 * About 30–40 bytes an entry, so a 1M-entry CRL costs 30–40 MB of index beside its own DER (≈ 40 MB).
 * CrlEntry objects are made only for the entries a lookup finds.
 *
 * The same serial listed twice for the same certificate issuer is rejected (RangeError): the CRL is malformed
 * and the engine leaves it out. An entry stays an entry whatever the validation time: that a certificate has
 * expired (and so may be dropped from later CRLs, §3.3) is the path's concern (§6.1.3(a)(2)), not the lookup's.
 */
import { EXT_OID } from "../profile/oids.js";
import { decodeBoolean, decodeInteger, decodeOid, decodeTime, spanAt, tlvAt } from "./asn1.js";
import { civilFieldsValid, daysFromCivil } from "./civil-time.js";
import type { CrlEntry } from "./crl.js";
import { parseGeneralNames, type GeneralName } from "./name.js";

const HOLD_INSTRUCTION_CODE = "2.5.29.23";
const RECOGNISED_ENTRY_EXTENSIONS: ReadonlySet<string> = new Set([EXT_OID.cRLReason, EXT_OID.invalidityDate, EXT_OID.certificateIssuer, HOLD_INSTRUCTION_CODE]);
const NO_REASON = 255;
/** RFC 5280 §4.1.2.2: serials are at most 20 octets; a little slack for non-conforming issuers. */
const MAX_SERIAL_OCTETS = 32;

/** What the engine asks of a CRL's entries (crl-check.ts findEntry): the entries listed under a serial. */
export interface CrlEntries {
  /** the entries for this serial (hex of the INTEGER contents); several only in an indirect CRL */
  get(serialHex: string): readonly CrlEntry[] | undefined;
  /** the serial (hex) of the first entry, in serial order, whose reasonCode is `reason`; undefined when none is */
  serialWithReason(reason: number): string | undefined;
  readonly size: number;
}

/** The parsed-entries result: the index, and the first unprocessed critical entry extension (§5.3), if any. */
export interface IndexedEntries {
  readonly entries: CompactCrlEntries;
  readonly unknownCriticalExtension?: string;
}

/** A TLV's place in its buffer (asn1.ts spanAt: where it begins, its tag, its contents' start and end). */
const header = spanAt;

const d2 = (b: Buffer, i: number) => {
  const x = b[i]! - 48;
  const y = b[i + 1]! - 48;
  if (x < 0 || x > 9 || y < 0 || y > 9) throw new RangeError("bad time digits");
  return x * 10 + y;
};

/** UTCTime YYMMDDHHMMSSZ without a regex (the form RFC 5280 §4.1.2.5.1 requires); anything else the slow way. */
function timeAt(b: Buffer, h: { readonly at: number; readonly tag: number; readonly start: number; readonly end: number }): number {
  if (h.tag === 0x17 && h.end - h.start === 13 && b[h.end - 1] === 0x5a) {
    const yy = d2(b, h.start);
    const year = yy >= 50 ? 1900 + yy : 2000 + yy;
    const month = d2(b, h.start + 2);
    const day = d2(b, h.start + 4);
    const hour = d2(b, h.start + 6);
    const minute = d2(b, h.start + 8);
    const second = d2(b, h.start + 10);
    // by arithmetic (civil-time.ts); a field out of range is refused on the slow path (decodeTime)
    if (civilFieldsValid(year, month, day, hour, minute, second)) return daysFromCivil(year, month, day) * 86_400_000 + ((hour * 60 + minute) * 60 + second) * 1000;
  }
  return decodeTime(tlvAt(b, h.at)).getTime();
}

/**
 * Where an INTEGER's value begins in `b[start, end)`: past the octets X.690 §8.3.2 forbids (a leading 00 before an
 * octet below 80, a leading FF before one from 80). DER has none; a CRL that pads its serials still names the
 * certificates of those values, and is read by value (certificate and entry compared as the numbers they are),
 * where comparing the octets as sent let a padded entry miss the certificate it revokes.
 */
function minimalStart(b: Uint8Array, start: number, end: number): number {
  let k = start;
  while (end - k > 1 && ((b[k] === 0x00 && b[k + 1]! < 0x80) || (b[k] === 0xff && b[k + 1]! >= 0x80))) k++;
  return k;
}

/** The value of a hex digit (either case), or -1. */
function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** A lookup's serial as sent, and as the key sought: reused by every lookup (grown for an unusually long serial). */
let sentScratch = new Uint8Array(MAX_SERIAL_OCTETS);
const keyScratch = new Uint8Array(MAX_SERIAL_OCTETS + 1);

/**
 * The compact index. Built by `indexEntries` from the revokedCertificates SEQUENCE; immutable afterwards.
 */
export class CompactCrlEntries implements CrlEntries {
  readonly size: number;
  readonly #keys: Buffer;
  readonly #stride: number;
  readonly #revokedAt: Float64Array;
  readonly #reasons: Uint8Array;
  readonly #issuerRef: Uint16Array | undefined;
  readonly #issuerTable: ReadonlyArray<readonly GeneralName[] | undefined>;
  readonly #invalidity: ReadonlyMap<number, number>;

  /** @internal built by indexEntries */
  constructor(p: {
    keys: Buffer;
    stride: number;
    revokedAt: Float64Array;
    reasons: Uint8Array;
    issuerRef?: Uint16Array;
    issuerTable: ReadonlyArray<readonly GeneralName[] | undefined>;
    invalidity: ReadonlyMap<number, number>;
  }) {
    this.size = p.revokedAt.length;
    this.#keys = p.keys;
    this.#stride = p.stride;
    this.#revokedAt = p.revokedAt;
    this.#reasons = p.reasons;
    this.#issuerRef = p.issuerRef;
    this.#issuerTable = p.issuerTable;
    this.#invalidity = p.invalidity;
  }

  /** The revocation time (ms) of every entry, in index order: a copy, so the index stays as it was built. */
  revocationTimes(): Float64Array {
    return this.#revokedAt.slice();
  }

  /** Bytes held by the index (not counting the CRL's DER). */
  get byteLength(): number {
    return this.#keys.length + this.#revokedAt.byteLength + this.#reasons.byteLength + (this.#issuerRef?.byteLength ?? 0) + this.#invalidity.size * 32;
  }

  /** sign of (entry i's key − key): a byte loop, cheaper than a Buffer.compare call for keys this short */
  #compare(i: number, key: Uint8Array): number {
    const s = this.#stride;
    const keys = this.#keys;
    for (let j = 0, o = i * s; j < s; j++, o++) {
      const d = keys[o]! - key[j]!;
      if (d !== 0) return d;
    }
    return 0;
  }

  get(serialHex: string): readonly CrlEntry[] | undefined {
    if (serialHex.length === 0 || serialHex.length % 2 !== 0) return undefined;
    const given = serialHex.length / 2;
    // decoded into scratch arrays, not two new ones a lookup (the engine is synchronous: one lookup at a time)
    if (sentScratch.length < given) sentScratch = new Uint8Array(given);
    const sent = sentScratch;
    for (let j = 0; j < given; j++) {
      const hi = hexDigit(serialHex.charCodeAt(2 * j));
      const lo = hexDigit(serialHex.charCodeAt(2 * j + 1));
      if (hi < 0 || lo < 0) return undefined;
      sent[j] = (hi << 4) | lo;
    }
    // by value, as the keys are stored (minimalStart)
    const from = minimalStart(sent, 0, given);
    const octets = given - from;
    if (octets + 1 > this.#stride) return undefined;
    // the length octet, the serial's octets, then zeros to the stride (as the records are padded)
    const key = keyScratch;
    key[0] = octets;
    for (let j = 0; j < octets; j++) key[1 + j] = sent[from + j]!;
    key.fill(0, 1 + octets, this.#stride);
    // first index whose key is >= the one sought
    let lo = 0;
    let hi = this.size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#compare(mid, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    let found: CrlEntry[] | undefined;
    for (let i = lo; i < this.size && this.#compare(i, key) === 0; i++) (found ??= []).push(this.#entry(i, serialHex));
    return found;
  }

  serialWithReason(reason: number): string | undefined {
    const i = this.#reasons.indexOf(reason);
    if (i < 0) return undefined;
    const o = i * this.#stride;
    return this.#keys.subarray(o + 1, o + 1 + this.#keys[o]!).toString("hex");
  }

  #entry(i: number, serialHex: string): CrlEntry {
    const reason = this.#reasons[i]!;
    const inv = this.#invalidity.get(i);
    const issuer = this.#issuerRef ? this.#issuerTable[this.#issuerRef[i]!] : undefined;
    const entry: { -readonly [K in keyof CrlEntry]: CrlEntry[K] } = { serialHex, revocationDate: new Date(this.#revokedAt[i]!) };
    if (reason !== NO_REASON) entry.reason = reason;
    if (inv !== undefined) entry.invalidityDate = new Date(inv);
    if (issuer) entry.certificateIssuer = issuer;
    return Object.freeze(entry);
  }
}

/** Sign of (record a − record b), both `stride` octets at `a` and `b` in `keys`: a byte loop, cheaper than Buffer.compare for records this short. */
function compareRecords(keys: Uint8Array, a: number, b: number, stride: number): number {
  for (let j = 0; j < stride; j++) {
    const d = keys[a + j]! - keys[b + j]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** The small INTEGER or ENUMERATED in `der[from, to)` (a reasonCode), read in place; longer forms the general way. */
function smallIntegerAt(der: Buffer, from: number, to: number): number {
  const h = header(der, from, to);
  const len = h.end - h.start;
  if (len > 4) return Number(decodeInteger(tlvAt(der.subarray(from, to))));
  let v = 0;
  for (let k = h.start; k < h.end; k++) v = v * 256 + der[k]!;
  return len > 0 && der[h.start]! & 0x80 ? v - 2 ** (8 * len) : v;
}

/**
 * Reads revokedCertificates (the SEQUENCE's contents `der[start, end)`) into a CompactCrlEntries. Throws
 * RangeError on malformed DER and on a serial listed twice for the same certificate issuer.
 */
export function indexEntries(der: Buffer, start: number, end: number): IndexedEntries {
  // First pass: count and find the widest serial.
  let n = 0;
  let width = 1;
  for (let off = start; off < end; ) {
    const e = header(der, off, end);
    const s = header(der, e.start, e.end);
    if (s.tag !== 0x02 || s.end === s.start) throw new RangeError("revokedCertificates: an entry without a serial");
    width = Math.max(width, s.end - minimalStart(der, s.start, s.end));
    n++;
    off = e.end;
  }
  if (width > MAX_SERIAL_OCTETS) throw new RangeError(`revokedCertificates: a serial of ${width} octets`);
  const stride = width + 1;
  const keys = Buffer.alloc(n * stride);
  const revokedAt = new Float64Array(n);
  const reasons = new Uint8Array(n).fill(NO_REASON);
  let issuerRef: Uint16Array | undefined;
  const issuerTable: Array<readonly GeneralName[] | undefined> = [undefined];
  const invalidity = new Map<number, number>();
  let unknownCriticalExtension: string | undefined;
  let currentIssuer = 0;
  let i = 0;
  for (let off = start; off < end; i++) {
    const e = header(der, off, end);
    const s = header(der, e.start, e.end);
    const from = minimalStart(der, s.start, s.end);
    keys[i * stride] = s.end - from;
    for (let k = from, o = i * stride + 1; k < s.end; k++, o++) keys[o] = der[k]!;
    const t = header(der, s.end, e.end);
    if (t.tag !== 0x17 && t.tag !== 0x18) throw new RangeError("revokedCertificates: revocationDate is not a Time");
    revokedAt[i] = timeAt(der, t);
    if (t.end < e.end) {
      const exts = header(der, t.end, e.end);
      for (let x = exts.start; x < exts.end; ) {
        const ext = header(der, x, exts.end);
        const oidH = header(der, ext.start, ext.end);
        let p = oidH.end;
        let critical = false;
        let h = header(der, p, ext.end);
        if (h.tag === 0x01) {
          critical = decodeBoolean(tlvAt(der, p));
          p = h.end;
          h = header(der, p, ext.end);
        }
        if (h.tag !== 0x04) throw new RangeError("entry extension: extnValue is not an OCTET STRING");
        const o = der;
        const short = oidH.end - oidH.start === 3 && o[oidH.start] === 0x55 && o[oidH.start + 1] === 0x1d ? o[oidH.start + 2] : -1;
        const value = () => der.subarray(h.start, h.end);
        if (short === 0x15) {
          const v = smallIntegerAt(der, h.start, h.end);
          if (v < 0 || v >= NO_REASON) throw new RangeError(`entry reasonCode ${v} out of range`);
          reasons[i] = v;
        } else if (short === 0x18) invalidity.set(i, decodeTime(tlvAt(value())).getTime());
        else if (short === 0x1d) {
          issuerTable.push(parseGeneralNames(tlvAt(value())));
          currentIssuer = issuerTable.length - 1;
          if (currentIssuer > 0xffff) throw new RangeError("revokedCertificates: too many certificateIssuer changes");
          issuerRef ??= new Uint16Array(n);
        } else if (critical) {
          const oid = decodeOid(tlvAt(der, oidH.at));
          if (!RECOGNISED_ENTRY_EXTENSIONS.has(oid)) unknownCriticalExtension ??= oid;
        }
        x = ext.end;
      }
    }
    if (issuerRef) issuerRef[i] = currentIssuer;
    off = e.end;
  }
  // Sort by key (then by issuer) unless already in order, as a CA's CRL usually is.
  let order: Uint32Array | undefined;
  const cmp = (a: number, b: number) => compareRecords(keys, a * stride, b * stride, stride) || (issuerRef ? issuerRef[a]! - issuerRef[b]! : 0);
  for (let k = 1; k < n; k++) {
    if (cmp(k - 1, k) > 0) {
      order = Uint32Array.from({ length: n }, (_, j) => j).sort(cmp);
      break;
    }
  }
  let sortedKeys = keys;
  let sortedAt = revokedAt;
  let sortedReasons = reasons;
  let sortedRef = issuerRef;
  let sortedInvalidity: Map<number, number> = invalidity;
  if (order) {
    sortedKeys = Buffer.alloc(keys.length);
    sortedAt = new Float64Array(n);
    sortedReasons = new Uint8Array(n);
    sortedRef = issuerRef ? new Uint16Array(n) : undefined;
    sortedInvalidity = new Map();
    for (let k = 0; k < n; k++) {
      const j = order[k]!;
      keys.copy(sortedKeys, k * stride, j * stride, j * stride + stride);
      sortedAt[k] = revokedAt[j]!;
      sortedReasons[k] = reasons[j]!;
      if (sortedRef) sortedRef[k] = issuerRef![j]!;
      const inv = invalidity.get(j);
      if (inv !== undefined) sortedInvalidity.set(k, inv);
    }
  }
  // Duplicates: equal neighbours after sorting, for the same certificate issuer.
  for (let k = 1; k < n; k++) {
    if (compareRecords(sortedKeys, (k - 1) * stride, k * stride, stride) === 0 && (!sortedRef || sortedRef[k - 1] === sortedRef[k])) {
      const len = sortedKeys[k * stride]!;
      throw new RangeError(`revokedCertificates: serial ${sortedKeys.toString("hex", k * stride + 1, k * stride + 1 + len)} is listed twice`);
    }
  }
  return {
    entries: new CompactCrlEntries({ keys: sortedKeys, stride, revokedAt: sortedAt, reasons: sortedReasons, issuerRef: sortedRef, issuerTable, invalidity: sortedInvalidity }),
    ...(unknownCriticalExtension ? { unknownCriticalExtension } : {}),
  };
}
