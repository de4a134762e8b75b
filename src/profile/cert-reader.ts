/**
 * Certificates (RFC 5280 §4.1) and the extensions `jpki inspect` and the profile check decode (§4.2.1), read by
 * our own DER walker into the shapes @peculiar/asn1-x509 gives them, so that x509-reader.ts, check.ts and
 * describe.ts read either alike. asn1-x509 and asn1-schema take ≈ 100 ms to load, a third of the 300 ms `jpki
 * inspect CERT` may take (issue 8 point 9); this reader takes none of that.
 *
 * It answers only for what it reads exactly as asn1-x509 does: strict DER (pki/der-strict.ts) in the forms RFC
 * 5280 writes. For anything else — BER, a string type it does not decode (BMPString, UniversalString,
 * TeletexString's T.61 is read as asn1js reads it, byte per character), an iPAddress, an x400Address, reason
 * flags, a time not in its DER form — every function returns undefined and the caller falls back to asn1-x509,
 * which then decides (and words the error) as it always has. So the output is asn1-x509's, byte for byte
 * (test/integration/inspect-golden.test.ts); only the common case is faster.
 *
 * The values are plain objects typed as asn1-x509's classes (their methods are never called on them).
 */
import type {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CertificatePolicies,
  CRLDistributionPoints,
  ExtendedKeyUsage,
  GeneralName,
  GeneralNames,
  Name,
  SubjectKeyIdentifier,
  Time,
  UserNotice,
} from "./asn1.js";
import { assertDer } from "../pki/der-strict.js";
import { children, headerLengthAt, readHeader, TAG } from "../pki/der.js";

/** Not in the form this reader answers for: the caller falls back to asn1-x509. */
class Unread extends Error {}

const unread = (): never => {
  throw new Unread();
};

/** Runs `read` over strict DER; undefined when the DER is not strict or `read` meets a form it leaves to asn1-x509. */
function attempt<T>(der: Uint8Array, read: (der: Buffer) => T): T | undefined {
  const b = Buffer.isBuffer(der) ? der : Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  try {
    assertDer(b);
    return read(b);
  } catch {
    // Unread, a RangeError of the DER walker, or anything else this reader did not foresee: asn1-x509 decides,
    // so no input fares worse here than it did there
    return undefined;
  }
}

/** The DER each Name this reader made was read from: the Name's encoding, as asn1-schema would write it back. */
const NAME_DER = new WeakMap<Name, Buffer>();

/** The DER a Name was read from, when this reader read it. */
export function readNameDer(name: Name): Buffer | undefined {
  return NAME_DER.get(name);
}

const content = (tlv: Buffer): Buffer => tlv.subarray(headerLengthAt(tlv));

/** A copy of the bytes as its own ArrayBuffer (asn1-schema's values never share the input's memory). */
const arrayBuffer = (b: Buffer): ArrayBuffer => {
  const out = new ArrayBuffer(b.length);
  new Uint8Array(out).set(b);
  return out;
};

function expect(tlv: Buffer | undefined, tag: number): Buffer {
  if (!tlv || tlv[0] !== tag) unread();
  return tlv!;
}

/**
 * Universal tags whose contents asn1js takes as they are (or tries and shrugs off): an ANY value (an otherName's,
 * a policy qualifier's) made only of these, and of context-specific tags, decodes there as it does here. Others
 * it decodes and may refuse (a UniversalString of 39 octets, a reserved tag 15: found by the golden test's variants).
 */
const PLAIN_ANY = new Set<number>([TAG.BOOLEAN, TAG.INTEGER, TAG.BIT_STRING, TAG.OCTET_STRING, TAG.NULL, TAG.UTF8_STRING, TAG.PRINTABLE_STRING, TAG.IA5_STRING, 0x1a]);

/** An ANY value asn1js reads without fail (PLAIN_ANY); the TLV itself. */
function plainAny(tlv: Buffer): Buffer {
  const tag = tlv[0]!;
  if (tag === TAG.SEQUENCE || tag === TAG.SET || (tag & 0xe0) === 0xa0) for (const c of children(tlv)) plainAny(c);
  else if ((tag & 0xc0) !== 0x80 && !PLAIN_ANY.has(tag)) unread();
  return tlv;
}

/** OBJECT IDENTIFIER contents, dotted (X.690 §8.19); a non-minimal arc, or one past 2^42, is left to asn1js. */
function oid(tlv: Buffer | undefined): string {
  const c = content(expect(tlv, TAG.OID));
  if (c.length === 0 || c[c.length - 1]! & 0x80) unread();
  const arcs: bigint[] = [];
  let v = 0n;
  let first = true;
  let octets = 0;
  for (const b of c) {
    if (first && b === 0x80) unread(); // a leading 0x80 pads an arc (not DER)
    if (++octets > 6) unread();
    first = false;
    v = (v << 7n) | BigInt(b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(v);
      v = 0n;
      first = true;
      octets = 0;
    }
  }
  const head = arcs[0]!;
  const lead = head < 40n ? [0n, head] : head < 80n ? [1n, head - 40n] : [2n, head - 80n];
  return [...lead, ...arcs.slice(1)].join(".");
}

/** A one-byte-per-character string (PrintableString, IA5String, VisibleString, TeletexString): asn1js reads each octet as a character code. */
const octetChars = (tlv: Buffer): string => content(tlv).toString("latin1");

const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** UTF8String as asn1js decodes it; invalid UTF-8 (which asn1js reads octet by octet) is left to it. */
function utf8(tlv: Buffer): string {
  try {
    return UTF8.decode(content(tlv));
  } catch {
    return unread();
  }
}

/** A non-negative INTEGER of at most 6 octets as a number (pathLenConstraint). */
function smallInteger(tlv: Buffer | undefined): number {
  const c = content(expect(tlv, TAG.INTEGER));
  if (c.length > 6 || c[0]! & 0x80) unread();
  let v = 0;
  for (const b of c) v = v * 256 + b;
  return v;
}

function bool(tlv: Buffer): boolean {
  return content(expect(tlv, TAG.BOOLEAN))[0] !== 0;
}

/** Two ASCII digits at `i` of `s`, or -1. */
function two(s: string, i: number): number {
  return /^\d\d$/.test(s.slice(i, i + 2)) ? Number(s.slice(i, i + 2)) : -1;
}

/** UTCTime YYMMDDhhmmssZ and GeneralizedTime YYYYMMDDhhmmssZ (§4.1.2.5), real dates only (asn1js rolls 31 April on to 1 May). */
function time(tlv: Buffer | undefined): Time {
  if (!tlv || (tlv[0] !== TAG.UTC_TIME && tlv[0] !== TAG.GENERALIZED_TIME)) return unread();
  const s = octetChars(tlv);
  const utc = tlv[0] === TAG.UTC_TIME;
  if (!(utc ? /^\d{12}Z$/ : /^\d{14}Z$/).test(s)) unread();
  const o = utc ? 0 : 2;
  const yy = two(s, 0);
  const year = utc ? (yy >= 50 ? 1900 + yy : 2000 + yy) : yy * 100 + two(s, 2);
  const [mo, d, h, mi, sec] = [two(s, o + 2), two(s, o + 4), two(s, o + 6), two(s, o + 8), two(s, o + 10)];
  if (year < 100) unread(); // Date.UTC reads years 0–99 as 1900–1999
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, sec));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || sec > 59) unread();
  return (utc ? { utcTime: date } : { generalTime: date }) as Time;
}

/** AttributeValue (name.ts of asn1-x509): the string types it decodes to a string; others are left to it. */
function attributeValue(tlv: Buffer | undefined): Record<string, string> {
  switch (tlv?.[0]) {
    case TAG.UTF8_STRING:
      return { utf8String: utf8(tlv) };
    case TAG.PRINTABLE_STRING:
      return { printableString: octetChars(tlv) };
    case TAG.IA5_STRING:
      return { ia5String: octetChars(tlv) };
    case 0x14:
      return { teletexString: octetChars(tlv) };
    default:
      return unread();
  }
}

/** Name (§4.1.2.4): RDNSequence of SETs of AttributeTypeAndValue. */
function name(tlv: Buffer | undefined): Name {
  const rdns = children(expect(tlv, TAG.SEQUENCE)).map((rdn) =>
    children(expect(rdn, TAG.SET)).map((atv) => {
      const [type, value, extra] = children(expect(atv, TAG.SEQUENCE));
      if (extra) unread();
      return { type: oid(type), value: attributeValue(value) };
    }),
  ) as unknown as Name;
  NAME_DER.set(rdns, Buffer.from(tlv!));
  return rdns;
}

/** GeneralName (§4.2.1.6): otherName, rfc822Name, dNSName, directoryName, URI, registeredID. */
function generalName(tlv: Buffer): GeneralName {
  switch (tlv[0]) {
    case 0xa0: {
      const [typeId, value, extra] = children(tlv);
      const inner = children(expect(value, 0xa0));
      if (extra || inner.length !== 1) unread();
      return { otherName: { typeId: oid(typeId), value: arrayBuffer(plainAny(inner[0]!)) } } as unknown as GeneralName;
    }
    case 0x81:
      return { rfc822Name: octetChars(tlv) } as GeneralName;
    case 0x82:
      return { dNSName: octetChars(tlv) } as GeneralName;
    case 0xa4: {
      const [n, extra] = children(tlv);
      if (extra) unread();
      return { directoryName: name(n) } as GeneralName;
    }
    case 0x86:
      return { uniformResourceIdentifier: octetChars(tlv) } as GeneralName;
    case 0x88:
      return { registeredID: oid(Buffer.concat([Buffer.from([TAG.OID]), tlv.subarray(1)])) } as GeneralName;
    default:
      return unread(); // x400Address, ediPartyName, iPAddress (asn1-x509 writes it as text its own way)
  }
}

/** The GeneralName TLVs of a GeneralNames, as SEQUENCE or as an IMPLICIT [n] over it. */
function generalNames(items: Buffer[]): GeneralNames {
  if (items.length === 0) unread();
  return items.map(generalName) as unknown as GeneralNames;
}

/** Extension (§4.1.2.9) as asn1-x509 holds it: extnValue's contents as `extnValue.buffer`. */
function extension(tlv: Buffer): { extnID: string; critical: boolean; extnValue: { buffer: ArrayBuffer } } {
  const parts = children(expect(tlv, TAG.SEQUENCE));
  if (parts.length < 2 || parts.length > 3) unread();
  const critical = parts.length === 3 ? bool(parts[1]!) : false;
  return { extnID: oid(parts[0]), critical, extnValue: { buffer: arrayBuffer(content(expect(parts[parts.length - 1], TAG.OCTET_STRING))) } };
}

/** AlgorithmIdentifier: the algorithm (the parameters are not read). */
function algorithm(tlv: Buffer | undefined): { algorithm: string } {
  const parts = children(expect(tlv, TAG.SEQUENCE));
  if (parts.length < 1 || parts.length > 2) unread();
  return { algorithm: oid(parts[0]) };
}

/**
 * A certificate in asn1-x509's shape (the fields x509-reader.ts, check.ts and describe.ts read), or undefined
 * when it is not strict DER in RFC 5280's form: asn1-x509 reads it then.
 */
export function readCertificate(der: Uint8Array): Certificate | undefined {
  return attempt(der, (b) => {
    const [tbs, sigAlg, sig, extra] = children(b);
    if (extra) unread();
    expect(sig, TAG.BIT_STRING);
    const f = children(expect(tbs, TAG.SEQUENCE));
    let i = 0;
    let version = 0;
    if (f[0]?.[0] === 0xa0) {
      const [v, more] = children(f[0]);
      if (more) unread();
      version = smallInteger(v);
      i++;
    }
    const serial = content(expect(f[i++], TAG.INTEGER));
    const signature = algorithm(f[i++]);
    const issuer = name(f[i++]);
    const [notBefore, notAfter, more] = children(expect(f[i++], TAG.SEQUENCE));
    if (more) unread();
    const validity = { notBefore: time(notBefore), notAfter: time(notAfter) };
    const subject = name(f[i++]);
    const [keyAlg, key, moreKey] = children(expect(f[i++], TAG.SEQUENCE));
    if (moreKey) unread();
    const bits = content(expect(key, TAG.BIT_STRING));
    // issuerUniqueID [1], subjectUniqueID [2]: read past (nothing shows them)
    if (f[i]?.[0] === 0x81) i++;
    if (f[i]?.[0] === 0x82) i++;
    let extensions: ReturnType<typeof extension>[] | undefined;
    if (f[i]?.[0] === 0xa3) {
      const [list, moreExt] = children(f[i]!);
      if (moreExt) unread();
      extensions = children(expect(list, TAG.SEQUENCE)).map(extension);
      if (extensions.length === 0) unread(); // SIZE (1..MAX) broken: asn1-x509 decides what that reads as
      i++;
    }
    if (i !== f.length) unread();
    return {
      tbsCertificate: {
        version,
        serialNumber: arrayBuffer(serial),
        signature,
        issuer,
        validity,
        subject,
        subjectPublicKeyInfo: { algorithm: algorithm(keyAlg), subjectPublicKey: arrayBuffer(bits.subarray(1)) },
        ...(extensions ? { extensions } : {}),
      },
      signatureAlgorithm: algorithm(sigAlg),
    } as unknown as Certificate;
  });
}

// ---------------------------------------------------------------------------------------------------
// Extension values (§4.2.1), each from the extnValue's contents

export function readGeneralNames(value: Uint8Array): GeneralNames | undefined {
  return attempt(value, (b) => generalNames(children(expect(b, TAG.SEQUENCE))));
}

export function readBasicConstraints(value: Uint8Array): BasicConstraints | undefined {
  return attempt(value, (b) => {
    const parts = children(expect(b, TAG.SEQUENCE));
    let i = 0;
    const cA = parts[0]?.[0] === TAG.BOOLEAN ? bool(parts[i++]!) : false;
    const pathLenConstraint = parts[i] ? smallInteger(parts[i++]) : undefined;
    if (i !== parts.length) unread();
    return { cA, ...(pathLenConstraint !== undefined ? { pathLenConstraint } : {}) } as BasicConstraints;
  });
}

export function readCertificatePolicies(value: Uint8Array): CertificatePolicies | undefined {
  return attempt(value, (b) => {
    const list = children(expect(b, TAG.SEQUENCE)).map((pi) => {
      const [id, quals, extra] = children(expect(pi, TAG.SEQUENCE));
      if (extra) unread();
      const policyQualifiers = quals
        ? children(expect(quals, TAG.SEQUENCE)).map((q) => {
            const [qid, qualifier, more] = children(expect(q, TAG.SEQUENCE));
            if (!qualifier || more) unread();
            return { policyQualifierId: oid(qid), qualifier: arrayBuffer(plainAny(qualifier!)) };
          })
        : undefined;
      return { policyIdentifier: oid(id), ...(policyQualifiers ? { policyQualifiers } : {}) };
    });
    if (list.length === 0) unread();
    return list as unknown as CertificatePolicies;
  });
}

/** DisplayText (§4.2.1.4) but BMPString, which asn1js decodes as UTF-16 its own way. */
function displayText(tlv: Buffer | undefined): Record<string, string> {
  switch (tlv?.[0]) {
    case TAG.UTF8_STRING:
      return { utf8String: utf8(tlv) };
    case TAG.IA5_STRING:
      return { ia5String: octetChars(tlv) };
    case 0x1a:
      return { visibleString: octetChars(tlv) };
    default:
      return unread();
  }
}

/** UserNotice (§4.2.1.4), a policy qualifier's value (its whole TLV). */
export function readUserNotice(qualifier: Uint8Array): UserNotice | undefined {
  return attempt(qualifier, (b) => {
    const parts = children(expect(b, TAG.SEQUENCE));
    let i = 0;
    if (parts[0]?.[0] === TAG.SEQUENCE) {
      const [org, numbers, extra] = children(parts[i++]!);
      if (extra) unread();
      displayText(org);
      for (const n of children(expect(numbers, TAG.SEQUENCE))) expect(n, TAG.INTEGER);
    }
    const explicitText = parts[i] ? displayText(parts[i++]) : undefined;
    if (i !== parts.length) unread();
    // noticeRef is checked, not kept: describe.ts shows the explicit text only
    return (explicitText ? { explicitText } : {}) as UserNotice;
  });
}

export function readCrlDistributionPoints(value: Uint8Array): CRLDistributionPoints | undefined {
  return attempt(value, (b) => {
    const list = children(expect(b, TAG.SEQUENCE)).map((dp) => {
      const out: Record<string, unknown> = {};
      let last = -1;
      for (const f of children(expect(dp, TAG.SEQUENCE))) {
        const n = f[0]! & 0x1f;
        if ((f[0]! & 0xe0) !== 0xa0 || n <= last) unread();
        last = n;
        if (n === 0) {
          const [choice, extra] = children(f);
          if (!choice || extra) unread();
          // fullName [0] IMPLICIT GeneralNames; nameRelativeToCRLIssuer [1] is left to asn1-x509
          if (choice![0] !== 0xa0) unread();
          out.distributionPoint = { fullName: generalNames(children(choice!)) };
        } else if (n === 2) out.cRLIssuer = generalNames(children(f));
        else unread(); // reasons [1]: asn1-x509's ReasonFlags
      }
      if (last < 0) unread();
      return out;
    });
    if (list.length === 0) unread();
    return list as unknown as CRLDistributionPoints;
  });
}

export function readAuthorityInfoAccess(value: Uint8Array): AuthorityInfoAccessSyntax | undefined {
  return attempt(value, (b) => {
    const list = children(expect(b, TAG.SEQUENCE)).map((ad) => {
      const [method, location, extra] = children(expect(ad, TAG.SEQUENCE));
      if (!location || extra) unread();
      return { accessMethod: oid(method), accessLocation: generalName(location!) };
    });
    if (list.length === 0) unread();
    return list as unknown as AuthorityInfoAccessSyntax;
  });
}

export function readSubjectKeyIdentifier(value: Uint8Array): SubjectKeyIdentifier | undefined {
  return attempt(value, (b) => ({ buffer: arrayBuffer(content(expect(b, TAG.OCTET_STRING))) }) as SubjectKeyIdentifier);
}

export function readAuthorityKeyIdentifier(value: Uint8Array): AuthorityKeyIdentifier | undefined {
  return attempt(value, (b) => {
    const out: Record<string, unknown> = {};
    let last = -1;
    for (const f of children(expect(b, TAG.SEQUENCE))) {
      const n = f[0]! & 0x1f;
      if (n <= last) unread();
      last = n;
      if (f[0] === 0x80) out.keyIdentifier = { buffer: arrayBuffer(content(f)) };
      else if (f[0] === 0xa1) out.authorityCertIssuer = generalNames(children(f));
      else if (f[0] === 0x82) {
        const c = content(f);
        if (c.length === 0 || (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80)))) unread();
        out.authorityCertSerialNumber = arrayBuffer(c);
      } else unread();
    }
    return out as AuthorityKeyIdentifier;
  });
}

export function readExtendedKeyUsage(value: Uint8Array): ExtendedKeyUsage | undefined {
  return attempt(value, (b) => {
    const list = children(expect(b, TAG.SEQUENCE)).map((o) => oid(o));
    if (list.length === 0) unread();
    return list as unknown as ExtendedKeyUsage;
  });
}
