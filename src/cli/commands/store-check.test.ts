/**
 * `jpki store check`, driven in-process on a SQLite workspace holding a key certified to two residents as an older
 * jpki left it (a row it inserted without certified_key, filled by the upgrade): exit 22 and the key listed; once
 * one of them is revoked, clean.
 */
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../errors.js";
import { keyed } from "../../store/contract.js";
import { certifiedKeyOf } from "../../store/rows.js";
import { Workspace } from "../../workspace/workspace.js";
import { EXIT_KEYS_SHARED } from "../exit-codes.js";
import { runInProcess } from "../../../test/cli-in-process.js";

const jpki = (args: string[], cwd: string) => runInProcess(args, { env: {}, cwd });

describe("jpki store check", () => {
  it("exits 22 listing a key live certificates certify to two residents (an older writer's, filled by the upgrade), and 0, clean, once one of them is revoked", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-store-check-")), "ws");
    const ws = Workspace.create(root);
    const notAfter = Date.now() + 365 * 86_400_000;
    const mine = { ...keyed("0b01", "r1", 0, "one key, two residents"), notAfter: new Date(notAfter) };
    const theirs = { ...keyed("0b02", "r2", 0, "one key, two residents"), notAfter: new Date(notAfter) };
    try {
      await ws.store.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from("3000", "hex"), encryptedKeyPem: "pem", keyId: Buffer.from([1]), createdAt: new Date(0) });
      await ws.store.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: mine.fourItems, status: "active" as const })));
      expect(await ws.store.commitIssuances([mine])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      await ws.close();
    }
    const clean = await jpki(["--workspace", root, "store", "check"], root);
    expect(clean).toMatchObject({ code: 0, stderr: "" });
    expect(clean.stdout).toMatch(/^clean: no public key is certified to more than one resident/);
    // What an older jpki inserted unchecked (the key-in-use check refuses it now), its key filled by the upgrade.
    const db = new Database(join(root, "jpki.db"));
    db.prepare(
      "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after) VALUES ('r2', '0b02', '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', ?)",
    ).run(notAfter);
    db.prepare(
      "INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix, certified_key) VALUES ('0b02', '13-sig', 'signature', 'r2', '131016', 0, ?, 0, ?, NULL, ?, ?)",
    ).run(notAfter, theirs.der, createHash("sha256").update(theirs.der).digest().subarray(0, 8), certifiedKeyOf(theirs.der));
    db.close();
    const found = await jpki(["--workspace", root, "--json", "store", "check"], root);
    expect(found.code).toBe(EXIT_KEYS_SHARED);
    expect(found.stderr).toBe("");
    const out = JSON.parse(found.stdout) as { clean: boolean; sharedKeys: Array<{ certifiedKey: string; certificates: Array<{ serial: string; residentCode: string }> }> };
    expect(out).toMatchObject({ clean: false, sharedKeys: [{ certifiedKey: certifiedKeyOf(mine.der)!.toString("hex"), certificates: [{ serial: "0b01", residentCode: "r1" }, { serial: "0b02", residentCode: "r2" }] }] });
    const text = await jpki(["--workspace", root, "store", "check"], root);
    expect(text.code).toBe(22);
    expect(text.stdout).toMatch(/^1 public key is certified to more than one resident/);
    expect(text.stdout).toMatch(/13-sig 0b02 resident r2 signature/);
    // No error exits 22: a script can tell the finding from a failure.
    expect(Object.values(ERROR_CODES).map((v) => v.exit)).not.toContain(EXIT_KEYS_SHARED);
    expect(await jpki(["--workspace", root, "revoke", "--serial", "0b02", "--reason", "key-compromise"], root)).toMatchObject({ code: 0 });
    expect(await jpki(["--workspace", root, "store", "check"], root)).toMatchObject({ code: 0, stdout: expect.stringMatching(/^clean/) });
  });
});
