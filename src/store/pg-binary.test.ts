import pg from "pg";
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usePostgres } from "../../test/use-postgres.js";
import { isJpkiError } from "../errors.js";
import { BinaryRows, CopyIn, CopyOut, boolArray, byteaArray, int4Array, int8Array, textArray, writeInt8 } from "./pg-binary.js";

const server = usePostgres();
let c: pg.Client;
beforeAll(async () => {
  c = new pg.Client({ connectionString: await server.createDatabase() });
  await c.connect();
  await c.query("CREATE TABLE t (s text, n bigint NOT NULL, b bytea, u text COLLATE \"C\" UNIQUE)");
});
afterAll(async () => {
  await c?.end();
});

async function copyIn(text: string, data: Buffer): Promise<number> {
  const q = new CopyIn(text, data);
  c.query(q);
  return q.done;
}

describe("binary COPY FROM STDIN (BinaryRows, CopyIn)", () => {
  it("stores every field as written: UTF-8 text of any width, empty and null values, int8 at both ends, bytea with every octet", async () => {
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const rows = [
      { s: "山田　太郎".repeat(40), n: 0n, b: bytes, u: "a" },
      { s: "𠮷野家 \\ \" ' \t\n", n: -(2n ** 63n), b: Buffer.alloc(0), u: "b" },
      { s: "", n: 2n ** 63n - 1n, b: null, u: null },
      { s: null, n: 1_700_000_000_000n, b: Buffer.from([0]), u: "c" },
    ];
    // A hint far too small: the buffer must grow, not cut a field.
    const w = new BinaryRows(1);
    for (const r of rows) {
      w.row(4).textOrNull(r.s).int8(r.n);
      if (r.b) w.bytea(r.b);
      else w.null();
      w.textOrNull(r.u);
    }
    expect(await copyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", w.end())).toBe(4);
    const got = (await c.query<{ s: string | null; n: string; b: Buffer | null; u: string | null }>("SELECT s, n::text AS n, b, u FROM t ORDER BY n")).rows;
    const want = [...rows].sort((x, y) => (x.n < y.n ? -1 : 1)).map((r) => ({ s: r.s, n: r.n.toString(), b: r.b, u: r.u }));
    expect(got).toEqual(want);
    await c.query("TRUNCATE t");
  });

  it("sends the rows in CopyData messages of at most the chunk size, rows spanning them, and the server takes them whole", async () => {
    const w = new BinaryRows();
    for (let i = 0; i < 50; i++) w.row(4).text("山".repeat(100 + i)).int8(i).bytea(Buffer.alloc(37, i)).null();
    const data = w.end();
    // What node-postgres's connection is asked to send: no message over the chunk size, nothing lost or reordered.
    const sent: Buffer[] = [];
    new CopyIn("COPY t FROM STDIN", data, 1000).handleCopyInResponse({ sendCopyFromChunk: (b: Buffer) => sent.push(Buffer.from(b)), endCopyFrom: () => undefined } as never);
    expect(sent.length).toBe(Math.ceil(data.length / 1000));
    expect(Math.max(...sent.map((b) => b.length))).toBe(1000);
    expect(Buffer.concat(sent).equals(data)).toBe(true);
    const q = new CopyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", data, 1000);
    c.query(q);
    expect(await q.done).toBe(50);
    const got = (await c.query<{ s: string; n: string; b: Buffer }>("SELECT s, n::text AS n, b FROM t ORDER BY n::int")).rows;
    expect(got.map((r) => r.s.length)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    expect(got[49]!.b.equals(Buffer.alloc(37, 49))).toBe(true);
    await c.query("TRUNCATE t");
  });

  it("rejects a COPY the server refuses (a duplicate key) with the server's error, copies nothing, and the connection goes on", async () => {
    const w = new BinaryRows();
    w.row(4).text("x").int8(1).null().text("dup");
    w.row(4).text("y").int8(2).null().text("dup");
    await expect(copyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", w.end())).rejects.toMatchObject({ code: "23505" });
    expect((await c.query("SELECT count(*)::int AS n FROM t")).rows[0].n).toBe(0);
    // A statement the server refuses before any data is asked for settles too.
    await expect(copyIn("COPY no_such_table FROM STDIN (FORMAT binary)", new BinaryRows().end())).rejects.toMatchObject({ code: "42P01" });
  });

  it("reads back what it wrote through COPY TO STDOUT (CopyOut)", async () => {
    const w = new BinaryRows();
    w.row(4).text("z").int8(42).bytea(Buffer.from("DER")).text("q");
    await copyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", w.end());
    const out = new CopyOut("COPY (SELECT s, n, b, u FROM t) TO STDOUT (FORMAT binary)");
    c.query(out);
    const stream = Buffer.concat(await out.done);
    // Header (19 octets), then the row exactly as BinaryRows encodes it, then the trailer.
    expect(stream.subarray(19)).toEqual(new BinaryRows().row(4).text("z").int8(42).bytea(Buffer.from("DER")).text("q").end().subarray(19));
    await c.query("TRUNCATE t");
  });
});

describe("binary array parameters (textArray, int8Array)", () => {
  it("arrive as the arrays written: UTF-8 of any width, quotes and backslashes unescaped, nulls, and the empty array", async () => {
    const texts = ["山田　太郎".repeat(50), '{"a":"b\\c"}', "", null, "𠮷", "NULL", ",", undefined];
    const r = await c.query<{ t: Array<string | null>; n: number; e: string[]; nulls: number }>(
      "SELECT $1::text[] AS t, cardinality($1::text[]) AS n, $2::text[] AS e, (SELECT count(*) FROM unnest($1::text[]) x WHERE x IS NULL)::int AS nulls",
      [textArray(texts), textArray([])],
    );
    expect(r.rows[0]).toEqual({ t: texts.map((t) => t ?? null), n: texts.length, e: [], nulls: 2 });
  });

  it("carries int8 at both ends, and is refused where the statement wants another element type", async () => {
    const nums = [0n, -(2n ** 63n), 2n ** 63n - 1n, 1_700_000_000_000n];
    const r = await c.query<{ t: string[] }>("SELECT array(SELECT x::text FROM unnest($1::bigint[]) x) AS t", [int8Array(nums)]);
    expect(r.rows[0]!.t).toEqual(nums.map(String));
    expect((await c.query("SELECT cardinality($1::bigint[]) AS n", [int8Array([])])).rows[0].n).toBe(0);
    await expect(c.query("SELECT $1::int[]", [int8Array([1])])).rejects.toThrow(/array element type 20 \(bigint\) instead of expected 23/);
  });

  it("carries int4 at both ends", async () => {
    const nums = [0, -(2 ** 31), 2 ** 31 - 1, 4];
    const r = await c.query<{ t: number[] }>("SELECT $1::int[] AS t", [int4Array(nums)]);
    expect(r.rows[0]!.t).toEqual(nums);
  });

  it("carries bytea with nulls, empty elements and the empty array", async () => {
    const values = [Buffer.from([0, 0xff, 0x30]), undefined, Buffer.alloc(0), new Uint8Array([1, 2]), Buffer.alloc(70_000, 7)];
    const r = await c.query<{ b: Array<Buffer | null>; e: number | null }>("SELECT $1::bytea[] AS b, cardinality($2::bytea[]) AS e", [byteaArray(values), byteaArray([])]);
    expect(r.rows[0]!.b).toEqual(values.map((v) => (v === undefined ? null : Buffer.from(v))));
    expect(r.rows[0]!.e).toBe(0);
    for (const v of [null, "0a", [1], 5]) unencodable(() => byteaArray([Buffer.alloc(1), v as unknown as Uint8Array]));
  });

  it("carries booleans", async () => {
    const r = await c.query<{ b: boolean[] }>("SELECT $1::boolean[] AS b", [boolArray([true, false, false, true])]);
    expect(r.rows[0]!.b).toEqual([true, false, false, true]);
  });
});

/** What a binary writer throws for a value its type cannot hold: ours, naming no text value. */
function unencodable(f: () => unknown): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(isJpkiError(thrown, "ERR_INTERNAL"), String(thrown)).toBe(true);
}

describe("hostile values, round trip through the server", () => {
  it("text[]: one element, only nulls, non-BMP, 1 MB elements and 100,000 elements arrive as written", async () => {
    const big = "𠮷é山".repeat(120_000); // ≈ 1.1 MB of UTF-8, 4, 2 and 3 octets a character
    const many = Array.from({ length: 100_000 }, (_, i) => (i % 7 === 0 ? null : `k${i}`));
    const r = await c.query<{ one: string[]; nulls: null[]; kanji: number; big: string; n: number; nn: number; last: string }>(
      `SELECT $1::text[] AS one, $2::text[] AS nulls, length(($3::text[])[1]) AS kanji, md5(($4::text[])[2]) AS big,
         cardinality($5::text[]) AS n, (SELECT count(*) FROM unnest($5::text[]) x WHERE x IS NULL)::int AS nn, ($5::text[])[100000] AS last`,
      [textArray(["x"]), textArray([null, undefined]), textArray(["𠮷"]), textArray([null, big, big]), textArray(many)],
    );
    expect(r.rows[0]).toEqual({ one: ["x"], nulls: [null, null], kanji: 1, big: createHash("md5").update(big).digest("hex"), n: 100_000, nn: many.filter((x) => x === null).length, last: "k99999" });
  });

  it("text UTF-8 cannot carry: NUL is refused by the server (as the text format was), a lone surrogate arrives as U+FFFD (as it did)", async () => {
    await expect(c.query("SELECT $1::text[]", [textArray(["a\0b"])])).rejects.toMatchObject({ code: "22021" });
    await expect(c.query("SELECT $1::text[]", [["a\0b"]])).rejects.toMatchObject({ code: "22021" });
    const lone = "a\ud800b\udc00";
    const r = await c.query<{ bin: string[]; txt: string[] }>("SELECT $1::text[] AS bin, $2::text[] AS txt", [textArray([lone]), [lone]]);
    expect(r.rows[0]).toEqual({ bin: ["a\ufffdb\ufffd"], txt: ["a\ufffdb\ufffd"] });
  });

  it("a text element that is not a string is ours to refuse", () => {
    for (const v of [5, {}, ["a"], true]) unencodable(() => textArray([v as unknown as string]));
  });

  it("int8[]: ±2^53, −0, 100,000 elements; no number that is not a safe integer and no bigint out of range", async () => {
    const nums = [2 ** 53 - 1, -(2 ** 53 - 1), -0, -1, 0];
    const r = await c.query<{ t: string[] }>("SELECT $1::bigint[]::text[] AS t", [int8Array(nums)]);
    expect(r.rows[0]!.t).toEqual(["9007199254740991", "-9007199254740991", "0", "-1", "0"]);
    const many = Array.from({ length: 100_000 }, (_, i) => BigInt(i) * 3n ** 25n - 7n);
    const s = await c.query<{ n: number; sum: string }>("SELECT cardinality($1::bigint[]) AS n, (SELECT sum(x) FROM unnest($1::bigint[]) x)::text AS sum", [int8Array(many)]);
    expect(s.rows[0]).toEqual({ n: 100_000, sum: many.reduce((a, b) => a + b, 0n).toString() });
    for (const v of [1.5, NaN, Infinity, 2 ** 53, -(2 ** 53) - 2, undefined, null, "7", 2n ** 63n, -(2n ** 63n) - 1n]) unencodable(() => int8Array([0, v as number]));
  });

  it("int4[]: at both bounds; a fraction, NaN, null, undefined or a value out of range is refused, never cut to an integer", async () => {
    expect((await c.query("SELECT $1::int[] AS t", [int4Array([-(2 ** 31), 2 ** 31 - 1, -0, 1])])).rows[0].t).toEqual([-(2 ** 31), 2 ** 31 - 1, 0, 1]);
    expect((await c.query("SELECT $1::int[] AS t", [int4Array([])])).rows[0].t).toEqual([]);
    // Buffer#writeInt32BE would write 1, 0, 0, 0, 0, 0: a revocation reason of 1.5 stored as 1, a missing one as 0
    for (const v of [1.5, -0.5, NaN, undefined, null, "7", 2 ** 31, -(2 ** 31) - 1, Infinity]) unencodable(() => int4Array([1, v as number]));
  });

  it("boolean[]: only booleans (undefined, null, 1 or \"false\" was written as a boolean)", async () => {
    expect((await c.query("SELECT $1::boolean[] AS t, $2::boolean[] AS e", [boolArray([false]), boolArray([])])).rows[0]).toEqual({ t: [false], e: [] });
    for (const v of [undefined, null, 1, 0, "false"]) unencodable(() => boolArray([true, v as unknown as boolean]));
  });

  it("binary COPY: bytea of 0 octets is not NULL, 16 MB arrives whole, a 1 MB text too; NUL text is refused and copies nothing", async () => {
    const mb16 = Buffer.alloc(16 * 1024 * 1024, 0xa5);
    mb16[0] = 0;
    mb16[mb16.length - 1] = 0xff;
    const big = "住所𠮷".repeat(100_000);
    const w = new BinaryRows(16);
    w.row(4).text(big).int8(1).bytea(Buffer.alloc(0)).null();
    w.row(4).null().int8(2).bytea(mb16).text("big");
    w.row(4).text("").int8(3).null().text("");
    expect(await copyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", w.end())).toBe(3);
    const r = await c.query("SELECT n::int, s = $1 AS s, b IS NULL AS bnull, length(b) AS blen, md5(b) AS md5, u FROM t ORDER BY n", [big]);
    expect(r.rows).toEqual([
      { n: 1, s: true, bnull: false, blen: 0, md5: createHash("md5").update(Buffer.alloc(0)).digest("hex"), u: null },
      { n: 2, s: null, bnull: false, blen: mb16.length, md5: createHash("md5").update(mb16).digest("hex"), u: "big" },
      { n: 3, s: false, bnull: true, blen: null, md5: null, u: "" },
    ]);
    await c.query("TRUNCATE t");
    await expect(copyIn("COPY t (s, n, b, u) FROM STDIN (FORMAT binary)", new BinaryRows().row(4).text("ok").int8(1).null().null().row(4).text("a\0b").int8(2).null().null().end())).rejects.toMatchObject({ code: "22021" });
    expect((await c.query("SELECT count(*)::int AS n FROM t")).rows[0].n).toBe(0);
  });

  it("writes a number int8 in the octets writeBigInt64BE writes for it: both ends of the safe range, −0, the 32-bit seams, times", () => {
    const seams = [0, -0, 1, -1, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), -(2 ** 32) + 1, -(2 ** 32) - 1];
    const values = [...seams, 2 ** 53 - 1, -(2 ** 53 - 1), Date.UTC(2026, 11, 7), Date.UTC(2031, 11, 7) - 1, -Date.UTC(2026, 11, 7), 0x0123_4567_89ab];
    // and spread over the whole range, both signs (a fixed walk, not random: a failure names the same value every run)
    for (let x = 1, i = 0; i < 2000; i++, x = (x * 48271) % 2147483647) values.push(((x % 2 ? 1 : -1) * Math.floor((x / 2147483647) * 2 ** 53)) % 2 ** 53);
    for (const v of values) {
      const ours = Buffer.alloc(10, 0xaa);
      writeInt8(ours, 1, v);
      const theirs = Buffer.alloc(10, 0xaa);
      theirs.writeBigInt64BE(BigInt(v), 1);
      expect(ours.toString("hex"), String(v)).toBe(theirs.toString("hex"));
    }
    // the rows' writer and the array parameter take the same path
    expect(new BinaryRows().row(1).int8(-(2 ** 32) - 1).end().subarray(25, 33)).toEqual(Buffer.from("fffffffeffffffff", "hex"));
    expect(int8Array([2 ** 32 + 5]).subarray(24)).toEqual(Buffer.from("0000000100000005", "hex"));
  });

  it("binary COPY rows refuse what their type cannot hold: an int8 that is not a safe integer, text that is not a string, bytea that is not octets", () => {
    for (const v of [1.5, NaN, 2 ** 53, undefined, null, 2n ** 63n]) unencodable(() => new BinaryRows().row(1).int8(v as number));
    for (const v of [undefined, 5, {}]) unencodable(() => new BinaryRows().row(1).text(v as string));
    for (const v of [["a"], "DER", undefined, { length: 3 }]) unencodable(() => new BinaryRows().row(1).bytea(v as Uint8Array));
  });
});
