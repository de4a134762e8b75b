import { describe, expect, it } from "vitest";
import type { FourItems } from "../profile/types.js";
import { NOTICE_KIND_NAMES, parseNotice, type ChangeNotice } from "./notice.js";
import { applyNoticeToResident } from "./notice-apply.js";
import { makeResidentCode } from "./resident-code.js";
import type { Resident } from "./resident.js";

const now = new Date("2025-04-01T00:00:00Z");
const CODE = makeResidentCode("5988656848");
const NEW_CODE = makeResidentCode("1234567890");
const items: FourItems = Object.freeze({ name: "小野\u3000花子", address: "大阪府大阪市弥生町６丁目９番１２号", birthDate: "1980-01-01", gender: "female" });
const resident: Resident = Object.freeze({ residentCode: CODE, municipalityCode: "271004", fourItems: items, status: "active" });

function n(over: Record<string, unknown>): ChangeNotice {
  return parseNotice({ noticeId: "N1", residentCode: CODE, effectiveDate: "2024-05-01", sequence: 1, municipalityCode: "271004", ...over }, { now });
}

describe("applyNoticeToResident", () => {
  it("relocation: new address, same municipality", () => {
    const after = { ...items, address: "大阪府大阪市本町１番地" };
    expect(applyNoticeToResident(resident, n({ kind: "relocation", after }))).toEqual({ ...resident, fourItems: after });
  });

  it("move-out and move-in: new address and municipality", () => {
    const after = { ...items, address: "神奈川県横浜市本町１番地" };
    const out = applyNoticeToResident(resident, n({ kind: "move-out", newMunicipalityCode: "141003", after }));
    expect(out).toEqual({ residentCode: CODE, municipalityCode: "141003", fourItems: after, status: "active" });
    const back = applyNoticeToResident(out, n({ kind: "move-in", municipalityCode: "271004", newMunicipalityCode: "271004", after: items }));
    expect(back).toEqual(resident);
  });

  it("name change and correction: new items", () => {
    const married = { ...items, name: "佐藤\u3000花子" };
    expect(applyNoticeToResident(resident, n({ kind: "name-change", after: married })).fourItems).toEqual(married);
    const corrected = { ...items, birthDate: "1980-01-02" };
    expect(applyNoticeToResident(resident, n({ kind: "correction", after: corrected })).fourItems).toEqual(corrected);
  });

  it("death and removal: status; resident-code change: the new code", () => {
    expect(applyNoticeToResident(resident, n({ kind: "death" }))).toEqual({ ...resident, status: "deceased" });
    expect(applyNoticeToResident(resident, n({ kind: "removal" }))).toEqual({ ...resident, status: "removed" });
    expect(applyNoticeToResident(resident, n({ kind: "resident-code-change", newResidentCode: NEW_CODE }))).toEqual({ ...resident, residentCode: NEW_CODE });
  });

  it("returns a new frozen record and leaves the input alone", () => {
    const out = applyNoticeToResident(resident, n({ kind: "death" }));
    expect(out).not.toBe(resident);
    expect(Object.isFrozen(out)).toBe(true);
    expect(resident.status).toBe("active");
  });

  it("refuses a notice about someone else (ERR_INTERNAL) and a record that is no longer active", () => {
    expect(() => applyNoticeToResident({ ...resident, residentCode: NEW_CODE }, n({ kind: "death" }))).toThrow(expect.objectContaining({ code: "ERR_INTERNAL" }));
    const dead = applyNoticeToResident(resident, n({ kind: "death" }));
    for (const kind of NOTICE_KIND_NAMES.filter((k) => k === "death" || k === "removal")) {
      expect(() => applyNoticeToResident(dead, n({ kind }))).toThrow(expect.objectContaining({ code: "ERR_RESIDENT_NOT_ELIGIBLE" }));
    }
  });
});
