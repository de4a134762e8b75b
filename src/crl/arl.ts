/**
 * The entries of a CA's ARL (authority revocation list: the CA certificates it issued that it revoked; RFC 5280
 * §5.2.5 onlyContainsCACerts, crl/scope.ts): the link certificates of a key rollover (ca/rollover.ts) whose old
 * generation's key was declared compromised afterwards (Store.declareCaCompromised). A successor lists the
 * NewWithOld it signed — the link through which its own root vouched for the stolen key — and the old generation
 * lists the OldWithNew its key signed, for the verifiers still holding the old root; and the generation BEFORE a
 * compromised one (declared, or rolled over with --compromised) lists the OldWithNew that certified the stolen key
 * to the verifiers holding its root. All cACompromise, revoked when the compromise was recorded. (The Bridge CA's ARL is its own: ca/bridge.ts.)
 */
import { X509Certificate } from "node:crypto";
import { encodeEntry, isEntriesTotal, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import type { CaLinkRecord } from "../store/types.js";
import { CRL_REASON } from "./reason.js";

export function arlEntries(links: readonly CaLinkRecord[], caId: string): CrlEntryInput[] {
  const out: CrlEntryInput[] = [];
  const entry = (der: Buffer, at: Date) => out.push({ serial: new X509Certificate(der).serialNumber.toLowerCase(), revokedAt: at, reason: CRL_REASON.cACompromise });
  // When each generation's key was found compromised: declared (`ca compromised`) or rolled over for it (no links).
  const compromised = new Map<string, Date>();
  for (const l of links) {
    if (l.compromisedAt) compromised.set(l.oldCaId, l.compromisedAt);
    else if (!l.oldWithNew && !l.newWithOld) compromised.set(l.oldCaId, l.createdAt);
  }
  for (const l of links) {
    if (l.compromisedAt) {
      const signed = l.newCaId === caId ? l.newWithOld : l.oldCaId === caId ? l.oldWithNew : undefined;
      if (signed) entry(signed, l.compromisedAt);
      continue;
    }
    // The predecessor's OldWithNew certifies the compromised generation's key too: every verifier still trusting
    // the predecessor's root (its own certificates are sound) reached the stolen key through it (found by a review
    // helper: g1 -> g2 -> g3, g2 declared compromised, a forgery by g2's key verified from g1's root).
    const at = compromised.get(l.newCaId);
    if (at && l.oldCaId === caId && l.oldWithNew) entry(l.oldWithNew, at);
  }
  return out;
}

/**
 * A CA's full CRL (and delta) entries with its revoked link certificates (arlEntries) added at the end, the store's
 * announced total grown to match. The full CRL has no issuingDistributionPoint, so RFC 5280 §5.2.5 makes it complete
 * for every certificate the CA issued, CA certificates included: a verifier holding the successor's full CRL (every
 * verifier of its end-entity certificates does) may read the link's status from it instead of the ARL — OpenSSL
 * does, by the order it was given the CRLs — and there it was not listed, so the forgery verified (found by a
 * review helper through a g1 -> g2 -> g3 chain). Listed on both, the answer is the same whichever a verifier reads.
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
