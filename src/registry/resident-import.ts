/**
 * `jpki registry import`: resident records loaded in bulk into the registry side (住基ネット), as a municipality's
 * initial load or a correction of a record nobody relies on yet. A library service; the CLI is a shell over it.
 *
 * A record the CA side relies on is never replaced here. Once a resident holds a certificate (their issuance
 * information, 発行情報, is registered) or has had a change notice applied, the registry side must tell the CA side
 * of every change through a change notice (異動等情報の通知, shared/spec/JPKI.md "The link between the two
 * networks", step 3) — `jpki registry apply` and the CA's ingestion. A bare replacement (a new address, a death
 * written as status "deceased") changed the registry and left the certificate certifying the old items valid for
 * good: no notice, no revocation. Such a line is refused (ERR_RESIDENT_CHANGE_NEEDS_NOTICE) and the others go on.
 * A record closed by a resident-code change (it names the code the person moved to) is never reopened or replaced
 * either. A record the same as the one held is left alone, and counted as unchanged.
 *
 * Each batch is decided inside the store's write transaction that commits it (Store.applyToRegistry), so an
 * issuance or a notice committed between the read and the write cannot slip past the rule.
 */
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import { registryLoadAudit } from "../store/audit-ops.js";
import type { ResidentRecord, Store } from "../store/types.js";

export interface ResidentImportSummary {
  /** new resident codes */
  inserted: number;
  /** records replaced (residents with no certificate and no applied notice) */
  updated: number;
  /** records the same as the one held */
  unchanged: number;
  /** records refused, by their index in the batches given */
  errors: Array<{ index: number; code: ErrorCode; message: string }>;
}

type Stored = ResidentRecord & { readonly noticeSequence: number };

function sameRecord(a: ResidentRecord, b: ResidentRecord): boolean {
  const x = a.fourItems;
  const y = b.fourItems;
  return a.municipalityCode === b.municipalityCode && a.status === b.status && x.name === y.name && x.address === y.address && x.birthDate === y.birthDate && x.gender === y.gender;
}

/**
 * Imports one batch of parsed resident records. `index` in the errors is the record's position in `records`;
 * a record that names a code already named earlier in the same batch is decided against the earlier one.
 */
export async function importResidents(store: Store, records: readonly ResidentRecord[]): Promise<ResidentImportSummary> {
  if (!records.length) return { inserted: 0, updated: 0, unchanged: 0, errors: [] };
  return store.applyToRegistry((read, registered) => {
    const local = new Map<string, Stored>();
    const out: ResidentImportSummary = { inserted: 0, updated: 0, unchanged: 0, errors: [] };
    for (const [index, r] of records.entries()) {
      const held = local.get(r.residentCode) ?? read(r.residentCode);
      try {
        if (!held) {
          local.set(r.residentCode, { ...r, noticeSequence: 0 });
          out.inserted++;
          continue;
        }
        if (sameRecord(held, r)) {
          out.unchanged++;
          continue;
        }
        if (held.successorCode !== undefined) {
          // Closed by a resident-code change: the person lives under the successor. A change at the counter of a
          // resident with no certificate leaves it at sequence 0 with nothing registered, and replacing it (the
          // municipality's original file again, the old code active) made one person two records, the link a
          // later notice under the old code follows (registry/apply.ts recordOf) dropped.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} was closed by a resident-code change (the person's code is now ${held.successorCode}): import does not reopen or replace it; a change to the person must come as a change notice (jpki registry apply FILE) or a counter procedure under the new code`,
          );
        }
        if (held.status !== "active") {
          // Death and removal are final in the registry, as at the counter (registry/counter.ts) and in registry
          // apply: an import that made such a record active again (no certificate, no notice, so no rule above
          // stopped it) brought back a person whom issuance then certified.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} is ${held.status} in the registry, which is final: import does not reopen or change the record`,
          );
        }
        if (held.noticeSequence > 0 || registered(r.residentCode).length > 0) {
          // Never the items in the message: the code says whose record, the operator has the file.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} ${registered(r.residentCode).length > 0 ? "holds a certificate (its issuance information is registered)" : "has had change notices applied"}: a change to the record must come as a change notice (jpki registry apply FILE), so the CA side follows it; import does not replace it`,
          );
        }
        local.set(r.residentCode, { ...r, noticeSequence: held.noticeSequence });
        out.updated++;
      } catch (e) {
        if (!isJpkiError(e)) throw e;
        out.errors.push({ index, code: e.code, message: e.message });
      }
    }
    return { put: [...local.values()], remove: [], audit: registryLoadAudit(out.inserted, out.updated), result: out };
  });
}
