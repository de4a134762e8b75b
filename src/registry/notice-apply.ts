/**
 * Applying a change notice (異動等情報) to the resident record (住民票) on the registry side,
 * shared/spec/JPKI.md "The link between the two networks": after `jpki registry apply`, the next issuance
 * certifies the four items after the change.
 */
import { JpkiError } from "../errors.js";
import type { ChangeNotice } from "./notice.js";
import type { Resident, ResidentStatus } from "./resident.js";

const STATUS_AFTER: Partial<Record<ChangeNotice["kind"], ResidentStatus>> = Object.freeze({
  death: "deceased",
  removal: "removed",
});

/**
 * The resident record after the notice, as a new immutable object (the caller stores it; for a
 * resident-code change it replaces the record under the old code):
 * - `after`, when present, becomes the four items (any kind);
 * - `newMunicipalityCode` becomes the municipality (relocation, move-out, move-in);
 * - death → status deceased, removal → status removed;
 * - resident-code change → the new resident code.
 *
 * Throws ERR_INTERNAL when the notice is about another resident (the caller looked up the wrong record),
 * and ERR_RESIDENT_NOT_ELIGIBLE when the record is no longer active (deceased or removed): a notice cannot
 * change it any more.
 */
export function applyNoticeToResident(resident: Resident, notice: ChangeNotice): Resident {
  if (resident.residentCode !== notice.residentCode) {
    throw new JpkiError("ERR_INTERNAL", "applyNoticeToResident: the notice is about another resident than the record passed in", {
      details: { noticeId: notice.noticeId },
    });
  }
  if (resident.status !== "active") {
    throw new JpkiError("ERR_RESIDENT_NOT_ELIGIBLE", `the resident record is ${resident.status}: change notice ${notice.noticeId} cannot apply to it`, {
      details: { noticeId: notice.noticeId, status: resident.status },
    });
  }
  return Object.freeze({
    residentCode: notice.newResidentCode ?? resident.residentCode,
    municipalityCode: notice.newMunicipalityCode ?? resident.municipalityCode,
    fourItems: notice.after ?? resident.fourItems,
    status: STATUS_AFTER[notice.kind] ?? resident.status,
  });
}
