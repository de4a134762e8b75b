/**
 * The compact CRL index (crl-index.ts) and the cache of parsed CRLs (crl-index-cache.ts), on hand-made CRLs:
 * lookups at both ends and in between, absent serials, duplicates, unsorted input, indirect CRLs, and the
 * engine's view of an entry whatever the validation time.
 */
import { describe, expect, test } from "vitest";
import { bitString, enumerated, explicit, extension, generalizedTime, integer, nul, oid, printable, seq, set, time, tlv } from "../pki/der.js";
import { CrlIndexCache, crlsIssuedBy } from "./crl-index-cache.js";
import { indexEntries } from "./crl-index.js";
import { parseCrl } from "./crl.js";

const ISSUER = seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable("Index CA"))));
const OTHER = seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable("Other CA"))));
const T0 = Date.UTC(2026, 0, 1);

interface Spec {
  serial: Buffer;
  at?: Date;
  reason?: number;
  invalidity?: Date;
  certificateIssuer?: Buffer;
}

function entry(e: Spec): Buffer {
  const exts: Buffer[] = [];
  if (e.reason !== undefined) exts.push(extension("2.5.29.21", false, enumerated(e.reason)));
  if (e.invalidity) exts.push(extension("2.5.29.24", false, generalizedTime(e.invalidity)));
  if (e.certificateIssuer) exts.push(extension("2.5.29.29", true, seq(explicit(4, e.certificateIssuer))));
  return seq(tlv(0x02, e.serial), time(e.at ?? new Date(T0)), ...(exts.length ? [seq(...exts)] : []));
}

function crlDer(entries: Spec[], issuer: Buffer = ISSUER): Buffer {
  const tbs = seq(integer(1), seq(oid("1.2.840.113549.1.1.11"), nul()), issuer, time(new Date(T0)), time(new Date(T0 + 86_400_000)), ...(entries.length ? [seq(...entries.map(entry))] : []));
  return seq(tbs, seq(oid("1.2.840.113549.1.1.11"), nul()), bitString(Buffer.from([1])));
}

/** n ascending 16-octet serials, as our CA issues them */
const serialOf = (k: number) => Buffer.from((0x4000_0000_0000_0000_0000_0000_0000_0000n + BigInt(k) * 7919n).toString(16), "hex");

describe("compact CRL index", () => {
  const n = 10_000;
  const specs: Spec[] = Array.from({ length: n }, (_, k) => ({ serial: serialOf(k), at: new Date(T0 + k * 1000), ...(k % 3 ? { reason: k % 6 } : {}) }));
  const crl = parseCrl(crlDer(specs));

  test("finds the first, the last and one in the middle, with date and reason; an absent serial is undefined", () => {
    expect(crl.entries.size).toBe(n);
    for (const k of [0, n - 1, 4321]) {
      const [e, more] = crl.entries.get(serialOf(k).toString("hex"))!;
      expect(more).toBeUndefined();
      expect(e!.serialHex).toBe(serialOf(k).toString("hex"));
      expect(e!.revocationDate).toEqual(new Date(T0 + k * 1000));
      expect(e!.reason).toBe(k % 3 ? k % 6 : undefined);
    }
    for (const absent of [Buffer.from([1]), Buffer.from((0x4000_0000_0000_0000_0000_0000_0000_0000n + 1n).toString(16), "hex"), Buffer.alloc(17, 0x7f), Buffer.alloc(16, 0x7f)]) {
      expect(crl.entries.get(absent.toString("hex"))).toBeUndefined();
    }
    expect(crl.entries.get("")).toBeUndefined();
    expect(crl.entries.get("zz")).toBeUndefined();
  });

  test("serials of different lengths and an unsorted list are found", () => {
    const mixed = [Buffer.from([0x05]), Buffer.from("7fffffffffffffffffffffffffffffff", "hex"), Buffer.from([0x00, 0x80]), Buffer.from([0x01, 0x00])];
    const c = parseCrl(crlDer(mixed.map((serial, k) => ({ serial, reason: k + 1 }))));
    mixed.forEach((s, k) => expect(c.entries.get(s.toString("hex"))?.[0]?.reason).toBe(k + 1));
    expect(c.entries.get("80")).toBeUndefined(); // the same value octet as 0080, another encoding: not the same serial
    // a lookup reuses its key: a short serial sought after a long one is found, none of the long one's octets left
    expect(c.entries.get("05abcdefabcdefabcdefabcdefabcdef")).toBeUndefined();
    expect(c.entries.get("05")?.[0]?.reason).toBe(1);
  });

  test("a serial listed twice is rejected", () => {
    expect(() => parseCrl(crlDer([{ serial: serialOf(1) }, { serial: serialOf(2) }, { serial: serialOf(1) }]))).toThrow(/listed twice/);
  });

  test("indirect CRL: one serial under two certificate issuers is two entries, not a duplicate", () => {
    const c = parseCrl(crlDer([{ serial: serialOf(1) }, { serial: serialOf(1), certificateIssuer: OTHER }, { serial: serialOf(2) }]));
    const found = c.entries.get(serialOf(1).toString("hex"))!;
    expect(found).toHaveLength(2);
    expect(found.filter((e) => e.certificateIssuer).length).toBe(1);
    // certificateIssuer carries over to the next entry (§5.3.3)
    expect(c.entries.get(serialOf(2).toString("hex"))![0]!.certificateIssuer).toBeDefined();
  });

  test("invalidityDate is kept; an entry is found whatever its revocation time (expiry is the path's concern)", () => {
    const c = parseCrl(crlDer([{ serial: serialOf(1), at: new Date(Date.UTC(2001, 0, 1)), invalidity: new Date(Date.UTC(2000, 5, 1)) }, { serial: serialOf(2), at: new Date(Date.UTC(2049, 0, 1)) }]));
    expect(c.entries.get(serialOf(1).toString("hex"))![0]).toMatchObject({ revocationDate: new Date(Date.UTC(2001, 0, 1)), invalidityDate: new Date(Date.UTC(2000, 5, 1)) });
    expect(c.entries.get(serialOf(2).toString("hex"))![0]!.revocationDate).toEqual(new Date(Date.UTC(2049, 0, 1)));
  });

  test("no per-entry objects: the index is a few bytes an entry", () => {
    const der = crlDer(specs);
    const list = parseCrl(der);
    const bytes = (list.entries as unknown as { byteLength: number }).byteLength;
    expect(bytes / n).toBeLessThan(40);
    expect(() => indexEntries(Buffer.from([0x30, 0x03, 0x02, 0x00, 0x17]), 2, 5)).toThrow(RangeError);
  });
});

describe("CrlIndexCache", () => {
  const der = crlDer([{ serial: serialOf(1) }, { serial: serialOf(2) }]);

  test("the same Buffer or the same bytes: parsed once; garbage: undefined, remembered", () => {
    const cache = new CrlIndexCache();
    const a = cache.parse(der);
    expect(cache.parse(der)).toBe(a);
    expect(cache.parse(Buffer.from(der))).toBe(a);
    expect(cache.parses).toBe(1);
    expect(cache.parse(Buffer.from("not a CRL"))).toBeUndefined();
    expect(cache.parse(Buffer.from("not a CRL"))).toBeUndefined();
    expect(cache.parses).toBe(2);
  });

  test("bounded: the least recently used CRL goes first", () => {
    const cache = new CrlIndexCache({ maxCrls: 2 });
    const ders = [1, 2, 3].map((k) => crlDer([{ serial: serialOf(k) }]));
    cache.parse(ders[0]!);
    cache.parse(ders[1]!);
    cache.parse(ders[0]!); // 0 is now the most recent
    cache.parse(ders[2]!); // evicts 1
    expect(cache.stats.crls).toBe(2);
    const before = cache.parses;
    cache.parse(ders[0]!);
    expect(cache.parses).toBe(before);
    cache.parse(ders[1]!);
    expect(cache.parses).toBe(before + 1);
    expect(() => new CrlIndexCache({ maxCrls: 0 })).toThrow(/maxCrls/);
  });

  test("parseAll: a frozen set is parsed once, kept until the cache lets one of it go, and grouped by issuer", () => {
    const cache = new CrlIndexCache({ maxCrls: 4 });
    const [a1, a2, o1, x, y] = [crlDer([{ serial: serialOf(1) }]), crlDer([{ serial: serialOf(2) }]), crlDer([{ serial: serialOf(3) }], OTHER), crlDer([{ serial: serialOf(4) }]), crlDer([{ serial: serialOf(5) }])];
    const set = Object.freeze([a1!, Buffer.from("not a CRL"), o1!, a2!]);
    const first = cache.parseAll(set);
    expect(first).toHaveLength(3); // the bytes that are no CRL are left out
    expect(Object.isFrozen(first)).toBe(true);
    expect(cache.parses).toBe(4);
    expect(cache.parseAll(set)).toBe(first); // the same set: nothing looked up again
    // An array that is not frozen may change between calls: looked at each time (its CRLs still cached).
    const loose = cache.parseAll([...set]);
    expect(loose).not.toBe(first);
    expect(loose).toEqual(first);
    expect(Object.isFrozen(loose)).toBe(false);
    expect(cache.parses).toBe(4);
    // By issuer, in the set's order; the same group object each time for a kept set; none for a stranger.
    const mine = crlsIssuedBy(first, first[0]!.issuer.key);
    expect(mine).toEqual([first[0], first[2]]);
    expect(crlsIssuedBy(first, first[0]!.issuer.key)).toBe(mine);
    expect(crlsIssuedBy(first, first[1]!.issuer.key)).toEqual([first[1]]);
    expect(crlsIssuedBy(first, "no such issuer")).toEqual([]);
    expect(crlsIssuedBy(loose, first[1]!.issuer.key)).toEqual([first[1]]);
    // A frozen set's bytes are promised not to change: its CRLs are read where they are, not copied; parse()
    // (a Buffer that may be reused) parses a copy.
    const sameMemory = (x: Buffer, y: Buffer) => x.buffer === y.buffer && x.byteOffset === y.byteOffset;
    expect(sameMemory(first[0]!.der, a1!)).toBe(true);
    const copied = new CrlIndexCache().parse(a1!)!;
    expect(sameMemory(copied.der, a1!)).toBe(false);
    expect(copied.der.equals(a1!)).toBe(true);
  });

  test("parseAll: a kept set counts as used each time it is asked for, and is looked at again after an eviction", () => {
    const cache = new CrlIndexCache({ maxCrls: 4 });
    const [a1, o1, x, y] = [crlDer([{ serial: serialOf(1) }]), crlDer([{ serial: serialOf(3) }], OTHER), crlDer([{ serial: serialOf(4) }]), crlDer([{ serial: serialOf(5) }])];
    const set = Object.freeze([a1!, Buffer.from("not a CRL"), o1!]);
    const first = cache.parseAll(set);
    cache.parse(x!); // four held
    expect(cache.parseAll(set)).toBe(first); // the set is now more recent than x
    cache.parse(y!); // a fifth: x, the least recently used, goes
    expect(cache.stats.crls).toBe(4);
    expect(cache.parses).toBe(5);
    const second = cache.parseAll(set); // looked at again after the eviction: all of it still held
    expect(second).not.toBe(first);
    expect(second).toEqual(first);
    expect(cache.parses).toBe(5);
    cache.parse(x!); // x was the one let go
    expect(cache.parses).toBe(6);
  });

  test("parseAll: a frozen set's entries are indexed when first read, counted then; entries that do not decode make the CRL unusable", () => {
    const cache = new CrlIndexCache({ maxCrls: 8, boundedBySet: true });
    const big = crlDer(Array.from({ length: 500 }, (_, k) => ({ serial: serialOf(k) })));
    const twice = crlDer([{ serial: serialOf(7) }, { serial: serialOf(7) }], OTHER); // a serial listed twice
    expect(new CrlIndexCache().parse(twice)).toBeUndefined(); // parse() indexes at once: no CRL
    const [crl, bad] = cache.parseAll(Object.freeze([big, twice]));
    expect(bad).toBeDefined(); // its header reads: it is in the set, to be found unusable when read
    const header = cache.stats.bytes;
    expect(header).toBe(0); // nothing indexed yet, and in a cache boundedBySet a frozen set's DER is not counted
    expect(crl!.entries.size).toBe(500);
    expect(crl!.entries.get(serialOf(3).toString("hex"))).toHaveLength(1);
    expect(crl!.unknownCriticalExtension).toBeUndefined();
    expect(crl!.undecodableEntries).toBeUndefined();
    const indexed = cache.stats.bytes;
    expect(indexed).toBeGreaterThan(header); // the index counts once built
    expect(crl!.entries.size).toBe(500);
    expect(cache.stats.bytes).toBe(indexed); // ... once
    expect(bad!.undecodableEntries).toMatch(/listed twice/);
    expect(bad!.entries.size).toBe(0);
  });

  test("retainOnly: every CRL but the given set's is let go (a replaced publication), the set's stay parsed", () => {
    const cache = new CrlIndexCache({ maxCrls: 16 });
    const [v1, v2, other] = [crlDer([{ serial: serialOf(1) }]), crlDer([{ serial: serialOf(1) }, { serial: serialOf(2) }]), crlDer([{ serial: serialOf(3) }], OTHER)];
    cache.parseAll(Object.freeze([v1!, other!]));
    for (const c of cache.parseAll(Object.freeze([v1!, other!]))) void c.entries.size;
    expect(cache.stats.crls).toBe(2);
    const now = Object.freeze([v2!, other!]); // v1 republished as v2
    cache.retainOnly(now);
    expect(cache.stats.crls).toBe(1); // v1 gone; v2 not parsed yet
    const parses = cache.parses;
    const [p2, po] = cache.parseAll(now);
    expect(cache.parses).toBe(parses + 1); // v2 only: the other CRL stayed
    expect(p2!.entries.size).toBe(2);
    expect(po!.entries.size).toBe(1);
    cache.retainOnly([]);
    expect(cache.stats).toEqual({ crls: 0, bytes: 0 });
  });

  // Found by a review: a bounded cache read frozen sets in place without counting their DER, so sets their callers
  // had dropped stayed reachable (40 × 2 MB against maxBytes 4 MB); and parse() returned a lazily parsed CRL whose
  // entries do not decode, which parseCrl (and so parse() on a copy) refuses.
  test("a frozen set's DER counts toward maxBytes unless the cache is boundedBySet: dropped sets are not kept beyond the bound", () => {
    const MB = 2 ** 20;
    const cache = new CrlIndexCache({ maxBytes: 4 * MB, maxCrls: 64 });
    let first: Buffer | undefined;
    for (let i = 0; i < 40; i++) {
      // a CRL of 2 MB (a long signature), a new publication each time; the caller drops the last one's set
      const der = seq(seq(integer(1), seq(oid("1.2.840.113549.1.1.11"), nul()), ISSUER, time(new Date(T0)), time(new Date(T0 + 86_400_000)), seq(entry({ serial: serialOf(i) }))), seq(oid("1.2.840.113549.1.1.11"), nul()), bitString(Buffer.alloc(2 * MB + i + 1, 1)));
      const [crl] = cache.parseAll(Object.freeze([der]));
      expect(crl!.entries.size).toBe(1);
      first ??= Buffer.from(der);
    }
    expect(cache.stats.bytes).toBeLessThanOrEqual(4 * MB + 1024); // the newest alone may be over, never more
    expect(cache.stats.crls).toBeLessThanOrEqual(2);
    const parses = cache.parses;
    cache.parse(first!);
    expect(cache.parses).toBe(parses + 1); // the first publication was let go
  });

  test("parse() gives no CRL for bytes whose entries do not decode, whichever way the cache met them first", () => {
    const twice = crlDer([{ serial: serialOf(7) }, { serial: serialOf(7) }]);
    expect(new CrlIndexCache().parse(twice)).toBeUndefined();
    const cache = new CrlIndexCache();
    expect(cache.parseAll(Object.freeze([Buffer.from(twice)]))).toHaveLength(1); // lazily: its header reads
    expect(cache.parse(Buffer.from(twice))).toBeUndefined();
  });
});

