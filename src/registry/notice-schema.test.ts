/**
 * schema/change-notice.schema.json against the parser: the fixtures validate, the schema's fields are the
 * parser's canonical fields, and per kind the schema and the parser agree on which fields must, may or must
 * not be there. The validator below covers the keywords the schema uses and refuses any other, so the
 * schema cannot grow a keyword that this test silently ignores.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import { generateNotices, generateResidents } from "./fixtures.js";
import {
  NOTICE_FIELDS, NOTICE_ITEM_FIELDS, NOTICE_KIND_NAMES, NOTICE_KINDS, NOTICE_REQUIRED_FIELDS, parseNotice, type NoticeKind,
} from "./notice.js";
import { makeResidentCode } from "./resident-code.js";

const ROOT = join(import.meta.dirname, "..", "..");
type Schema = Record<string, unknown>;
const schema = JSON.parse(readFileSync(join(ROOT, "schema", "change-notice.schema.json"), "utf8")) as Schema;
const now = new Date("2025-04-01T00:00:00Z");

// ---------------------------------------------------------------------------------------------------------
// A tiny JSON Schema (2020-12) validator for the keywords our schema uses.

const KEYWORDS = new Set([
  "$schema", "$id", "$defs", "$ref", "title", "description", "type", "properties", "required", "additionalProperties",
  "enum", "const", "pattern", "minimum", "minLength", "maxLength", "allOf", "if", "then", "else", "not",
]);

function typeOk(v: unknown, t: string): boolean {
  switch (t) {
    case "object": return typeof v === "object" && v !== null && !Array.isArray(v);
    case "string": return typeof v === "string";
    case "integer": return typeof v === "number" && Number.isInteger(v);
    case "number": return typeof v === "number";
    default: throw new Error(`validator: type ${t} not supported`);
  }
}

/** Returns the JSON pointers of the instance locations that fail, empty when valid. */
function validate(s: Schema, v: unknown, at = ""): string[] {
  const errs: string[] = [];
  for (const k of Object.keys(s)) if (!KEYWORDS.has(k)) throw new Error(`validator: keyword ${k} not supported`);
  if (typeof s["$ref"] === "string") {
    const ref = s["$ref"];
    if (!ref.startsWith("#/$defs/")) throw new Error(`validator: $ref ${ref} not supported`);
    errs.push(...validate((schema["$defs"] as Record<string, Schema>)[ref.slice(8)]!, v, at));
  }
  if (typeof s["type"] === "string" && !typeOk(v, s["type"])) return [...errs, `${at}: type`];
  if (Array.isArray(s["enum"]) && !s["enum"].includes(v)) errs.push(`${at}: enum`);
  if ("const" in s && s["const"] !== v) errs.push(`${at}: const`);
  if (typeof v === "string") {
    if (typeof s["pattern"] === "string" && !new RegExp(s["pattern"], "u").test(v)) errs.push(`${at}: pattern`);
    const len = [...v].length; // JSON Schema counts characters (code points)
    if (typeof s["minLength"] === "number" && len < s["minLength"]) errs.push(`${at}: minLength`);
    if (typeof s["maxLength"] === "number" && len > s["maxLength"]) errs.push(`${at}: maxLength`);
  }
  if (typeof v === "number" && typeof s["minimum"] === "number" && v < s["minimum"]) errs.push(`${at}: minimum`);
  if (typeOk(v, "object")) {
    const o = v as Record<string, unknown>;
    const props = (s["properties"] ?? {}) as Record<string, Schema>;
    for (const r of (s["required"] ?? []) as string[]) if (!(r in o)) errs.push(`${at}/${r}: required`);
    for (const [k, val] of Object.entries(o)) {
      if (props[k]) errs.push(...validate(props[k], val, `${at}/${k}`));
      else if (s["additionalProperties"] === false) errs.push(`${at}/${k}: additionalProperties`);
    }
  }
  for (const sub of (s["allOf"] ?? []) as Schema[]) errs.push(...validate(sub, v, at));
  if (s["if"]) {
    const branch = validate(s["if"] as Schema, v, at).length === 0 ? s["then"] : s["else"];
    if (branch) errs.push(...validate(branch as Schema, v, at));
  }
  if (s["not"] && validate(s["not"] as Schema, v, at).length === 0) errs.push(`${at}: not`);
  return errs;
}

// ---------------------------------------------------------------------------------------------------------

describe("schema/change-notice.schema.json", () => {
  it("is draft 2020-12 and describes every property in English and Japanese", () => {
    expect(schema["$schema"]).toBe("https://json-schema.org/draft/2020-12/schema");
    const props = schema["properties"] as Record<string, Schema>;
    const items = ((schema["$defs"] as Record<string, Schema>)["fourItems"]!["properties"]) as Record<string, Schema>;
    for (const p of [...Object.values(props), ...Object.values(items)]) {
      expect(p["description"]).toMatch(/[A-Za-z]/);
      expect(p["description"]).toMatch(/[\u3040-\u30ff\u4e00-\u9fff]/);
    }
  });

  it("has exactly the parser's canonical fields, required ones, kinds and item fields", () => {
    expect(Object.keys(schema["properties"] as object)).toEqual([...NOTICE_FIELDS]);
    expect(schema["required"]).toEqual([...NOTICE_REQUIRED_FIELDS]);
    expect(schema["additionalProperties"]).toBe(false);
    expect((schema["properties"] as Record<string, Schema>)["kind"]!["enum"]).toEqual([...NOTICE_KIND_NAMES]);
    for (const k of NOTICE_KIND_NAMES) expect((schema["properties"] as Record<string, Schema>)["kind"]!["description"]).toContain(NOTICE_KINDS[k].ja);
    const four = (schema["$defs"] as Record<string, Schema>)["fourItems"]!;
    expect(Object.keys(four["properties"] as object)).toEqual([...NOTICE_ITEM_FIELDS]);
    expect(four["required"]).toEqual([...NOTICE_ITEM_FIELDS]);
  });

  it("validates every line of the sample fixture, and every generated notice", () => {
    const lines = readFileSync(join(ROOT, "fixtures", "notices", "notices.sample.jsonl"), "utf8").split("\n").filter((l) => l !== "");
    expect(lines.length).toBeGreaterThanOrEqual(20);
    for (const line of lines) expect(validate(schema, JSON.parse(line))).toEqual([]);
    const residents = [...generateResidents({ count: 300, seed: "schema" })];
    for (const n of generateNotices({ residents, count: 1000, seed: "schema" })) expect(validate(schema, JSON.parse(JSON.stringify(n)))).toEqual([]);
  });

  it("refuses what the parser refuses for structural reasons in bad-notices.jsonl", () => {
    const lines = readFileSync(join(ROOT, "fixtures", "notices", "bad-notices.jsonl"), "utf8").split("\n").filter((l) => l !== "");
    const verdicts = lines.map((l) => {
      try {
        return validate(schema, JSON.parse(l)).length === 0 ? "valid" : "invalid";
      } catch {
        return "not JSON";
      }
    });
    // malformed JSON, unknown kind, check digit (not expressible), 2023-02-30 (not expressible), relocation
    // without after, sequence 0, unknown resident (a store matter).
    expect(verdicts).toEqual(["not JSON", "invalid", "valid", "valid", "invalid", "invalid", "valid"]);
  });

  it("agrees with the parser, kind by kind, on which of after / newMunicipalityCode / newResidentCode must, may or must not be there", () => {
    const code = makeResidentCode("5988656848");
    const after = { name: "小野\u3000隆", address: "大阪府大阪市本町１番地", birthDate: "2005-10-09", gender: "male" };
    const optional = { after, newMunicipalityCode: "271004", newResidentCode: makeResidentCode("1234567890") } as const;
    let compared = 0;
    for (const kind of NOTICE_KIND_NAMES) {
      const info = NOTICE_KINDS[kind];
      const fields = ["after", "newMunicipalityCode", "newResidentCode"] as const;
      // Every combination of the three fields present or absent.
      for (let mask = 0; mask < 8; mask++) {
        const rec: Record<string, unknown> = { noticeId: "N1", residentCode: code, kind, effectiveDate: "2024-05-01", sequence: 1, municipalityCode: "271004" };
        fields.forEach((f, i) => {
          if (mask & (1 << i)) rec[f] = optional[f];
        });
        // A move-out needs another municipality than its own; that is not a presence rule.
        if (kind === "move-out" && rec["newMunicipalityCode"]) rec["municipalityCode"] = "272051";
        const schemaOk = validate(schema, rec).length === 0;
        let parserOk = true;
        try {
          parseNotice(rec, { now });
        } catch (e) {
          if (!(e instanceof JpkiError)) throw e;
          parserOk = false;
        }
        const expected = fields.every((f, i) => {
          const present = (mask & (1 << i)) !== 0;
          const want = info[f];
          return want === "optional" || (want === "required") === present;
        });
        expect({ kind: kind as NoticeKind, mask, schemaOk, parserOk }).toEqual({ kind, mask, schemaOk: expected, parserOk: expected });
        compared++;
      }
    }
    expect(compared).toBe(64);
  });
});
