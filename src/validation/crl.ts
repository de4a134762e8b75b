/**
 * A read-only view of a CRL for revocation checking, RFC 5280 §5: the header, the §5.2 extensions that decide a
 * CRL's scope (issuingDistributionPoint §5.2.5, deltaCRLIndicator §5.2.4, cRLNumber §5.2.3) and the entries
 * with the issuer each one speaks for (certificateIssuer §5.3.3 in indirect CRLs).
 */
import { JpkiError } from "../errors.js";
import { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";
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
import { indexEntries, type CrlEntries, type IndexedEntries } from "./crl-index.js";
import { parseGeneralNames, parseName, type GeneralName, type Name } from "./name.js";

/** A CRL without revokedCertificates. */
const EMPTY: CrlEntries = Object.freeze({ get: () => undefined, serialWithReason: () => undefined, size: 0 });

const RECOGNISED_CRL_EXTENSIONS: ReadonlySet<string> = new Set([
  EXT_OID.authorityKeyIdentifier,
  EXT_OID.issuerAltName,
  EXT_OID.cRLNumber,
  EXT_OID.deltaCRLIndicator,
  EXT_OID.issuingDistributionPoint,
  EXT_OID.freshestCRL,
  EXT_OID.authorityInfoAccess,
]);

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
  readonly entries: CrlEntries;
  /**
   * Why revokedCertificates does not decode, for a CRL parsed with `lazyEntries` (parseCrl otherwise throws):
   * such a CRL must not be used (its entries read as none).
   */
  readonly undecodableEntries?: string;
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

/**
 * The CRL in a published file (ours: a Bridge ARL, a provider's CRL), or undefined when there is none or it does not
 * parse — the callers then treat it as absent (publish anew, number from their own state).
 */
export function readCrlFile(path: string): Crl | undefined {
  let bytes: Buffer;
  try {
    // by its descriptor (regular-file.ts): a FIFO planted at the path is refused, where readFileSync waited for ever
    bytes = readRegularFile(path).bytes;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // none, or too large to be one (Node refuses past 2 GiB before reading): absent
    if (code === "ENOENT" || code === "ERR_FS_FILE_TOO_LARGE") return undefined;
    // Not "absent": something is at the path that is not a file we wrote, or cannot be read — publishing over it
    // would hide that, and numbering past it is not possible without reading it.
    throw new JpkiError(
      "ERR_FILE_UNUSABLE",
      code === NOT_REGULAR ? `the published CRL ${path} is not a regular file: move it aside` : `the published CRL ${path} cannot be read (${code ?? (e as Error).message}): check its permissions`,
      { cause: e, details: { path } },
    );
  }
  try {
    return parseCrl(bytes);
  } catch {
    return undefined;
  }
}

/** How parseCrl reads the entries. */
export interface ParseCrlOptions {
  /**
   * Index revokedCertificates when first asked for (`entries`, `unknownCriticalExtension`, `undecodableEntries`)
   * rather than now, and tell `onIndexed` the index's size then. For a set of CRLs of which a validation reads a
   * few: a server's set holds each CA's full CRL beside its municipality partitions, the engine reads a
   * certificate's partition (its distribution point) and never needs the full CRL's million entries indexed.
   * Entries that do not decode make the CRL unusable (`undecodableEntries`) instead of failing the parse.
   */
  readonly lazyEntries?: { readonly onIndexed?: (bytes: number) => void };
}

export function parseCrl(der: Uint8Array, opts: ParseCrlOptions = {}): Crl {
  const outer = tlvAt(der);
  const parts = items(outer);
  const [tbsT, sigAlg, sig] = parts;
  if (!tbsT || !sigAlg || !sig) throw new RangeError("CertificateList: truncated");
  if (parts.length !== 3) throw new RangeError("CertificateList: fields after signatureValue"); // §5.1
  const f = items(expectTag(tbsT, 0x30, "TBSCertList"));
  let i = f[0]?.tag === 0x02 ? 1 : 0; // version is optional (v1)
  // §5.1.1.2 / §5.1.2.2: the signature field inside the TBS MUST equal the outer signatureAlgorithm (as for
  // certificates): a CRL that names two algorithms is malformed, and is not used.
  if (!f[i] || !f[i]!.der.equals(sigAlg.der)) throw new RangeError("CertificateList: the TBS signature algorithm differs from signatureAlgorithm (§5.1.1.2)");
  i += 1; // signature
  const issuer = parseName(f[i++]!);
  const thisUpdate = decodeTime(f[i++]!);
  let nextUpdate: Date | undefined;
  if (f[i] && (f[i]!.tag === 0x17 || f[i]!.tag === 0x18)) nextUpdate = decodeTime(f[i++]!);
  // revokedCertificates: read into the compact index (crl-index.ts), never one object per entry
  let span: { readonly start: number; readonly end: number } | undefined;
  if (f[i]?.tag === 0x30) {
    const list = f[i++]!;
    const start = list.der.byteOffset - outer.der.byteOffset + (list.der.length - list.content.length);
    span = { start, end: start + list.content.length };
  }
  const lazy = opts.lazyEntries;
  const indexed: IndexedEntries | undefined = span && !lazy ? indexEntries(outer.der, span.start, span.end) : undefined;
  let crlNumber: bigint | undefined;
  let deltaBase: bigint | undefined;
  let idp: IssuingDistributionPoint | undefined;
  let authorityKeyId: Buffer | undefined;
  let freshest: DistributionPoint[] | undefined;
  let unknownCriticalExtension: string | undefined;
  const extField = f.slice(i).find((t) => t.tag === 0xa0);
  if (extField) {
    const seen = new Set<string>();
    for (const x of items(items(extField)[0]!)) {
      const parts = items(x);
      const oid = decodeOid(parts[0]!);
      // one instance per extension (X.509 §7.3, as for certificates in certificate.ts): a second issuingDistributionPoint
      // or cRLNumber silently replaced the first, so which scope or number the CRL had depended on the order
      if (seen.has(oid)) throw new RangeError(`CRL extension ${oid} appears twice`);
      seen.add(oid);
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
  const crl = {
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
  };
  if (!lazy || !span) {
    // §5.3: a CRL with a critical entry extension we do not process must not be used for any certificate.
    return { ...crl, unknownCriticalExtension: unknownCriticalExtension ?? indexed?.unknownCriticalExtension, entries: indexed?.entries ?? EMPTY };
  }
  const list = span;
  let done: { readonly indexed?: IndexedEntries; readonly error?: string } | undefined;
  const index = () => {
    if (done) return done;
    try {
      done = { indexed: indexEntries(outer.der, list.start, list.end) };
      lazy.onIndexed?.(done.indexed!.entries.byteLength);
    } catch (e) {
      done = { error: e instanceof Error ? e.message : String(e) };
    }
    return done;
  };
  const headerUnknown = unknownCriticalExtension;
  return Object.defineProperties(crl as Crl, {
    entries: { enumerable: true, get: () => index().indexed?.entries ?? EMPTY },
    unknownCriticalExtension: { enumerable: true, get: () => headerUnknown ?? index().indexed?.unknownCriticalExtension },
    undecodableEntries: { enumerable: true, get: () => index().error },
  });
}
