/**
 * The resident's consent that a verifier learn which certificate replaced one it knows (新旧証明書の紐付け),
 * recorded by the registry side (shared/spec/JPKI.md "Verifier services today": the link goes to government
 * bodies and to verifiers holding consent recorded in the registry). A consent names one resident and one
 * registered verifier; it is live from its grant until withdrawn, and a withdrawn one stays as history. The
 * liveness check (verifier/liveness.ts) reads only whether one is live at the moment it answers.
 */
import { JpkiError, isJpkiError } from "../errors.js";
import type { ConsentRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { assertResidentCode } from "./resident-code.js";

export interface ConsentParams {
  readonly residentCode: string;
  readonly verifierId: string;
}

/**
 * Records a consent: the resident must be in the registry with an active record and the verifier registered and
 * live (ERR_RESIDENT_UNKNOWN, ERR_RESIDENT_NOT_ELIGIBLE, ERR_VERIFIER_UNKNOWN, ERR_VERIFIER_REVOKED). A consent
 * already live is kept as it is.
 */
export async function grantConsent(ws: Workspace, p: ConsentParams): Promise<ConsentRecord> {
  assertResidentCode(p.residentCode);
  const r = await ws.store.getResident(p.residentCode);
  if (!r) throw new JpkiError("ERR_RESIDENT_UNKNOWN", `no resident with code ${p.residentCode}: import it with 'jpki registry import'`);
  // A closed record (deceased, removed, or the old code of a resident-code change) has no certificate a consent
  // could ever apply to: the link follows the resident's current code. Recorded anyway, it would say "granted"
  // and never be used.
  if (r.status !== "active") throw closed(p.residentCode, r.status);
  const v = await ws.store.getVerifier(p.verifierId);
  if (!v) throw new JpkiError("ERR_VERIFIER_UNKNOWN", `no registered verifier ${p.verifierId}: see 'jpki verifier list'`);
  if (v.revokedAt) throw new JpkiError("ERR_VERIFIER_REVOKED", `verifier ${p.verifierId} was revoked on ${v.revokedAt.toISOString()}: a consent for it would never be used`);
  const at = ws.clock.now();
  const granted = await ws.store.grantConsent({ ...p, at });
  // A resident-code change (which moves the consents to the new code) or a death may have committed between the
  // read above and the grant: the consent would then sit live under a closed record, "granted" and never used.
  // Read again after the grant: a change committing later moves or outlives it as any consent.
  const now = await ws.store.getResident(p.residentCode);
  if (now?.status !== "active") {
    await ws.store.withdrawConsent({ ...p, at }).catch((e: unknown) => {
      if (!isJpkiError(e, "ERR_CONSENT_UNKNOWN")) throw e;
    });
    throw closed(p.residentCode, now?.status ?? "gone");
  }
  return granted;
}

function closed(residentCode: string, status: string): JpkiError {
  return new JpkiError("ERR_RESIDENT_NOT_ELIGIBLE", `the record of resident ${residentCode} is ${status}: a consent is recorded under the resident's current code (after a resident-code change, the new one)`, { details: { status } });
}

/** Withdraws the live consent (ERR_CONSENT_UNKNOWN when there is none): from now on the verifier gets no link. */
export async function withdrawConsent(ws: Workspace, p: ConsentParams): Promise<ConsentRecord> {
  assertResidentCode(p.residentCode);
  try {
    return await ws.store.withdrawConsent({ ...p, at: ws.clock.now() });
  } catch (e) {
    if (!isJpkiError(e, "ERR_CONSENT_UNKNOWN")) throw e;
    // After a resident-code change the consents live under the new code: "no live consent" alone would read as
    // "nothing to withdraw" while the resident's consent stays live there.
    const r = await ws.store.getResident(p.residentCode);
    if (r && r.status !== "active") {
      throw new JpkiError("ERR_CONSENT_UNKNOWN", `${e.message}; the record of resident ${p.residentCode} is ${r.status}: after a resident-code change (住民票コード変更) the resident's consents are under the new code`, { details: { status: r.status } });
    }
    throw e;
  }
}

/** Consents of a resident and/or a verifier, live and withdrawn, in the order granted. */
export async function listConsents(ws: Workspace, q: { readonly residentCode?: string; readonly verifierId?: string }): Promise<ConsentRecord[]> {
  if (q.residentCode !== undefined) assertResidentCode(q.residentCode);
  return ws.store.listConsents(q);
}
