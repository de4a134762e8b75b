/**
 * A read-only view of a CRL for revocation checking, RFC 5280 §5: the header, the §5.2 extensions that decide a
 * CRL's scope (issuingDistributionPoint §5.2.5, deltaCRLIndicator §5.2.4, cRLNumber §5.2.3) and the entries
 * with the issuer each one speaks for (certificateIssuer §5.3.3 in indirect CRLs).
 */
import { EXT_OID } from "../profile/oids.js";
import {
  bitStringBytes,
  contextNumber,
  decodeBoolean,
  decodeInteger,
  decodeNamedBits,
  decodeOid,
  decodeTime,
  expectTag,
  items,
  tlvAt,
  type Tlv,
} from "./asn1.js";
import { parseDistributionPoints, type DistributionPoint } from "./certificate.js";
import { parseGeneralNames, parseName, type GeneralName, type Name } from "./name.js";

const HOLD_INSTRUCTION_CODE = "2.5.29.23";

const RECOGNISED_CRL_EXTENSIONS: ReadonlySet<string> = new Set([
  EXT_OID.authorityKeyIdentifier,
  EXT_OID.issuerAltName,
  EXT_OID.cRLNumber,
  EXT_OID.deltaCRLIndicator,
  EXT_OID.issuingDistributionPoint,
  EXT_OID.freshestCRL,
  EXT_OID.authorityInfoAccess,
]);

const RECOGNISED_ENTRY_EXTENSIONS: ReadonlySet<string> = new Set([EXT_OID.cRLReason, EXT_OID.invalidityDate, EXT_OID.certificateIssuer, HOLD_INSTRUCTION_CODE]);

/** IssuingDistributionPoint, §5.2.5 */
export interface IssuingDistributionPoint {
  readonly fullName?: readonly GeneralName[];
  readonly relativeName?: Tlv;
  readonly onlyContainsUserCerts: boolean;
  readonly onlyContainsCACerts: boolean;
  readonly onlySomeReasons?: ReadonlySet<number>;
  readonly indirectCRL: boolean;
  readonly onlyContainsAttributeCerts: boolean;
  /** the extension value, for the "identical IDP" test a delta CRL must pass (§5.2.4) */
  readonly der: Buffer;
}

export interface CrlEntry {
  readonly serialHex: string;
  readonly revocationDate: Date;
  /** CRLReason code (§5.3.1); absent means unspecified */
  readonly reason?: number;
  readonly invalidityDate?: Date;
  /** the certificate issuer this entry is for, §5.3.3; absent: the CRL issuer */
  readonly certificateIssuer?: readonly GeneralName[];
  readonly unknownCriticalExtension?: string;
}

export interface Crl {
  readonly der: Buffer;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: Tlv;
  readonly signature: Buffer;
  readonly issuer: Name;
  readonly thisUpdate: Date;
  readonly nextUpdate?: Date;
  readonly crlNumber?: bigint;
  /** BaseCRLNumber when this is a delta CRL */
  readonly deltaBase?: bigint;
  readonly idp?: IssuingDistributionPoint;
  readonly authorityKeyId?: Buffer;
  readonly freshest?: readonly DistributionPoint[];
  readonly unknownCriticalExtension?: string;
  /** entries by serial (hex of the INTEGER contents); an indirect CRL may hold one serial for several issuers */
  readonly entries: ReadonlyMap<string, readonly CrlEntry[]>;
}

function parseIdp(value: Buffer): IssuingDistributionPoint {
  let fullName: GeneralName[] | undefined;
  let relativeName: Tlv | undefined;
  const flags = { onlyContainsUserCerts: false, onlyContainsCACerts: false, indirectCRL: false, onlyContainsAttributeCerts: false };
  let onlySomeReasons: Set<number> | undefined;
  for (const t of items(tlvAt(value))) {
    switch (contextNumber(t)) {
      case 0: {
        const [dpn] = items(t);
        if (!dpn) break;
        if (contextNumber(dpn) === 0) fullName = parseGeneralNames(dpn);
        else relativeName = { tag: 0x31, der: Buffer.concat([Buffer.from([0x31]), dpn.der.subarray(1)]), content: dpn.content };
        break;
      }
      case 1:
        flags.onlyContainsUserCerts = decodeBoolean(t);
        break;
      case 2:
        flags.onlyContainsCACerts = decodeBoolean(t);
        break;
      case 3:
        onlySomeReasons = decodeNamedBits(t);
        break;
      case 4:
        flags.indirectCRL = decodeBoolean(t);
        break;
      case 5:
        flags.onlyContainsAttributeCerts = decodeBoolean(t);
        break;
    }
  }
  return { fullName, relativeName, onlySomeReasons, ...flags, der: Buffer.from(value) };
}

export function parseCrl(der: Uint8Array): Crl {
  const outer = tlvAt(der);
  const [tbsT, sigAlg, sig] = items(outer);
  if (!tbsT || !sigAlg || !sig) throw new RangeError("CertificateList: truncated");
  const f = items(expectTag(tbsT, 0x30, "TBSCertList"));
  let i = f[0]?.tag === 0x02 ? 1 : 0; // version is optional (v1)
  i += 1; // signature
  const issuer = parseName(f[i++]!);
  const thisUpdate = decodeTime(f[i++]!);
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i]!.tag === 0x17 || f[i]!.tag === 0x18)) nextUpdate = decodeTime(f[i++]!);
  const entries = new Map<string, CrlEntry[]>();
  let currentIssuer: GeneralName[] | undefined;
  if (f[i]?.tag === 0x30) {
    for (const e of items(f[i++]!)) {
      const [serial, date, exts] = items(e);
      let reason: number | undefined;
      let invalidityDate: Date | undefined;
      let unknownCriticalExtension: string | undefined;
      for (const x of exts ? items(exts) : []) {
        const parts = items(x);
        const oid = decodeOid(parts[0]!);
        const critical = parts.length === 3 ? decodeBoolean(parts[1]!) : false;
        const value = tlvAt(parts[parts.length - 1]!.content);
        if (oid === EXT_OID.cRLReason) reason = Number(decodeInteger(value));
        else if (oid === EXT_OID.invalidityDate) invalidityDate = decodeTime(value);
        else if (oid === EXT_OID.certificateIssuer) currentIssuer = parseGeneralNames(value);
        else if (critical && !RECOGNISED_ENTRY_EXTENSIONS.has(oid)) unknownCriticalExtension = oid;
      }
      const entry: CrlEntry = {
        serialHex: serial!.content.toString("hex"),
        revocationDate: decodeTime(date!),
        reason,
        invalidityDate,
        certificateIssuer: currentIssuer,
        unknownCriticalExtension,
      };
      const list = entries.get(entry.serialHex) ?? [];
      list.push(entry);
      entries.set(entry.serialHex, list);
    }
  }
  let crlNumber: bigint | undefined;
  let deltaBase: bigint | undefined;
  let idp: IssuingDistributionPoint | undefined;
  let authorityKeyId: Buffer | undefined;
  let freshest: DistributionPoint[] | undefined;
  let unknownCriticalExtension: string | undefined;
  const extField = f.slice(i).find((t) => t.tag === 0xa0);
  if (extField) {
    for (const x of items(items(extField)[0]!)) {
      const parts = items(x);
      const oid = decodeOid(parts[0]!);
      const critical = parts.length === 3 ? decodeBoolean(parts[1]!) : false;
      const raw = parts[parts.length - 1]!.content;
      if (oid === EXT_OID.cRLNumber) crlNumber = decodeInteger(tlvAt(raw));
      else if (oid === EXT_OID.deltaCRLIndicator) deltaBase = decodeInteger(tlvAt(raw));
      else if (oid === EXT_OID.issuingDistributionPoint) idp = parseIdp(raw);
      else if (oid === EXT_OID.authorityKeyIdentifier) authorityKeyId = items(tlvAt(raw)).find((t) => contextNumber(t) === 0)?.content;
      else if (oid === EXT_OID.freshestCRL) freshest = parseDistributionPoints(raw);
      else if (critical && !RECOGNISED_CRL_EXTENSIONS.has(oid)) unknownCriticalExtension = oid;
    }
  }
  // §5.3: a CRL with a critical entry extension we do not process must not be used for any certificate.
  for (const list of entries.values()) for (const e of list) if (e.unknownCriticalExtension) unknownCriticalExtension ??= e.unknownCriticalExtension;
  return {
    der: outer.der,
    tbs: tbsT.der,
    signatureAlgorithm: sigAlg,
    signature: bitStringBytes(sig),
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    deltaBase,
    idp,
    authorityKeyId,
    freshest,
    unknownCriticalExtension,
    entries,
  };
}
