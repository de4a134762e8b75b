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
import { readRecords } from "./import.js";
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
    // its $id names this file, and the package ships it there
    expect(new URL(schema["$id"] as string).pathname.endsWith("/schema/change-notice.schema.json")).toBe(true);
    expect(JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")).files).toContain("schema");
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

  it("refuses what the parser refuses for structural reasons in bad-notices.jsonl, and nothing the parser takes", async () => {
    // The parser decides; the schema must agree, except for the checks its description says are beyond it.
    const description = schema["description"] as string;
    const beyond: Record<string, RegExp> = {
      "check-digit": /check digit/,
      "not-a-date": /real calendar dates/,
    };
    for (const re of Object.values(beyond)) expect(description).toMatch(re);
    const verdicts: Array<{ line: number; parser: string; schema: "valid" | "invalid" | "not JSON" }> = [];
    const text = readFileSync(join(ROOT, "fixtures", "notices", "bad-notices.jsonl"), "utf8").split("\n");
    for await (const r of readRecords(join(ROOT, "fixtures", "notices", "bad-notices.jsonl"))) {
      let schemaVerdict: "valid" | "invalid" | "not JSON";
      try {
        schemaVerdict = validate(schema, JSON.parse(text[r.line - 1]!)).length === 0 ? "valid" : "invalid";
      } catch {
        schemaVerdict = "not JSON";
      }
      let parser = "accepted";
      if ("error" in r) parser = `${r.error.code}/${String(r.error.details?.["problem"])}`;
      else {
        try {
          parseNotice(r.value, { now, line: r.line });
        } catch (e) {
          if (!(e instanceof JpkiError)) throw e;
          parser = `${e.code}/${String(e.details?.["problem"])}`;
        }
      }
      verdicts.push({ line: r.line, parser, schema: schemaVerdict });
    }
    expect(verdicts.length).toBe(text.filter((l) => l !== "").length);
    for (const v of verdicts) {
      const problem = v.parser.split("/")[1]!;
      const expected = v.parser === "accepted" || problem in beyond ? "valid" : v.parser.startsWith("ERR_IMPORT_FORMAT/") ? "not JSON" : "invalid";
      expect(v, `line ${v.line}`).toEqual({ ...v, schema: expected });
    }
    // The fixture exercises each side of the rule: taken by both, refused by both, refused beyond the schema.
    expect(new Set(verdicts.map((v) => v.schema))).toEqual(new Set(["valid", "invalid", "not JSON"]));
    expect(verdicts.some((v) => v.parser === "accepted")).toBe(true);
    expect(verdicts.some((v) => v.parser !== "accepted" && v.schema === "valid")).toBe(true);
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
