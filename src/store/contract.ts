/**
 * The store contract: one behavioural suite every Store implementation must pass (SQLite now,
 * PostgreSQL next). Called from each backend's test file with a factory for a fresh, empty store.
 */
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import type { CaRecord, IssuanceRecord, Store } from "./types.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

function ca(id = "13-sig"): CaRecord {
  return { id, prefectureCode: id.slice(0, 2), purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };
}

function cert(serial: string, residentCode: string, issuedAt: number, notAfter = Date.UTC(2030, 0, 1)): IssuanceRecord {
  return {
    serial, caId: "13-sig", type: "signature", residentCode, municipalityCode: "131016", fourItems: items,
    notBefore: new Date(issuedAt), notAfter: new Date(notAfter), issuedAt: new Date(issuedAt), der: Buffer.from(serial, "hex"),
  };
}

export function storeContract(name: string, make: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    it("refuses a second CA with the same id (ERR_CA_EXISTS)", async () => {
      const s = await make();
      await s.putCa(ca());
      await expect(s.putCa(ca())).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_EXISTS"));
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig"]);
      await s.close();
    });

    it("upserts residents and counts new vs replaced, keeping Japanese text byte for byte", async () => {
      const s = await make();
      const r = { residentCode: "12345678906", municipalityCode: "131016", fourItems: items, status: "active" as const };
      expect(await s.upsertResidents([r])).toEqual({ inserted: 1, updated: 0 });
      expect(await s.upsertResidents([{ ...r, fourItems: { ...items, name: "𠮷田　花子" } }])).toEqual({ inserted: 0, updated: 1 });
      expect((await s.getResident("12345678906"))?.fourItems.name).toBe("𠮷田　花子");
      expect(await s.countResidents()).toBe(1);
      await s.close();
    });

    it("commits issuances in order and supersedes the earlier certificate of the same type", async () => {
      const s = await make();
      await s.putCa(ca());
      const sup = await s.commitIssuances([cert("01aa", "r1", 1000), cert("01bb", "r1", 2000), cert("01cc", "r2", 3000)]);
      expect(sup).toEqual([[], ["01aa"], []]);
      const first = await s.getCertificate("01aa");
      expect(first?.revocation).toEqual({ revokedAt: new Date(2000), reason: 4, source: "superseded:01bb" });
      expect((await s.findCertificates({ residentCode: "r1", status: "valid" })).map((c) => c.serial)).toEqual(["01bb"]);
      await s.close();
    });

    it("commits all or nothing: a duplicate serial rolls back the whole batch", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.commitIssuances([cert("02aa", "r1", 1000)]);
      await expect(s.commitIssuances([cert("02bb", "r2", 2000), cert("02aa", "r3", 3000)])).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE"));
      expect(await s.getCertificate("02bb")).toBeUndefined();
      await s.close();
    });

    it("revokes once; streams revoked entries in chunks, dropping long-expired ones", async () => {
      const s = await make();
      await s.putCa(ca());
      const many = Array.from({ length: 25 }, (_, i) => cert((0x100 + i).toString(16).padStart(4, "0"), `r${i}`, 1000, i === 0 ? 5000 : Date.UTC(2030, 0, 1)));
      await s.commitIssuances(many);
      for (const c of many) await s.revoke({ serial: c.serial, revokedAt: new Date(4000), reason: 1, source: "manual" });
      await expect(s.revoke({ serial: many[1]!.serial, revokedAt: new Date(4000), reason: 1, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CERT_ALREADY_REVOKED"));
      await expect(s.revoke({ serial: "ffff", revokedAt: new Date(4000), reason: 1, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CERT_UNKNOWN"));
      const chunks: number[] = [];
      const serials: string[] = [];
      for await (const c of s.revokedEntries("13-sig", { expiredBefore: new Date(6000), chunkSize: 10 })) {
        chunks.push(c.length);
        serials.push(...c.map((e) => e.serial));
      }
      expect(chunks).toEqual([10, 10, 4]);
      expect(serials).not.toContain(many[0]!.serial); // expired before the cut-off
      expect([...serials].sort()).toEqual(serials);
      await s.close();
    });

    it("reserves CRL numbers monotonically, even when one is never published", async () => {
      const s = await make();
      await s.putCa(ca());
      const t = new Date(0), n = new Date(1000);
      expect(await s.reserveCrlNumber("13-sig", t, n)).toBe(1n);
      expect(await s.reserveCrlNumber("13-sig", t, n)).toBe(2n);
      await s.publishCrl({ caId: "13-sig", number: 2n, entries: 3, path: "crl/13-sig.crl", sha256: "ab" });
      expect(await s.reserveCrlNumber("13-sig", t, n)).toBe(3n);
      expect(await s.latestCrl("13-sig")).toMatchObject({ number: 2n, entries: 3, path: "crl/13-sig.crl" });
      await s.close();
    });
  });
}
