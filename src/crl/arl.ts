/**
 * The entries of a CA's ARL (authority revocation list: the CA certificates it issued that it revoked; RFC 5280
 * §5.2.5 onlyContainsCACerts, crl/scope.ts): the link certificates of a key rollover (ca/rollover.ts) whose old
 * generation's key was declared compromised afterwards (Store.declareCaCompromised). A successor lists the
 * NewWithOld it signed — the link through which its own root vouched for the stolen key — and the old generation
 * lists the OldWithNew its key signed, for the verifiers still holding the old root. Both cACompromise, revoked
 * when the compromise was recorded. (The Bridge CA's ARL is its own: ca/bridge.ts.)
 *
 * The old generation's FULL CRL lists NewWithOld as well (`fullCrlLinkEntries`). NewWithOld is self-issued (one
 * name for both generations), and Java's PKIX validator takes a CRL signed by a self-issued certificate's own
 * subject key — the old generation's full CRL, which has no IDP — as authoritative for it: given both, it
 * answered VALID or REVOKED for a forgery by the stolen key depending on which CRL it read first. Listed on both,
 * the link is revoked whichever a verifier takes.
 */
import { X509Certificate } from "node:crypto";
import { encodeEntry, isEntriesTotal, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "../profile/crl-entry.js";
import type { CaLinkRecord } from "../store/types.js";
import { CRL_REASON } from "./reason.js";

export function arlEntries(links: readonly CaLinkRecord[], caId: string): CrlEntryInput[] {
  const out: CrlEntryInput[] = [];
  for (const l of links) {
    if (!l.compromisedAt) continue;
    const signed = l.newCaId === caId ? l.newWithOld : l.oldCaId === caId ? l.oldWithNew : undefined;
    if (!signed) continue;
    out.push({ serial: new X509Certificate(signed).serialNumber.toLowerCase(), revokedAt: l.compromisedAt, reason: CRL_REASON.cACompromise });
  }
  return out;
}

/** The revoked link certificates the full CRL of `caId` lists besides its own certificates: NewWithOld of its compromise. */
export function fullCrlLinkEntries(links: readonly CaLinkRecord[], caId: string): CrlEntryInput[] {
  return links.flatMap((l) =>
    l.compromisedAt && l.oldCaId === caId && l.newWithOld ? [{ serial: new X509Certificate(l.newWithOld).serialNumber.toLowerCase(), revokedAt: l.compromisedAt, reason: CRL_REASON.cACompromise }] : [],
  );
}

type EntryChunk = readonly CrlEntryInput[] | EncodedEntries | EntriesTotal;

/**
 * A store's CRL entries with `extra` after them: the total announced first (withTotal) grows by theirs, so the
 * builder still lays the CRL out before the first entry streams in.
 */
export async function* withExtraEntries(entries: AsyncIterable<EntryChunk>, extra: readonly CrlEntryInput[]): AsyncGenerator<EntryChunk> {
  const der = Buffer.concat(extra.map(encodeEntry));
  for await (const chunk of entries) {
    yield isEntriesTotal(chunk) ? { totalBytes: chunk.totalBytes + der.length, totalCount: chunk.totalCount + extra.length } : chunk;
  }
  if (extra.length) yield { der, count: extra.length };
}
