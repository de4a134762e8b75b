/**
 * CRL processing, RFC 5280 §6.3.3: the status of one certificate from a set of CRLs, walking the certificate's
 * distribution points (or the implied one when it has none) and collecting reasons until every reason is
 * covered. Scope comes from issuingDistributionPoint (§5.2.5), indirect CRLs from cRLIssuer and
 * certificateIssuer (§4.2.1.13, §5.3.3), deltas from deltaCRLIndicator (§5.2.4).
 *
 * Pure over its inputs; the one effectful question — is this CRL signed by a validated CRL issuer, §6.3.3(f)–(g) —
 * is asked through `crlVerified`, which the caller answers (and caches).
 */
import { EXT_OID } from "../profile/oids.js";
import type { Certificate, DistributionPoint } from "./certificate.js";
import type { Crl, CrlEntry } from "./crl.js";
import { appendRdn, generalNameEquals, nameEquals, type GeneralName, type Name } from "./name.js";

/** ReasonFlags bits 1..8 (§4.2.1.13): keyCompromise … aACompromise. Bit 0 (unused) is never a reason. */
export const ALL_REASONS: ReadonlySet<number> = new Set([1, 2, 3, 4, 5, 6, 7, 8]);
/** reasons as a bit mask, bit r for reason r: ALL_REASONS is 0x1fe */
const ALL_MASK = 0x1fe;

function maskOf(reasons: ReadonlySet<number> | undefined): number {
  if (!reasons) return ALL_MASK;
  let m = 0;
  for (const r of reasons) if (ALL_REASONS.has(r)) m |= 1 << r;
  return m;
}
/** No cRLDistributionPoints: one implied point, no name, all reasons, issued by the certificate issuer. */
const IMPLIED_POINTS: readonly DistributionPoint[] = [{}];
const NO_NAMES: readonly Name[] = [];

const FRESHEST_CRL = EXT_OID.freshestCRL;

/** CRLReason removeFromCRL (§5.3.1): in a delta CRL, the entry is no longer on hold. */
const REMOVE_FROM_CRL = 8;

export type CrlStatus =
  | { readonly status: "good" }
  | { readonly status: "revoked"; readonly entry: CrlEntry; readonly crl: Crl }
  | { readonly status: "unknown"; readonly detail: string };

export interface CrlCheckParams {
  readonly cert: Certificate;
  readonly crls: readonly Crl[];
  readonly at: Date;
  /** §6.3.3(f)–(g): the CRL's signature verifies under the key of a validated CRL issuer */
  readonly crlVerified: (crl: Crl) => boolean;
  /** §6.3.3(a)(1): use delta CRLs when present (default true) */
  readonly useDeltas?: boolean;
}

function dnOf(names: readonly GeneralName[] | undefined): readonly Name[] {
  return names ? names.flatMap((n) => (n.kind === "dn" ? [n.value] : [])) : NO_NAMES;
}

/** The names a distribution point name stands for: fullName, or the RDN appended to `base` (§4.2.1.13). */
function pointNames(full: readonly GeneralName[] | undefined, relative: DistributionPoint["relativeName"], bases: readonly Name[]): GeneralName[] | undefined {
  if (full) return [...full];
  if (relative) {
    // a malformed RDN names nothing (and must not turn a status check into an exception)
    return bases.flatMap((b) => {
      try {
        return [{ kind: "dn" as const, value: appendRdn(b, relative) }];
      } catch {
        return [];
      }
    });
  }
  return undefined;
}

function current(crl: Crl, at: Date): boolean {
  // getTime(): comparing Dates with <= converts both through Symbol.toPrimitive, dearer than it looks
  const t = at.getTime();
  return crl.thisUpdate.getTime() <= t && (crl.nextUpdate === undefined || t <= crl.nextUpdate.getTime());
}

/** The entry of `crl` for this certificate, honouring certificateIssuer in indirect CRLs (§5.3.3). */
export function findEntry(crl: Crl, cert: Certificate): CrlEntry | undefined {
  return crl.entries.get(cert.serialHex)?.find((e) => {
    if (!e.certificateIssuer) return nameEquals(crl.issuer, cert.issuer);
    return dnOf(e.certificateIssuer).some((n) => nameEquals(n, cert.issuer));
  });
}

function sameBytes(a: Buffer | undefined, b: Buffer | undefined): boolean {
  return a === undefined ? b === undefined : b !== undefined && a.equals(b);
}

/** §5.2.4 / §6.3.3(c)(iii): a delta CRL that completes `base`. */
function deltaFor(base: Crl, crls: readonly Crl[], at: Date, crlVerified: (crl: Crl) => boolean): Crl | undefined {
  if (base.crlNumber === undefined) return undefined;
  const fitting = crls.filter(
    (d) =>
      d.deltaBase !== undefined &&
      d.crlNumber !== undefined &&
      nameEquals(d.issuer, base.issuer) &&
      sameBytes(d.idp?.der, base.idp?.der) &&
      sameBytes(d.authorityKeyId, base.authorityKeyId) &&
      d.deltaBase <= base.crlNumber! &&
      d.crlNumber > base.crlNumber! &&
      !d.unknownCriticalExtension &&
      !d.undecodableEntries &&
      current(d, at) &&
      crlVerified(d),
  );
  return fitting.sort((a, b) => (a.crlNumber! > b.crlNumber! ? -1 : 1))[0];
}

/**
 * The complete CRLs, the most recently issued first (by thisUpdate; ties keep the order given). §6.3.3 stops at
 * the first CRLs that cover every reason, so when two current CRLs both cover the certificate — a municipality
 * partition and the CA's full CRL, published one after the other, or a CRL and its successor — the one looked at
 * first decides. Taken as given, a partition still current but issued before a revocation answered "good" beside
 * the newer full CRL that lists it (a server lists each CA's partitions before its full CRL). The newest
 * information first is also what OpenSSL prefers among CRLs of equal standing.
 */
function newestFirst(crls: readonly Crl[]): readonly Crl[] {
  for (let k = 1; k < crls.length; k++) {
    // only when out of order (a set usually is in order: the same second for a CA's partitions and full CRL);
    // sorted as a copy, since `crls` may be the caller's (frozen) array
    if (crls[k]!.thisUpdate.getTime() > crls[k - 1]!.thisUpdate.getTime()) return [...crls].sort((a, b) => b.thisUpdate.getTime() - a.thisUpdate.getTime());
  }
  return crls;
}

/** The complete CRLs among `crls` (no deltaCRLIndicator): the array itself when it holds no delta, as it mostly does. */
function completeOnes(crls: readonly Crl[]): readonly Crl[] {
  for (const c of crls) if (c.deltaBase !== undefined) return crls.filter((d) => d.deltaBase === undefined);
  return crls;
}

/** Whether any of `crls` is a delta CRL (deltaFor has nothing to look for otherwise). */
function anyDelta(crls: readonly Crl[]): boolean {
  for (const c of crls) if (c.deltaBase !== undefined) return true;
  return false;
}

export function checkCrls(params: CrlCheckParams): CrlStatus {
  const { cert, at, crlVerified } = params;
  const useDeltas = params.useDeltas ?? true;
  const isCa = cert.basicConstraints?.cA === true;
  const points = cert.crlDistributionPoints ?? IMPLIED_POINTS;
  const complete = newestFirst(completeOnes(params.crls));
  const deltas = useDeltas && anyDelta(params.crls);
  let reasonsMask = 0;
  const notes: string[] = [];

  for (const dp of points) {
    for (const crl of complete) {
      if (reasonsMask === ALL_MASK) break;
      // (a) a current CRL, or (a)(1)(i) a stale one that a current delta CRL brings up to date
      const fresh = current(crl, at);
      const deltaMayHelp = !fresh && useDeltas && crl.thisUpdate.getTime() <= at.getTime() && (crl.freshest !== undefined || cert.extensions.has(FRESHEST_CRL));
      if (!fresh && !deltaMayHelp) {
        notes.push("a CRL is out of date");
        continue;
      }
      // (b)(1) the CRL issuer: the certificate issuer, or one of the point's cRLIssuer names in an indirect CRL
      const dpIssuers = dnOf(dp.crlIssuer);
      if (dp.crlIssuer) {
        if (!crl.idp?.indirectCRL || !dpIssuers.some((n) => nameEquals(n, crl.issuer))) continue;
      } else if (!nameEquals(crl.issuer, cert.issuer)) continue;
      // (b)(2) scope by issuingDistributionPoint
      const idp = crl.idp;
      if (idp) {
        const idpNames = pointNames(idp.fullName, idp.relativeName, [crl.issuer]);
        if (idpNames) {
          const dpNames = pointNames(dp.fullName, dp.relativeName, dpIssuers.length > 0 ? dpIssuers : [cert.issuer]);
          const against = dpNames ?? dp.crlIssuer;
          if (!against || !against.some((a) => idpNames.some((b) => generalNameEquals(a, b)))) continue;
        }
        if (idp.onlyContainsUserCerts && isCa) continue;
        if (idp.onlyContainsCACerts && !isCa) continue;
        if (idp.onlyContainsAttributeCerts) continue;
      }
      // (c)–(d) reasons this CRL can add
      const interim = maskOf(idp?.onlySomeReasons) & maskOf(dp.reasons);
      if ((interim & ~reasonsMask) === 0) continue;
      // §5.2 / §5.3: a CRL with an unprocessed critical extension must not be used
      if (crl.unknownCriticalExtension) {
        notes.push(`a CRL has unprocessed critical extension ${crl.unknownCriticalExtension}`);
        continue;
      }
      // entries indexed only now (a CRL parsed lazily, crl.ts) that do not decode: as if the CRL had not parsed
      if (crl.undecodableEntries) {
        notes.push("a CRL's revokedCertificates do not decode");
        continue;
      }
      // (f)–(g)
      if (!crlVerified(crl)) {
        notes.push("a CRL's signature or issuer did not validate");
        continue;
      }
      // (h)–(k): the delta first, then the complete CRL; removeFromCRL on the delta releases a hold
      const delta = deltas ? deltaFor(crl, params.crls, at, crlVerified) : undefined;
      if (!fresh && !delta) {
        notes.push("a CRL is out of date and no current delta CRL completes it");
        continue;
      }
      const fromDelta = delta ? findEntry(delta, cert) : undefined;
      if (fromDelta) {
        if (fromDelta.reason !== REMOVE_FROM_CRL) return { status: "revoked", entry: fromDelta, crl: delta! };
      } else {
        const entry = findEntry(crl, cert);
        if (entry && entry.reason !== REMOVE_FROM_CRL) return { status: "revoked", entry, crl };
      }
      // (l)
      reasonsMask |= interim;
    }
  }
  if (reasonsMask === ALL_MASK) return { status: "good" };
  const detail = reasonsMask === 0 ? "no usable CRL covers the certificate" : `the usable CRLs cover only some reasons (${[...ALL_REASONS].filter((r) => reasonsMask & (1 << r)).join(",")})`;
  return { status: "unknown", detail: notes.length ? `${detail}; ${[...new Set(notes)].join("; ")}` : detail };
}
