import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PREFECTURES } from "../ca/prefectures.js";
import type { ErrorCode } from "../errors.js";
import { createRandom, generateResidents } from "./fixtures.js";
import { readRecords } from "./import.js";
import { makeResidentCode } from "./resident-code.js";
import { parseResidentRecord, type ResidentInput } from "./resident.js";

const now = new Date("2025-04-01T00:00:00Z");
const VARIANT = /[髙𠮷﨑濵德]/u;

describe("createRandom", () => {
  it("is deterministic per seed and within [0, 1)", () => {
    const a = createRandom("x"), b = createRandom("x"), c = createRandom("y");
    const sa = Array.from({ length: 100 }, () => a.next());
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(sa);
    expect(Array.from({ length: 100 }, () => c.next())).not.toEqual(sa);
    for (const v of sa) expect(v >= 0 && v < 1).toBe(true);
    // Numbers and their decimal strings are the same seed.
    expect(createRandom(42).next()).toBe(createRandom("42").next());
  });
});

describe("generateResidents", () => {
  it("yields the same residents for the same seed, and different ones for another", () => {
    const a = [...generateResidents({ count: 500, seed: 7 })];
    expect([...generateResidents({ count: 500, seed: 7 })]).toEqual(a);
    expect([...generateResidents({ count: 500, seed: 8 })]).not.toEqual(a);
    // A prefix of a longer run is the shorter run.
    expect([...generateResidents({ count: 100, seed: 7 })]).toEqual(a.slice(0, 100));
  });

  it("yields records that parseResidentRecord accepts, in the import format", () => {
    for (const r of generateResidents({ count: 3000, seed: "valid" })) {
      expect(Object.keys(r)).toEqual(["residentCode", "municipalityCode", "name", "address", "birthDate", "gender"]);
      const p = parseResidentRecord(r, { now });
      expect(p.fourItems.name).toBe(r.name);
      expect(r.address).not.toMatch(/[0-9]/); // full-width digits only
      expect(r.birthDate >= "1925-01-01" && r.birthDate <= "2008-12-31").toBe(true);
    }
  });

  it("gives unique resident codes", () => {
    const codes = new Set<string>();
    let n = 0;
    for (const r of generateResidents({ count: 100_000, seed: "unique" })) {
      codes.add(r.residentCode);
      n++;
    }
    expect(codes.size).toBe(n);
  });

  it("covers all 47 prefectures for count ≥ 1000 (and already for the first 47)", () => {
    const prefs = (count: number, seed: string) => new Set([...generateResidents({ count, seed })].map((r) => r.municipalityCode.slice(0, 2)));
    expect(prefs(1000, "cover").size).toBe(47);
    expect(prefs(47, "cover-2").size).toBe(47);
  });

  it("stays within the requested prefectures (codes or names)", () => {
    const got = new Set([...generateResidents({ count: 300, seed: 1, prefectures: ["13", "大阪府", "Hokkaido"] })].map((r) => r.municipalityCode.slice(0, 2)));
    expect([...got].sort()).toEqual(["01", "13", "27"]);
    expect(() => [...generateResidents({ count: 1, seed: 1, prefectures: ["99"] })]).toThrow(expect.objectContaining({ code: "ERR_PREFECTURE_UNKNOWN" }));
    expect(() => [...generateResidents({ count: -1, seed: 1 })]).toThrow(expect.objectContaining({ code: "ERR_CONFIG_INVALID" }));
  });

  it("has about 1% variant (non-JIS X 0208) family names and a small share of unknown gender", () => {
    const all = [...generateResidents({ count: 20_000, seed: "shares" })];
    const variant = all.filter((r) => VARIANT.test(r.name!)).length / all.length;
    const unknown = all.filter((r) => r.gender === "unknown").length / all.length;
    const male = all.filter((r) => r.gender === "male").length / all.length;
    expect(variant).toBeGreaterThan(0.005);
    expect(variant).toBeLessThan(0.02);
    expect(unknown).toBeGreaterThan(0.003);
    expect(unknown).toBeLessThan(0.03);
    expect(male).toBeGreaterThan(0.45);
    expect(male).toBeLessThan(0.55);
  });
});

// ---------------------------------------------------------------------------------------------------------
// fixtures/registry: derived from the generator. Regenerate with
//   JPKI_REGEN_FIXTURES=1 npx vitest run src/registry/fixtures.test.ts

const DIR = join(import.meta.dirname, "..", "..", "fixtures", "registry");
const REGEN = process.env["JPKI_REGEN_FIXTURES"] === "1";
const SAMPLE = { count: 12, seed: "sample-93", prefectures: ["01", "04", "13", "14", "23", "26", "27", "34", "40", "47"] };
const GENDER_DIGIT: Record<string, string> = { male: "1", female: "2", unknown: "3" };

function csvField(s: string): string {
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function sampleJsonl(rs: readonly ResidentInput[]): string {
  return rs.map((r) => JSON.stringify(r)).join("\n") + "\n";
}

/** The same residents as a municipal system might export them: BOM, CRLF, split name, gender digit. */
function sampleCsv(rs: readonly ResidentInput[]): string {
  const head = ["residentCode", "municipalityCode", "familyName", "givenName", "address", "birthDate", "gender"];
  const rows = rs.map((r) => {
    const [family, given] = r.name!.split("\u3000");
    return [r.residentCode, r.municipalityCode, family!, given!, r.address, r.birthDate, GENDER_DIGIT[r.gender]!].map(csvField).join(",");
  });
  return "\uFEFF" + [head.join(","), ...rows].join("\r\n") + "\r\n";
}

/** One defect per line; [line text, expected code, field, problem]. */
function badLines(): Array<readonly [string, ErrorCode, string | undefined, string]> {
  type R = ResidentInput;
  const [a, b, c, d, e, f, g, h, i] = [...generateResidents({ count: 9, seed: "bad-sample", prefectures: ["13", "27"] })] as [R, R, R, R, R, R, R, R, R];
  const j = (o: object) => JSON.stringify(o);
  const wrongCheck = (code: string) => code.slice(0, 10) + String((Number(code[10]) + 1) % 10);
  const { name: _drop, ...noName } = d;
  const other = (r: ResidentInput) => (r.municipalityCode.startsWith("13") ? "271004" : "131016"); // 大阪市 / 千代田区
  return [
    [j({ ...a, residentCode: wrongCheck(a.residentCode) }), "ERR_RESIDENT_CODE_INVALID", "residentCode", "check-digit"],
    [j({ ...b, birthDate: "2023-02-30" }), "ERR_RESIDENT_INVALID", "birthDate", "not-a-date"],
    [j({ ...c, gender: "4" }), "ERR_RESIDENT_INVALID", "gender", "unknown-value"],
    [j(noName), "ERR_RESIDENT_INVALID", "name", "missing"],
    [j(e).slice(0, -1), "ERR_IMPORT_FORMAT", undefined, "malformed-json"],
    [j({ ...f, municipalityCode: other(f) }), "ERR_RESIDENT_INVALID", "address", "prefecture-mismatch"],
    [j({ ...g, name: g.name!.replace("\u3000", " ") }), "ERR_RESIDENT_INVALID", "name", "separator"],
    [j({ ...h, municipalityCode: h.municipalityCode.slice(0, 5) }), "ERR_MUNICIPALITY_INVALID", "municipalityCode", "format"],
    [j({ ...i, phone: "000-0000-0000" }), "ERR_RESIDENT_INVALID", "phone", "unknown-field"],
  ];
}

describe("fixtures/registry", () => {
  const sample = [...generateResidents(SAMPLE)];
  const bad = badLines();

  if (REGEN) {
    it("regenerates the files", () => {
      writeFileSync(join(DIR, "residents.sample.jsonl"), sampleJsonl(sample));
      writeFileSync(join(DIR, "residents.sample.csv"), sampleCsv(sample));
      writeFileSync(join(DIR, "bad-residents.jsonl"), bad.map(([line]) => line).join("\n") + "\n");
    });
    return;
  }

  it("residents.sample.* are what the generator makes for the documented seed", () => {
    expect(readFileSync(join(DIR, "residents.sample.jsonl"), "utf8")).toBe(sampleJsonl(sample));
    expect(readFileSync(join(DIR, "residents.sample.csv"), "utf8")).toBe(sampleCsv(sample));
    expect(sample.some((r) => VARIANT.test(r.name!))).toBe(true);
    expect(new Set(sample.map((r) => r.municipalityCode.slice(0, 2))).size).toBeGreaterThanOrEqual(8);
  });

  it("the JSONL and CSV samples import to the same residents", async () => {
    const load = async (file: string) => {
      const out = [];
      for await (const r of readRecords(join(DIR, file))) {
        if ("error" in r) throw r.error;
        out.push(parseResidentRecord(r.value, { now, where: `line ${r.line}` }));
      }
      return out;
    };
    const fromJsonl = await load("residents.sample.jsonl");
    expect(fromJsonl).toHaveLength(12);
    expect(await load("residents.sample.csv")).toEqual(fromJsonl);
  });

  it("bad-residents.jsonl has exactly one defect per line, each reported as documented", async () => {
    expect(readFileSync(join(DIR, "bad-residents.jsonl"), "utf8")).toBe(bad.map(([line]) => line).join("\n") + "\n");
    const seen: Array<[number, string, string | undefined, string]> = [];
    for await (const r of readRecords(join(DIR, "bad-residents.jsonl"))) {
      if ("error" in r) {
        seen.push([r.line, r.error.code, undefined, String(r.error.details?.["problem"])]);
        continue;
      }
      try {
        parseResidentRecord(r.value, { now, where: `line ${r.line}` });
        seen.push([r.line, "accepted", undefined, ""]);
      } catch (e) {
        const err = e as { code: string; message: string; details?: Record<string, unknown> };
        expect(err.message.startsWith(`line ${r.line}: `)).toBe(true);
        seen.push([r.line, err.code, err.details?.["field"] as string, String(err.details?.["problem"])]);
      }
    }
    expect(seen).toEqual(bad.map(([, code, field, problem], k) => [k + 1, code, field, problem]));
  });

  it("the repaired bad lines are valid, so each line really has only its one defect", () => {
    const originals = [...generateResidents({ count: 9, seed: "bad-sample", prefectures: ["13", "27"] })];
    for (const r of originals) expect(() => parseResidentRecord(r, { now })).not.toThrow();
    expect(makeResidentCode(originals[0]!.residentCode.slice(0, 10))).toBe(originals[0]!.residentCode);
  });
});

it("every prefecture has a listed municipality for the generator to use", () => {
  expect(PREFECTURES).toHaveLength(47);
});
