import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, type PostgresTestServer } from "../../test/postgres-server.js";
import { BinaryRows, CopyIn, CopyOut, boolArray, int4Array, int8Array, textArray } from "./pg-binary.js";

let server: PostgresTestServer;
let c: pg.Client;
beforeAll(async () => {
  server = await startPostgres();
  c = new pg.Client({ connectionString: await server.createDatabase() });
  await c.connect();
  await c.query("CREATE TABLE t (s text, n bigint NOT NULL, b bytea, u text COLLATE \"C\" UNIQUE)");
});
afterAll(async () => {
  await c?.end();
  await server?.stop();
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

  it("carries booleans", async () => {
    const r = await c.query<{ b: boolean[] }>("SELECT $1::boolean[] AS b", [boolArray([true, false, false, true])]);
    expect(r.rows[0]!.b).toEqual([true, false, false, true]);
  });
});
