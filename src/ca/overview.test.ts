/**
 * The CAs at a glance (overview.ts): the window of JST days ends today and is listed whole, zeros included; a
 * revocation counts on its JST day; CAs come in id order with their prefecture's name; the window is bounded.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import { SqliteStore } from "../store/sqlite.js";
import type { CaRecord } from "../store/types.js";
import { caOverview, MAX_OVERVIEW_DAYS } from "./overview.js";

const ca = (id: string): CaRecord => ({ id, prefectureCode: id.slice(0, 2), purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

describe("caOverview", () => {
  it("counts each CA's revocations per JST day over the window ending today, every day listed", async () => {
    const store = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-overview-")), "jpki.db"), { create: true });
    try {
      await store.putCa(ca("27-sig"));
      await store.putCa(ca("13-sig"));
      const serials = ["0c01", "0c02", "0c03"];
      await store.upsertResidents(serials.map((s) => ({ residentCode: `r${s}`, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      await store.commitIssuances(serials.map((serial) => ({
        serial, caId: "13-sig", type: "signature" as const, residentCode: `r${serial}`, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from(serial, "hex"),
      })));
      // 2026-03-10 08:00 JST is 2026-03-09 23:00 UTC: it counts on the 10th (JST), today.
      await store.revoke({ serial: "0c01", revokedAt: new Date("2026-03-09T23:00:00Z"), reason: 3, source: "manual" });
      await store.revoke({ serial: "0c02", revokedAt: new Date("2026-03-08T03:00:00Z"), reason: 5, source: "manual" });
      await store.revoke({ serial: "0c03", revokedAt: new Date("2026-02-01T03:00:00Z"), reason: 5, source: "manual" }); // before the window
      const o = await caOverview(store, { clock: new FixedClock("2026-03-10T01:00:00Z"), days: 7 });
      expect(o).toMatchObject({ generatedAt: "2026-03-10T01:00:00.000Z", from: "2026-03-04", to: "2026-03-10" });
      expect(o.cas.map((c) => `${c.id} ${c.prefecture}`)).toEqual(["13-sig 東京都", "27-sig 大阪府"]);
      expect(o.cas[0]!.revocationsPerDay.map((d) => `${d.day.slice(8)}:${d.count}`)).toEqual(["04:0", "05:0", "06:0", "07:0", "08:1", "09:0", "10:1"]);
      expect(o.cas[1]!.revocationsPerDay.every((d) => d.count === 0)).toBe(true);
      expect(o.cas[0]!.crls).toEqual([]); // nothing published yet
      for (const days of [0, MAX_OVERVIEW_DAYS + 1, 1.5]) await expect(caOverview(store, { clock: new FixedClock(0), days })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_USAGE"));
    } finally {
      await store.close();
    }
  });
});
