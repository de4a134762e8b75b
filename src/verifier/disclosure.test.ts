/**
 * disclosuresOf across a resident-code change (住民票コード変更): the checks of one person filed under the code asked
 * for and under each code the registry changed it to. Found by a walk through the README: a resident asking under the
 * code they knew was told nobody had checked, once the CA side had moved the checks to the new code.
 */
import { describe, expect, it } from "vitest";
import { makeResidentCode } from "../registry/resident-code.js";
import type { DisclosureRecord, ResidentRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { disclosuresOf } from "./disclosure.js";

const [OLD, MID, NEW, OTHER] = ["0000000301", "0000000302", "0000000303", "0000000304"].map((c) => makeResidentCode(c)) as [string, string, string, string];

function check(residentCode: string, minute: number, serial: string): DisclosureRecord {
  const at = new Date(Date.UTC(2026, 11, 1, 9, minute));
  return { verifierId: "city-hall", serial, issuer: "13-sig", residentCode, purpose: "signature", legalBasis: undefined, at, validationTime: at, answer: "valid", itemsDisclosed: false };
}

/** A workspace whose store holds these records and successor codes (what disclosuresOf reads of it). */
function workspace(records: DisclosureRecord[], successors: Record<string, string>): Workspace {
  const store = {
    listDisclosures: async (q: { residentCode: string; limit?: number }) => records.filter((r) => r.residentCode === q.residentCode).slice(-(q.limit ?? Infinity)),
    getResident: async (code: string) => (successors[code] ? ({ residentCode: code, successorCode: successors[code] } as unknown as ResidentRecord) : undefined),
    listVerifiers: async () => [],
  };
  return { store } as unknown as Workspace;
}

describe("disclosuresOf after a resident-code change", () => {
  const records = [check(OLD, 1, "01"), check(OTHER, 2, "99"), check(MID, 3, "02"), check(OLD, 4, "03"), check(NEW, 5, "04")];

  it("lists the checks under the code asked for and every code it was changed to, oldest first, and names the current code", async () => {
    const listing = await disclosuresOf(workspace(records, { [OLD]: MID, [MID]: NEW }), OLD);
    expect(listing.entries.map((e) => e.serial)).toEqual(["01", "02", "03", "04"]);
    expect(listing).toMatchObject({ truncated: false, codeChangedTo: NEW });
  });

  it("keeps the newest `limit` of them all", async () => {
    const listing = await disclosuresOf(workspace(records, { [OLD]: MID, [MID]: NEW }), OLD, { limit: 2 });
    expect(listing.entries.map((e) => e.serial)).toEqual(["03", "04"]);
    expect(listing.truncated).toBe(true);
  });

  it("asked under the current code, or a code never changed, lists that code's checks alone; a loop of successors ends", async () => {
    const now = await disclosuresOf(workspace(records, { [OLD]: MID, [MID]: NEW }), NEW);
    expect(now.entries.map((e) => e.serial)).toEqual(["04"]);
    expect(now.codeChangedTo).toBeUndefined();
    const looped = await disclosuresOf(workspace(records, { [OLD]: MID, [MID]: OLD }), OLD);
    expect(looped.entries.map((e) => e.serial)).toEqual(["01", "02", "03"]);
    expect(looped.codeChangedTo).toBe(MID);
  });
});
