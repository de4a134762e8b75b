/**
 * Why a private certification provider (民間認証事業者) revokes a customer's certificate when the public signature
 * certificate (署名用電子証明書) it was issued on is revoked: the public CRLReason (RFC 5280 §5.3.1) mapped to the
 * reason the provider's own CRL gives. Ours (shared/spec/JPKI.md is silent); one table, read by provider/follow.ts.
 *
 * The provider's certificate rests on the identity the public certificate proved at enrolment (the seed's
 * slide 3(4): ③ the provider checks the public certificate, ⑤ issues its own). So the public reason carries over
 * where it says something about that identity or that person:
 * - affiliationChanged (a certified item changed: a move, a name change) — the identity the provider checked is no
 *   longer current: affiliationChanged;
 * - cessationOfOperation (death, record removed, card returned) — cessationOfOperation;
 * - superseded (the card's certificate renewed) — superseded: the customer enrols again with the new one;
 * - keyCompromise (card lost or stolen) — keyCompromise only when the provider certified the card's own key (same
 *   SubjectPublicKeyInfo); a certificate for another key is not compromised by the card's loss, but its identity
 *   proof is void: cessationOfOperation;
 * - certificateHold (JPKI holds are never released) — certificateHold, which the provider too may keep forever;
 * - cACompromise, aACompromise, privilegeWithdrawn, unspecified — the provider cannot tell more: cessationOfOperation
 *   for the CA and authority cases (the customer did nothing), unspecified for unspecified, privilegeWithdrawn kept.
 * removeFromCRL (8) appears only in delta CRLs and un-revokes nothing of ours: it never maps (undefined).
 */
import { reasonName, type CrlReasonName } from "../crl/reason.js";

const MAP: Readonly<Record<CrlReasonName, CrlReasonName | undefined>> = Object.freeze({
  unspecified: "unspecified",
  keyCompromise: "cessationOfOperation", // same key: keyCompromise (privateReasonFor)
  cACompromise: "cessationOfOperation",
  affiliationChanged: "affiliationChanged",
  superseded: "superseded",
  cessationOfOperation: "cessationOfOperation",
  certificateHold: "certificateHold",
  removeFromCRL: undefined,
  privilegeWithdrawn: "privilegeWithdrawn",
  aACompromise: "cessationOfOperation",
});

/**
 * The reason the provider revokes with, for a public entry's reason code (absent: unspecified, §5.3.1), or undefined
 * when the entry revokes nothing (removeFromCRL). `sameKey`: the provider certified the public certificate's key.
 */
export function privateReasonFor(publicReason: number | undefined, sameKey: boolean): CrlReasonName | undefined {
  const name = publicReason === undefined ? "unspecified" : (reasonName(publicReason) ?? "unspecified");
  if (name === "keyCompromise" && sameKey) return "keyCompromise";
  return MAP[name];
}
