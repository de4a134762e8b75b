/**
 * CRLReason, RFC 5280 §5.3.1, and the JPKI causes that map onto it (shared/spec/JPKI.md "Reason codes").
 * The table is the one place that decides which reason a cause gets.
 */
import { JpkiError } from "../errors.js";

export const CRL_REASON = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  removeFromCRL: 8,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const;

export type CrlReasonName = keyof typeof CRL_REASON;
export type CrlReasonCode = (typeof CRL_REASON)[CrlReasonName];

const NAME_BY_CODE = new Map<number, CrlReasonName>(
  (Object.entries(CRL_REASON) as Array<[CrlReasonName, number]>).map(([n, c]) => [c, n]),
);

export function reasonName(code: number): CrlReasonName | undefined {
  return NAME_BY_CODE.get(code);
}

/** Causes an operator names on the command line, with the reason the JPKI practice gives each. */
export const REVOCATION_CAUSES = {
  "item-changed": { reason: "affiliationChanged", label: "a certified item changed (move, name change, correction)" },
  "record-error": { reason: "affiliationChanged", label: "error in the certified record" },
  death: { reason: "cessationOfOperation", label: "death (死亡)" },
  "record-removed": { reason: "cessationOfOperation", label: "removal of the resident record (住民票消除)" },
  "card-returned": { reason: "cessationOfOperation", label: "card returned" },
  "resident-request": { reason: "cessationOfOperation", label: "resident's request, no longer needed (失効申請)" },
  loss: { reason: "keyCompromise", label: "card lost (紛失)" },
  theft: { reason: "keyCompromise", label: "card stolen (盗難)" },
  "key-compromise": { reason: "keyCompromise", label: "private key compromised" },
  renewal: { reason: "superseded", label: "renewed, a new certificate of the same type" },
  "ca-compromise": { reason: "cACompromise", label: "the CA's key compromised" },
  "key-suspect": { reason: "certificateHold", label: "suspected key problem (hold is never released)" },
  "not-delivered": { reason: "unspecified", label: "destroyed before delivery" },
} as const satisfies Record<string, { reason: CrlReasonName; label: string }>;

export type RevocationCause = keyof typeof REVOCATION_CAUSES;

/**
 * Resolves a cause alias (loss, death, …) or an RFC 5280 reason name or number to the reason a revocation is
 * made with. removeFromCRL is refused: it un-revokes, in delta CRLs only (§5.3.1), and an entry carrying it
 * revokes nothing to a verifier such as OpenSSL.
 */
export function parseReason(input: string): { code: CrlReasonCode; name: CrlReasonName; cause?: RevocationCause } {
  const r = resolveReason(input);
  if (r.name === "removeFromCRL") throw new JpkiError("ERR_USAGE", "removeFromCRL un-revokes, in delta CRLs only: it is not a reason to revoke");
  return r;
}

function resolveReason(input: string): { code: CrlReasonCode; name: CrlReasonName; cause?: RevocationCause } {
  const s = input.trim();
  if (s in REVOCATION_CAUSES) {
    const cause = s as RevocationCause;
    const name = REVOCATION_CAUSES[cause].reason;
    return { code: CRL_REASON[name], name, cause };
  }
  const byName = (Object.keys(CRL_REASON) as CrlReasonName[]).find((n) => n.toLowerCase() === s.toLowerCase());
  if (byName) return { code: CRL_REASON[byName], name: byName };
  if (/^\d+$/.test(s) && NAME_BY_CODE.has(Number(s))) {
    const name = NAME_BY_CODE.get(Number(s))!;
    return { code: CRL_REASON[name], name };
  }
  throw new JpkiError(
    "ERR_REASON_UNKNOWN",
    `unknown revocation reason ${JSON.stringify(s)}: use one of ${Object.keys(REVOCATION_CAUSES).join(", ")} or an RFC 5280 reason name`,
  );
}
