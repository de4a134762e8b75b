/**
 * How long a retired key generation whose certificates have all expired ("done": crl/generate.ts retiredAndDone)
 * keeps its full CRL and its ARL (失効リスト of a retired generation) current.
 *
 * RFC 5280 §5.1.2.5: a CRL's nextUpdate is the date by which the next CRL will be issued, and §3.3 has a CA issue
 * CRLs for as long as a certificate it signed can be relied on. Done, a generation has no end-entity certificate
 * left, but the link certificates of its rollovers (ca/rollover.ts) are still in force — they end with the older
 * generation's certificate — and verifiers check them against its CRLs: the ARL (onlyContainsCACerts) covers those
 * it signed, the full CRL (no issuingDistributionPoint, so complete for CA certificates too) those it signed and
 * those whose subject it is (Java's PKIX validator takes the CRL of a self-issued certificate's subject key as
 * authoritative for it: crl/arl.ts). A full CRL left to expire there makes every one of them fail closed — OpenSSL's
 * `-crl_check_all` given the generation's crl/<ca>.crl says "CRL has expired" — and after a compromise
 * (`jpki ca compromised`) that full CRL is the one listing the revoked links. Found by a helper: the last full CRL
 * 33ee23a published with the links was never refreshed.
 *
 * So each is kept current while a link certificate in its scope is unexpired (never past the generation's own
 * certificate: a CRL signed after it would be checked against an expired key), and not after: once the CRL in
 * place already reaches that end, nothing more is published for it, and the generation is finished.
 */
import { X509Certificate } from "node:crypto";
import type { CaLinkRecord, CaRecord, CrlRecord } from "../store/types.js";

/** Until when each of a done generation's CRLs must stay current (undefined: no longer, nothing left to rely on it). */
export interface RetiredCrlTerm {
  /** the full CRL: the link certificates the generation signed or is the subject of */
  readonly full: Date | undefined;
  /** the ARL: the link certificates the generation signed */
  readonly arl: Date | undefined;
}

const notAfter = (der: Buffer) => new Date(new X509Certificate(der).validTo);

/** The term of `record`'s CRLs at `now`, from the store's link certificates (Store.listCaLinks). */
export function retiredCrlTerm(record: Pick<CaRecord, "id" | "certificateDer">, links: readonly CaLinkRecord[], now: Date): RetiredCrlTerm {
  const own = notAfter(record.certificateDer).getTime();
  let full = -Infinity;
  let arl = -Infinity;
  for (const l of links) {
    // OldWithNew is signed by the old generation, NewWithOld by the new one; each certifies the other.
    for (const [der, issuer, subject] of [
      [l.oldWithNew, l.oldCaId, l.newCaId],
      [l.newWithOld, l.newCaId, l.oldCaId],
    ] as const) {
      if (!der || (issuer !== record.id && subject !== record.id)) continue;
      const end = Math.min(notAfter(der).getTime(), own);
      full = Math.max(full, end);
      if (issuer === record.id) arl = Math.max(arl, end);
    }
  }
  const t = now.getTime();
  return { full: full > t ? new Date(full) : undefined, arl: arl > t ? new Date(arl) : undefined };
}

/**
 * Whether a CRL of a done generation is to be published now, given its term (see retiredCrlTerm), the scope's latest
 * CRL and whether something new is due on it (revocations or links revoked since: `changed`): while the term runs,
 * when there is none yet, something changed, or the one in place ends before the term does.
 */
export function retiredCrlWanted(until: Date | undefined, latest: Pick<CrlRecord, "nextUpdate"> | undefined, changed: boolean): boolean {
  if (!until) return false;
  return !latest || changed || latest.nextUpdate.getTime() < until.getTime();
}
