/**
 * Change notice → revocation rules, shared/spec/JPKI.md "Registry event → effect" and "Reason codes".
 *
 * One table says, for every notice kind (異動) and certificate type, what happens to the resident's
 * certificates and with which CRLReason (RFC 5280 §5.3.1). `decideRevocations` applies it: the CA side
 * compares the four items it certified with the items after the change (exactly, after the
 * substitute-character mapping: `sameCertifiedItems`) and revokes only what no longer holds — defence in
 * depth, since the registry side has compared already.
 */
import { JpkiError } from "../errors.js";
import { CRL_REASON, type CrlReasonCode, type CrlReasonName } from "../crl/reason.js";
import { sameCertifiedItems } from "../profile/four-items.js";
import type { CertificateType, FourItems } from "../profile/types.js";
import type { ChangeNotice, NoticeKind } from "./notice.js";

/**
 * - `revoke-if-changed`: revoke when the certified four items differ from `after` (署名用 only: the
 *   authentication certificate carries no four items)
 * - `revoke`: revoke whatever was certified
 * - `keep`: nothing happens
 * - `relink`: keep the certificate, re-link its issuance record to the new resident code
 */
export type NoticeEffect = "revoke-if-changed" | "revoke" | "keep" | "relink";

/** What a notice kind does to one certificate type. Only revoking effects carry a reason. */
export type NoticeRule =
  | { readonly effect: "revoke-if-changed" | "revoke"; readonly reason: CrlReasonName }
  | { readonly effect: "keep" | "relink"; readonly reason?: undefined };

const ITEM_CHANGED = Object.freeze({ effect: "revoke-if-changed", reason: "affiliationChanged" } as const);
const ENDED = Object.freeze({ effect: "revoke", reason: "cessationOfOperation" } as const);
const KEEP = Object.freeze({ effect: "keep" } as const);
const RELINK = Object.freeze({ effect: "relink" } as const);

/** The rules (JPKI.md "Registry event → effect"). */
export const NOTICE_RULES: Readonly<Record<NoticeKind, Readonly<Record<CertificateType, NoticeRule>>>> = Object.freeze({
  /** 転居 */ relocation: Object.freeze({ signature: ITEM_CHANGED, authentication: KEEP }),
  /** 転出 */ "move-out": Object.freeze({ signature: ITEM_CHANGED, authentication: KEEP }),
  /** 転入 */ "move-in": Object.freeze({ signature: ITEM_CHANGED, authentication: KEEP }),
  /** 氏名変更 */ "name-change": Object.freeze({ signature: ITEM_CHANGED, authentication: KEEP }),
  /** 職権修正: revoke unless the certified text is unchanged */ correction: Object.freeze({ signature: ITEM_CHANGED, authentication: KEEP }),
  /** 死亡 */ death: Object.freeze({ signature: ENDED, authentication: ENDED }),
  /** 住民票消除 */ removal: Object.freeze({ signature: ENDED, authentication: ENDED }),
  /** 住民票コード変更 */ "resident-code-change": Object.freeze({ signature: RELINK, authentication: RELINK }),
} satisfies Record<NoticeKind, Record<CertificateType, NoticeRule>>);

/**
 * Whether a kind revokes every certificate whatever was certified (death 死亡, removal 住民票消除): it ends the record,
 * so it holds whenever it arrives, even after later notices of the resident were applied.
 */
export function endsRecord(kind: NoticeKind): boolean {
  const byType = Object.hasOwn(NOTICE_RULES, kind) ? NOTICE_RULES[kind] : undefined;
  return byType !== undefined && Object.values(byType).every((r) => r.effect === "revoke");
}

/** One unrevoked certificate of the resident, with the four items as certified (発行情報). */
export interface CertifiedCertificate {
  readonly serial: string;
  readonly type: CertificateType;
  /**
   * As certified (the registry's true form at issuance); for an authentication certificate, what the CA recorded.
   * Needed only where a rule compares them (revoke-if-changed, signature certificates): a store's notice context
   * leaves them out of authentication certificates (CertifiedRow).
   */
  readonly fourItems?: FourItems | undefined;
  /**
   * The registry record's notice sequence its items were read at (SQLite store version 30, PostgreSQL 27): it
   * certifies the state after every notice up to it. Absent for certificates issued before.
   */
  readonly issuedAtSequence?: number | undefined;
}

export interface RevocationDecision {
  readonly serial: string;
  readonly reason: CrlReasonName;
  readonly reasonCode: CrlReasonCode;
  /** what caused it, for the revocation record: `notice:<noticeId>` */
  readonly source: string;
}

/** The revocation source recorded for a notice (RevocationInfo.source). */
export function noticeSource(noticeId: string): string {
  return `notice:${noticeId}`;
}

function ruleFor(notice: ChangeNotice, type: CertificateType): NoticeRule {
  const byType = Object.hasOwn(NOTICE_RULES, notice.kind) ? NOTICE_RULES[notice.kind] : undefined;
  const rule = byType && Object.hasOwn(byType, type) ? byType[type] : undefined;
  if (!rule) {
    throw new JpkiError("ERR_INTERNAL", "no revocation rule for this notice kind and certificate type: the rules table is incomplete", {
      details: { kind: String(notice.kind), type: String(type) },
    });
  }
  return rule;
}

/**
 * Which of `certs` (the resident's certificates that are still unrevoked) the notice revokes, in input
 * order, each once. Certificates not passed in are not considered: one already revoked by an earlier notice
 * (a move-out followed by a move-in back to the same address) is not revoked again.
 *
 * Throws ERR_NOTICE_MALFORMED when a `revoke-if-changed` kind has no `after` (parseNotice never lets one through).
 */
export function decideRevocations(notice: ChangeNotice, certs: readonly CertifiedCertificate[]): RevocationDecision[] {
  const out: RevocationDecision[] = [];
  const seen = new Set<string>();
  for (const cert of certs) {
    if (seen.has(cert.serial)) continue;
    const rule = ruleFor(notice, cert.type);
    const reason = rule.reason;
    if (reason === undefined) continue; // keep, relink
    if (rule.effect === "revoke-if-changed") {
      if (!notice.after) {
        throw new JpkiError("ERR_NOTICE_MALFORMED", `field "after" is required for a ${notice.kind} notice to decide revocations`, {
          details: { field: "after", problem: "missing" },
        });
      }
      // Issued after the registry took this notice (the CA side behind by two notices or more, a certificate issued
      // in between): it certifies a later state, and this notice's `after` is not what it claims.
      if (cert.issuedAtSequence !== undefined && cert.issuedAtSequence >= notice.sequence) continue;
      if (!cert.fourItems) {
        // A rule that compares items for a type whose items the caller did not read: a fault here, never a revocation.
        throw new JpkiError("ERR_INTERNAL", "a revocation rule compares four items the certificate was given without", {
          details: { kind: String(notice.kind), type: String(cert.type) },
        });
      }
      if (sameCertifiedItems(cert.fourItems, notice.after)) continue;
    }
    seen.add(cert.serial);
    out.push(Object.freeze({ serial: cert.serial, reason, reasonCode: CRL_REASON[reason], source: noticeSource(notice.noticeId) }));
  }
  return out;
}
