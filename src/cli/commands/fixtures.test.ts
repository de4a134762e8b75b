/** `jpki fixtures generate` writes owner-only files (0600) and directories (0700) whatever the umask. */
import { chmodSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { fileMode, underUmaskZero } from "../../../test/umask.js";
import type { Io } from "../output.js";
import { run } from "../program.js";

const mode = fileMode;
underUmaskZero();

function io(cwd: string): Io & { out: () => string } {
  let stdout = "";
  return { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: () => true }, env: {}, cwd, out: () => stdout };
}

describe("jpki fixtures generate under umask 0", () => {
  it("makes the output directory (and its parents) 0700 and residents.jsonl and notices.jsonl 0600", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-fixtures-"));
    const out = join(root, "a", "data");
    const o = io(root);
    expect(await run(["fixtures", "generate", "--residents", "5", "--notices", "3", "--seed", "7", "-o", "a/data", "--json"], o)).toBe(0);
    expect(mode(join(root, "a"))).toBe(0o700);
    expect(mode(out)).toBe(0o700);
    expect(readdirSync(out).sort()).toEqual(["notices.jsonl", "residents.jsonl"]); // no temporary file left
    for (const f of ["residents.jsonl", "notices.jsonl"]) expect(mode(join(out, f)), f).toBe(0o600);
    expect(readFileSync(join(out, "residents.jsonl"), "utf8").trim().split("\n")).toHaveLength(5);
    expect(readFileSync(join(out, "notices.jsonl"), "utf8").trim().split("\n")).toHaveLength(3);
    expect(JSON.parse(o.out())).toMatchObject({ residents: { count: 5 }, notices: { count: 3 } });
  });

  it("says when the residents could not take as many notices as asked (deaths and removals close records)", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-fixtures-"));
    const o = io(root);
    expect(await run(["fixtures", "generate", "--residents", "3", "--notices", "500", "--seed", "7", "-o", "d"], o)).toBe(0);
    const written = readFileSync(join(root, "d", "notices.jsonl"), "utf8").trim().split("\n").length;
    expect(written).toBeLessThan(500);
    expect(o.out()).toContain(`500 notices were asked for, but 3 residents take only ${written}`);
    const j = io(root);
    expect(await run(["fixtures", "generate", "--residents", "3", "--notices", "500", "--seed", "7", "-o", "e", "--json"], j)).toBe(0);
    expect(JSON.parse(j.out())).toMatchObject({ notices: { count: written }, noticesRequested: 500 });
  });

  it("run again without --notices, removes the notices.jsonl an earlier run wrote for other residents, and says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-fixtures-"));
    expect(await run(["fixtures", "generate", "--residents", "4", "--notices", "2", "--seed", "1", "-o", "."], io(dir))).toBe(0);
    const o = io(dir);
    expect(await run(["fixtures", "generate", "--residents", "4", "--seed", "2", "-o", ".", "--json"], o)).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(["residents.jsonl"]);
    expect(JSON.parse(o.out())).toMatchObject({ notices: null, staleNoticesRemoved: join(dir, "notices.jsonl") });
  });

  it("replaces an earlier run's files readable by others with owner-only ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-fixtures-"));
    for (const f of ["residents.jsonl", "notices.jsonl"]) {
      writeFileSync(join(dir, f), "old\n");
      chmodSync(join(dir, f), 0o644);
    }
    expect(await run(["fixtures", "generate", "--residents", "4", "--notices", "2", "-o", ".", "--json"], io(dir))).toBe(0);
    for (const f of ["residents.jsonl", "notices.jsonl"]) {
      expect(mode(join(dir, f)), f).toBe(0o600);
      expect(readFileSync(join(dir, f), "utf8")).not.toContain("old");
    }
  });
});
