/**
 * The CA generations whose key is compromised (鍵危殆化): those rolled over because of it (a ca_links row without
 * link certificates, ca/rollover.ts `compromised`), and retired generations declared compromised later
 * (`declareCompromised`, `jpki ca compromised`). Whoever stole such a key can sign anything, so nothing of
 * jpki's own treats it as trusted: no audit checkpoint anchors on it (audit/verify.ts), the Bridge CA never
 * cross-certifies it (ca/bridge.ts), the validation API does not take it as a trust anchor
 * (verifier/validation-service.ts).
 */
import { X509Certificate } from "node:crypto";
import { certificateParts } from "../pki/der.js";
import type { CaCompromiseRecord, CaLinkRecord, Store } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { parseCaId } from "./ids.js";

export async function compromisedCaIds(store: Pick<Store, "listCaLinks">): Promise<Set<string>> {
  return compromisedIn(await store.listCaLinks());
}

/** {@link compromisedCaIds} of links already read (one read serves a caller that needs them for more). */
export function compromisedIn(links: readonly CaLinkRecord[]): Set<string> {
  return new Set(compromiseTimesIn(links).keys());
}

/**
 * The compromised generations with the time their key counts as compromised from: `compromisedAt` for one declared
 * after an ordinary rollover, the rollover's own time for one rolled over because of it (a row without links). The
 * OCSP responder answers every serial of such a CA revoked (cACompromise) from that time (ocsp/responder.ts).
 */
export async function compromiseTimes(store: Pick<Store, "listCaLinks">): Promise<Map<string, Date>> {
  return compromiseTimesIn(await store.listCaLinks());
}

function compromiseTimesIn(links: readonly CaLinkRecord[]): Map<string, Date> {
  const m = new Map<string, Date>();
  for (const l of links) {
    if (l.compromisedAt) m.set(l.oldCaId, l.compromisedAt);
    else if (!l.oldWithNew && !l.newWithOld) m.set(l.oldCaId, l.createdAt);
  }
  return m;
}

/** A compromised generation's certificate, parsed once, for compromisedSignerOf. */
export interface CompromisedGeneration {
  readonly id: string;
  readonly subject: Buffer;
  readonly cert: X509Certificate;
}

export function compromisedGeneration(id: string, certificateDer: Buffer): CompromisedGeneration {
  return { id, subject: certificateParts(certificateDer).subject, cert: new X509Certificate(certificateDer) };
}

/**
 * The compromised generation whose key signed `certificate`, if one did (its issuer name, then its signature):
 * such a certificate, genuine or forged with the stolen key, is untrusted for that reason, which the engine alone
 * cannot tell (it sees no anchor, or a signature that does not verify). Used by the validation API
 * (`issuer-compromised`) and `jpki verify` (`compromisedIssuer`). Undefined for anything node cannot read.
 */
export function compromisedSignerOf(certificate: Buffer, generations: readonly CompromisedGeneration[]): string | undefined {
  if (generations.length === 0) return undefined;
  let issuer: Buffer;
  let cert: X509Certificate;
  try {
    issuer = certificateParts(certificate).issuer;
    cert = new X509Certificate(certificate);
  } catch {
    return undefined;
  }
  for (const g of generations) {
    try {
      if (g.subject.equals(issuer) && cert.verify(g.cert.publicKey)) return g.id;
    } catch {
      // a key node cannot verify with: not this one
    }
  }
  return undefined;
}

/**
 * Declares a RETIRED generation's key compromised, the day it is stolen after an ordinary rollover: the operations
 * guide keeps that key until the last certificate it issued expires (years), and its NewWithOld link certificate —
 * the old key certified by the successor — kept vouching for it: every verifier trusting the successor's root (or
 * the Bridge CA, through it) accepted what the thief signed, and nothing could revoke a link (found by a review
 * helper). Recorded in the store (Store.declareCaCompromised): from then NewWithOld is on the successor's ARL and
 * OldWithNew on the old generation's, both cACompromise (crl/arl.ts), their ARLs are due, and compromisedCaIds
 * includes it. The ARLs are signed by the next CRL run (`jpki crl generate`, or `jpki serve`'s schedule).
 * What the old key issued is revoked as after any compromise (`jpki revoke --ca <id> --all --reason ca-compromise`).
 */
export async function declareCompromised(ws: Workspace, caId: string): Promise<CaCompromiseRecord> {
  // Checked for shape first (ERR_CA_UNKNOWN, the id quoted): the store's "no CA <id>" echoed it as typed, line
  // breaks and all, into the operator's terminal and logs.
  parseCaId(caId);
  return ws.store.declareCaCompromised(caId, ws.clock.now());
}
