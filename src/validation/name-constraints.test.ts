import { describe, expect, test } from "vitest";
import { implicitPrimitive, oid, printable, seq, set, utf8 } from "../pki/der.js";
import { tlvAt } from "./asn1.js";
import { addConstraints, checkCertificateNames, checkName, dnsWithin, ipWithin, rfc822Within, UNCONSTRAINED, uriWithin } from "./name-constraints.js";
import { appendRdn, nameEquals, parseGeneralName, parseName, type GeneralName, type Name } from "./name.js";

const C = "2.5.4.6";
const O = "2.5.4.10";
const OU = "2.5.4.11";
const CN = "2.5.4.3";

function dn(...rdns: Array<[string, string, ("p" | "u")?]>): Name {
  return parseName(tlvAt(seq(...rdns.map(([t, v, enc]) => set(seq(oid(t), enc === "u" ? utf8(v) : printable(v)))))));
}
const dnName = (n: Name): GeneralName => ({ kind: "dn", value: n });
const sub = (base: GeneralName) => ({ base });

describe("name comparison, RFC 5280 §7.1", () => {
  test("case, surrounding and repeated white space, and string type do not matter", () => {
    expect(nameEquals(dn([C, "US"], [O, "Test  Certificates"]), dn([C, "us"], [O, " test certificates ", "u"]))).toBe(true);
    expect(nameEquals(dn([C, "US"], [O, "A"]), dn([C, "US"], [O, "B"]))).toBe(false);
    expect(nameEquals(dn([C, "US"], [O, "A"]), dn([O, "A"], [C, "US"]))).toBe(false);
  });
});

describe("a distribution point's name relative to the CRL issuer, §4.2.1.13", () => {
  test("is the issuer's name with the RDN appended, at any length (one over 65,535 octets had its length cut)", () => {
    for (const size of [10, 200, 70_000]) {
      const long = "x".repeat(size);
      const rdn = tlvAt(set(seq(oid(CN), utf8(long))));
      expect(nameEquals(appendRdn(dn([C, "JP"], [O, "JPKI"]), rdn), dn([C, "JP"], [O, "JPKI"], [CN, long, "u"]))).toBe(true);
    }
  });
});

describe("the name forms of §4.2.1.10", () => {
  test("dNSName: the domain itself and names with labels added on the left, on label boundaries", () => {
    expect(dnsWithin("host.example.com", "example.com")).toBe(true);
    expect(dnsWithin("example.com", "example.com")).toBe(true);
    expect(dnsWithin("EXAMPLE.com", "example.COM")).toBe(true);
    expect(dnsWithin("badexample.com", "example.com")).toBe(false);
    expect(dnsWithin("example.org", "example.com")).toBe(false);
  });

  test("rfc822Name: a mailbox, every mailbox on a host, or every host in a domain", () => {
    expect(rfc822Within("alice@mail.example.com", "alice@mail.example.com")).toBe(true);
    expect(rfc822Within("bob@mail.example.com", "alice@mail.example.com")).toBe(false);
    expect(rfc822Within("bob@mail.example.com", "mail.example.com")).toBe(true);
    expect(rfc822Within("bob@other.mail.example.com", "mail.example.com")).toBe(false);
    expect(rfc822Within("bob@mail.example.com", ".example.com")).toBe(true);
    expect(rfc822Within("bob@example.com", ".example.com")).toBe(false);
  });

  test("URI: the host part; a leading period means hosts below the domain only", () => {
    expect(uriWithin("http://testcertificates.gov/index.html", "testcertificates.gov")).toBe(true);
    expect(uriWithin("http://www.testcertificates.gov/", "testcertificates.gov")).toBe(false);
    expect(uriWithin("http://www.testcertificates.gov/", ".testcertificates.gov")).toBe(true);
    expect(uriWithin("http://user@testcertificates.gov:8080/x", "testcertificates.gov")).toBe(true);
    expect(uriWithin("urn:isbn:12345", "testcertificates.gov")).toBe(false);
  });

  test("iPAddress: address and mask", () => {
    const net = Buffer.from([192, 168, 0, 0, 255, 255, 0, 0]);
    expect(ipWithin(Buffer.from([192, 168, 4, 5]), net)).toBe(true);
    expect(ipWithin(Buffer.from([192, 169, 4, 5]), net)).toBe(false);
    expect(ipWithin(Buffer.alloc(16), net)).toBe(false);
  });
});

describe("permitted and excluded subtrees, §6.1.3(b)–(c), §6.1.4(g)", () => {
  const base = dn([C, "US"], [O, "Test Certificates 2011"], [OU, "permittedSubtree1"]);
  const inside = dn([C, "US"], [O, "Test Certificates 2011"], [OU, "permittedSubtree1"], [CN, "EE"]);
  const outside = dn([C, "US"], [O, "Test Certificates 2011"], [OU, "permittedSubtree2"], [CN, "EE"]);

  test("a directoryName must lie below a permitted base; other forms are not constrained by it", () => {
    const s = addConstraints(UNCONSTRAINED, { permitted: [sub(dnName(base))], excluded: [] });
    expect(checkName(s, dnName(inside))).toBeUndefined();
    expect(checkName(s, dnName(outside))).toEqual({ kind: "permitted", name: dnName(outside) });
    expect(checkName(s, { kind: "dns", value: "anything.example" })).toBeUndefined();
  });

  test("permitted sets of successive CAs intersect: a name must satisfy each", () => {
    const s1 = addConstraints(UNCONSTRAINED, { permitted: [sub({ kind: "dns", value: "example.com" })], excluded: [] });
    const s2 = addConstraints(s1, { permitted: [sub({ kind: "dns", value: "a.example.com" }), sub({ kind: "dns", value: "example.org" })], excluded: [] });
    expect(checkName(s2, { kind: "dns", value: "x.a.example.com" })).toBeUndefined();
    expect(checkName(s2, { kind: "dns", value: "b.example.com" })?.kind).toBe("permitted");
    expect(checkName(s2, { kind: "dns", value: "example.org" })?.kind).toBe("permitted");
  });

  test("excluded subtrees are a union and win over permitted ones", () => {
    const s1 = addConstraints(UNCONSTRAINED, { permitted: [sub(dnName(dn([C, "US"])))], excluded: [sub(dnName(base))] });
    const s2 = addConstraints(s1, { permitted: [], excluded: [sub({ kind: "rfc822", value: ".example.com" })] });
    expect(checkName(s2, dnName(inside))?.kind).toBe("excluded");
    expect(checkName(s2, dnName(outside))).toBeUndefined();
    expect(checkName(s2, { kind: "rfc822", value: "a@b.example.com" })?.kind).toBe("excluded");
  });

  test("a certificate's subject, its emailAddress when there is no subjectAltName, and every subjectAltName are checked", () => {
    const s = addConstraints(UNCONSTRAINED, { permitted: [sub({ kind: "rfc822", value: "example.com" })], excluded: [] });
    const withEmail = parseName(tlvAt(seq(set(seq(oid(C), printable("US"))), set(seq(oid("1.2.840.113549.1.9.1"), Buffer.from([0x16, 13, ...Buffer.from("a@example.org")]))))));
    expect(checkCertificateNames(s, withEmail, undefined)?.kind).toBe("permitted");
    expect(checkCertificateNames(s, withEmail, [{ kind: "rfc822", value: "a@example.com" }])).toBeUndefined();
    expect(checkCertificateNames(s, dn([C, "US"]), [{ kind: "rfc822", value: "a@example.net" }])?.kind).toBe("permitted");
    expect(checkCertificateNames(UNCONSTRAINED, withEmail, undefined)).toBeUndefined();
  });

  test("GeneralNames decode to the forms constrained", () => {
    expect(parseGeneralName(tlvAt(implicitPrimitive(2, Buffer.from("example.com"))))).toEqual({ kind: "dns", value: "example.com" });
    expect(parseGeneralName(tlvAt(implicitPrimitive(1, Buffer.from("a@example.com"))))).toEqual({ kind: "rfc822", value: "a@example.com" });
    expect(parseGeneralName(tlvAt(implicitPrimitive(6, Buffer.from("http://x/"))))).toEqual({ kind: "uri", value: "http://x/" });
  });
});
