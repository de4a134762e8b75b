/**
 * Distinguished names and GeneralNames as path validation sees them, RFC 5280 §4.1.2.4, §4.2.1.6, §7.1.
 *
 * Names chain by comparison, not by bytes (§7.1): attribute values of the directory string types are compared
 * after the LDAP StringPrep steps that matter in practice — leading and trailing white space removed, inner runs
 * of white space collapsed to one, case folded — so a PrintableString and a UTF8String of the same text match
 * (the "rollover" of §4.1.2.6). Other value types are compared octet for octet.
 */
import { tlvOf } from "../pki/der.js";
import { ByteTable, contextNumber, decodeOid, items, tlvAt, type Tlv } from "./asn1.js";

export interface Attribute {
  readonly type: string;
  /** the comparison form: the prepared string for directory strings, `#hex` of the DER otherwise */
  readonly value: string;
  /** the readable text, for messages */
  readonly text: string;
}

export interface Name {
  readonly der: Buffer;
  /** RDNs in the order of the encoding (most significant first); each RDN's attributes sorted by comparison form */
  readonly rdns: ReadonlyArray<ReadonlyArray<Attribute>>;
  /** equal keys ⇔ equal names under §7.1 */
  readonly key: string;
}

const SHORT: Record<string, string> = {
  "2.5.4.3": "CN",
  "2.5.4.6": "C",
  "2.5.4.7": "L",
  "2.5.4.8": "ST",
  "2.5.4.10": "O",
  "2.5.4.11": "OU",
  "0.9.2342.19200300.100.1.25": "DC",
  "0.9.2342.19200300.100.1.1": "UID",
  "1.2.840.113549.1.9.1": "emailAddress",
};

export const EMAIL_ADDRESS_OID = "1.2.840.113549.1.9.1";

/** The text of a directory string (X.520 DirectoryString, IA5String), or undefined for other types. */
export function directoryText(t: Tlv): string | undefined {
  switch (t.tag) {
    case 0x0c: // UTF8String
      return t.content.toString("utf8");
    case 0x13: // PrintableString
    case 0x16: // IA5String
    case 0x14: // TeletexString (T.61; Latin-1 is the usual reading)
    case 0x1a: // VisibleString
      return t.content.toString("latin1");
    case 0x1e: {
      // BMPString: UTF-16BE
      const b = Buffer.from(t.content);
      b.swap16();
      return b.toString("utf16le");
    }
    case 0x1c: {
      // UniversalString: UCS-4BE
      let s = "";
      for (let i = 0; i + 3 < t.content.length; i += 4) s += String.fromCodePoint(t.content.readUInt32BE(i));
      return s;
    }
    default:
      return undefined;
  }
}

/** §7.1: insignificant space handling and case folding before comparison. */
export function prepareString(s: string): string {
  return s.normalize("NFKC").trim().replace(/\s+/g, " ").toLowerCase();
}

/**
 * Names by their DER: a CA's name is parsed for every certificate it issued and every CRL. Bounded; the cached
 * Name holds a copy of its DER, never a view into a large buffer (a CRL) it came from. The bucket is chosen by
 * the length and the last 32 octets (where names differ: the CN comes last); the whole DER is compared.
 */
const NAMES = new ByteTable<Name>(4096, 32);

export function parseName(t: Tlv): Name {
  if (t.tag !== 0x30) throw new RangeError("Name: expected a SEQUENCE");
  const known = NAMES.get(t, true);
  if (known) return known;
  const name = decodeName(t);
  const held = { ...name, der: Buffer.from(t.der) };
  NAMES.set(t, true, held);
  return held;
}

function decodeName(t: Tlv): Name {
  const rdns = items(t).map((rdn) => {
    if (rdn.tag !== 0x31) throw new RangeError("RelativeDistinguishedName: expected a SET");
    return items(rdn)
      .map((atv) => {
        const [type, value] = items(atv);
        if (!type || !value) throw new RangeError("AttributeTypeAndValue: truncated");
        const text = directoryText(value);
        return {
          type: decodeOid(type),
          value: text === undefined ? `#${value.der.toString("hex")}` : prepareString(text),
          text: text ?? `#${value.der.toString("hex")}`,
        };
      })
      .sort((a, b) => (a.type + "=" + a.value < b.type + "=" + b.value ? -1 : 1));
  });
  return { der: t.der, rdns, key: JSON.stringify(rdns.map((r) => r.map((a) => [a.type, a.value]))) };
}

export function nameEquals(a: Name, b: Name): boolean {
  return a.key === b.key;
}

function rdnEquals(a: ReadonlyArray<Attribute>, b: ReadonlyArray<Attribute>): boolean {
  return a.length === b.length && a.every((x, i) => x.type === b[i]!.type && x.value === b[i]!.value);
}

/** §4.2.1.10 directoryName subtrees: `base` is a prefix of `name`, RDN by RDN. */
export function dnWithin(name: Name, base: Name): boolean {
  if (base.rdns.length > name.rdns.length) return false;
  return base.rdns.every((rdn, i) => rdnEquals(rdn, name.rdns[i]!));
}

/** A name appended with one RDN (a distributionPoint nameRelativeToCRLIssuer, §4.2.1.13). */
export function appendRdn(base: Name, rdn: Tlv): Name {
  // der.ts encodes the length: a hand-written one here wrapped past 65,535 octets (0x82 and two bytes, the high one cut)
  return parseName(tlvAt(tlvOf(0x30, [...(base.rdns.length ? items(tlvAt(base.der)).map((r) => r.der) : []), rdn.der])));
}

/** Formatted names, once per Name object (names are shared through NAMES; a revocation message formats one each time). */
const FORMATTED = new WeakMap<Name, string>();

export function formatName(n: Name): string {
  let s = FORMATTED.get(n);
  if (s === undefined) {
    s = n.rdns.length === 0 ? "(empty)" : n.rdns.map((r) => r.map((a) => `${SHORT[a.type] ?? a.type}=${a.text}`).join("+")).join(", ");
    FORMATTED.set(n, s);
  }
  return s;
}

/** GeneralName (§4.2.1.6), reduced to the forms path validation constrains. */
export type GeneralName =
  | { readonly kind: "rfc822" | "dns" | "uri"; readonly value: string }
  | { readonly kind: "dn"; readonly value: Name }
  | { readonly kind: "ip"; readonly value: Buffer }
  | { readonly kind: "other"; readonly tag: number; readonly der: Buffer };

export function parseGeneralName(t: Tlv): GeneralName {
  const n = contextNumber(t);
  switch (n) {
    case 1:
      return { kind: "rfc822", value: t.content.toString("latin1") };
    case 2:
      return { kind: "dns", value: t.content.toString("latin1") };
    case 4: {
      const [inner] = items(t);
      if (!inner) throw new RangeError("directoryName: empty");
      return { kind: "dn", value: parseName(inner) };
    }
    case 6:
      return { kind: "uri", value: t.content.toString("latin1") };
    case 7:
      return { kind: "ip", value: Buffer.from(t.content) };
    default:
      return { kind: "other", tag: t.tag, der: t.der };
  }
}

export function parseGeneralNames(t: Tlv): GeneralName[] {
  return items(t).map(parseGeneralName);
}

export function generalNameEquals(a: GeneralName, b: GeneralName): boolean {
  if (a.kind !== b.kind) return false;
  if (a.kind === "dn" && b.kind === "dn") return nameEquals(a.value, b.value);
  if (a.kind === "ip" && b.kind === "ip") return a.value.equals(b.value);
  if (a.kind === "other" && b.kind === "other") return a.der.equals(b.der);
  if ((a.kind === "dns" || a.kind === "rfc822" || a.kind === "uri") && a.kind === b.kind) return a.value.toLowerCase() === (b.value as string).toLowerCase();
  return false;
}
