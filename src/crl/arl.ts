/**
 * The entries of a CA's ARL (authority revocation list: the CA certificates it issued that it revoked; RFC 5280
 * §5.2.5 onlyContainsCACerts, crl/scope.ts): the link certificates of a key rollover (ca/rollover.ts) whose old
 * generation's key was declared compromised afterwards (Store.declareCaCompromised). A successor lists the
 * NewWithOld it signed — the link through which its own root vouched for the stolen key — and the old generation
 * lists the OldWithNew its key signed, for the verifiers still holding the old root. Both cACompromise, revoked
 * when the compromise was recorded. (The Bridge CA's ARL is its own: ca/bridge.ts.)
 */
import { X509Certificate } from "node:crypto";
import type { CrlEntryInput } from "../profile/crl-entry.js";
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
