import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { storeContract } from "./contract.js";
import { SCHEMA_VERSION, SqliteStore } from "./sqlite.js";

const fresh = () => Promise.resolve(SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db"), { create: true }));

storeContract("sqlite", fresh);

describe("SqliteStore specifics", () => {
  it("refuses files that are not jpki stores, without touching them", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    writeFileSync(join(dir, "garbage.db"), "x".repeat(5000));
    expect(() => SqliteStore.open(join(dir, "garbage.db"))).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(() => SqliteStore.open(join(dir, "absent.db"))).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_MISSING" }));
  });

  it("migrates a new file to the current schema version and reopens it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    await s.close();
    const again = SqliteStore.open(path);
    expect(await again.countResidents()).toBe(0);
    await again.close();
    expect(SCHEMA_VERSION).toBeGreaterThanOrEqual(1);
    expect(isJpkiError(new Error("x"))).toBe(false);
  });
});
