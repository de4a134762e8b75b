/**
 * DirectoryWriter: files written on threads of their own, the directory synced once per group. Each test looks at
 * what is on disk afterwards: every file whole, with its mode, no temporary left; a failed write is that file's
 * error alone.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { DirectoryWriter } from "./directory-writer.js";

const fresh = () => mkdtempSync(join(tmpdir(), "jpki-dirwriter-"));

describe("DirectoryWriter", () => {
  test("writes many files at once, each whole and owner-only, and leaves no temporary file", async () => {
    const dir = fresh();
    const w = new DirectoryWriter(dir, { threads: 3 });
    const names = Array.from({ length: 200 }, (_, i) => `${i.toString(16)}.pem`);
    await Promise.all(names.map((n, i) => w.write(n, `-----BEGIN ${n}-----\n${"x".repeat(i * 7)}\n`)));
    await w.close();
    expect(readdirSync(dir).sort()).toEqual([...names].sort());
    names.forEach((n, i) => {
      expect(readFileSync(join(dir, n), "utf8")).toBe(`-----BEGIN ${n}-----\n${"x".repeat(i * 7)}\n`);
      expect(statSync(join(dir, n)).mode & 0o777).toBe(0o600);
    });
  });

  test("a write that fails rejects with node's error and code; the others are written", async () => {
    const dir = fresh();
    mkdirSync(join(dir, "taken.pem")); // a directory where the file should go: the rename fails
    const w = new DirectoryWriter(dir, { mode: 0o644 });
    const results = await Promise.allSettled([w.write("a.pem", "a"), w.write("taken.pem", "t"), w.write("b.pem", "b")]);
    await w.close();
    expect(results[0]).toEqual({ status: "fulfilled", value: undefined });
    expect(results[2]).toEqual({ status: "fulfilled", value: undefined });
    expect(results[1]).toMatchObject({ status: "rejected", reason: { code: expect.stringMatching(/^E(ISDIR|EXIST|NOTEMPTY)$/) } });
    expect(readdirSync(dir).sort()).toEqual(["a.pem", "b.pem", "taken.pem"]);
    expect(statSync(join(dir, "a.pem")).mode & 0o777).toBe(0o644);
    expect(readFileSync(join(dir, "b.pem"), "utf8")).toBe("b");
  });

  test("refuses a write after close", async () => {
    const w = new DirectoryWriter(fresh());
    await w.close();
    await expect(w.write("a.pem", "a")).rejects.toThrow(/closed/);
  });
});
