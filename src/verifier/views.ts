/**
 * What each kind of registered verifier (署名検証者) is told about a certificate by the validation API
 * (`POST /v1/validate`, issue 11 point 1). Pure mapping from the engine's result; the table of who may see what:
 *
 * | | government body 行政機関 | private certification provider 民間認証事業者 |
 * |---|---|---|
 * | status | the engine's status (valid, revoked, expired, not-yet-valid, untrusted, profile-violation, revocation-unknown) | valid / revoked / unknown |
 * | failure reason, which certificate failed | yes | no |
 * | revocation time and reason | yes | no |
 * | the resident's current four items | only with a legal basis the table allows it (legal-basis.ts) | never |
 *
 * A private provider's "unknown" covers every status other than valid and revoked. Ours: the issue grants it
 * valid / revoked / unknown and nothing more, and "unknown" is also the true answer for each of them — an
 * expired certificate drops off the CRL after the grace period, so whether it was revoked cannot be said;
 * not-yet-valid, untrusted (not ours) and profile-violation (not a JPKI certificate of this purpose) are
 * certificates whose revocation status this service does not hold. A provider that needs to know why can read
 * the certificate itself (its dates, its issuer); what it can never get from us is anything about the resident
 * beyond the one bit "still good / revoked". An expired certificate that was also revoked shows as the engine
 * ranks it (expired → unknown): the revocation of an expired certificate is no longer the provider's business.
 */
import type { CrlReasonName } from "../crl/reason.js";
import type { FourItems } from "../profile/types.js";
import type { ChainCertificate, JpkiFailureReason, JpkiPurpose, JpkiValidationResult } from "../validation/jpki.js";
import type { PathStatus, Revocation } from "../validation/types.js";

/** What the views (and the service) read of a path certificate: its names and serial, not its dates. */
export type ViewedCertificate = Pick<ChainCertificate, "subject" | "issuer" | "serial">;

/** What the views (and the service around them) read of a validation result: the engine's thread sends only this. */
export type ViewedResult = { readonly purpose: JpkiPurpose; readonly chain?: readonly ViewedCertificate[] } & (
  | { readonly status: "valid" }
  | { readonly status: Exclude<PathStatus, "valid">; readonly reason: JpkiFailureReason; readonly index: number; readonly message: string; readonly revocation?: Revocation }
);

/**
 * The part of a result the views read (engine-thread.ts: the four items, policies, issuer facts and the path's
 * validity dates stay in the thread). Every object here is cloned to the serving thread and read there once:
 * two Dates per path certificate were a third of what crossed for a valid answer, and nothing read them. Of the
 * path, only the entries read cross: the end entity's (chain[0]: its serial and issuer for the disclosure record
 * and the government view) and, for a failure, those up to the failed one (chain[index], failedCertificate) —
 * the CA certificates' names above were half of what a valid answer's message carried, and nothing read them.
 */
export function viewedPart(r: JpkiValidationResult): ViewedResult {
  const read = r.status === "valid" ? 1 : r.index + 1;
  const chain = r.chain?.slice(0, read).map((c) => ({ subject: c.subject, issuer: c.issuer, serial: c.serial }));
  if (r.status === "valid") return chain ? { purpose: r.purpose, chain, status: r.status } : { purpose: r.purpose, status: r.status };
  const failed = { status: r.status, reason: r.reason, index: r.index, message: r.message, ...(r.revocation ? { revocation: r.revocation } : {}) };
  return chain ? { purpose: r.purpose, chain, ...failed } : { purpose: r.purpose, ...failed };
}

/** The three answers a private certification provider may receive. */
export type PrivateStatus = "valid" | "revoked" | "unknown";

export const PRIVATE_STATUS_OF: Readonly<Record<PathStatus, PrivateStatus>> = Object.freeze({
  valid: "valid",
  revoked: "revoked",
  expired: "unknown",
  "not-yet-valid": "unknown",
  untrusted: "unknown",
  "profile-violation": "unknown",
  "revocation-unknown": "unknown",
});

export interface PrivateView {
  readonly view: "private";
  readonly status: PrivateStatus;
  readonly validationTime: string;
}

export interface GovernmentView {
  readonly view: "government";
  readonly status: PathStatus;
  readonly purpose: JpkiPurpose;
  readonly validationTime: string;
  /** the certificate's serial (lower-case hex) and issuing CA (our CA id, or the issuer's name) */
  readonly serial: string;
  readonly issuer: string;
  /** why it failed (absent when valid) */
  readonly reason?: JpkiFailureReason;
  readonly message?: string;
  /** which certificate failed: its index in the path (0 = the end entity) and names */
  readonly failedCertificate?: { readonly index: number; readonly subject?: string; readonly issuer?: string; readonly serial?: string };
  readonly revocation?: { readonly time: string; readonly reason: CrlReasonName };
  /** the legal basis named, and whether the four items were given under it */
  readonly legalBasis?: string;
  /** the resident's current four items from the registry (only with an allowed legal basis). Personal data: never log it. */
  readonly currentItems?: FourItems;
  /** why no items came with a legal basis named: the certificate is not ours, or the registry holds no record */
  readonly itemsWithheld?: "certificate-not-ours" | "no-registry-record";
}

/** The private provider's view: the one status, nothing else. */
export function privateView(r: ViewedResult, at: Date): PrivateView {
  return { view: "private", status: PRIVATE_STATUS_OF[r.status], validationTime: at.toISOString() };
}

/** The government body's view, without the items (the service adds them when the legal basis allows). */
export function governmentView(r: ViewedResult, o: { at: Date; serial: string; issuer: string; legalBasis?: string }): GovernmentView {
  // The optional fields set after the literal, in the order the spreads gave them, not spread into it: a spread
  // after other properties takes V8's slow path, on every answer to a government body.
  const view: { -readonly [K in keyof GovernmentView]: GovernmentView[K] } = { view: "government", status: r.status, purpose: r.purpose, validationTime: o.at.toISOString(), serial: o.serial, issuer: o.issuer };
  if (o.legalBasis) view.legalBasis = o.legalBasis;
  if (r.status === "valid") return view;
  const failed = r.chain?.[r.index];
  view.reason = r.reason;
  view.message = r.message;
  view.failedCertificate = failed ? { index: r.index, subject: failed.subject, issuer: failed.issuer, serial: failed.serial } : { index: r.index };
  if (r.revocation) view.revocation = { time: r.revocation.time.toISOString(), reason: r.revocation.reason };
  return view;
}
