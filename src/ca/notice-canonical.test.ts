/**
 * A notice line that already is its canonical body is taken as it is (isCanonicalText): found without writing the
 * body, so every way a line can differ from it must answer false, and every canonical line true.
 */
import { describe, expect, it } from "vitest";
import { NOTICE_FIELDS, noticeInNormalForm, parseNotice, type ChangeNotice } from "../registry/notice.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { canonical, canonicalBodyOf, isCanonicalText, NoticeIngestor, readBatches } from "./notices.js";
import { FixedClock } from "../pki/clock.js";
import { SqliteStore } from "../store/sqlite.js";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const now = new Date("2026-06-01T00:00:00Z");
const CODE = makeResidentCode("5988656848");
const NEW_CODE = makeResidentCode("1234567890");
const items = { name: "小野\u3000隆", address: "大阪府大阪市本町１丁目２番３号", birthDate: "1980-10-09", gender: "male" };
const before = { ...items, address: "大阪府大阪市弥生町６丁目９番１２号" };
const yokohama = { ...items, address: "神奈川県横浜市本町１番地" };
const head = (kind: string, sequence = 1) => ({ noticeId: "N-1", residentCode: CODE, kind, effectiveDate: "2026-04-01", sequence, municipalityCode: "271004" });

/** One record per kind, fields in the canonical order (NOTICE_FIELDS). */
const byKind: Record<string, Record<string, unknown>> = {
  relocation: { ...head("relocation"), newMunicipalityCode: "271004", after: items, before },
  "move-out": { ...head("move-out"), newMunicipalityCode: "141003", after: yokohama, before },
  "move-in": { ...head("move-in", 1000), newMunicipalityCode: "141003", after: yokohama },
  death: { ...head("death", 12), before },
  "name-change": { ...head("name-change"), after: { ...items, name: "佐藤\u3000隆" }, before },
  correction: { ...head("correction"), after: items },
  removal: head("removal"),
  "resident-code-change": { ...head("resident-code-change", 7), newResidentCode: NEW_CODE, before },
};

/**
 * Whether the quick answer is the true one (the line equals the body written out), and what that is. A body found
 * from a line (canonicalBodyOf) is always the one written out, the line itself or not.
 */
function verdict(line: string): boolean {
  const value = JSON.parse(line) as Record<string, unknown>;
  const n = parseNotice(value, { now });
  const found = canonicalBodyOf(line, value, n);
  if (found) expect(found.body, line).toBe(canonical(n));
  const quick = isCanonicalText(line, value, n);
  if (quick) expect(canonical(n), line).toBe(line);
  return quick;
}

/** A relocation as real feeds may write it: without newMunicipalityCode, which parseNotice defaults. */
const { newMunicipalityCode: _omitted, ...bareRelocation } = byKind["relocation"]!;

describe("isCanonicalText", () => {
  it("knows every kind's canonical line, and parseNotice gives the fields in the canonical order", () => {
    for (const [kind, record] of Object.entries(byKind)) {
      const line = JSON.stringify(record);
      expect(verdict(line), kind).toBe(true);
      const keys = Object.keys(parseNotice(record, { now }));
      expect(keys, kind).toEqual(NOTICE_FIELDS.filter((f) => keys.includes(f)));
    }
  });

  it("refuses every line that differs from the body it parses to", () => {
    const lines: string[] = [];
    for (const record of Object.values(byKind)) {
      const line = JSON.stringify(record);
      const n = record["sequence"] as number;
      lines.push(
        JSON.stringify(record, null, 1), // whitespace
        `${line} `,
        line.replace('":', '": '),
        line.replace('"noticeId":"N-1"', '"noticeId":"N\\u002d1"'), // an escape that spells the same value
        line.replace(`"sequence":${n}`, `"sequence":${n}.0`),
        line.replace(`"sequence":${n}`, `"sequence":${n}e0`),
        // 1e3 is shorter than 1000: with a space the line has the canonical length
        ...(n === 1000 ? [line.replace(`"sequence":${n}`, `"sequence":1e3 `)] : []),
        ...(record["newResidentCode"] === undefined ? [JSON.stringify({ ...record, newResidentCode: "" })] : []), // an empty field: absent
        JSON.stringify(Object.fromEntries(Object.entries(record).reverse())), // another order
      );
      if (record["before"]) {
        const b = record["before"] as typeof items;
        lines.push(
          JSON.stringify({ ...record, before: { ...b, gender: "1" } }), // the gender as its digit
          JSON.stringify({ ...record, before: { ...b, gender: 1 } }),
          JSON.stringify({ ...record, before: { ...b, name: "小野\u3000か\u3099" } }), // NFD: composed by parseNotice
          JSON.stringify({ ...record, before: { ...b, address: `${b.address} ` } }), // padded: trimmed
          JSON.stringify({ ...record, before: { address: b.address, name: b.name, birthDate: b.birthDate, gender: b.gender } }), // item order
          // a quote, written escaped: canonical, but not taken as is (any backslash answers false)
          JSON.stringify({ ...record, before: { ...b, address: `${b.address}"号` } }),
        );
      }
    }
    // a relocation without its municipality after: parseNotice adds it (the body is the line with it: below)
    lines.push(JSON.stringify(bareRelocation));
    for (const line of lines) expect(verdict(line), line).toBe(false);
  });

  it("a relocation without newMunicipalityCode: the body is the line with the defaulted field put in its place", () => {
    const line = JSON.stringify(bareRelocation);
    const value = JSON.parse(line) as Record<string, unknown>;
    const n = parseNotice(value, { now });
    const found = canonicalBodyOf(line, value, n);
    expect(found).toEqual({ body: canonical(n), added: "newMunicipalityCode" });
    // the same body as when the field is given: one normal form, whether given or defaulted
    expect(found!.body).toBe(JSON.stringify(byKind["relocation"]));
    // so also without its before, and with the field given the line itself is the body
    const { before: _b, ...noBefore } = bareRelocation;
    expect(verdict(JSON.stringify(noBefore))).toBe(false);
    expect(canonicalBodyOf(JSON.stringify(noBefore), noBefore, parseNotice(noBefore, { now }))).toMatchObject({ added: "newMunicipalityCode" });
    expect(verdict(JSON.stringify(byKind["relocation"]))).toBe(true);
  });

  it("refuses every bare relocation line that differs from the body less the defaulted field", () => {
    const line = JSON.stringify(bareRelocation);
    const b = bareRelocation["before"] as typeof items;
    const lines = [
      JSON.stringify(bareRelocation, null, 1),
      `${line} `,
      line.replace('":', '": '),
      line.replace('"sequence":1', '"sequence":1.0'),
      line.replace('"municipalityCode":"271004"', '"municipalityCode":"27100\\u0034"'),
      JSON.stringify(Object.fromEntries(Object.entries(bareRelocation).reverse())),
      JSON.stringify({ ...bareRelocation, newMunicipalityCode: "" }), // given empty: absent to parseNotice, but in the line
      JSON.stringify({ ...bareRelocation, newMunicipalityCode: null }),
      JSON.stringify({ ...bareRelocation, before: { ...b, gender: "1" } }),
      JSON.stringify({ ...bareRelocation, before: { ...b, address: `${b.address} ` } }),
    ];
    for (const l of lines) {
      const value = JSON.parse(l) as Record<string, unknown>;
      expect(canonicalBodyOf(l, value, parseNotice(value, { now })), l).toBeUndefined();
    }
    // another kind leaves out a field it must carry: parseNotice refuses it, no default is put in
    const { newMunicipalityCode: _m, ...bareMoveOut } = byKind["move-out"]!;
    expect(() => parseNotice(bareMoveOut, { now })).toThrow(/newMunicipalityCode/);
  });

  it("a bare relocation read and then rejected goes to the reject file as read, without the field the body added", async () => {
    const line = JSON.stringify(bareRelocation); // its resident is unknown to this store: rejected at commit
    async function* records() {
      yield { line: 1, value: JSON.parse(line) as Record<string, unknown>, text: line };
    }
    const [batch] = await (async () => {
      const got = [];
      for await (const x of readBatches(records(), new FixedClock(now), 10)) got.push(x);
      return got;
    })();
    expect(batch!.notices[0]).toMatchObject({ body: JSON.stringify(byKind["relocation"]), added: "newMunicipalityCode" });
    expect(batch!.notices[0]!.record).toBeUndefined();
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-canon-")), "jpki.db"), { create: true });
    try {
      const rejects: { code: string; record?: Record<string, unknown> }[] = [];
      async function* batches() {
        yield batch!;
      }
      await new NoticeIngestor({ store: s, clock: new FixedClock(now) }).ingestBatches(batches(), { onReject: (r) => rejects.push(r) });
      expect(rejects).toEqual([expect.objectContaining({ code: "ERR_RESIDENT_UNKNOWN", record: JSON.parse(line) as unknown })]);
    } finally {
      await s.close();
    }
  });

  it("takes the line itself as the body when it is canonical, with no record besides; writes it otherwise", async () => {
    const canonicalLine = JSON.stringify(byKind["death"]);
    const other = JSON.stringify({ ...byKind["correction"], noticeId: "N-2", before: undefined, after: { ...items, gender: "1" } });
    async function* records() {
      yield { line: 1, value: JSON.parse(canonicalLine) as Record<string, unknown>, text: canonicalLine };
      yield { line: 2, value: JSON.parse(other) as Record<string, unknown>, text: other };
    }
    const batches = [];
    for await (const b of readBatches(records(), new FixedClock(now), 10)) batches.push(b);
    const [a, b] = batches[0]!.notices;
    expect(a!.body).toBe(canonicalLine);
    expect(a!.record).toBeUndefined();
    expect(b!.body).toBe(canonical(b!.notice));
    expect(b!.body).not.toBe(other);
    expect(b!.record).toBe(other);
  });

  it("a body stored in an earlier version's order reads back as the canonical body", () => {
    const n = parseNotice(byKind["move-out"]!, { now });
    // an earlier parseNotice put after and before first
    const { after, before: b, newMunicipalityCode, ...rest } = n as ChangeNotice & Record<string, unknown>;
    const old = JSON.stringify({ ...rest, after, before: b, newMunicipalityCode });
    expect(old).not.toBe(canonical(n));
    expect(canonical(noticeInNormalForm(JSON.parse(old) as ChangeNotice))).toBe(canonical(n));
  });
});
