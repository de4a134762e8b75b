/**
 * §6.3.3 on hand-made CRLs: the signature question is answered by the test (crlVerified), so each CRL is just
 * the TBS structure that matters. The certificate is a PKITS end entity (serial 1, issuer Good CA).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { bitString, enumerated, explicit, extension, implicitPrimitive, integer, nul, oid, printable, seq, set, time, tlv } from "../pki/der.js";
import { parseCertificate } from "./certificate.js";
import { checkCrls } from "./crl-check.js";
import { parseCrl } from "./crl.js";

const ee = parseCertificate(readFileSync(join(import.meta.dirname, "../../test/vectors/pkits/certs/ValidCertificatePathTest1EE.crt")));
const SERIAL = Buffer.from(ee.serialHex, "hex");
const OTHER_CA = seq(set(seq(oid("2.5.4.6"), printable("US"))), set(seq(oid("2.5.4.3"), printable("Other CA"))));
const AT = new Date("2026-01-01T00:00:00Z");
const Y = (y: number) => new Date(Date.UTC(y, 0, 1));

interface EntrySpec {
  serial?: Buffer;
  reason?: number;
  certificateIssuer?: Buffer;
}

function crl(p: { issuer?: Buffer; thisUpdate?: Date; nextUpdate?: Date; entries?: EntrySpec[]; exts?: Buffer[]; lazy?: boolean }) {
  const entries = (p.entries ?? []).map((e) => {
    const exts: Buffer[] = [];
    if (e.reason !== undefined) exts.push(extension("2.5.29.21", false, enumerated(e.reason)));
    if (e.certificateIssuer) exts.push(extension("2.5.29.29", true, seq(explicit(4, e.certificateIssuer))));
    return seq(tlv(0x02, e.serial ?? SERIAL), time(Y(2020)), ...(exts.length ? [seq(...exts)] : []));
  });
  const tbs = seq(
    integer(1),
    seq(oid("1.2.840.113549.1.1.11"), nul()),
    p.issuer ?? ee.issuer.der,
    time(p.thisUpdate ?? Y(2025)),
    time(p.nextUpdate ?? Y(2027)),
    ...(entries.length ? [seq(...entries)] : []),
    ...(p.exts?.length ? [explicit(0, seq(...p.exts))] : []),
  );
  return parseCrl(seq(tbs, seq(oid("1.2.840.113549.1.1.11"), nul()), bitString(Buffer.from([1]))), p.lazy ? { lazyEntries: {} } : {});
}
const number = (n: number) => extension("2.5.29.20", false, integer(n));
const deltaOf = (base: number) => extension("2.5.29.27", true, integer(base));
const freshest = extension("2.5.29.46", false, seq(seq(explicit(0, explicit(0, implicitPrimitive(6, Buffer.from("http://crl.example/delta")))))));
/** issuingDistributionPoint with onlySomeReasons (ReasonFlags bits) and/or indirectCRL */
function idp(p: { reasons?: number[]; indirect?: boolean }) {
  const parts: Buffer[] = [];
  if (p.reasons) {
    const bytes = Buffer.alloc(2);
    for (const b of p.reasons) bytes[b >> 3]! |= 0x80 >> (b & 7);
    parts.push(tlv(0x83, Buffer.concat([Buffer.from([0]), bytes])));
  }
  if (p.indirect) parts.push(implicitPrimitive(4, Buffer.from([0xff])));
  return extension("2.5.29.28", true, seq(...parts));
}
const check = (crls: ReturnType<typeof crl>[], useDeltas = true) => checkCrls({ cert: ee, crls, at: AT, crlVerified: () => true, useDeltas });

describe("CRL processing, RFC 5280 §6.3.3", () => {
  test("a current complete CRL: good, or revoked with its entry", () => {
    expect(check([crl({ exts: [number(1)] })]).status).toBe("good");
    const r = check([crl({ entries: [{ reason: 1 }], exts: [number(1)] })]);
    expect(r.status === "revoked" && r.entry.reason).toBe(1);
  });

  test("a CRL not yet issued or past nextUpdate does not count (a)", () => {
    expect(check([crl({ thisUpdate: Y(2027), nextUpdate: Y(2028) })]).status).toBe("unknown");
    expect(check([crl({ thisUpdate: Y(2024), nextUpdate: Y(2025) })]).status).toBe("unknown");
  });

  test("a stale complete CRL with freshestCRL is brought up to date by a current delta ((a)(1)(i))", () => {
    const base = crl({ thisUpdate: Y(2024), nextUpdate: Y(2025), exts: [number(5), freshest] });
    expect(check([base, crl({ exts: [number(6), deltaOf(5)] })]).status).toBe("good");
    expect(check([base, crl({ exts: [number(6), deltaOf(5)] })], false).status).toBe("unknown");
    // a delta for a later base does not apply (§5.2.4)
    expect(check([base, crl({ exts: [number(7), deltaOf(6)] })]).status).toBe("unknown");
  });

  test("a delta lists a new revocation, and removeFromCRL releases a hold on the complete CRL (h)–(k)", () => {
    const base = crl({ exts: [number(5)] });
    expect(check([base, crl({ entries: [{ reason: 1 }], exts: [number(6), deltaOf(5)] })]).status).toBe("revoked");
    const held = crl({ entries: [{ reason: 6 }], exts: [number(5)] });
    expect(check([held]).status).toBe("revoked");
    expect(check([held, crl({ entries: [{ reason: 8 }], exts: [number(6), deltaOf(5)] })]).status).toBe("good");
  });

  test("two current CRLs that both cover the certificate: the newer one decides, whatever the order given", () => {
    // a partition (or an earlier CRL) still current but issued before the revocation, beside the newer CRL listing it
    const before = crl({ thisUpdate: new Date("2025-06-01T00:00:00Z"), exts: [number(1)] });
    const after = crl({ thisUpdate: new Date("2025-06-01T00:00:01Z"), entries: [{ reason: 1 }], exts: [number(2)] });
    expect(check([before, after]).status).toBe("revoked");
    expect(check([after, before]).status).toBe("revoked");
    // the caller's array is not reordered (a frozen set of the cache: sorting it in place would throw)
    const given = Object.freeze([before, after]);
    expect(checkCrls({ cert: ee, crls: given, at: AT, crlVerified: () => true }).status).toBe("revoked");
    expect(given).toEqual([before, after]);
    // and a hold released by the newer CRL stays released
    const held = crl({ thisUpdate: Y(2025), entries: [{ reason: 6 }], exts: [number(1)] });
    const released = crl({ thisUpdate: new Date("2025-02-01T00:00:00Z"), exts: [number(2)] });
    expect(check([held, released]).status).toBe("good");
  });

  test("a delta CRL alone is never a complete CRL", () => {
    expect(check([crl({ exts: [number(6), deltaOf(5)] })]).status).toBe("unknown");
  });

  test("CRLs partitioned by onlySomeReasons must together cover every reason (c)–(d), (l)", () => {
    const compromise = crl({ exts: [number(1), idp({ reasons: [1, 2] })] });
    const rest = crl({ exts: [number(1), idp({ reasons: [3, 4, 5, 6, 7, 8] })] });
    expect(check([compromise]).status).toBe("unknown");
    expect(check([compromise, rest]).status).toBe("good");
  });

  test("an indirect CRL's entry applies only to the certificate issuer it names (§5.3.3)", () => {
    const ca = crl({ exts: [number(1)] });
    // the same serial revoked for another CA only: not this certificate
    const indirect = crl({ entries: [{ certificateIssuer: OTHER_CA, reason: 1 }], exts: [number(1), idp({ indirect: true })] });
    expect(check([indirect]).status).toBe("good");
    const forUs = crl({ entries: [{ certificateIssuer: ee.issuer.der, reason: 1 }], exts: [number(1), idp({ indirect: true })] });
    expect(check([forUs, ca]).status).toBe("revoked");
  });

  test("a CRL from another issuer, or one whose signature does not validate, is not used (b)(1), (f)–(g)", () => {
    expect(check([crl({ issuer: OTHER_CA, exts: [number(1)] })]).status).toBe("unknown");
    expect(checkCrls({ cert: ee, crls: [crl({ exts: [number(1)] })], at: AT, crlVerified: () => false }).status).toBe("unknown");
  });

  test("a CRL read lazily whose entries do not decode is not used, and the answer says why; one that decodes is read as usual", () => {
    const twice = [{ serial: SERIAL }, { serial: SERIAL }]; // one serial listed twice: parseCrl would refuse it
    expect(() => crl({ entries: twice, exts: [number(1)] })).toThrow(/listed twice/);
    const r = check([crl({ entries: twice, exts: [number(1)], lazy: true })]);
    expect(r).toMatchObject({ status: "unknown", detail: expect.stringMatching(/revokedCertificates do not decode/) });
    expect(check([crl({ entries: [{ serial: SERIAL, reason: 1 }], exts: [number(1)], lazy: true })]).status).toBe("revoked");
  });
});

