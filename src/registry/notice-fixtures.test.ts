import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { sameCertifiedItems } from "../profile/four-items.js";
import type { ErrorCode } from "../errors.js";
import { NOTICE_MIX, generateNotices, generateResidents } from "./fixtures.js";
import { readRecords } from "./import.js";
import { NOTICE_CSV_COLUMNS, NOTICE_KIND_NAMES, noticeCsvRow, parseNotice, type ChangeNotice, type ChangeNoticeInput } from "./notice.js";
import { makeResidentCode } from "./resident-code.js";
import { parseResidentRecord, type ResidentInput } from "./resident.js";

const now = new Date("2025-04-01T00:00:00Z");

// ---------------------------------------------------------------------------------------------------------
// generateNotices

describe("generateNotices", () => {
  const residents = [...generateResidents({ count: 2000, seed: "notice-pop" })];

  it("is deterministic for a seed, differs for another, and a shorter run is a prefix", () => {
    const a = [...generateNotices({ residents, count: 3000, seed: 5 })];
    expect([...generateNotices({ residents, count: 3000, seed: 5 })]).toEqual(a);
    expect([...generateNotices({ residents, count: 3000, seed: 6 })]).not.toEqual(a);
    expect([...generateNotices({ residents, count: 3000, seed: "5" })]).toEqual(a);
    // The date advances with a probability that depends on count, so only ids and kinds are a prefix.
    expect([...generateNotices({ residents, count: 100, seed: 5 })].map((n) => n.noticeId)).toEqual(a.slice(0, 100).map((n) => n.noticeId));
  });

  it("yields notices parseNotice accepts, with unique ids, per-resident sequences from 1 and non-decreasing dates", () => {
    const notices = [...generateNotices({ residents, count: 5000, seed: "valid" })];
    expect(notices).toHaveLength(5000);
    const ids = new Set<string>();
    const seq = new Map<string, number>();
    let last = "";
    let carried = 0;
    for (const [i, n] of notices.entries()) {
      const p = parseNotice(JSON.parse(JSON.stringify(n)), { now, line: i + 1 });
      expect(p.noticeId).toBe(n.noticeId);
      expect(ids.has(n.noticeId)).toBe(false);
      ids.add(n.noticeId);
      expect(n.sequence).toBe((seq.get(n.residentCode) ?? 0) + 1);
      seq.set(n.residentCode, n.sequence);
      // After a resident-code change the sequence goes on under the new code.
      if (n.newResidentCode) {
        seq.set(n.newResidentCode, n.sequence);
        carried++;
      }
      expect(n.effectiveDate >= last).toBe(true);
      last = n.effectiveDate;
    }
    expect(carried).toBeGreaterThan(0);
    expect(notices[0]!.effectiveDate).toBe("2024-04-01");
    expect(last <= "2025-04-01").toBe(true); // about a year
    expect([...generateNotices({ residents, count: 3, seed: 1, startDate: "2030-01-31" })][0]!.effectiveDate).toBe("2030-01-31");
  });

  it("follows the documented mix", () => {
    const big = [...generateResidents({ count: 50_000, seed: "mix-pop" })];
    const notices = [...generateNotices({ residents: big, count: 20_000, seed: "mix" })];
    for (const kind of NOTICE_KIND_NAMES) {
      const share = notices.filter((n) => n.kind === kind).length / notices.length;
      expect(Math.abs(share - NOTICE_MIX[kind]), kind).toBeLessThan(0.015);
    }
    const corrections = notices.filter((n) => n.kind === "correction");
    const unchanged = corrections.filter((n) => sameCertifiedItems(n.after!, n.before!)).length / corrections.length;
    expect(unchanged).toBeGreaterThan(0.4);
    expect(unchanged).toBeLessThan(0.6);
    // Some unchanged corrections really swap a variant character: the text differs, the certified text does not.
    expect(corrections.some((n) => n.after!.name !== n.before!.name && sameCertifiedItems(n.after!, n.before!))).toBe(true);
    // Moves go to another municipality, sometimes to another prefecture.
    const moves = notices.filter((n) => n.kind === "move-out");
    expect(moves.every((n) => n.newMunicipalityCode !== n.municipalityCode)).toBe(true);
    expect(moves.some((n) => n.newMunicipalityCode!.slice(0, 2) !== n.municipalityCode.slice(0, 2))).toBe(true);
    expect(moves.some((n) => n.newMunicipalityCode!.slice(0, 2) === n.municipalityCode.slice(0, 2))).toBe(true);
    expect(notices.filter((n) => n.kind === "move-in").every((n) => n.newMunicipalityCode === n.municipalityCode)).toBe(true);
    // Marriages change the family name only.
    for (const n of notices.filter((x) => x.kind === "name-change")) {
      const [bf, bg] = n.before!.name.split("\u3000");
      const [af, ag] = n.after!.name.split("\u3000");
      expect(af).not.toBe(bf);
      expect(ag).toBe(bg);
    }
  });

  it("builds on each resident's cumulative state and sends nothing after death or removal", () => {
    const notices = [...generateNotices({ residents: residents.slice(0, 50), count: 400, seed: "life" })];
    type State = { items: ChangeNotice["after"]; municipality: string; ended: boolean; seq: number };
    const byCode = new Map<string, State>(
      residents.slice(0, 50).map((r) => {
        const p = parseResidentRecord(r, { now });
        return [p.residentCode, { items: p.fourItems, municipality: p.municipalityCode, ended: false, seq: 0 }];
      }),
    );
    let codeChanges = 0;
    for (const n of notices) {
      const s = byCode.get(n.residentCode);
      expect(s, "notice for a resident the registry knows under this code").toBeDefined();
      expect(s!.ended).toBe(false);
      expect(n.sequence).toBe(++s!.seq); // one sequence per person, across code changes
      expect(n.before).toEqual(s!.items);
      if (n.kind !== "move-in") expect(n.municipalityCode).toBe(s!.municipality);
      if (n.after) s!.items = n.after;
      if (n.newMunicipalityCode) s!.municipality = n.newMunicipalityCode;
      if (n.kind === "death" || n.kind === "removal") s!.ended = true;
      if (n.newResidentCode) {
        expect(byCode.has(n.newResidentCode)).toBe(false);
        byCode.set(n.newResidentCode, s!);
        byCode.delete(n.residentCode);
        codeChanges++;
      }
    }
    // 50 residents and 400 notices: everyone ends, so the feed stops early.
    expect(notices.length).toBeLessThan(400);
    expect([...byCode.values()].every((s) => s.ended)).toBe(true);
    expect(codeChanges).toBeGreaterThan(0);
  });

  it("skips residents already deceased or removed, and checks its options", () => {
    const [a, b] = residents as [ResidentInput, ResidentInput];
    const got = [...generateNotices({ residents: [{ ...a, status: "deceased" }, b], count: 5, seed: 1 })];
    expect(got.every((n) => n.residentCode === b.residentCode)).toBe(true);
    expect([...generateNotices({ residents: [], count: 5, seed: 1 })]).toEqual([]);
    expect(() => [...generateNotices({ residents, count: -1, seed: 1 })]).toThrow(expect.objectContaining({ code: "ERR_CONFIG_INVALID" }));
    expect(() => [...generateNotices({ residents, count: 1, seed: 1, startDate: "2023-02-30" })]).toThrow(expect.objectContaining({ code: "ERR_CONFIG_INVALID" }));
  });
});

// ---------------------------------------------------------------------------------------------------------
// fixtures/notices: derived from the generator. Regenerate with
//   JPKI_REGEN_FIXTURES=1 npx vitest run src/registry/notice-fixtures.test.ts

const DIR = join(import.meta.dirname, "..", "..", "fixtures", "notices");
const REGEN = process.env["JPKI_REGEN_FIXTURES"] === "1";
/** The residents of fixtures/registry/residents.sample.* (see its README). */
const RESIDENTS = { count: 12, seed: "sample-93", prefectures: ["01", "04", "13", "14", "23", "26", "27", "34", "40", "47"] };
const SAMPLE_SEED = "notices-sample-187";
const BAD_SEED = "bad-notices";

/** The generator's 20 notices, with the first resident's first two notices swapped (an out-of-order pair). */
function sampleNotices(): ChangeNoticeInput[] {
  const residents = [...generateResidents(RESIDENTS)];
  const notices = [...generateNotices({ residents, count: 20, seed: SAMPLE_SEED })];
  const code = notices.find((n, i) => notices.findIndex((m, j) => j > i && m.residentCode === n.residentCode) >= 0)!.residentCode;
  const i = notices.findIndex((n) => n.residentCode === code && n.sequence === 1);
  const j = notices.findIndex((n) => n.residentCode === code && n.sequence === 2);
  [notices[i], notices[j]] = [notices[j]!, notices[i]!];
  return notices;
}

function sampleJsonl(ns: readonly ChangeNoticeInput[]): string {
  return ns.map((n) => JSON.stringify(n)).join("\n") + "\n";
}

/** As a municipal system might export it: BOM, CRLF, kinds in Japanese, name split, gender digit. */
function sampleCsv(ns: readonly ChangeNoticeInput[]): string {
  return "\uFEFF" + [NOTICE_CSV_COLUMNS.join(","), ...ns.map((n) => noticeCsvRow(n, { japaneseKinds: true }))].join("\r\n") + "\r\n";
}

/** One defect per line; [line, expected code (or "accepted"), field, problem]. */
function badLines(): Array<readonly [string, ErrorCode | "accepted", string | undefined, string | undefined]> {
  const residents = [...generateResidents(RESIDENTS)];
  const notices = [...generateNotices({ residents, count: 12, seed: BAD_SEED })];
  const reloc = notices.find((n) => n.kind === "relocation")!;
  const [a, b, c, d, f, g] = notices.filter((n) => n !== reloc) as [ChangeNoticeInput, ChangeNoticeInput, ChangeNoticeInput, ChangeNoticeInput, ChangeNoticeInput, ChangeNoticeInput];
  const j = (o: object) => JSON.stringify(o);
  const wrongCheck = (code: string) => code.slice(0, 10) + String((Number(code[10]) + 1) % 10);
  const { after: _drop, ...noAfter } = reloc;
  // A resident code with a valid check digit that no sample resident has.
  const stranger = makeResidentCode("0000000001");
  return [
    [j(a).slice(0, -1), "ERR_IMPORT_FORMAT", undefined, "malformed-json"],
    [j({ ...b, kind: "marriage" }), "ERR_NOTICE_KIND_UNKNOWN", "kind", "unknown-value"],
    [j({ ...c, residentCode: wrongCheck(c.residentCode) }), "ERR_RESIDENT_CODE_INVALID", "residentCode", "check-digit"],
    [j({ ...d, effectiveDate: "2023-02-30" }), "ERR_NOTICE_MALFORMED", "effectiveDate", "not-a-date"],
    [j(noAfter), "ERR_NOTICE_MALFORMED", "after", "missing"],
    [j({ ...f, sequence: 0 }), "ERR_NOTICE_MALFORMED", "sequence", "out-of-range"],
    [j({ ...g, residentCode: stranger, sequence: 1 }), "accepted", undefined, undefined],
  ];
}

async function load(file: string): Promise<ChangeNotice[]> {
  const out: ChangeNotice[] = [];
  for await (const r of readRecords(join(DIR, file))) {
    if ("error" in r) throw r.error;
    out.push(parseNotice(r.value, { now, line: r.line }));
  }
  return out;
}

describe("fixtures/notices", () => {
  const sample = sampleNotices();
  const bad = badLines();

  if (REGEN) {
    it("regenerates the files", () => {
      writeFileSync(join(DIR, "notices.sample.jsonl"), sampleJsonl(sample));
      writeFileSync(join(DIR, "notices.sample.csv"), sampleCsv(sample));
      writeFileSync(join(DIR, "bad-notices.jsonl"), bad.map(([line]) => line).join("\n") + "\n");
    });
    return;
  }

  it("notices.sample.* are what the generator makes for the documented seed", () => {
    expect(readFileSync(join(DIR, "notices.sample.jsonl"), "utf8")).toBe(sampleJsonl(sample));
    expect(readFileSync(join(DIR, "notices.sample.csv"), "utf8")).toBe(sampleCsv(sample));
  });

  it("the sample covers every kind, an unchanged correction, a variant swap, and an out-of-order pair", async () => {
    const notices = await load("notices.sample.jsonl");
    expect(notices).toHaveLength(20);
    expect(new Set(notices.map((n) => n.kind))).toEqual(new Set(NOTICE_KIND_NAMES));
    const corr = notices.filter((n) => n.kind === "correction");
    expect(corr.some((n) => sameCertifiedItems(n.after!, n.before!) && n.after!.name === n.before!.name)).toBe(true);
    expect(corr.some((n) => sameCertifiedItems(n.after!, n.before!) && n.after!.name !== n.before!.name)).toBe(true);
    expect(corr.some((n) => !sameCertifiedItems(n.after!, n.before!))).toBe(true);
    const outOfOrder = notices.filter((n, i) => notices.slice(i + 1).some((m) => m.residentCode === n.residentCode && m.sequence < n.sequence));
    expect(outOfOrder).toHaveLength(1);
    // Every notice is about a sample resident, or one whose code a resident-code change gave.
    const codes = new Set([...generateResidents(RESIDENTS)].map((r) => r.residentCode));
    for (const n of notices) if (n.newResidentCode) codes.add(n.newResidentCode);
    expect(notices.every((n) => codes.has(n.residentCode))).toBe(true);
    expect(codes.size).toBe(12 + notices.filter((n) => n.newResidentCode).length);
  });

  it("the JSONL and CSV samples parse to the same notices", async () => {
    const fromJsonl = await load("notices.sample.jsonl");
    const csv = readFileSync(join(DIR, "notices.sample.csv"), "utf8");
    expect(csv.startsWith("\uFEFF")).toBe(true);
    expect(csv).toContain("転居");
    expect(await load("notices.sample.csv")).toEqual(fromJsonl);
  });

  it("bad-notices.jsonl has exactly one defect per line, each reported as documented", async () => {
    expect(readFileSync(join(DIR, "bad-notices.jsonl"), "utf8")).toBe(bad.map(([line]) => line).join("\n") + "\n");
    const seen: Array<readonly [number, string, string | undefined, string | undefined]> = [];
    for await (const r of readRecords(join(DIR, "bad-notices.jsonl"))) {
      if ("error" in r) {
        seen.push([r.line, r.error.code, undefined, String(r.error.details?.["problem"])]);
        continue;
      }
      try {
        parseNotice(r.value, { now, line: r.line });
        seen.push([r.line, "accepted", undefined, undefined]);
      } catch (e) {
        const err = e as { code: string; message: string; details?: Record<string, unknown> };
        expect(err.message.startsWith(`line ${r.line}: `)).toBe(true);
        expect(err.details?.["line"]).toBe(r.line);
        for (const v of Object.values(r.value)) {
          if (typeof v === "string" && v.length >= 4 && !/^(N[0-9a-f]{8}-\d+|marriage|[a-z-]+)$/.test(v)) expect(err.message).not.toContain(v);
        }
        seen.push([r.line, err.code, err.details?.["field"] as string, String(err.details?.["problem"])]);
      }
    }
    expect(seen).toEqual(bad.map(([, code, field, problem], k) => [k + 1, code, field, problem]));
  });

  it("the repaired bad lines are valid, so each line really has only its one defect", () => {
    const notices = [...generateNotices({ residents: [...generateResidents(RESIDENTS)], count: 12, seed: BAD_SEED })];
    for (const n of notices) expect(() => parseNotice(n, { now })).not.toThrow();
  });
});
