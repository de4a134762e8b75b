/**
 * The rows a PostgreSQL group commit copies (postgres.ts certificateRows): laid out in one buffer sized for them
 * from the start. A buffer that grows copies every row written so far into a fresh one twice its size, whose
 * pages are each a page fault on first touch — once per group commit of 500 certificates with the flat hint
 * it had (a 1.4 KB certificate's row did not fit in it).
 */
import { describe, expect, it } from "vitest";
import { keyed } from "./contract.js";
import { certificateRows } from "./postgres.js";

describe("certificateRows", () => {
  it("writes a group commit's rows without growing its buffer: certificates of 1.4 KB with long Japanese names and addresses", () => {
    const records = Array.from({ length: 500 }, (_, i) => {
      const r = keyed((0x0a00 + i).toString(16).padStart(32, "0"), `r${i}`, 0, `key ${i}`);
      const der = Buffer.alloc(1450, i); // the size of a signature certificate (certificateRows does not parse it)
      return { ...r, der, fourItems: { ...r.fourItems, name: "山田　太郎".repeat(4), address: "東京都千代田区千代田一丁目一番一号".repeat(3) } };
    });
    const rows = certificateRows(records, new Map(records.map((r) => [r, Buffer.alloc(8, 1)])));
    expect(rows.subarray(0, 11).toString("latin1")).toBe("PGCOPY\n\xff\r\n\0");
    expect(rows.length).toBeGreaterThan(500 * 1450);
    // The buffer it was written in: the one sized at the start (a grown one is at least twice what was written before).
    expect(rows.buffer.byteLength).toBeLessThan(1.5 * rows.length);
  });
});
