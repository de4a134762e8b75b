import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { SqliteStore } from "../store/sqlite.js";
import type { CaRecord, IssuanceRecord } from "../store/types.js";
import { revokeAllIssuedBy } from "./revocation.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const ca = (id: string): CaRecord => ({ id, prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
const cert = (serial: string, caId: string, residentCode: string, notAfter: number): IssuanceRecord => ({
  serial, caId, type: "signature", residentCode, municipalityCode: "131016", fourItems: items,
  notBefore: new Date(1000), notAfter: new Date(notAfter), issuedAt: new Date(Number.parseInt(serial, 16)), der: Buffer.from(serial, "hex"),
});

describe("revokeAllIssuedBy", () => {
  it("revokes every unexpired, unrevoked certificate of one CA, pages past expired ones, and a re-run revokes none", async () => {
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-revall-")), "jpki.db"), { create: true });
    await s.putCa(ca("13-sig"));
    await s.putCa(ca("27-sig"));
    const codes = ["r1", "r2", "r3", "r4", "r5", "r6", "r7"];
    await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    const at = new Date(Date.UTC(2027, 0, 1));
    const live = Date.UTC(2030, 0, 1);
    const gone = Date.UTC(2026, 0, 1);
    // expired ones first (oldest): with a page of one, each query must still reach past them
    await s.commitIssuances([
      cert("01", "13-sig", "r1", gone), cert("02", "13-sig", "r2", gone), cert("03", "13-sig", "r3", live),
      cert("04", "13-sig", "r4", live), cert("05", "13-sig", "r5", live), cert("06", "27-sig", "r6", live),
    ]);
    await s.revoke({ serial: "04", reason: 1, revokedAt: new Date(Date.UTC(2026, 5, 1)), source: "manual:loss" });
    const progress: number[] = [];
    const r = await revokeAllIssuedBy(s, "13-sig", { reason: "ca-compromise", at, pageSize: 1, onProgress: (n) => progress.push(n) });
    expect(r).toEqual({ caId: "13-sig", revoked: 2, expired: 2, alreadyRevoked: 0 });
    expect(progress.at(-1)).toBe(2);
    const rows = await s.findCertificates({ status: "all", limit: 100 });
    const state = Object.fromEntries(rows.map((c) => [c.serial, c.revocation ? `${c.revocation.reason}:${c.revocation.source}` : "valid"]));
    expect(state).toEqual({ "01": "valid", "02": "valid", "03": "2:manual:ca-compromise", "04": "1:manual:loss", "05": "2:manual:ca-compromise", "06": "valid" });
    expect(await revokeAllIssuedBy(s, "13-sig", { reason: "ca-compromise", at, pageSize: 1 })).toEqual({ caId: "13-sig", revoked: 0, expired: 2, alreadyRevoked: 0 });
    await expect(revokeAllIssuedBy(s, "99-sig", { reason: "ca-compromise", at })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_UNKNOWN"));
    await s.close();
  });
});
