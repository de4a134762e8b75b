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
  /**
   * The code the registry changed the asked one to (住民票コード変更, following a few changes), when it did: the
   * checks under it are the same person's and are listed too (the CA side files them under the new code once it
   * has taken the change).
   */
  readonly codeChangedTo?: string;
}

/** How many resident-code changes a listing follows from the code asked for. */
const CODE_CHANGES_FOLLOWED = 8;

/**
 * Who checked the resident's certificates and when: the newest `limit` records (default 1000), oldest of them
 * first. The newest, not the oldest: one verifier's flood of checks must not push a later check (a government
 * body's, with the four items) out of the resident's view; `truncated` says older ones exist.
 */
export async function disclosuresOf(ws: Workspace, residentCode: string, opts: { readonly limit?: number } = {}): Promise<DisclosureListing> {
  assertResidentCode(residentCode);
  const limit = opts.limit ?? 1000;
  // The person's codes: the one asked for, then each the registry changed it to. A resident asking under the code
  // they knew found nothing once the CA side had filed the checks under the new one.
  const codes = [residentCode];
  for (let code = residentCode; codes.length <= CODE_CHANGES_FOLLOWED; ) {
    const next = (await ws.store.getResident(code))?.successorCode;
    if (next === undefined || codes.includes(next)) break;
    codes.push((code = next));
  }
  const lists = await Promise.all(codes.map((code) => ws.store.listDisclosures({ residentCode: code, limit: limit + 1 })));
  // each list oldest first: merged the same way, the newest limit + 1 kept
  const records = lists.length === 1 ? lists[0]! : lists.flat().sort((a, b) => a.at.getTime() - b.at.getTime()).slice(-(limit + 1));
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
  return { entries, truncated, ...(codes.length > 1 ? { codeChangedTo: codes.at(-1)! } : {}) };
}
