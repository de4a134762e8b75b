/**
 * A read-only view of an X.509 certificate for path validation, RFC 5280 §4.1 and the §4.2 extensions that
 * §6.1 processes. Built from the received bytes (never re-encoded), so the TBS signed is the TBS checked.
 */
import { EXT_OID } from "../profile/oids.js";
import {
  bitStringBytes,
  contentHex,
  contentLength,
  contextNumber,
  decodeBoolean,
  decodeNamedBits,
  decodeOid,
  decodeSmallInteger,
  decodeTime,
  expectTag,
  firstWithin,
  items,
  sameTlv,
  tlvAt,
  type Tlv,
} from "./asn1.js";
import { parseGeneralName, parseGeneralNames, parseName, type GeneralName, type Name } from "./name.js";

export const ANY_POLICY = "2.5.29.32.0";

/** Extensions whose meaning this engine knows; a critical extension not listed fails the path (§4.2). */
export const RECOGNISED_EXTENSIONS: ReadonlySet<string> = new Set([
  EXT_OID.basicConstraints,
  EXT_OID.keyUsage,
  EXT_OID.certificatePolicies,
  EXT_OID.policyMappings,
  EXT_OID.policyConstraints,
  EXT_OID.inhibitAnyPolicy,
  EXT_OID.nameConstraints,
  EXT_OID.subjectAltName,
  EXT_OID.issuerAltName,
  EXT_OID.extKeyUsage,
  EXT_OID.cRLDistributionPoints,
  EXT_OID.freshestCRL,
  EXT_OID.authorityKeyIdentifier,
  EXT_OID.subjectKeyIdentifier,
  EXT_OID.authorityInfoAccess,
]);

/** keyUsage bits, §4.2.1.3 */
export const KEY_USAGE = { digitalSignature: 0, nonRepudiation: 1, keyEncipherment: 2, dataEncipherment: 3, keyAgreement: 4, keyCertSign: 5, cRLSign: 6 } as const;

export interface Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** the extnValue contents: the DER of the extension's own value */
  readonly value: Buffer;
}

export interface PolicyInformation {
  readonly policy: string;
  /** PolicyQualifiers as received (DER of the SEQUENCE), if any */
  readonly qualifiers?: Buffer;
}

export interface GeneralSubtree {
  readonly base: GeneralName;
}

export interface NameConstraintsValue {
  readonly permitted: readonly GeneralSubtree[];
  readonly excluded: readonly GeneralSubtree[];
}

/** DistributionPoint, §4.2.1.13 */
export interface DistributionPoint {
  readonly fullName?: readonly GeneralName[];
  /** nameRelativeToCRLIssuer: one RDN, as its SET TLV */
  readonly relativeName?: Tlv;
  /** ReasonFlags bit numbers (1 = keyCompromise … 8 = aACompromise) */
  readonly reasons?: ReadonlySet<number>;
  readonly crlIssuer?: readonly GeneralName[];
}

export interface SubjectPublicKey {
  readonly der: Buffer;
  readonly algorithm: string;
  /** the AlgorithmIdentifier parameters TLV, absent when omitted (DSA inheritance, §6.1.4(f)) */
  readonly parameters?: Tlv;
  readonly key: Buffer;
}

export interface Certificate {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: Tlv;
  readonly signature: Buffer;
  readonly version: number;
  /** serial number contents octets, hex (two's complement as encoded; equal serials have equal hex) */
  readonly serialHex: string;
  readonly issuer: Name;
  readonly subject: Name;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly publicKey: SubjectPublicKey;
  readonly extensions: ReadonlyMap<string, Extension>;
  readonly basicConstraints?: { readonly cA: boolean; readonly pathLen?: number };
  readonly keyUsage?: ReadonlySet<number>;
  readonly policies?: readonly PolicyInformation[];
  readonly policyMappings?: ReadonlyArray<{ readonly issuerDomainPolicy: string; readonly subjectDomainPolicy: string }>;
  readonly policyConstraints?: { readonly requireExplicitPolicy?: number; readonly inhibitPolicyMapping?: number };
  readonly inhibitAnyPolicy?: number;
  readonly nameConstraints?: NameConstraintsValue;
  readonly subjectAltName?: readonly GeneralName[];
  readonly crlDistributionPoints?: readonly DistributionPoint[];
  readonly authorityKeyId?: Buffer;
  readonly subjectKeyId?: Buffer;
  /** §6.1: subject and issuer names match */
  readonly selfIssued: boolean;
}

const small = (t: Tlv): number => decodeSmallInteger(t, 1_000_000);

/** An extension as read: its value's view made only when asked for (path validation reads most values in place). */
class ExtensionField implements Extension {
  readonly oid: string;
  readonly critical: boolean;
  /** the extnValue OCTET STRING */
  readonly octets: Tlv;

  constructor(oid: string, critical: boolean, octets: Tlv) {
    this.oid = oid;
    this.critical = critical;
    this.octets = octets;
  }

  get value(): Buffer {
    return this.octets.content;
  }
}

/**
 * A SubjectPublicKeyInfo as read: its `der` and `key` views made when first asked for. An end entity's key is
 * never read by its own validation (only the keys of the certificates above it are), and each view costs about
 * as much as reading a TLV. Made once per certificate, so a view, once made, is the same Buffer thereafter.
 */
class PublicKeyField implements SubjectPublicKey {
  readonly algorithm: string;
  readonly parameters: Tlv | undefined;
  readonly #spki: Tlv;
  readonly #bits: Tlv;
  #key: Buffer | undefined;

  constructor(spki: Tlv, algorithm: string, parameters: Tlv | undefined, bits: Tlv) {
    this.#spki = spki;
    this.algorithm = algorithm;
    this.parameters = parameters;
    this.#bits = bits;
  }

  get der(): Buffer {
    return this.#spki.der;
  }

  get key(): Buffer {
    return (this.#key ??= bitStringBytes(this.#bits));
  }
}

export function parseDistributionPoints(value: Buffer): DistributionPoint[] {
  return items(tlvAt(value)).map((dp) => {
    let fullName: GeneralName[] | undefined;
    let relativeName: Tlv | undefined;
    let reasons: Set<number> | undefined;
    let crlIssuer: GeneralName[] | undefined;
    for (const f of items(dp)) {
      const n = contextNumber(f);
      if (n === 0) {
        const [dpn] = items(f);
        if (!dpn) throw new RangeError("DistributionPointName: empty");
        if (contextNumber(dpn) === 0) fullName = parseGeneralNames(dpn);
        else relativeName = { tag: 0x31, der: Buffer.concat([Buffer.from([0x31]), dpn.der.subarray(1)]), content: dpn.content };
      } else if (n === 1) reasons = decodeNamedBits(f);
      else if (n === 2) crlIssuer = parseGeneralNames(f);
    }
    return { fullName, relativeName, reasons, crlIssuer };
  });
}

function parseSubtrees(t: Tlv): GeneralSubtree[] {
  return items(t).map((st) => {
    const [base] = items(st);
    if (!base) throw new RangeError("GeneralSubtree: empty");
    return { base: parseGeneralName(base) };
  });
}

export function parseCertificate(der: Uint8Array): Certificate {
  const outer = tlvAt(der);
  const parts = items(outer);
  const [tbsT, sigAlg, sig] = parts;
  if (!tbsT || !sigAlg || !sig) throw new RangeError("Certificate: truncated");
  // §4.1: exactly three fields; octets after the signature are outside what was signed and belong to no field
  if (parts.length !== 3) throw new RangeError("Certificate: fields after signatureValue");
  const f = items(expectTag(tbsT, 0x30, "TBSCertificate"));
  let i = 0;
  let version = 1;
  if (f[0]?.tag === 0xa0) {
    version = decodeSmallInteger(items(f[0])[0]!, Number.MAX_SAFE_INTEGER) + 1;
    i = 1;
  }
  const at = (k: number): Tlv => {
    const v = f[i + k];
    if (!v) throw new RangeError("TBSCertificate: truncated");
    return v;
  };
  // §4.1.2.2: an INTEGER (a serial of another type or empty has no value a CRL entry could name)
  const serial = expectTag(at(0), 0x02, "serialNumber");
  if (contentLength(serial) === 0) throw new RangeError("serialNumber: empty INTEGER");
  // §4.1.1.2 / §4.1.2.3: the signature field inside the TBS MUST equal the outer signatureAlgorithm. Only the
  // outer one is used to verify, so a certificate whose signed TBS names another algorithm says two things at once
  // (OpenSSL refuses it: "certificate signature failure").
  if (!sameTlv(at(1), sigAlg)) throw new RangeError("Certificate: the TBS signature algorithm differs from signatureAlgorithm (§4.1.1.2)");
  const issuer = parseName(at(2));
  const [nb, na] = items(at(3));
  const subject = parseName(at(4));
  const [spkiAlg, spkiKey] = items(at(5));
  if (!nb || !na || !spkiAlg || !spkiKey) throw new RangeError("TBSCertificate: truncated");
  // subjectPublicKey is a BIT STRING (§4.1.2.7): checked here though its octets are read only when asked for
  if (spkiKey.tag !== 0x03) throw new RangeError("expected a BIT STRING");
  const [keyAlgOid, keyParams] = items(spkiAlg);
  const publicKey = new PublicKeyField(at(5), decodeOid(keyAlgOid!), keyParams && keyParams.tag !== 0x05 ? keyParams : undefined, spkiKey);

  const extensions = new Map<string, ExtensionField>();
  const extField = f.slice(i + 6).find((t) => t.tag === 0xa3);
  if (extField) {
    for (const e of items(items(extField)[0]!)) {
      const parts = items(e);
      const oid = decodeOid(parts[0]!);
      const critical = parts.length === 3 ? decodeBoolean(parts[1]!) : false;
      const octets = expectTag(parts[parts.length - 1], 0x04, "extnValue");
      if (extensions.has(oid)) throw new RangeError(`extension ${oid} appears twice (§4.2)`);
      extensions.set(oid, new ExtensionField(oid, critical, octets));
    }
  }
  /** the TLV an extension's value holds, read in place */
  const ext = (oid: string): Tlv | undefined => {
    const e = extensions.get(oid);
    return e && firstWithin(e.octets);
  };

  let basicConstraints: Certificate["basicConstraints"];
  const bc = ext(EXT_OID.basicConstraints);
  if (bc) {
    let cA = false;
    let pathLen: number | undefined;
    for (const t of items(bc)) {
      if (t.tag === 0x01) cA = decodeBoolean(t);
      else if (t.tag === 0x02) pathLen = small(t);
    }
    basicConstraints = { cA, pathLen };
  }
  const ku = ext(EXT_OID.keyUsage);
  const cp = ext(EXT_OID.certificatePolicies);
  const policies = cp
    ? items(cp).map((pi) => {
        const [id, q] = items(pi);
        return { policy: decodeOid(id!), qualifiers: q?.der };
      })
    : undefined;
  const pm = ext(EXT_OID.policyMappings);
  const policyMappings = pm
    ? items(pm).map((m) => {
        const [a, b] = items(m);
        return { issuerDomainPolicy: decodeOid(a!), subjectDomainPolicy: decodeOid(b!) };
      })
    : undefined;
  let policyConstraints: Certificate["policyConstraints"];
  const pc = ext(EXT_OID.policyConstraints);
  if (pc) {
    let requireExplicitPolicy: number | undefined;
    let inhibitPolicyMapping: number | undefined;
    for (const t of items(pc)) {
      if (contextNumber(t) === 0) requireExplicitPolicy = small(t);
      else if (contextNumber(t) === 1) inhibitPolicyMapping = small(t);
    }
    policyConstraints = { requireExplicitPolicy, inhibitPolicyMapping };
  }
  const iap = ext(EXT_OID.inhibitAnyPolicy);
  let nameConstraints: NameConstraintsValue | undefined;
  const nc = ext(EXT_OID.nameConstraints);
  if (nc) {
    let permitted: GeneralSubtree[] = [];
    let excluded: GeneralSubtree[] = [];
    for (const t of items(nc)) {
      if (contextNumber(t) === 0) permitted = parseSubtrees(t);
      else if (contextNumber(t) === 1) excluded = parseSubtrees(t);
    }
    nameConstraints = { permitted, excluded };
  }
  const san = ext(EXT_OID.subjectAltName);
  const crldp = extensions.get(EXT_OID.cRLDistributionPoints)?.value;
  const aki = ext(EXT_OID.authorityKeyIdentifier);
  const ski = ext(EXT_OID.subjectKeyIdentifier);

  return {
    der: outer.der,
    tbs: tbsT.der,
    signatureAlgorithm: sigAlg,
    signature: bitStringBytes(sig),
    version,
    serialHex: contentHex(serial),
    issuer,
    subject,
    notBefore: decodeTime(nb),
    notAfter: decodeTime(na),
    publicKey,
    extensions,
    basicConstraints,
    keyUsage: ku ? decodeNamedBits(ku) : undefined,
    policies,
    policyMappings,
    policyConstraints,
    inhibitAnyPolicy: iap ? small(iap) : undefined,
    nameConstraints,
    subjectAltName: san ? parseGeneralNames(san) : undefined,
    crlDistributionPoints: crldp ? parseDistributionPoints(crldp) : undefined,
    authorityKeyId: aki ? items(aki).find((t) => contextNumber(t) === 0)?.content : undefined,
    subjectKeyId: ski?.content,
    selfIssued: issuer.key === subject.key,
  };
}
