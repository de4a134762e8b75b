/**
 * The link certificates of key rollovers (ca/rollover.ts) that are revoked because a generation's key was found
 * compromised, and which CRLs list them. A link is revoked when
 * - its old generation was declared compromised after the rollover (Store.declareCaCompromised, `jpki ca
 *   compromised`): both NewWithOld (the stolen key certified by the successor: the link through which the
 *   successor's root vouched for it) and OldWithNew (signed by the stolen key);
 * - or it is the predecessor's OldWithNew that certified a generation whose key is compromised (declared, or rolled
 *   over with --compromised): every verifier still trusting the predecessor's root — sound itself — reached the
 *   stolen key through it (found by a review helper: g1 -> g2 -> g3, g2's key stolen).
 * All cACompromise, revoked when the compromise was recorded.
 *
 * Where each is listed (both generations of a link share one issuer name, so every CRL below covers it):
 * - the issuer's ARL (authority revocation list, RFC 5280 §5.2.5 onlyContainsCACerts, crl/scope.ts): the link's
 *   distribution point names it (`arlEntries`);
 * - the issuer's full CRL and delta: they have no issuingDistributionPoint, so they are complete for the CA
 *   certificates it issued too, and OpenSSL reads the link's status from whichever it was given first (found by a
 *   review helper through a g1 -> g2 -> g3 chain: the forgery verified);
 * - the SUBJECT's full CRL and delta: a link is self-issued (one name), and Java's PKIX validator takes a CRL signed
 *   by a self-issued certificate's own subject key as authoritative for it — given the old generation's full CRL
 *   and the successor's ARL, it answered VALID or REVOKED for a forgery by the stolen key depending on which it
 *   read first (`fullCrlLinkEntries` lists both).
 * The Bridge CA's ARL is its own (ca/bridge.ts).
 */
import { X509Certificate } from "node:crypto";
import { encodeEntry, isEntriesTotal, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import type { CaLinkRecord } from "../store/types.js";
import { CRL_REASON } from "./reason.js";

interface RevokedLink {
  readonly entry: CrlEntryInput;
  /** the generation whose key signed it */
  readonly issuerCaId: string;
  /** the generation whose key it certifies */
  readonly subjectCaId: string;
}

/** Every revoked link certificate (see above). */
export function revokedLinks(links: readonly CaLinkRecord[]): RevokedLink[] {
  const out: RevokedLink[] = [];
  const add = (der: Buffer, at: Date, issuerCaId: string, subjectCaId: string) =>
    out.push({ entry: { serial: new X509Certificate(der).serialNumber.toLowerCase(), revokedAt: at, reason: CRL_REASON.cACompromise }, issuerCaId, subjectCaId });
  const compromised = compromiseTimesOf(links);
  for (const l of links) {
    if (l.compromisedAt) {
      if (l.newWithOld) add(l.newWithOld, l.compromisedAt, l.newCaId, l.oldCaId);
      if (l.oldWithNew) add(l.oldWithNew, l.compromisedAt, l.oldCaId, l.newCaId);
      continue;
    }
    const at = compromised.get(l.newCaId);
    if (at && l.oldWithNew) add(l.oldWithNew, at, l.oldCaId, l.newCaId);
  }
  return out;
}

/** When each generation's key was found compromised: declared (`ca compromised`) or rolled over for it (no links). */
function compromiseTimesOf(links: readonly CaLinkRecord[]): Map<string, Date> {
  const compromised = new Map<string, Date>();
  for (const l of links) {
    if (l.compromisedAt) compromised.set(l.oldCaId, l.compromisedAt);
    else if (!l.oldWithNew && !l.newWithOld) compromised.set(l.oldCaId, l.createdAt);
  }
  return compromised;
}

/**
 * A compromised generation's own CA certificate, cACompromise from when its key counts as compromised, for its own
 * full CRL and delta: the one statement a follower trusting that generation alone can verify (jpki provider:
 * provider/compromise.ts). It trusts no successor — after `ca rollover --compromised` there is no link to reach one,
 * and the newest generation it trusts has none — and nothing else the public side publishes is signed by a key it
 * holds. Signed by the compromised key itself, the statement is still sound in the one direction it is read: only
 * the key's holder can make it, and whoever that is, the CA that declares the theft or the thief, that key is not to
 * be trusted. (RFC 5280 leaves a trust anchor's revocation to the relying party; OpenSSL's -crl_check_all reads it,
 * and refuses paths to the compromised root, which is what the operations guide asks of verifiers.)
 */
export function ownCertificateEntry(links: readonly CaLinkRecord[], caId: string, certificateDer: Buffer): CrlEntryInput | undefined {
  const at = compromiseTimesOf(links).get(caId);
  return at && { serial: new X509Certificate(certificateDer).serialNumber.toLowerCase(), revokedAt: at, reason: CRL_REASON.cACompromise };
}

/**
 * The entries of `caId`'s ARL: the revoked links it signed, and, once its key counts as compromised, its own CA
 * certificate (`certificateDer`; ownCertificateEntry), last as on its full CRL. An ARL (onlyContainsCACerts, RFC 5280
 * §5.2.5) is a complete CRL for the CA certificates its issuer issued (§5: a complete CRL lists every unexpired
 * certificate within its scope that has been revoked), and the self-signed certificate is one of them: the ARL
 * left it out while the full CRL and delta listed it, so a verifier that reads the ARL for CA certificates — as
 * the CA certificate's cRLDistributionPoints send it — found that certificate unrevoked (found by a helper, stop 59).
 */
export function arlEntries(links: readonly CaLinkRecord[], caId: string, certificateDer: Buffer): CrlEntryInput[] {
  const own = ownCertificateEntry(links, caId, certificateDer);
  return [...revokedLinks(links).filter((r) => r.issuerCaId === caId).map((r) => r.entry), ...(own ? [own] : [])];
}

/** The revoked links `caId`'s full CRL and delta list besides its own certificates: those it signed or is the subject of. */
export function fullCrlLinkEntries(links: readonly CaLinkRecord[], caId: string): CrlEntryInput[] {
  return revokedLinks(links).filter((r) => r.issuerCaId === caId || r.subjectCaId === caId).map((r) => r.entry);
}

/**
 * A CA's full CRL (or delta) entries with its revoked link certificates added at the end, the store's announced
 * total grown to match, so the builder still lays the CRL out before the first entry streams in.
 */
export async function* withLinkEntries(
  entries: AsyncIterable<EncodedEntries | EntriesTotal>,
  links: readonly CrlEntryInput[],
): AsyncIterable<EncodedEntries | EntriesTotal | readonly CrlEntryInput[]> {
  if (!links.length) return yield* entries;
  const bytes = links.reduce((n, e) => n + encodeEntry(e).length, 0);
  for await (const chunk of entries) yield isEntriesTotal(chunk) ? { totalCount: chunk.totalCount + links.length, totalBytes: chunk.totalBytes + bytes } : chunk;
  yield links;
}
