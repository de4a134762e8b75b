import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { generateResidents } from "./fixtures.js";
import { MAX_JSON_DEPTH, describeJsonError, formatFromPath, namesAFieldTwice, readRecords, repeatedKey, type ReadRecordsOptions, type RecordResult } from "./import.js";

type Simple = { line: number; value?: Record<string, unknown>; error?: string; message?: string; problem?: unknown };

async function collect(input: NodeJS.ReadableStream | string, opts: ReadRecordsOptions = {}): Promise<Simple[]> {
  const out: Simple[] = [];
  for await (const r of readRecords(input, opts)) {
    out.push("error" in r ? { line: r.line, error: r.error.code, message: r.error.message, problem: r.error.details?.problem } : { line: r.line, value: r.value });
  }
  return out;
}

/** [line, "ok" | problem] for each result: the shape most partial-input tests assert on. */
const outline = (r: Simple[]): Array<[number, unknown]> => r.map((x) => [x.line, x.error ? `${x.error}/${String(x.problem)}` : "ok"]);

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

  it("throws ERR_USAGE for a file that cannot be read", async () => {
    await expect(collect(join(tmpdir(), "jpki-no-such-dir", "x.jsonl"))).rejects.toMatchObject({ code: "ERR_USAGE" });
  });

  it("rejects an unknown format", async () => {
    await expect(collect(bytes(""), { format: "xml" as "csv" })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });
});

/** Bytes of a file: strings are UTF-8, arrays are raw bytes (e.g. a broken UTF-8 sequence). */
const file = (...parts: Array<string | number[]>): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === "string" ? Buffer.from(p, "utf8") : Buffer.from(p))));
/** "架空" in Shift_JIS: a typical broken line in a file that should have been UTF-8. */
const SJIS = [0x89, 0xcb, 0x8b, 0xf3];

describe("partial input: a bad line is rejected with its number, the rest goes on", () => {
  const CHUNKS = [1, 3, 7, 1 << 16];

  it("JSON Lines: a line that is not UTF-8, in the middle and last without a line break", async () => {
    const data = file('{"a":1}\n{"name":"', SJIS, '"}\n{"a":2}\n{"name":"', [0xe6, 0x9e], '"}');
    for (const size of CHUNKS) {
      const r = await collect(bytes(data, size), { format: "jsonl" });
      expect(outline(r), `chunk ${size}`).toEqual([
        [1, "ok"], [2, "ERR_IMPORT_FORMAT/invalid-utf8"], [3, "ok"], [4, "ERR_IMPORT_FORMAT/invalid-utf8"],
      ]);
      expect(r[1]!.message).toBe("line 2: not valid UTF-8: save the file as UTF-8 (with or without BOM)");
      expect(r[2]!.value).toEqual({ a: 2 });
    }
  });

  it("JSON Lines: a broken first line does not hide the BOM handling or the format sniffing", async () => {
    const data = file("\uFEFF", '{"n":"', SJIS, '"}\n', '{"a":1}\n');
    for (const size of CHUNKS) {
      expect(outline(await collect(bytes(data, size)))).toEqual([[1, "ERR_IMPORT_FORMAT/invalid-utf8"], [2, "ok"]]);
    }
  });

  it("CSV: a row that is not UTF-8, also inside a quoted field spanning lines, is rejected by its first line", async () => {
    const data = file('a,b\n1,"', SJIS, '"\n2,"x\n', SJIS, ',still quoted\ny",z\n3,ok\n4,', SJIS, "\n5,end");
    for (const size of CHUNKS) {
      const r = await collect(bytes(data, size), { format: "csv" });
      expect(outline(r), `chunk ${size}`).toEqual([
        [2, "ERR_IMPORT_FORMAT/invalid-utf8"], [3, "ERR_IMPORT_FORMAT/invalid-utf8"], [6, "ok"],
        [7, "ERR_IMPORT_FORMAT/invalid-utf8"], [8, "ok"],
      ]);
      expect(r[1]!.message).toMatch(/^line 3: .*line 4/);
      expect(r[2]!.value).toEqual({ a: "3", b: "ok" });
      expect(r[4]!.value).toEqual({ a: "5", b: "end" });
    }
  });

  it("a CSV header that is not UTF-8 still fails the whole file, before any record", async () => {
    await expect(collect(bytes(file("a,", SJIS, "\n1,2\n")), { format: "csv" })).rejects.toMatchObject({ code: "ERR_IMPORT_FORMAT" });
  });

  it("JSON Lines: a bare CR is a bad line; a file with only CR line breaks is one bad line 1", async () => {
    const r = await collect(bytes('{"a":1}\r\n{"a":2}\r{"a":3}\n{"a":4}\n'), { format: "jsonl" });
    expect(outline(r)).toEqual([[1, "ok"], [2, "ERR_IMPORT_FORMAT/bare-cr"], [3, "ok"]]);
    expect(r[1]!.message).toMatch(/^line 2: bare CR \(CR-only line endings\?\)/);
    const mac = await collect(bytes('{"a":1}\r{"a":2}\r{"a":3}\r'));
    expect(outline(mac)).toEqual([[1, "ERR_IMPORT_FORMAT/bare-cr"]]);
  });

  it("CSV: a bare CR outside quotes is a bad row; inside quotes it is data", async () => {
    const text = 'a,b\n1,x\ry\n2,"x\ry"\n3,"q"\r\n4,"q"\rz\n5,"two\r\nlines"\n6,last\n';
    for (const size of [1, 1 << 16]) {
      const r = await collect(bytes(text, size), { format: "csv" });
      expect(outline(r)).toEqual([
        [2, "ERR_IMPORT_FORMAT/bare-cr"], [3, "ok"], [4, "ok"], [5, "ERR_IMPORT_FORMAT/bare-cr"], [6, "ok"], [8, "ok"],
      ]);
      expect(r[0]!.message).toMatch(/^line 2: bare CR \(CR-only line endings\?\)/);
      expect(r[1]!.value).toEqual({ a: "2", b: "x\ry" });
      expect(r[4]!.value).toEqual({ a: "5", b: "two\r\nlines" });
    }
    await expect(collect(bytes("a,b\r1,2\r3,4\r"), { format: "csv" })).rejects.toMatchObject({ code: "ERR_IMPORT_FORMAT", message: expect.stringMatching(/bare CR/) });
  });

  it("JSON Lines: a lone surrogate escape in a value or a key is a bad line; a pair is fine", async () => {
    const text = [
      '{"a":1}',
      '{"name":"\\ud800"}', // lone high surrogate
      '{"n":"\\ud842\\udfb7"}', // 𠮷 as a surrogate pair: fine
      '{"list":["ok",{"deep":"x\\udc00"}]}', // lone low surrogate, nested
      '{"\\udbff":1}', // in a key
      '{"n":"\\\\ud800"}', // an escaped backslash then "ud800": plain text, fine
      '{"a":2}',
    ].join("\n");
    const r = await collect(bytes(text), { format: "jsonl" });
    expect(outline(r)).toEqual([
      [1, "ok"], [2, "ERR_IMPORT_FORMAT/lone-surrogate"], [3, "ok"], [4, "ERR_IMPORT_FORMAT/lone-surrogate"],
      [5, "ERR_IMPORT_FORMAT/lone-surrogate"], [6, "ok"], [7, "ok"],
    ]);
    expect(r[1]!.message).toBe('line 2: field "name" is not well-formed Unicode (a lone surrogate, e.g. an unpaired \\ud800 escape)');
    expect(r[3]!.message).toMatch(/^line 4: field "list" /);
    expect(r[2]!.value).toEqual({ n: "𠮷" });
    expect(r[5]!.value).toEqual({ n: "\\ud800" });
  });

  it("an over-long field is a bad line, named by its field but never quoted", async () => {
    const long = "架".repeat(50);
    const jsonl = [`{"a":1,"name":"${long}"}`, `{"list":["${long}"]}`, `{"${long}":1}`, `{"name":"${"x".repeat(40)}"}`].join("\n");
    const r = await collect(bytes(jsonl), { format: "jsonl", maxFieldChars: 40 });
    expect(outline(r)).toEqual([
      [1, "ERR_IMPORT_FORMAT/field-too-long"], [2, "ERR_IMPORT_FORMAT/field-too-long"], [3, "ERR_IMPORT_FORMAT/field-too-long"], [4, "ok"],
    ]);
    expect(r[0]!.message).toBe('line 1: field "name" is longer than the limit (maxFieldChars, 40 characters)');
    for (const x of r) expect(x.message ?? "").not.toContain("架");

    const csv = `id,name\n1,${long}\n2,"${long}"\n3,ok\n`;
    const c = await collect(bytes(csv), { format: "csv", maxFieldChars: 40 });
    expect(outline(c)).toEqual([[2, "ERR_IMPORT_FORMAT/field-too-long"], [3, "ERR_IMPORT_FORMAT/field-too-long"], [4, "ok"]]);
    expect(c[0]!.message).toBe('line 2: field "name" is longer than the limit (maxFieldChars, 40 characters)');

    // A column name that may be personal data (a file without a header row) is not quoted: its position is.
    const headless = await collect(bytes(`1,架空　太郎\n2,${long}\n`), { format: "csv", maxFieldChars: 40 });
    expect(headless[0]!.message).toBe("line 2: column 2 is longer than the limit (maxFieldChars, 40 characters)");
    // Nor one that looks like a column name when its neighbours show the row is a resident's values: a name in
    // Latin letters, the gender word.
    const values = await collect(bytes(`12345678906,SMITH,JOHN,female\n2,${"x".repeat(50)},y,${"m".repeat(50)}\n`), { format: "csv", maxFieldChars: 40 });
    expect(values[0]!.message).toBe("line 2: column 2 is longer than the limit (maxFieldChars, 40 characters)");
  });

  it("a record nesting deeper than MAX_JSON_DEPTH is a bad line", async () => {
    const nest = (n: number) => `${'{"a":'.repeat(n)}1${"}".repeat(n)}`;
    // 150,000 levels on one line: JSON.parse takes it, JSON.stringify of it (a reject file) overflows the stack.
    const huge = `{"noticeId":"X","after":${nest(150_000)}}`;
    const arrays = `{"list":${"[".repeat(MAX_JSON_DEPTH)}${"]".repeat(MAX_JSON_DEPTH)}}`; // one level too many
    const ok = `{"a":${nest(MAX_JSON_DEPTH - 1)}}`; // exactly MAX_JSON_DEPTH levels with the record itself
    const r = await collect(bytes([huge, '{"i":2}', arrays, ok, `{"a":${nest(MAX_JSON_DEPTH)}}`].join("\n")), { format: "jsonl" });
    expect(outline(r)).toEqual([[1, "ERR_IMPORT_FORMAT/too-deep"], [2, "ok"], [3, "ERR_IMPORT_FORMAT/too-deep"], [4, "ok"], [5, "ERR_IMPORT_FORMAT/too-deep"]]);
    expect(r[0]!.message).toBe(`line 1: field "after" nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
    expect(r[2]!.message).toBe(`line 3: field "list" nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`);
  });

  it("the default field limit is 4096 characters", async () => {
    const r = await collect(bytes(`{"a":"${"x".repeat(4096)}"}\n{"a":"${"x".repeat(4097)}"}\n`), { format: "jsonl" });
    expect(outline(r)).toEqual([[1, "ok"], [2, "ERR_IMPORT_FORMAT/field-too-long"]]);
    await expect(collect(bytes(""), { maxFieldChars: 0 })).rejects.toMatchObject({ code: "ERR_CONFIG_INVALID" });
  });

  it("every kind of bad line together, under every chunking: only the bad lines are lost", async () => {
    const data = file(
      '{"i":1}\n',
      '{"n":"', SJIS, '"}\n', // 2 not UTF-8
      '{"i":3}\n',
      '{"n":"x\ry"}\n', // 4 bare CR
      '{"i":5}\n',
      '{"n":"\\udfff"}\n', // 6 lone surrogate
      '{"i":7}\n',
      `{"n":"${"x".repeat(300)}"}\n`, // 8 field too long
      '{"i":9}\n',
      `{"n":"${"x".repeat(3000)}"}\n`, // 10 line too long
      '{"i":11}\n',
    );
    for (const size of CHUNKS) {
      const r = await collect(bytes(data, size), { maxFieldChars: 200, maxRecordChars: 1000 });
      expect(outline(r), `chunk ${size}`).toEqual([
        [1, "ok"], [2, "ERR_IMPORT_FORMAT/invalid-utf8"], [3, "ok"], [4, "ERR_IMPORT_FORMAT/bare-cr"], [5, "ok"],
        [6, "ERR_IMPORT_FORMAT/lone-surrogate"], [7, "ok"], [8, "ERR_IMPORT_FORMAT/field-too-long"], [9, "ok"],
        [10, "ERR_IMPORT_FORMAT/too-long"], [11, "ok"],
      ]);
    }
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

describe("repeated field names (rejectDuplicateKeys)", () => {
  it("finds a top-level name given twice, also spelt with escapes; not names nested deeper or text inside values", () => {
    expect(repeatedKey('{"a":1,"b":2,"a":3}')).toBe("a");
    expect(repeatedKey('{"ab":1,"\\u0061b":2}')).toBe("ab");
    expect(repeatedKey('{"a":{"x":1,"x":2},"b":[{"a":1}]}')).toBeUndefined();
    expect(repeatedKey('{"a":"\\",\\"a\\":","b":"{\\"a\\":1}"}')).toBeUndefined();
    expect(repeatedKey('{"a":1,"b":{"c":[1,{"d":2}]},"c":3}')).toBeUndefined();
  });

  it("finds what a walk of every character finds (and namesAFieldTwice whether it finds one), in lines of strings with quotes, backslashes and brackets", () => {
    // The walk it replaced (one character at a time, strings included): the reference.
    const walk = (text: string): string | undefined => {
      const seen = new Set<string>();
      let depth = 0;
      let expectKey = false;
      for (let i = 0; i < text.length; i++) {
        const c = text.charCodeAt(i);
        if (c === 0x22) {
          let j = i + 1;
          let escaped = false;
          for (; j < text.length; j++) {
            const d = text.charCodeAt(j);
            if (d === 0x5c) (escaped = true), j++;
            else if (d === 0x22) break;
          }
          if (depth === 1 && expectKey) {
            const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
            if (seen.has(key)) return key;
            seen.add(key);
            expectKey = false;
          }
          i = j;
        } else if (c === 0x7b || c === 0x5b) depth++, depth === 1 && (expectKey = true);
        else if (c === 0x7d || c === 0x5d) depth--;
        else if (c === 0x2c && depth === 1) expectKey = true;
      }
      return undefined;
    };
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 69069 + 1) % 2 ** 32), Math.floor((seed / 2 ** 32) * n));
    const pieces = ["a", "b", "ab", '"', "\\", "\\\\", "{", "}", "[", "]", ",", ":", "小", "\u0061", "\"", " "];
    const str = () => Array.from({ length: rnd(5) }, () => pieces[rnd(pieces.length)]).join("");
    const key = () => ["a", "b", "ab", '\\u0061', "a\\\\", '\\"'][rnd(6)]!;
    const value = (d: number): string => {
      const k = rnd(d > 2 ? 3 : 5);
      if (k === 0) return String(rnd(100));
      if (k === 1) return JSON.stringify(str());
      if (k === 2) return "null";
      if (k === 3) return `[${Array.from({ length: rnd(3) }, () => value(d + 1)).join(",")}]`;
      return `{${Array.from({ length: rnd(3) }, () => `"${key()}" : ${value(d + 1)}`).join(" ,")}}`;
    };
    let found = 0;
    for (let n = 0; n < 3000; n++) {
      const line = `{${Array.from({ length: 1 + rnd(4) }, () => `"${key()}":${value(1)}`).join(",")}}`;
      JSON.parse(line); // well-formed, as repeatedKey is given
      const want = walk(line);
      if (want !== undefined) found++;
      expect(repeatedKey(line), line).toBe(want);
      expect(namesAFieldTwice(line, JSON.parse(line) as object), line).toBe(want !== undefined);
    }
    expect(found).toBeGreaterThan(500); // both answers were asked for
  });

  it("only when asked: the line is reported as duplicate-key and reading goes on", async () => {
    const input = '{"a":1,"a":2}\n{"a":1}\n';
    expect(outline(await collect(bytes(input), { format: "jsonl", rejectDuplicateKeys: true }))).toEqual([[1, "ERR_IMPORT_FORMAT/duplicate-key"], [2, "ok"]]);
    expect(outline(await collect(bytes(input), { format: "jsonl" }))).toEqual([[1, "ok"], [2, "ok"]]);
  });
});
