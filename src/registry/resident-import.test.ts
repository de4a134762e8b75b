import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SqliteStore } from "../store/sqlite.js";
import type { ResidentRecord } from "../store/types.js";
import { ImportedCodes, importResidents } from "./resident-import.js";
import { makeResidentCode } from "./resident-code.js";
import { normaliseRegistryText } from "./resident.js";

const A = makeResidentCode("1000000001");
const B = makeResidentCode("1000000002");
const record = (residentCode: string, name = "山田　がく"): ResidentRecord => ({
  residentCode, municipalityCode: "131016", status: "active",
  fourItems: { name, address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" },
});
const store = () => SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-resident-import-")), "jpki.db"), { create: true });

describe("normaliseRegistryText", () => {
  it("composes (NFC) and trims, but keeps the compatibility ideographs NFC would merge", () => {
    expect(normaliseRegistryText("\u3000が ".normalize("NFD"))).toBe("が");
    expect(normaliseRegistryText("\uFA10本　が".normalize("NFD").replace("\u585A", "\uFA10"))).toBe("\uFA10本　が");
    expect(normaliseRegistryText("\u{2F800}\uF9DC\u304B\u3099")).toBe("\u{2F800}\uF9DCが");
    expect(normaliseRegistryText("東京都")).toBe("東京都");
  });
});

describe("importResidents", () => {
  it("counts a record held in another form (NFD, padded: stored before import kept the normal form) as unchanged, and leaves it", async () => {
    const s = store();
    const nfd = { ...record(A), fourItems: { ...record(A).fourItems, name: "山田　がく".normalize("NFD"), address: "東京都千代田区千代田１番１号 " } };
    await s.upsertResidents([nfd]);
    expect(await importResidents(s, [record(A)])).toMatchObject({ inserted: 0, updated: 0, unchanged: 1, errors: [] });
    // what a library caller gives un-normalised is stored normalised
    expect(await importResidents(s, [{ ...record(B), fourItems: { ...record(B).fourItems, name: " 山田　がく".normalize("NFD") } }])).toMatchObject({ inserted: 1 });
    expect((await s.getResident(B))?.fourItems.name).toBe("山田　がく");
  });

  it("refuses a code repeated in a batch or in a later one sharing `seen`, naming where it came first", async () => {
    const s = store();
    const seen = new ImportedCodes();
    const one = await importResidents(s, [record(A), record(A, "山田　次郎"), record(B)], { seen, lines: [3, 5, 8] });
    expect(one).toMatchObject({ inserted: 2, updated: 0, unchanged: 0 });
    expect(one.errors).toEqual([expect.objectContaining({ index: 1, code: "ERR_RESIDENT_DUPLICATE", first: 3 })]);
    expect(one.errors[0]!.message).toContain("first at line 3");
    const two = await importResidents(s, [record(B)], { seen, lines: [9] });
    expect(two).toMatchObject({ inserted: 0, updated: 0, unchanged: 0, errors: [expect.objectContaining({ index: 0, first: 8 })] });
    expect((await s.getResident(A))?.fourItems.name).toBe("山田　がく");
  });

  it("remembers the code of a line refused as malformed only when it is a valid code, and says the first was malformed", async () => {
    const s = store();
    const seen = new ImportedCodes();
    seen.noteMalformed({ residentCode: ` ${A} `, birthDate: "nonsense" }, 2);
    for (const bad of [null, [A], "text", { residentCode: 12345678901 }, { residentCode: `${A.slice(0, 10)}${(Number(A[10]) + 1) % 10}` }]) seen.noteMalformed(bad, 3);
    const r = await importResidents(s, [record(A), record(B)], { seen, lines: [5, 6] });
    expect(r).toMatchObject({ inserted: 1, errors: [expect.objectContaining({ index: 0, code: "ERR_RESIDENT_DUPLICATE", first: 2 })] });
    expect(r.errors[0]!.message).toContain("first at line 2, refused as malformed");
    expect(seen.firstWasMalformed(B)).toBe(false);
  });
});
