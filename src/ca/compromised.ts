/**
 * The CA generations rolled over because their key was suspected compromised (鍵危殆化): a ca_links row without
 * link certificates (ca/rollover.ts `compromised`). Whoever stole such a key can sign anything, so nothing of
 * jpki's own treats it as trusted: no audit checkpoint anchors on it (audit/verify.ts), the Bridge CA never
 * cross-certifies it (ca/bridge.ts), the validation API does not take it as a trust anchor
 * (verifier/validation-service.ts).
 */
import type { Store } from "../store/types.js";

export async function compromisedCaIds(store: Pick<Store, "listCaLinks">): Promise<Set<string>> {
  return new Set((await store.listCaLinks()).filter((l) => !l.oldWithNew && !l.newWithOld).map((l) => l.oldCaId));
}
