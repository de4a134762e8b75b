import { describe, expect, it } from "vitest";
import { PREFECTURES } from "../ca/prefectures.js";
import {
  MUNICIPALITIES, assertMunicipalityCode, isValidMunicipalityCode, municipalitiesOf, municipality, municipalityCheckDigit,
  prefectureOfMunicipality,
} from "./municipality.js";

/** Written out again here so a table entry is not checked only by the function under test. */
function independentCheck(code6: string): boolean {
  const d = [...code6].map(Number);
  const sum = d[0]! * 6 + d[1]! * 5 + d[2]! * 4 + d[3]! * 3 + d[4]! * 2;
  const c = 11 - (sum % 11);
  return (c === 11 ? 1 : c === 10 ? 0 : c) === d[5];
}

describe("municipalityCheckDigit", () => {
  it("131016 千代田区: 1×6+3×5+1×4+0×3+1×2 = 27; 27 mod 11 = 5; 11 − 5 = 6", () => {
    expect(municipalityCheckDigit("13101")).toBe("6");
  });
  it("011002 札幌市: 0+5+4+0+0 = 9; 11 − 9 = 2", () => expect(municipalityCheckDigit("01100")).toBe("2"));
  it("271004 大阪市: 12+35+4 = 51; 51 mod 11 = 7; 11 − 7 = 4", () => expect(municipalityCheckDigit("27100")).toBe("4"));
  it("131130 渋谷区: 6+15+4+3+6 = 34; remainder 1; 11 − 1 = 10 → last digit 0", () => expect(municipalityCheckDigit("13113")).toBe("0"));
  it("082201 つくば市: 0+40+8+6+0 = 54; remainder 10; 11 − 10 = 1", () => expect(municipalityCheckDigit("08220")).toBe("1"));
  it("00014: 1×3+4×2 = 11; remainder 0; 11 − 0 = 11 → last digit 1", () => {
    expect(municipalityCheckDigit("00014")).toBe("1");
  });
  it("rejects anything but five digits", () => {
    expect(() => municipalityCheckDigit("1310")).toThrow(expect.objectContaining({ code: "ERR_MUNICIPALITY_INVALID" }));
  });
});

describe("MUNICIPALITIES", () => {
  it("has a valid check digit on every entry (independently recomputed)", () => {
    for (const m of MUNICIPALITIES) {
      expect(independentCheck(m.code), `${m.code} ${m.kanji}`).toBe(true);
      expect(isValidMunicipalityCode(m.code)).toBe(true);
    }
  });

  it("has between 80 and 120 unique entries with DN-style romaji", () => {
    expect(MUNICIPALITIES.length).toBeGreaterThanOrEqual(80);
    expect(MUNICIPALITIES.length).toBeLessThanOrEqual(120);
    expect(new Set(MUNICIPALITIES.map((m) => m.code)).size).toBe(MUNICIPALITIES.length);
    for (const m of MUNICIPALITIES) {
      expect(m.romaji).toMatch(/^[A-Z][a-z]+-(shi|ku|machi|cho|mura)$/);
      expect(m.kanji).toMatch(/(市|区|町|村)$/);
    }
  });

  it("covers all 23 special wards of Tokyo and every prefecture", () => {
    const wards = MUNICIPALITIES.filter((m) => /^131\d\d\d$/.test(m.code) && Number(m.code.slice(2, 5)) >= 101 && Number(m.code.slice(2, 5)) <= 123);
    expect(wards).toHaveLength(23);
    for (const p of PREFECTURES) expect(municipalitiesOf(p.code).length, p.kanji).toBeGreaterThan(0);
    expect(municipality("131016")).toEqual({ code: "131016", kanji: "千代田区", romaji: "Chiyoda-ku" });
    expect(municipality("011002").romaji).toBe("Sapporo-shi");
    expect(municipality("271004").romaji).toBe("Osaka-shi");
  });
});

describe("municipality / assertMunicipalityCode", () => {
  it("returns a valid but unlisted code with its code as romaji", () => {
    // 13229 西東京市 is real but not in our table: 6+15+8+6+18 = 53; 53 mod 11 = 9; 11 − 9 = 2.
    expect(municipality("132292")).toEqual({ code: "132292", kanji: undefined, romaji: "132292" });
  });

  it("gives the prefecture from the first two digits", () => {
    expect(prefectureOfMunicipality("131016").kanji).toBe("東京都");
    expect(prefectureOfMunicipality("472018").romaji).toBe("Okinawa-ken");
  });

  it.each([
    ["13101", "format"],
    ["1310l6", "format"],
    ["131017", "check-digit"],
    ["481008", "prefecture"],
    ["001007", "prefecture"],
    ["130001", "prefecture-itself"],
  ])("rejects %s (%s)", (code, problem) => {
    let err: unknown;
    try { assertMunicipalityCode(code, "line 3"); } catch (e) { err = e; }
    expect(err).toMatchObject({ code: "ERR_MUNICIPALITY_INVALID", details: { field: "municipalityCode", problem, where: "line 3" } });
    expect((err as Error).message).toMatch(/^line 3: field "municipalityCode"/);
  });
});
