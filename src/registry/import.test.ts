import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { generateResidents } from "./fixtures.js";
import { describeJsonError, formatFromPath, readRecords, type ReadRecordsOptions, type RecordResult } from "./import.js";

type Simple = { line: number; value?: Record<string, unknown>; error?: string; message?: string };

async function collect(input: NodeJS.ReadableStream | string, opts: ReadRecordsOptions = {}): Promise<Simple[]> {
  const out: Simple[] = [];
  for await (const r of readRecords(input, opts)) {
    out.push("error" in r ? { line: r.line, error: r.error.code, message: r.error.message } : { line: r.line, value: r.value });
  }
  return out;
}

/** A stream of the UTF-8 bytes of `text`, cut into `size`-byte chunks (1 splits every character and CRLF). */
function bytes(text: string | Uint8Array, size = 1 << 16): Readable {
  const buf = typeof text === "string" ? Buffer.from(text, "utf8") : Buffer.from(text);
  const chunks: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) chunks.push(buf.subarray(i, i + size));
  return Readable.from(chunks);
}

const BOM = "\uFEFF";

describe("JSON Lines", () => {
  it("reads objects, skips blank lines, numbers lines physically, handles BOM and CRLF", async () => {
    const text = `${BOM}{"a":1,"name":"架空　太郎"}\r\n\r\n   \n{"b":"x"}\n{"c":[1,2]}`;
    expect(await collect(bytes(text), { format: "jsonl" })).toEqual([
      { line: 1, value: { a: 1, name: "架空　太郎" } },
      { line: 4, value: { b: "x" } },
      { line: 5, value: { c: [1, 2] } },
    ]);
  });

  it("gives the same result however the bytes are chunked (split UTF-8 sequences, split CRLF)", async () => {
    const text = `${BOM}{"n":"𠮷田　髙志"}\r\n{"n":"山﨑　花子"}\r\n`;
    const whole = await collect(bytes(text), { format: "jsonl" });
    for (const size of [1, 2, 3, 5, 7]) expect(await collect(bytes(text, size), { format: "jsonl" })).toEqual(whole);
    expect(whole).toHaveLength(2);
  });

  it("reports malformed JSON and non-objects per line and goes on", async () => {
    const text = ['{"ok":1}', '{"name":"架空　太郎" "x":1}', "[1,2]", "42", '{"name":"架空', "null", '{"ok":2}'].join("\n");
    const r = await collect(bytes(text), { format: "jsonl" });
    expect(r.map((x) => [x.line, x.error ?? "ok"])).toEqual([
      [1, "ok"], [2, "ERR_IMPORT_FORMAT"], [3, "ERR_IMPORT_FORMAT"], [4, "ERR_IMPORT_FORMAT"], [5, "ERR_IMPORT_FORMAT"],
      [6, "ERR_IMPORT_FORMAT"], [7, "ok"],
    ]);
    expect(r[1]!.message).toMatch(/^line 2: malformed JSON: Expected ',' or '}' after property value at character \d+$/);
    expect(r[2]!.message).toBe("line 3: expected a JSON object, found an array");
    expect(r[4]!.message).toMatch(/^line 5: malformed JSON/);
    for (const x of r) expect(x.message ?? "").not.toMatch(/架空|太郎/);
  });

  it("never quotes the input when describing a JSON error", () => {
    for (const s of ["架空", '{"a":tru}', "{'a':1}", '{"a":1}x', '{"a":"\\q"}', "", "{a:1}"]) {
      let e: unknown;
      try { JSON.parse(s); } catch (err) { e = err; }
      const d = describeJsonError(e);
      expect(d).not.toMatch(/架空|tru|'a'|"/);
      expect(d.length).toBeGreaterThan(0);
    }
    let e: unknown;
    try { JSON.parse('{"a":1} x'); } catch (err) { e = err; }
    expect(describeJsonError(e)).toBe("Unexpected non-whitespace character after JSON at character 9");
  });
});

describe("CSV", () => {
  it("maps header names to fields; handles quoted commas, doubled quotes and quoted line breaks", async () => {
    const text = [
      "residentCode,name,address",
      '1,"架空　太郎","東京都千代田区千代田１丁目１番１号, ビル"',
      '2,"say ""hi""",plain',
      '3,"two',
      'lines",x',
      "4,,",
    ].join("\n") + "\n";
    expect(await collect(bytes(text), { format: "csv" })).toEqual([
      { line: 2, value: { residentCode: "1", name: "架空　太郎", address: "東京都千代田区千代田１丁目１番１号, ビル" } },
      { line: 3, value: { residentCode: "2", name: 'say "hi"', address: "plain" } },
      { line: 4, value: { residentCode: "3", name: "two\nlines", address: "x" } },
      { line: 6, value: { residentCode: "4", name: "", address: "" } },
    ]);
  });

  it("handles BOM and CRLF, keeps a CRLF inside quotes, and skips blank lines", async () => {
    const text = `${BOM}a,b\r\n"x\r\ny",2\r\n\r\n3,"4"\r\n`;
    const expected = [{ line: 2, value: { a: "x\r\ny", b: "2" } }, { line: 5, value: { a: "3", b: "4" } }];
    expect(await collect(bytes(text), { format: "csv" })).toEqual(expected);
    expect(await collect(bytes(text, 1), { format: "csv" })).toEqual(expected);
  });

  it("handles quoted fields in every position and an empty last field", async () => {
    const text = 'a,b,c\n"1","2","3"\n"",x,""\n,,\n"p,q",,"r"\n';
    expect((await collect(bytes(text), { format: "csv" })).map((r) => r.value)).toEqual([
      { a: "1", b: "2", c: "3" }, { a: "", b: "x", c: "" }, { a: "", b: "", c: "" }, { a: "p,q", b: "", c: "r" },
    ]);
  });

  it("reports bad rows by their starting line and goes on", async () => {
    const text = [
      "a,b", // 1
      "1,2", // 2
      "1,2,3", // 3 too many fields
      'x"y,2', // 4 stray quote in an unquoted field
      '"x"y,2', // 5 text after a closing quote
      '"multi', // 6 quoted field spanning lines …
      'line",2', // 7 … fine
      "only-one", // 8 too few fields
      '"架空', // 9 unclosed quote at end of file
    ].join("\n");
    const r = await collect(bytes(text), { format: "csv" });
    expect(r.map((x) => [x.line, x.error ?? "ok"])).toEqual([
      [2, "ok"], [3, "ERR_IMPORT_FORMAT"], [4, "ERR_IMPORT_FORMAT"], [5, "ERR_IMPORT_FORMAT"], [6, "ok"],
      [8, "ERR_IMPORT_FORMAT"], [9, "ERR_IMPORT_FORMAT"],
    ]);
    expect(r[1]!.message).toBe("line 3: has 3 fields, the header has 2");
    expect(r[6]!.message).toMatch(/^line 9: a quoted field is not closed/);
    for (const x of r) expect(x.message ?? "").not.toContain("架空");
  });

  it("throws for a header with a repeated or empty column name, without quoting it", async () => {
    await expect(collect(bytes("a,架空,架空\n1,2,3\n"), { format: "csv" })).rejects.toMatchObject({
      code: "ERR_IMPORT_FORMAT", message: "line 1: CSV header column 3 repeats the name of column 2",
    });
    await expect(collect(bytes("a,,b\n"), { format: "csv" })).rejects.toMatchObject({ code: "ERR_IMPORT_FORMAT" });
  });

  it("does not let a __proto__ column touch the prototype", async () => {
    const [r] = await collect(bytes("__proto__,a\nx,1\n"), { format: "csv" });
    expect(Object.getPrototypeOf(r!.value)).toBe(Object.prototype);
    expect(Object.keys(r!.value!)).toEqual(["__proto__", "a"]);
  });
});

describe("limits and input errors", () => {
  it("skips an over-long line with an error and resumes on the next line", async () => {
    const long = `{"x":"${"a".repeat(5000)}"}`;
    for (const size of [64, 1 << 16]) {
      const r = await collect(bytes(`{"a":1}\n${long}\n{"b":2}\n`, size), { format: "jsonl", maxRecordChars: 1000 });
      expect(r.map((x) => [x.line, x.error ?? "ok"])).toEqual([[1, "ok"], [2, "ERR_IMPORT_FORMAT"], [3, "ok"]]);
      expect(r[1]!.message).toMatch(/longer than the limit/);
    }
  });

  it("stops an unclosed CSV quote from swallowing the file", async () => {
    const body = Array.from({ length: 100 }, (_, i) => `${i},x`).join("\n");
    const r = await collect(bytes(`a,b\n"open,1\n${body}\n`), { format: "csv", maxRecordChars: 200 });
    expect(r[0]).toMatchObject({ line: 2, error: "ERR_IMPORT_FORMAT" });
    expect(r.filter((x) => x.value).length).toBeGreaterThan(50);
  });

  it("throws ERR_IMPORT_FORMAT for bytes that are not UTF-8", async () => {
    await expect(collect(bytes(new Uint8Array([0x7b, 0x22, 0x61, 0x22, 0x3a, 0xff, 0x7d, 0x0a])), { format: "jsonl" }))
      .rejects.toMatchObject({ code: "ERR_IMPORT_FORMAT" });
  });

  it("throws ERR_USAGE for a file that cannot be read", async () => {
    await expect(collect(join(tmpdir(), "jpki-no-such-dir", "x.jsonl"))).rejects.toMatchObject({ code: "ERR_USAGE" });
  });

  it("rejects an unknown format", async () => {
    await expect(collect(bytes(""), { format: "xml" as "csv" })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });
});

describe("format detection", () => {
  it("by extension", () => {
    expect(formatFromPath("a/b.JSONL")).toBe("jsonl");
    expect(formatFromPath("b.ndjson")).toBe("jsonl");
    expect(formatFromPath("b.json")).toBe("jsonl");
    expect(formatFromPath("b.csv")).toBe("csv");
    expect(formatFromPath("b.txt")).toBeUndefined();
  });

  it("by the first non-blank character for streams and unknown extensions", async () => {
    expect(await collect(bytes(`${BOM}\n  \n {"a":1}\n`, 1))).toEqual([{ line: 3, value: { a: 1 } }]);
    expect(await collect(bytes("a,b\n1,2\n"))).toEqual([{ line: 2, value: { a: "1", b: "2" } }]);
    expect(await collect(bytes(""))).toEqual([]);
    const dir = mkdtempSync(join(tmpdir(), "jpki-import-"));
    writeFileSync(join(dir, "r.txt"), '{"a":1}\n');
    writeFileSync(join(dir, "r.csv"), "a\n{x}\n");
    writeFileSync(join(dir, "r.jsonl"), "a,b\n");
    expect(await collect(join(dir, "r.txt"))).toEqual([{ line: 1, value: { a: 1 } }]);
    // The extension wins over the content.
    expect(await collect(join(dir, "r.csv"))).toEqual([{ line: 2, value: { a: "{x}" } }]);
    expect((await collect(join(dir, "r.jsonl")))[0]).toMatchObject({ line: 1, error: "ERR_IMPORT_FORMAT" });
  });

  it("closes the file when the caller stops early", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-import-"));
    writeFileSync(join(dir, "r.jsonl"), '{"a":1}\n{"a":2}\n{"a":3}\n');
    let n = 0;
    for await (const _ of readRecords(join(dir, "r.jsonl"))) if (++n === 1) break;
    expect(n).toBe(1);
    const stream = bytes('{"a":1}\n{"a":2}\n', 4);
    for await (const _ of readRecords(stream)) break;
    expect(stream.destroyed).toBe(true);
  });
});

describe("streaming", () => {
  const COUNT = 200_000;

  /** Produces lines lazily and records how far the producer got ahead of the consumer. */
  function lazyStream(format: "jsonl" | "csv"): { stream: Readable; produced: () => number } {
    let produced = 0;
    function* lines(): Generator<string> {
      if (format === "csv") yield "residentCode,municipalityCode,name,address,birthDate,gender\r\n";
      let batch = "";
      for (const r of generateResidents({ count: COUNT, seed: `stream-${format}` })) {
        batch += format === "jsonl"
          ? JSON.stringify(r) + "\n"
          : [r.residentCode, r.municipalityCode, `"${r.name}"`, `"${r.address}"`, r.birthDate, r.gender].join(",") + "\r\n";
        produced++;
        if (produced % 100 === 0) {
          yield batch;
          batch = "";
        }
      }
      if (batch) yield batch;
    }
    return { stream: Readable.from(lines(), { objectMode: false, highWaterMark: 64 * 1024 }), produced: () => produced };
  }

  it.each(["jsonl", "csv"] as const)("reads a %s stream of 200k records without running ahead of the consumer", async (format) => {
    const { stream, produced } = lazyStream(format);
    let count = 0, errors = 0, maxLead = 0, lastLine = 0;
    for await (const r of readRecords(stream) as AsyncGenerator<RecordResult>) {
      if ("error" in r) errors++;
      else count++;
      lastLine = r.line;
      maxLead = Math.max(maxLead, produced() - count);
    }
    expect(errors).toBe(0);
    expect(count).toBe(COUNT);
    expect(lastLine).toBe(format === "csv" ? COUNT + 1 : COUNT);
    // Only a bounded window (stream buffers plus one batch) is ever in memory, not the 200k records.
    expect(maxLead).toBeLessThan(5_000);
  });
});
