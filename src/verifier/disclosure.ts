/**
 * The resident's right to know (the registry network lets a resident see to whom their identity information
 * was provided): who checked a resident's certificates through the validation API or a liveness check (answers `status:…`), and when. Reads the
 * disclosure log (store `listDisclosures`) and names each verifier (name and kind) and legal basis.
 */
import { assertResidentCode } from "../registry/resident-code.js";
import type { CertificateType } from "../profile/types.js";
import type { VerifierKind } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { LEGAL_BASES, isLegalBasisCode } from "./legal-basis.js";

/** One check of one of the resident's certificates, as the resident is shown it. */
export interface DisclosureEntry {
  readonly at: Date;
  readonly verifierId: string;
  /** the verifier's registered name and kind (undefined: no longer registered in this store) */
  readonly verifierName: string | undefined;
  readonly verifierKind: VerifierKind | undefined;
  readonly serial: string;
  readonly issuer: string;
  readonly purpose: CertificateType;
  readonly legalBasis: string | undefined;
  /** the legal basis's affair in Japanese */
  readonly legalBasisJa: string | undefined;
  readonly validationTime: Date;
  readonly answer: string;
  readonly itemsDisclosed: boolean;
}

/** A resident's disclosure records as listed: the newest, oldest of them first, and whether older ones were left out. */
export interface DisclosureListing {
  readonly entries: DisclosureEntry[];
  /** older records exist beyond `limit` (not listed) */
  readonly truncated: boolean;
}

/**
 * Who checked the resident's certificates and when: the newest `limit` records (default 1000), oldest of them
 * first. The newest, not the oldest: one verifier's flood of checks must not push a later check (a government
 * body's, with the four items) out of the resident's view; `truncated` says older ones exist.
 */
export async function disclosuresOf(ws: Workspace, residentCode: string, opts: { readonly limit?: number } = {}): Promise<DisclosureListing> {
  assertResidentCode(residentCode);
  const limit = opts.limit ?? 1000;
  const records = await ws.store.listDisclosures({ residentCode, limit: limit + 1 });
  const truncated = records.length > limit;
  if (truncated) records.shift();
  const verifiers = new Map((await ws.store.listVerifiers()).map((v) => [v.id, v]));
  const entries = records.map((r) => {
    const v = verifiers.get(r.verifierId);
    return {
      at: r.at,
      verifierId: r.verifierId,
      verifierName: v?.name,
      verifierKind: v?.kind,
      serial: r.serial,
      issuer: r.issuer,
      purpose: r.purpose,
      legalBasis: r.legalBasis,
      legalBasisJa: r.legalBasis && isLegalBasisCode(r.legalBasis) ? LEGAL_BASES[r.legalBasis].ja : undefined,
      validationTime: r.validationTime,
      answer: r.answer,
      itemsDisclosed: r.itemsDisclosed,
    };
  });
  return { entries, truncated };
}
