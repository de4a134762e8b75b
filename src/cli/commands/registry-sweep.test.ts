/**
 * `jpki registry sweep`, driven in-process on a SQLite workspace whose registry side holds issuance information
 * of every kind (store/contract.ts seedSweepFixture): the table shrinks to exactly the live rows.
 *
 * The command sweeps by the wall clock (a workspace's clock), so the fixture is laid out around it: its cut-off
 * 23 hours ago. What expired there (0e02 at it, 0e04 a second before) is inside the command's day of grace and
 * stays; what expired a year before it goes, and so do the revoked certificates' rows.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { makeResidentCode } from "../../registry/resident-code.js";
import { seedSweepFixture } from "../../store/contract.js";
import { Workspace } from "../../workspace/workspace.js";
import { runInProcess } from "../../../test/cli-in-process.js";

const HOUR = 3600_000;

const jpki = (args: string[], cwd: string) => runInProcess(args, { env: {}, cwd });

function rows(db: string): unknown[] {
  const d = new Database(db, { readonly: true });
  try {
    return d.prepare("SELECT serial FROM registry_issuances ORDER BY serial").pluck().all();
  } finally {
    d.close();
  }
}

describe("jpki registry sweep", () => {
  it("deletes expired and revoked certificates' issuance information, leaves exactly the rows live or within the day of grace, and says how many expired ones went", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-sweep-cli-")), "ws");
    const ws = Workspace.create(root);
    const codes = [1, 2, 3, 4].map((i) => makeResidentCode(`300000000${i}`)) as [string, string, string, string];
    const f = await seedSweepFixture(ws.store, codes, new Date(Date.now() - 24 * HOUR + HOUR));
    await ws.close();
    // the notice batch's revoked certificates (0e05, 0e07) still have their rows
    expect(rows(join(root, "jpki.db"))).toEqual(["0e01", "0e02", "0e03", "0e04", "0e05", "0e07", "0e08"]);
    const r = await jpki(["--workspace", root, "--json", "registry", "sweep"], root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { removed: number; expiredBefore: string; stopped: boolean };
    expect(out).toMatchObject({ removed: 1, stopped: false });
    expect(new Date(out.expiredBefore).getTime()).toBeLessThan(f.cutoff.getTime() - 1000);
    expect(rows(join(root, "jpki.db"))).toEqual(["0e01", "0e02", "0e04", "0e08"]);
    // again: nothing left to remove; the text form says so
    const again = await jpki(["--workspace", root, "registry", "sweep"], root);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^removed the issuance information \(発行情報\) of 0 certificates expired before \d{4}-/);
  });

  it("--help explains what issuance information is and why rows accumulate", async () => {
    const r = await jpki(["registry", "sweep", "--help"], tmpdir());
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("Issuance information (発行情報)");
    expect(r.stdout).toContain("Rows pile up");
    expect(r.stdout).toContain("jpki --json registry sweep");
  });
});
