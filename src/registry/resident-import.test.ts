import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SqliteStore } from "../store/sqlite.js";
import type { ResidentRecord } from "../store/types.js";
import { FixedClock } from "../pki/clock.js";
import { ImportedCodes, importResidentFile, importResidents, type ResidentFileImportProgress } from "./resident-import.js";
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

describe("importResidentFile", () => {
  const C = makeResidentCode("1000000003");
  const clock = new FixedClock("2026-04-01T00:00:00Z");
  const line = (residentCode: string, over: Record<string, unknown> = {}) =>
    JSON.stringify({ residentCode, municipalityCode: "131016", name: "山田　がく", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male", ...over });
  const jsonl = (...lines: string[]) => Readable.from([Buffer.from(lines.map((l) => `${l}\n`).join(""))]);

  it("imports the good lines and reports each bad one by its line, in line order, without its content", async () => {
    const s = store();
    const r = await importResidentFile(s, jsonl(line(A), "{not json", line(B), line(A, { name: "山田　次郎" }), line(C, { birthDate: "1980-02-30", name: "佐藤　花子" })), { now: clock.now(), format: "jsonl" });
    expect(r).toMatchObject({ read: 5, inserted: 2, updated: 0, unchanged: 0, stopped: false });
    // the repeat (line 4) is found when its batch commits, after line 5 was refused: sorted all the same
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([[2, "ERR_IMPORT_FORMAT"], [4, "ERR_RESIDENT_DUPLICATE"], [5, "ERR_RESIDENT_INVALID"]]);
    expect(r.errors[1]).toMatchObject({ firstLine: 1 });
    for (const e of r.errors) expect(e.message).toMatch(new RegExp(`^line ${e.line}: `));
    expect(JSON.stringify(r)).not.toMatch(/山田|佐藤/);
    expect((await s.getResident(A))?.fourItems.name).toBe("山田　がく");
    expect(await s.getResident(C)).toBeUndefined();
    // the good lines again: unchanged
    const again = await importResidentFile(s, jsonl(line(A), line(B)), { now: clock.now() });
    expect(again).toMatchObject({ read: 2, inserted: 0, unchanged: 2, errors: [] });
  });

  it("refuses a line naming a field twice (was: JSON.parse kept the last: a status given as active, then deceased, imported a death)", async () => {
    const s = store();
    const twice = line(A).replace(/}$/, ',"status":"active","status":"deceased","name":"山田　次郎"}');
    const r = await importResidentFile(s, jsonl(twice, line(B)), { now: clock.now(), format: "jsonl" });
    expect(r).toMatchObject({ read: 2, inserted: 1 });
    expect(r.errors).toEqual([expect.objectContaining({ line: 1, code: "ERR_IMPORT_FORMAT" })]);
    expect(r.errors[0]!.message).toMatch(/^line 1: field "(status|name)" is given more than once/);
    expect(JSON.stringify(r)).not.toMatch(/山田/);
    expect(await s.getResident(A)).toBeUndefined();
  });

  it("finds a repeat across a batch boundary: the first line alone is decided", async () => {
    const s = store();
    const r = await importResidentFile(s, jsonl(line(A), line(B), line(A, { name: "山田　次郎" })), { now: clock.now(), batchSize: 2 });
    expect(r).toMatchObject({ read: 3, inserted: 2 });
    expect(r.errors).toEqual([expect.objectContaining({ line: 3, code: "ERR_RESIDENT_DUPLICATE", firstLine: 1 })]);
    expect(r.errors[0]!.message).toContain("first at line 1");
    expect((await s.getResident(A))?.fourItems.name).toBe("山田　がく");
  });

  it("refuses a good line repeating the code of a malformed first line, naming that line, also in a later batch", async () => {
    const s = store();
    const r = await importResidentFile(s, jsonl(line(` ${A}`, { birthDate: "1980-02-30" }), line(B), line(A)), { now: clock.now(), batchSize: 1 });
    expect(r).toMatchObject({ read: 3, inserted: 1 });
    expect(r.errors.map((e) => [e.line, e.code, e.firstLine])).toEqual([[1, "ERR_RESIDENT_INVALID", undefined], [3, "ERR_RESIDENT_DUPLICATE", 1]]);
    expect(r.errors[1]!.message).toContain("first at line 1, refused as malformed");
    expect(await s.getResident(A)).toBeUndefined();
  });

  it("reports progress after each committed batch", async () => {
    const s = store();
    const seen: ResidentFileImportProgress[] = [];
    const codes = ["1", "2", "3", "4", "5"].map((k) => makeResidentCode(`200000000${k}`));
    await importResidentFile(s, jsonl(line(codes[0]!), line(codes[1]!), "[]", line(codes[2]!), line(codes[3]!), line(codes[4]!)), { now: clock.now(), batchSize: 2, onProgress: (p) => seen.push(p) });
    expect(seen).toEqual([
      { read: 2, inserted: 2, updated: 0, unchanged: 0, rejected: 0 },
      { read: 5, inserted: 4, updated: 0, unchanged: 0, rejected: 1 },
      { read: 6, inserted: 5, updated: 0, unchanged: 0, rejected: 1 },
    ]);
  });

  it("checks birth dates against the time it is given (the workspace's clock), not the wall clock", async () => {
    const s = store();
    const then = new FixedClock("2000-01-01T00:00:00Z");
    const r = await importResidentFile(s, jsonl(line(A, { birthDate: "1999-12-31" }), line(B, { birthDate: "2005-05-05" })), { now: then.now() });
    expect(r).toMatchObject({ read: 2, inserted: 1 });
    expect(r.errors).toEqual([expect.objectContaining({ line: 2, code: "ERR_RESIDENT_INVALID" })]);
    expect(r.errors[0]!.message).toContain("in the future");
  });

  it("stops when the signal aborts: the records read are committed, the rest not read, and the summary says so", async () => {
    const s = store();
    const stop = new AbortController();
    const codes = ["1", "2", "3", "4", "5"].map((k) => makeResidentCode(`300000000${k}`));
    const r = await importResidentFile(s, jsonl(...codes.map((c) => line(c))), { now: clock.now(), batchSize: 2, signal: stop.signal, onProgress: () => stop.abort() });
    expect(r).toMatchObject({ read: 2, inserted: 2, errors: [], stopped: true });
    expect(await s.getResident(codes[2]!)).toBeUndefined();
    // the same file again takes the rest
    expect(await importResidentFile(s, jsonl(...codes.map((c) => line(c))), { now: clock.now() })).toMatchObject({ read: 5, inserted: 3, unchanged: 2, stopped: false });
  });
});
