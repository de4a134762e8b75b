/**
 * Legal bases for identity-information provision (住基ネット 本人確認情報の提供): the affairs for which the Basic
 * Resident Registration Act (住民基本台帳法, appended tables 1–5 / 別表第一〜第五) lets a government body receive a
 * resident's current identity information (shared/spec/JPKI.md "Identity-information provision"). One table: the
 * purpose code a verifier names in `POST /v1/validate` (`legalBasis`), its Japanese name, and the verifier kinds
 * allowed to use it. Only government bodies (行政機関) appear: a private certification provider (民間認証事業者)
 * never receives the four items through this API, whatever it names.
 */
import { JpkiError } from "../errors.js";
import type { VerifierKind } from "../store/types.js";

export interface LegalBasis {
  /** the affair, in Japanese as the Act's tables name it */
  readonly ja: string;
  readonly label: string;
  /** the kinds of verifier that may receive the current four items for this affair */
  readonly kinds: readonly VerifierKind[];
}

const GOVERNMENT: readonly VerifierKind[] = Object.freeze(["government"]);

export const LEGAL_BASES = Object.freeze({
  pension: { ja: "年金給付に関する事務", label: "public pension benefits", kinds: GOVERNMENT },
  "child-allowance": { ja: "児童扶養手当の支給に関する事務", label: "child-rearing allowance", kinds: GOVERNMENT },
  passport: { ja: "旅券の発給に関する事務", label: "passport issuance", kinds: GOVERNMENT },
  "real-estate-registration": { ja: "不動産登記に関する事務", label: "real-estate registration", kinds: GOVERNMENT },
  "construction-licence": { ja: "建設業の許可に関する事務", label: "construction business licence", kinds: GOVERNMENT },
  "national-exam": { ja: "国家試験に関する事務", label: "national examinations and qualifications", kinds: GOVERNMENT },
} as const satisfies Record<string, LegalBasis>);

export type LegalBasisCode = keyof typeof LEGAL_BASES;

export const LEGAL_BASIS_CODES: readonly LegalBasisCode[] = Object.freeze(Object.keys(LEGAL_BASES) as LegalBasisCode[]);

export function isLegalBasisCode(s: unknown): s is LegalBasisCode {
  return typeof s === "string" && Object.hasOwn(LEGAL_BASES, s);
}

/** The legal basis a code names; ERR_USAGE for a code not in the table. */
export function parseLegalBasis(s: string): LegalBasisCode {
  if (!isLegalBasisCode(s)) throw new JpkiError("ERR_USAGE", `legal basis ${JSON.stringify(s)}: give one of ${LEGAL_BASIS_CODES.join(", ")}`);
  return s;
}

/** Whether a verifier of `kind` may receive the current four items for the affair `code`. */
export function legalBasisAllows(code: LegalBasisCode, kind: VerifierKind): boolean {
  return LEGAL_BASES[code].kinds.includes(kind);
}

/**
 * Refuses a legal basis named by a verifier whose kind the table does not list for it (ERR_LEGAL_BASIS_NOT_ALLOWED).
 * Refused, not ignored: a private provider's request under "pension" was answered and went into the disclosure
 * log under that legal basis, so the resident read a bank as having asked under the Act's tables.
 */
export function checkLegalBasis(code: LegalBasisCode | undefined, kind: VerifierKind): void {
  if (code === undefined || legalBasisAllows(code, kind)) return;
  throw new JpkiError("ERR_LEGAL_BASIS_NOT_ALLOWED", `legal basis ${code} (${LEGAL_BASES[code].ja}) is for ${LEGAL_BASES[code].kinds.join(", ")} verifiers only, and this verifier is ${kind}: ask without a legal basis`);
}
