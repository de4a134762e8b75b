import { describe, expect, it } from "vitest";
import type { ErrorCode } from "../errors.js";
import { makeResidentCode } from "./resident-code.js";
import { assertRegistryFourItems, parseResidentRecord, type Resident } from "./resident.js";

const now = new Date("2025-04-01T03:00:00Z");

// Synthetic: no real person. Distinctive values so a leak into a message is easy to spot.
const BASE = Object.freeze({
  residentCode: makeResidentCode("4719283746"),
  municipalityCode: "131016",
  name: "架空　太郎",
  address: "東京都千代田区千代田１丁目１番１号",
  birthDate: "1980-12-31",
  gender: "male",
});

function errorOf(obj: unknown, opts: { now: Date; where?: string } = { now }): Error & { code: ErrorCode; details?: Record<string, unknown> } {
  try {
    parseResidentRecord(obj, opts);
  } catch (e) {
    return e as Error & { code: ErrorCode };
  }
  throw new Error("expected parseResidentRecord to throw");
}

describe("parseResidentRecord: valid records", () => {
  it("returns a frozen Resident with status active by default", () => {
    const r: Resident = parseResidentRecord(BASE, { now });
    expect(r).toEqual({
      residentCode: BASE.residentCode,
      municipalityCode: "131016",
      fourItems: { name: "架空　太郎", address: BASE.address, birthDate: "1980-12-31", gender: "male" },
      status: "active",
    });
    expect(Object.isFrozen(r)).toBe(true);
    expect(Object.isFrozen(r.fourItems)).toBe(true);
  });

  it("joins familyName and givenName with U+3000 and maps gender digits", () => {
    const { name: _n, ...rest } = BASE;
    const r = parseResidentRecord({ ...rest, familyName: "架空", givenName: "花子", gender: "2", status: "deceased" }, { now });
    expect(r.fourItems.name).toBe("架空\u3000花子");
    expect(r.fourItems.gender).toBe("female");
    expect(r.status).toBe("deceased");
    expect(parseResidentRecord({ ...BASE, gender: "3" }, { now }).fourItems.gender).toBe("unknown");
    expect(parseResidentRecord({ ...BASE, gender: 1 }, { now }).fourItems.gender).toBe("male");
  });

  it("treats empty CSV cells as absent (status, the unused name form)", () => {
    const r = parseResidentRecord({ ...BASE, familyName: "", givenName: "", status: "" }, { now });
    expect(r.status).toBe("active");
    expect(r.fourItems.name).toBe(BASE.name);
  });

  it("keeps characters outside JIS X 0208 in their true form", () => {
    expect(parseResidentRecord({ ...BASE, name: "𠮷田　髙志" }, { now }).fourItems.name).toBe("𠮷田　髙志");
  });

  it("counts the 200-character address limit in characters, not UTF-16 units", () => {
    const address = "東京都" + "𠮷".repeat(197);
    expect(parseResidentRecord({ ...BASE, address }, { now }).fourItems.address).toBe(address);
  });

  it("judges 'not in the future' by the calendar day in Japan", () => {
    // 2025-03-31T15:30Z is already 2025-04-01 00:30 in JST.
    expect(() => parseResidentRecord({ ...BASE, birthDate: "2025-04-01" }, { now: new Date("2025-03-31T15:30:00Z") })).not.toThrow();
    expect(errorOf({ ...BASE, birthDate: "2025-04-01" }, { now: new Date("2025-03-31T14:59:00Z") }).message).toMatch(/future/);
  });
});

// [description, record, expected code, field named in the message, problem, personal values that must not appear]
const BAD: ReadonlyArray<readonly [string, Record<string, unknown>, ErrorCode, string, string]> = [
  ["resident code with a wrong check digit", { ...BASE, residentCode: BASE.residentCode.slice(0, 10) + String((Number(BASE.residentCode[10]) + 1) % 10) }, "ERR_RESIDENT_CODE_INVALID", "residentCode", "check-digit"],
  ["resident code of 10 digits", { ...BASE, residentCode: "4719283746" }, "ERR_RESIDENT_CODE_INVALID", "residentCode", "format"],
  ["resident code missing", { ...BASE, residentCode: undefined }, "ERR_RESIDENT_CODE_INVALID", "residentCode", "missing"],
  ["resident code as a number", { ...BASE, residentCode: 47192837461 }, "ERR_RESIDENT_CODE_INVALID", "residentCode", "type"],
  ["municipality with a wrong check digit", { ...BASE, municipalityCode: "131017" }, "ERR_MUNICIPALITY_INVALID", "municipalityCode", "check-digit"],
  ["municipality missing", { ...BASE, municipalityCode: "" }, "ERR_MUNICIPALITY_INVALID", "municipalityCode", "missing"],
  ["name missing", { ...BASE, name: undefined }, "ERR_RESIDENT_INVALID", "name", "missing"],
  ["name without U+3000", { ...BASE, name: "架空太郎" }, "ERR_RESIDENT_INVALID", "name", "separator"],
  ["name with two U+3000", { ...BASE, name: "架空　太郎　次" }, "ERR_RESIDENT_INVALID", "name", "separator"],
  ["name with an ASCII space", { ...BASE, name: "架空 一　太郎" }, "ERR_RESIDENT_INVALID", "name", "whitespace"],
  // the U+3000 at the end is padding, trimmed: no separator is left
  ["name with an empty given name", { ...BASE, name: "架空　" }, "ERR_RESIDENT_INVALID", "name", "separator"],
  ["name of spaces only", { ...BASE, name: "\u3000 " }, "ERR_RESIDENT_INVALID", "name", "missing"],
  ["name and familyName both given", { ...BASE, familyName: "架空", givenName: "太郎" }, "ERR_RESIDENT_INVALID", "name", "ambiguous"],
  ["familyName without givenName", { ...BASE, name: undefined, familyName: "架空" }, "ERR_RESIDENT_INVALID", "givenName", "missing"],
  ["givenName with a space", { ...BASE, name: undefined, familyName: "架空", givenName: "太 郎" }, "ERR_RESIDENT_INVALID", "givenName", "whitespace"],
  ["name as a number", { ...BASE, name: 42 }, "ERR_RESIDENT_INVALID", "name", "type"],
  ["address missing", { ...BASE, address: undefined }, "ERR_RESIDENT_INVALID", "address", "missing"],
  ["address blank", { ...BASE, address: "　 " }, "ERR_RESIDENT_INVALID", "address", "missing"],
  ["address without a prefecture", { ...BASE, address: "千代田区千代田１丁目１番１号" }, "ERR_RESIDENT_INVALID", "address", "no-prefecture"],
  ["address over 200 characters", { ...BASE, address: "東京都千代田区" + "一".repeat(194) }, "ERR_RESIDENT_INVALID", "address", "too-long"],
  ["address with a line break", { ...BASE, address: "東京都千代田区\n千代田" }, "ERR_RESIDENT_INVALID", "address", "control-character"],
  // What a broken byte becomes where no fatal decoder stands guard (a counter command's argv, a JSON "\ufffd"):
  // the registry would hold, and a certificate certify, a character that is not the resident's.
  ["name with a replacement character (a broken byte)", { ...BASE, name: "架空\ufffd\ufffd　太郎" }, "ERR_RESIDENT_INVALID", "name", "replacement-character"],
  ["givenName with a replacement character", { ...BASE, name: undefined, familyName: "架空", givenName: "太\ufffd" }, "ERR_RESIDENT_INVALID", "givenName", "replacement-character"],
  ["address with a replacement character", { ...BASE, address: "東京都千代田区\ufffd千代田" }, "ERR_RESIDENT_INVALID", "address", "replacement-character"],
  // Invisible formatting: a right-to-left override shows 架空　太郎 reordered wherever the record is printed, and the
  // certificate would carry 〓 flagged as a character outside JIS X 0208 for a character nobody has in their name.
  ["name with a right-to-left override (U+202E)", { ...BASE, name: "架空\u202e　太郎" }, "ERR_RESIDENT_INVALID", "name", "format-character"],
  ["givenName with a left-to-right mark (U+200E)", { ...BASE, name: undefined, familyName: "架空", givenName: "太\u200e郎" }, "ERR_RESIDENT_INVALID", "givenName", "format-character"],
  ["name with a zero-width space (U+200B)", { ...BASE, name: "架空\u200b　太郎" }, "ERR_RESIDENT_INVALID", "name", "format-character"],
  ["address with a bidi isolate (U+2067)", { ...BASE, address: "東京都千代田区\u2067千代田" }, "ERR_RESIDENT_INVALID", "address", "format-character"],
  // A library caller's string is not checked by any reader: a lone surrogate is no text (stored, it turns into U+FFFD).
  ["name with a lone surrogate", { ...BASE, name: "架空\ud800　太郎" }, "ERR_RESIDENT_INVALID", "name", "lone-surrogate"],
  ["address with a lone surrogate", { ...BASE, address: "東京都千代田区\udc00千代田" }, "ERR_RESIDENT_INVALID", "address", "lone-surrogate"],
  ["address in another prefecture than the municipality", { ...BASE, address: "大阪府大阪市北区梅田１丁目１番１号" }, "ERR_RESIDENT_INVALID", "address", "prefecture-mismatch"],
  ["birth date 2023-02-30", { ...BASE, birthDate: "2023-02-30" }, "ERR_RESIDENT_INVALID", "birthDate", "not-a-date"],
  ["birth date month 13", { ...BASE, birthDate: "1980-13-01" }, "ERR_RESIDENT_INVALID", "birthDate", "not-a-date"],
  ["birth date not ISO", { ...BASE, birthDate: "1980/12/31" }, "ERR_RESIDENT_INVALID", "birthDate", "format"],
  ["birth date in the era form", { ...BASE, birthDate: "319801231" }, "ERR_RESIDENT_INVALID", "birthDate", "format"],
  ["birth date in the future", { ...BASE, birthDate: "2031-01-01" }, "ERR_RESIDENT_INVALID", "birthDate", "future"],
  ["birth date before 1868", { ...BASE, birthDate: "1867-12-31" }, "ERR_RESIDENT_INVALID", "birthDate", "too-early"],
  ["gender unknown value", { ...BASE, gender: "4" }, "ERR_RESIDENT_INVALID", "gender", "unknown-value"],
  ["gender missing", { ...BASE, gender: "" }, "ERR_RESIDENT_INVALID", "gender", "missing"],
  ["status unknown", { ...BASE, status: "moved" }, "ERR_RESIDENT_INVALID", "status", "unknown-value"],
  ["unknown field", { ...BASE, phone: "03-0000-0000" }, "ERR_RESIDENT_INVALID", "phone", "unknown-field"],
];

describe("parseResidentRecord: each bad field", () => {
  it.each(BAD)("%s", (_desc, rec, code, field, problem) => {
    const e = errorOf(rec, { now, where: "line 7" });
    expect(e.code).toBe(code);
    expect(e.details).toMatchObject({ field, problem, where: "line 7" });
    expect(e.message).toContain(`"${field}"`);
    expect(e.message.startsWith("line 7: ")).toBe(true);
    // No personal value may appear, neither the bad one nor the good ones around it.
    for (const v of [BASE.residentCode, BASE.name, "架空", "太郎", BASE.address, "千代田", BASE.birthDate, rec.birthDate, rec.address, rec.name]) {
      if (typeof v === "string" && v.length > 1) expect(e.message).not.toContain(v);
    }
  });

  it("names all unknown fields, capped", () => {
    const extra = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`x${i}`, "v"]));
    const e = errorOf({ ...BASE, ...extra });
    expect(e.message).toMatch(/unknown fields "x0", "x1", "x2", "x3", "x4" and 3 more/);
  });

  it("rejects non-objects", () => {
    for (const v of [null, "x", 3, [BASE]]) expect(errorOf(v).code).toBe("ERR_RESIDENT_INVALID");
  });
});

describe("assertRegistryFourItems", () => {
  it("returns the address's prefecture and checks every item", () => {
    expect(assertRegistryFourItems({ name: BASE.name, address: BASE.address, birthDate: BASE.birthDate, gender: "female" }, { now }).code).toBe("13");
    expect(() => assertRegistryFourItems({ name: BASE.name, address: BASE.address, birthDate: BASE.birthDate, gender: "x" as "male" }, { now }))
      .toThrow(expect.objectContaining({ code: "ERR_RESIDENT_INVALID" }));
  });
});

describe("parseResidentRecord: a CSV without its header row", () => {
  it("does not quote personal data that ended up as field names", () => {
    const e = errorOf({ ...BASE, "架空　次郎": "x", "東京都千代田区": "y" });
    expect(e.code).toBe("ERR_RESIDENT_INVALID");
    expect(e.message).not.toMatch(/架空|千代田/);
    expect(e.message).toMatch(/not an identifier/);
  });

  it("quotes no name at all when none is a field we know: a Latin-letter name or a gender word is a value too", () => {
    // The first resident of a headerless CSV, as it becomes the header: a foreign resident's name in Latin letters
    // and the gender word look like identifiers, but they are that resident's name and gender.
    const row = { [BASE.residentCode]: "a", "131016": "b", SMITH: "c", JOHN: "d", "東京都千代田区千代田１番": "e", female: "f" };
    const e = errorOf(row, { now, where: "line 2" });
    expect(e.code).toBe("ERR_RESIDENT_INVALID");
    expect(e.details).toMatchObject({ problem: "unknown-field", where: "line 2" });
    expect(e.details?.["field"]).toBeUndefined();
    for (const v of ["SMITH", "JOHN", "female", BASE.residentCode]) expect(JSON.stringify({ message: e.message, details: e.details })).not.toContain(v);
    expect(e.message).toMatch(/header row/);
  });
});
