import { describe, expect, it } from "vitest";
import { JpkiError, type ErrorCode } from "../errors.js";
import { makeResidentCode } from "./resident-code.js";
import {
  NOTICE_CSV_COLUMNS, NOTICE_INPUT_FIELDS, NOTICE_KIND_NAMES, NOTICE_KINDS, noticeCsvRow, noticeToInput, parseNotice,
  type ChangeNoticeInput,
} from "./notice.js";

const now = new Date("2025-04-01T00:00:00Z");
const CODE = makeResidentCode("5988656848");
const NEW_CODE = makeResidentCode("1234567890");
const NAME = "小野\u3000隆";
const ADDRESS = "大阪府大阪市本町１丁目２番３号";
const OLD_ADDRESS = "大阪府大阪市弥生町６丁目９番１２号";
const BIRTH = "2005-10-09";
/** Every value a message must never repeat. */
const PERSONAL = [CODE, NEW_CODE, "小野", "隆", ADDRESS, OLD_ADDRESS, BIRTH, "1980-01-01", "2024-05-01", "2023-02-30", "横浜市", "神奈川県"];

function base(over: Partial<Record<string, unknown>> = {}): Record<string, unknown> {
  return {
    noticeId: "N-test:1",
    residentCode: CODE,
    kind: "relocation",
    effectiveDate: "2024-05-01",
    sequence: 1,
    municipalityCode: "271004",
    after: { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: "male" },
    before: { name: NAME, address: OLD_ADDRESS, birthDate: BIRTH, gender: "male" },
    ...over,
  };
}

function flat(over: Partial<Record<string, unknown>> = {}): Record<string, unknown> {
  return {
    noticeId: "N-test:1", residentCode: CODE, kind: "転居", effectiveDate: "2024-05-01", sequence: "1", municipalityCode: "271004",
    newMunicipalityCode: "", newResidentCode: "",
    afterFamilyName: "小野", afterGivenName: "隆", afterAddress: ADDRESS, afterBirthDate: BIRTH, afterGender: "1",
    beforeName: NAME, beforeAddress: OLD_ADDRESS, beforeBirthDate: BIRTH, beforeGender: "male",
    ...over,
  };
}

/** One valid record per kind. */
function validByKind(): Record<string, Record<string, unknown>> {
  const after = { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: "male" };
  const yokohama = { ...after, address: "神奈川県横浜市本町１番地" };
  return {
    relocation: base(),
    "move-out": base({ kind: "move-out", newMunicipalityCode: "141003", after: yokohama }),
    "move-in": base({ kind: "move-in", municipalityCode: "141003", newMunicipalityCode: "141003", after: yokohama }),
    death: base({ kind: "death", after: undefined }),
    "name-change": base({ kind: "name-change", after: { ...after, name: "佐藤\u3000隆" } }),
    correction: base({ kind: "correction" }),
    removal: base({ kind: "removal", after: undefined, before: undefined }),
    "resident-code-change": base({ kind: "resident-code-change", after: undefined, newResidentCode: NEW_CODE }),
  };
}

function failure(obj: unknown, line = 7): JpkiError {
  try {
    parseNotice(obj, { now, line });
  } catch (e) {
    expect(e).toBeInstanceOf(JpkiError);
    return e as JpkiError;
  }
  throw new Error("expected parseNotice to throw");
}

function expectFailure(obj: unknown, code: ErrorCode, field: string | undefined, problem: string): void {
  const e = failure(obj, 7);
  expect({ code: e.code, field: e.details?.["field"], problem: e.details?.["problem"], line: e.details?.["line"] }).toEqual({ code, field, problem, line: 7 });
  expect(e.message.startsWith("line 7: ")).toBe(true);
  if (field !== undefined) expect(e.message).toContain(`"${field}"`);
  for (const p of PERSONAL) expect(e.message).not.toContain(p);
  expect(JSON.stringify(e.toJSON())).not.toContain("小野");
}

describe("parseNotice: canonical JSON Lines", () => {
  it("returns a frozen notice with the items and the relocation's municipality defaulted", () => {
    const n = parseNotice(base(), { now, line: 1 });
    expect(n).toEqual({
      noticeId: "N-test:1", residentCode: CODE, kind: "relocation", effectiveDate: "2024-05-01", sequence: 1,
      municipalityCode: "271004", newMunicipalityCode: "271004",
      after: { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: "male" },
      before: { name: NAME, address: OLD_ADDRESS, birthDate: BIRTH, gender: "male" },
    });
    expect(Object.isFrozen(n)).toBe(true);
    expect(Object.isFrozen(n.after)).toBe(true);
  });

  it("accepts every kind with what it requires", () => {
    const ok = validByKind();
    expect(Object.keys(ok).sort()).toEqual([...NOTICE_KIND_NAMES].sort());
    for (const [kind, rec] of Object.entries(ok)) expect(parseNotice(rec, { now }).kind).toBe(kind);
    expect(parseNotice(ok["death"], { now }).after).toBeUndefined();
    expect(parseNotice(ok["resident-code-change"], { now }).newResidentCode).toBe(NEW_CODE);
    expect(parseNotice(ok["move-in"], { now }).newMunicipalityCode).toBe("141003");
  });

  it("accepts a kind in Japanese (and its aliases), a gender digit, and a sequence given as a digit string", () => {
    for (const [kind, rec] of Object.entries(validByKind())) {
      const k = kind as keyof typeof NOTICE_KINDS;
      for (const ja of [NOTICE_KINDS[k].ja, ...NOTICE_KINDS[k].aliases]) expect(parseNotice({ ...rec, kind: ja }, { now }).kind).toBe(kind);
    }
    const n = parseNotice(base({ sequence: "12", after: { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: 2 } }), { now });
    expect(n.sequence).toBe(12);
    expect(n.after?.gender).toBe("female");
  });
});

describe("parseNotice: CSV columns", () => {
  it("gives the same notice from flat columns (family/given or whole name, empty cells absent)", () => {
    expect(parseNotice(flat(), { now })).toEqual(parseNotice(base(), { now }));
  });

  it("round-trips through noticeCsvRow with the CSV header", () => {
    const n = parseNotice(base(), { now });
    const cells = noticeCsvRow(noticeToInput(n), { japaneseKinds: true }).split(",");
    expect(cells).toHaveLength(NOTICE_CSV_COLUMNS.length);
    for (const c of NOTICE_CSV_COLUMNS) expect(NOTICE_INPUT_FIELDS).toContain(c);
    const rec = Object.fromEntries(NOTICE_CSV_COLUMNS.map((c, i) => [c, cells[i]]));
    expect(parseNotice(rec, { now })).toEqual(n);
  });

  it("round-trips through noticeToInput", () => {
    const n = parseNotice(base({ kind: "move-out", newMunicipalityCode: "272051", after: { name: NAME, address: "大阪府吹田市本町１番地", birthDate: BIRTH, gender: "male" } }), { now });
    expect(parseNotice(JSON.parse(JSON.stringify(noticeToInput(n))), { now })).toEqual(n);
  });

  it("refuses the same items given both nested and flat, or name given both whole and split", () => {
    expectFailure({ ...base(), afterAddress: ADDRESS }, "ERR_NOTICE_MALFORMED", "after", "ambiguous");
    expectFailure(flat({ afterName: NAME }), "ERR_NOTICE_MALFORMED", "afterName", "ambiguous");
    expectFailure(flat({ afterGivenName: "" }), "ERR_NOTICE_MALFORMED", "afterGivenName", "missing");
    expectFailure(flat({ afterFamilyName: "小 野" }), "ERR_NOTICE_MALFORMED", "afterFamilyName", "whitespace");
    expectFailure(flat({ afterBirthDate: "1980-01-01x" }), "ERR_NOTICE_MALFORMED", "afterBirthDate", "format");
  });
});

describe("parseNotice: the four items in the registry's normal form (normaliseRegistryText)", () => {
  // ひばり: び composes (ひ + U+3099 in NFD, as macOS exporters write it); 塚 U+FA10 is a compatibility ideograph
  const KANA_NAME = "小野\u3000ひばり";
  const NFD_NAME = KANA_NAME.normalize("NFD");
  const COMPAT_ADDRESS = "大阪府大阪市\uFA10本町１丁目２番３号";

  it("composes NFD and trims padding in `after` and `before`, JSON Lines", () => {
    expect(NFD_NAME).not.toBe(KANA_NAME);
    const n = parseNotice(base({
      after: { name: `${NFD_NAME}\u3000`, address: ` ${ADDRESS}\u3000`, birthDate: ` ${BIRTH} `, gender: "male " },
      before: { name: NFD_NAME, address: `${OLD_ADDRESS} `, birthDate: BIRTH, gender: "male" },
    }), { now });
    expect(n.after).toEqual({ name: KANA_NAME, address: ADDRESS, birthDate: BIRTH, gender: "male" });
    expect(n.before).toEqual({ name: KANA_NAME, address: OLD_ADDRESS, birthDate: BIRTH, gender: "male" });
  });

  it("the same from CSV cells, each name part on its own", () => {
    const n = parseNotice(flat({
      afterFamilyName: "小野 ", afterGivenName: `${"ひばり".normalize("NFD")}\u3000`, afterAddress: `${ADDRESS} `,
      beforeName: `\u3000${NFD_NAME}`,
    }), { now });
    expect(n.after?.name).toBe(KANA_NAME);
    expect(n.after?.address).toBe(ADDRESS);
    expect(n.before?.name).toBe(KANA_NAME);
  });

  it("keeps a compatibility ideograph as it is (NFC would turn U+FA10 into U+585A)", () => {
    const n = parseNotice(base({ after: { name: NFD_NAME, address: COMPAT_ADDRESS, birthDate: BIRTH, gender: "male" } }), { now });
    expect(n.after?.address).toBe(COMPAT_ADDRESS);
    expect(n.after?.name).toBe(KANA_NAME);
  });

  it("a space inside a name part is still refused: only the ends are trimmed", () => {
    expectFailure(flat({ afterFamilyName: " 小 野" }), "ERR_NOTICE_MALFORMED", "afterFamilyName", "whitespace");
  });
});

describe("parseNotice: defects name code, field and line, never a value", () => {
  const wrongCheck = CODE.slice(0, 10) + String((Number(CODE[10]) + 1) % 10);
  const cases: Array<[string, unknown, ErrorCode, string | undefined, string]> = [
    ["not an object", [1, 2], "ERR_NOTICE_MALFORMED", undefined, "not-an-object"],
    ["unknown kind", base({ kind: "marriage" }), "ERR_NOTICE_KIND_UNKNOWN", "kind", "unknown-value"],
    ["kind missing", base({ kind: undefined }), "ERR_NOTICE_MALFORMED", "kind", "missing"],
    ["bad check digit", base({ residentCode: wrongCheck }), "ERR_RESIDENT_CODE_INVALID", "residentCode", "check-digit"],
    ["resident code as a number", base({ residentCode: 12345678901 }), "ERR_RESIDENT_CODE_INVALID", "residentCode", "format"],
    ["resident code missing", base({ residentCode: "" }), "ERR_RESIDENT_CODE_INVALID", "residentCode", "missing"],
    ["bad new resident code", base({ kind: "resident-code-change", after: undefined, newResidentCode: "123" }), "ERR_RESIDENT_CODE_INVALID", "newResidentCode", "format"],
    ["same new resident code", base({ kind: "resident-code-change", after: undefined, newResidentCode: CODE }), "ERR_NOTICE_MALFORMED", "newResidentCode", "unchanged"],
    ["impossible date", base({ effectiveDate: "2023-02-30" }), "ERR_NOTICE_MALFORMED", "effectiveDate", "not-a-date"],
    ["date format", base({ effectiveDate: "2024/05/01" }), "ERR_NOTICE_MALFORMED", "effectiveDate", "format"],
    ["sequence 0", base({ sequence: 0 }), "ERR_NOTICE_MALFORMED", "sequence", "out-of-range"],
    ["sequence 0 in CSV", flat({ sequence: "0" }), "ERR_NOTICE_MALFORMED", "sequence", "out-of-range"],
    ["sequence 1.5", base({ sequence: 1.5 }), "ERR_NOTICE_MALFORMED", "sequence", "not-an-integer"],
    ["sequence word", base({ sequence: "one" }), "ERR_NOTICE_MALFORMED", "sequence", "type"],
    ["municipality check digit", base({ municipalityCode: "271005" }), "ERR_MUNICIPALITY_INVALID", "municipalityCode", "check-digit"],
    ["new municipality format", base({ kind: "move-out", newMunicipalityCode: "14100" }), "ERR_MUNICIPALITY_INVALID", "newMunicipalityCode", "format"],
    ["notice id with a space", base({ noticeId: "N 1" }), "ERR_NOTICE_MALFORMED", "noticeId", "format"],
    ["notice id too long", base({ noticeId: "N".repeat(65) }), "ERR_NOTICE_MALFORMED", "noticeId", "format"],
    ["notice id missing", base({ noticeId: undefined }), "ERR_NOTICE_MALFORMED", "noticeId", "missing"],
    ["relocation without after", base({ after: undefined }), "ERR_NOTICE_MALFORMED", "after", "missing"],
    ["move-out without destination", base({ kind: "move-out" }), "ERR_NOTICE_MALFORMED", "newMunicipalityCode", "missing"],
    ["move-out within the municipality", base({ kind: "move-out", newMunicipalityCode: "271004" }), "ERR_NOTICE_MALFORMED", "newMunicipalityCode", "same-municipality"],
    ["death with a destination", base({ kind: "death", newMunicipalityCode: "271004" }), "ERR_NOTICE_MALFORMED", "newMunicipalityCode", "unexpected"],
    ["relocation with a new code", base({ newResidentCode: NEW_CODE }), "ERR_NOTICE_MALFORMED", "newResidentCode", "unexpected"],
    ["code change without a new code", base({ kind: "resident-code-change", after: undefined }), "ERR_NOTICE_MALFORMED", "newResidentCode", "missing"],
    ["unknown field", base({ phone: "000" }), "ERR_NOTICE_MALFORMED", "phone", "unknown-field"],
    ["unknown nested field", base({ after: { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: "male", kana: "x" } }), "ERR_NOTICE_MALFORMED", "after.kana", "unknown-field"],
    ["after not an object", base({ after: "x" }), "ERR_NOTICE_MALFORMED", "after", "type"],
    ["after name with ASCII space", base({ after: { name: "小野 隆", address: ADDRESS, birthDate: BIRTH, gender: "male" } }), "ERR_NOTICE_MALFORMED", "after.name", "separator"],
    ["after address without prefecture", base({ after: { name: NAME, address: "大阪市本町１番地", birthDate: BIRTH, gender: "male" } }), "ERR_NOTICE_MALFORMED", "after.address", "no-prefecture"],
    ["after birth date impossible", base({ after: { name: NAME, address: ADDRESS, birthDate: "2023-02-30", gender: "male" } }), "ERR_NOTICE_MALFORMED", "after.birthDate", "not-a-date"],
    ["after gender unknown value", base({ after: { name: NAME, address: ADDRESS, birthDate: BIRTH, gender: "4" } }), "ERR_NOTICE_MALFORMED", "after.gender", "unknown-value"],
    ["after address missing", base({ after: { name: NAME, birthDate: BIRTH, gender: "male" } }), "ERR_NOTICE_MALFORMED", "after.address", "missing"],
    ["before birth date in the future", base({ before: { name: NAME, address: ADDRESS, birthDate: "2099-01-01", gender: "male" } }), "ERR_NOTICE_MALFORMED", "before.birthDate", "future"],
    ["after address in another prefecture", base({ after: { name: NAME, address: "神奈川県横浜市本町１番地", birthDate: BIRTH, gender: "male" } }), "ERR_NOTICE_MALFORMED", "after.address", "prefecture-mismatch"],
    ["move-out address not at the destination", base({ kind: "move-out", newMunicipalityCode: "141003" }), "ERR_NOTICE_MALFORMED", "after.address", "prefecture-mismatch"],
    ["flat after address in another prefecture", flat({ afterAddress: "神奈川県横浜市本町１番地" }), "ERR_NOTICE_MALFORMED", "afterAddress", "prefecture-mismatch"],
  ];
  for (const [what, obj, code, field, problem] of cases) {
    it(what, () => expectFailure(obj, code, field, problem));
  }

  // parseNotice remembers the last effective date and birth date it found real (most of a feed shares them): each bad
  // or absent value right after a good one is still refused, and so is one that was never seen good.
  it("refuses a bad or absent date right after a good one", () => {
    const later = (over: Record<string, unknown>): Record<string, unknown> => (parseNotice(base(), { now, line: 1 }), base(over));
    expectFailure(later({ effectiveDate: "2023-02-30" }), "ERR_NOTICE_MALFORMED", "effectiveDate", "not-a-date");
    expectFailure(later({ effectiveDate: "" }), "ERR_NOTICE_MALFORMED", "effectiveDate", "missing");
    expectFailure(later({ effectiveDate: undefined }), "ERR_NOTICE_MALFORMED", "effectiveDate", "missing");
    const items = (birthDate: string) => ({ name: NAME, address: ADDRESS, birthDate, gender: "male" });
    expectFailure(later({ after: items("2005-02-30") }), "ERR_NOTICE_MALFORMED", "after.birthDate", "not-a-date");
    expectFailure(later({ before: items("1867-12-31") }), "ERR_NOTICE_MALFORMED", "before.birthDate", "too-early");
    expectFailure(later({ after: items("2099-01-01") }), "ERR_NOTICE_MALFORMED", "after.birthDate", "future");
    // a good date remembered is still bounded by each call's now
    const born = base({ before: items("2025-03-01"), after: items("2025-03-01") });
    parseNotice(born, { now, line: 1 });
    expect(() => parseNotice(born, { now: new Date("2025-02-01T00:00:00Z"), line: 1 })).toThrow(expect.objectContaining({ details: expect.objectContaining({ problem: "future" }) }));
  });

  it("does not quote a kind that is not identifier-like, and lists the accepted kinds", () => {
    const e = failure(base({ kind: "小野　隆" }));
    expect(e.code).toBe("ERR_NOTICE_KIND_UNKNOWN");
    expect(e.message).not.toContain("小野");
    expect(e.message).toContain("relocation");
    expect(e.message).toContain("転居");
  });

  it("works without a line: no prefix and no details.line", () => {
    try {
      parseNotice(base({ sequence: 0 }), { now });
      expect.unreachable();
    } catch (e) {
      expect((e as JpkiError).message.startsWith('field "sequence"')).toBe(true);
      expect((e as JpkiError).details?.["line"]).toBeUndefined();
    }
  });
});

describe("noticeCsvRow", () => {
  it("quotes cells that need it and leaves absent fields empty", () => {
    const n: ChangeNoticeInput = { noticeId: "N1", residentCode: CODE, kind: "death", effectiveDate: "2024-05-01", sequence: 3, municipalityCode: "271004" };
    expect(noticeCsvRow(n)).toBe(`N1,${CODE},death,2024-05-01,3,271004,${",".repeat(11)}`);
    expect(noticeCsvRow(n, { japaneseKinds: true }).split(",")[2]).toBe("死亡");
    const withComma = { ...n, kind: "correction" as const, after: { name: NAME, address: "大阪府大阪市本町1,2", birthDate: BIRTH, gender: "male" as const } };
    expect(noticeCsvRow(withComma)).toContain('"大阪府大阪市本町1,2"');
  });
});

describe("parseNotice: a CSV without its header row", () => {
  it("quotes no name at all when none is a field we know: the first notice's values became the header", () => {
    // Columns in an order a municipal export might use: a Latin-letter name and the gender word early on.
    const row = { SMITH: "a", JOHN: "b", female: "c", [CODE]: "d", relocation: "e", "2024-05-01": "f", [ADDRESS]: "g" };
    const e = failure(row, 2);
    expect({ code: e.code, problem: e.details?.["problem"], field: e.details?.["field"] }).toEqual({ code: "ERR_NOTICE_MALFORMED", problem: "unknown-field", field: undefined });
    for (const v of ["SMITH", "JOHN", "female", ...PERSONAL]) expect(JSON.stringify(e.toJSON())).not.toContain(v);
    expect(e.message).toMatch(/header row/);
  });
});
