/**
 * The audit log's part of the store contract (store/audit-log.ts): every write operation appends its record in
 * its own transaction, a failed one appends none, the chain links, and no record holds the four items.
 * Called from each backend's test file, as contract.ts is.
 */
import { describe, expect, it } from "vitest";
import { verifyAuditLog } from "../audit/verify.js";
import { isJpkiError } from "../errors.js";
import { GENESIS_HASH, auditHash, type AuditRecord } from "./audit-log.js";
import type { CaRecord, IssuanceRecord, Store } from "./types.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const ca: CaRecord = { id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };
const resident = (residentCode: string) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const });
const cert = (serial: string, residentCode: string, issuedAt: number): IssuanceRecord => ({
  serial, caId: "13-sig", type: "signature", residentCode, municipalityCode: "131016", fourItems: items,
  notBefore: new Date(issuedAt), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(issuedAt), der: Buffer.from(serial, "hex"),
});

async function all(s: Store, q?: Parameters<Store["auditRecords"]>[0]): Promise<AuditRecord[]> {
  const out: AuditRecord[] = [];
  for await (const r of s.auditRecords(q)) out.push(r);
  return out;
}

export function auditContract(name: string, make: () => Promise<Store>): void {
  describe(`Store audit log: ${name}`, () => {
    it("appends one chained record per operation, in the operation's transaction, naming who and when — and never the four items", async () => {
      const s = await make();
      s.setAuditContext({ actor: "os:tester", now: () => new Date(Date.UTC(2026, 0, 2)) });
      await s.putCa(ca);
      await s.upsertResidents([resident("r1"), resident("r2")]);
      await s.commitIssuances([cert("01aa", "r1", 1000), cert("01bb", "r1", 2000), cert("01cc", "r2", 3000)]);
      await s.revoke({ serial: "01cc", revokedAt: new Date(4000), reason: 1, source: "manual" });
      await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["r1"] }, () => ({
        commit: { at: new Date(5000), notices: [{ noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: "{}", status: "applied", revocations: 1 }], sequences: [{ residentCode: "r1", last: 1 }], revocations: [{ serial: "01bb", reason: 1, source: "notice:n1", residentCode: "r1" }], relinks: [], dirtyCas: ["13-sig"] },
      }));
      const res = await s.reserveCrl("13-sig", new Date(6000), new Date(7000));
      await s.publishCrl({ caId: "13-sig", number: res.number, entries: 3, path: "crl/13-sig.crl", sha256: "ab" }, () => undefined);
      await s.putOcspResponder({ caId: "13-sig", serial: "0f", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", notBefore: new Date(0), notAfter: new Date(9000) });
      await s.putVerifier({ id: "v-1", name: "Example Bank", kind: "private", tokenSha256: "aa".repeat(32), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined });
      await s.appendDisclosures([{ verifierId: "v-1", serial: "01aa", issuer: "13-sig", residentCode: "r1", purpose: "signature", legalBasis: undefined, at: new Date(8000), validationTime: new Date(8000), answer: "valid", itemsDisclosed: true }]);
      await s.grantConsent({ residentCode: "r1", verifierId: "v-1", at: new Date(8500) });
      await s.withdrawConsent({ residentCode: "r1", verifierId: "v-1", at: new Date(8600) });
      await s.revokeVerifier("v-1", new Date(9000));
      await s.applyToRegistry((read) => ({ put: [{ ...read("r2")!, fourItems: { ...items, address: "東京都港区芝公園４丁目２番８号" }, noticeSequence: 1 }], remove: [], result: undefined }));
      await s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "pem2" }]);
      const log = await all(s);
      expect(log.map((r) => r.action)).toEqual([
        "ca.create", "registry.load", "cert.issue", "cert.revoke", "notice.batch", "crl.publish", "ocsp-signer.publish", "verifier.register",
        "verifier.validate-query", "consent.grant", "consent.withdraw", "verifier.revoke", "registry.change", "ca.rewrap",
      ]);
      expect(log.map((r) => r.seq)).toEqual(log.map((_, i) => i + 1));
      // chained: each names the previous one's hash, and hashes its own fields
      log.forEach((r, i) => {
        expect(r.prevHash).toBe(i === 0 ? GENESIS_HASH : log[i - 1]!.hash);
        expect(auditHash(r)).toBe(r.hash);
      });
      expect(log[0]).toMatchObject({ actor: "os:tester", subject: "13-sig", at: new Date(Date.UTC(2026, 0, 2)) });
      // revocations carry their cause and source: the supersession inside the issuance, the manual one, the notice's
      expect(JSON.parse(log[2]!.detail)).toMatchObject({ certificates: [{ serial: "01aa" }, { serial: "01bb" }, { serial: "01cc" }], revoked: [{ serial: "01aa", reason: 4, source: "superseded:01bb" }] });
      expect(JSON.parse(log[3]!.detail)).toMatchObject({ reason: 1, source: "manual", ca: "13-sig" });
      expect(log[3]!.subject).toBe("01cc");
      expect(JSON.parse(log[4]!.detail)).toMatchObject({ notices: 1, applied: 1, revoked: 1, revocations: [{ serial: "01bb", reason: 1, source: "notice:n1" }] });
      // a verifier's query is recorded as the verifier
      expect(log[8]).toMatchObject({ actor: "verifier:v-1", subject: "v-1" });
      expect(await s.auditHead()).toEqual(log[log.length - 1]);
      expect((await verifyAuditLog(s)).ok).toBe(true);
      // no four items and no resident code in any field of any record
      const text = JSON.stringify(log);
      for (const secret of [items.name, items.address, items.birthDate, "東京都港区", "\"r1\"", "\"r2\""]) expect(text).not.toContain(secret);
      await s.close();
    });

    it("leaves no record of an operation that failed or rolled back", async () => {
      const s = await make();
      await s.putCa(ca);
      await expect(s.putCa(ca)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_EXISTS"));
      await expect(s.revoke({ serial: "ff", revokedAt: new Date(1), reason: 1, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CERT_UNKNOWN"));
      await expect(s.revokeVerifier("v-none", new Date(1))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_VERIFIER_UNKNOWN"));
      await expect(s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "x" }, { id: "99-sig", encryptedKeyPem: "x" }])).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_UNKNOWN"));
      const res = await s.reserveCrl("13-sig", new Date(6000), new Date(7000));
      await expect(s.publishCrl({ caId: "13-sig", number: res.number, entries: 0, path: "p", sha256: "ab" }, () => { throw new Error("disk full"); })).rejects.toThrow();
      // a commit that decides nothing changes nothing: no record either
      await s.upsertResidents([resident("r1")]);
      await s.applyToRegistry(() => ({ put: [], remove: ["r1"], result: undefined }));
      expect(await s.commitIssuances([cert("02aa", "r1", 1)])).toEqual([{ status: "stale", why: "resident-gone" }]);
      expect((await all(s)).map((r) => r.action)).toEqual(["ca.create", "registry.load", "registry.change"]);
      await s.close();
    });

    it("is carried by a store copy (dump → load) record for record, so the copy verifies and chains on", async () => {
      const s = await make();
      await s.putCa(ca);
      await s.upsertResidents([resident("r1")]);
      await s.commitIssuances([cert("03aa", "r1", 1000)]);
      const source = await all(s);
      const t = await make();
      await t.load(s.dump({ chunkSize: 2 }));
      expect(await all(t)).toEqual(source);
      expect((await verifyAuditLog(t)).ok).toBe(true);
      const next = await t.appendAudit({ action: "store.restore", subject: "" });
      expect(next).toMatchObject({ seq: source.length + 1, prevHash: source[source.length - 1]!.hash });
      expect((await verifyAuditLog(t)).ok).toBe(true);
      await s.close();
      await t.close();
    });

    it("seals records whose text needs escaping or is not ASCII so that the chain verifies", async () => {
      // PostgreSQL hashes in the database (auditHashTail): its bytes must be what auditHash hashes in JavaScript.
      const s = await make();
      const odd = 'é 住所 😀 "q" \\ / \u0001\n\t\u007f \u2028 \ufffd';
      s.setAuditContext({ actor: `os:${odd}` });
      await s.appendAudit({ action: "auth.failure", subject: odd, detail: { [odd]: odd, list: [odd, 1.5, -0, 1e21] } });
      await s.appendAudit({ action: "x", subject: "" });
      const recs = await all(s);
      expect(recs.map((r) => r.subject)).toEqual([odd, ""]);
      for (const r of recs) expect(r.hash).toBe(auditHash(r));
      expect((await verifyAuditLog(s)).ok).toBe(true);
      await s.close();
    });

    it("seals fields holding lone surrogates (JSON.parse makes them from \\ud800) as they are stored, so an honest log verifies", async () => {
      // A JavaScript string may hold a surrogate that is not half of a pair; UTF-8 cannot, and both stores write
      // U+FFFD in its place. Hashed as given, the record's hash would not be the hash of what was stored.
      const s = await make();
      const lone = JSON.parse('"a\\ud800b\\udc00 𠮷 \\udbff"') as string;
      s.setAuditContext({ actor: `verifier:${lone}` });
      await s.appendAudit({ action: `x.${lone}`, subject: lone, detail: { [lone]: lone } });
      await s.appendAudit({ action: "x", subject: "𠮷野家" });
      const recs = await all(s);
      const stored = "a\ufffdb\ufffd 𠮷 \ufffd";
      expect(recs.map((r) => [r.actor, r.action, r.subject])).toEqual([[`verifier:${stored}`, `x.${stored}`, stored], ["verifier:" + stored, "x", "𠮷野家"]]);
      // The detail is JSON: its lone surrogates are escaped (\ud800), so it keeps them.
      expect(JSON.parse(recs[0]!.detail)).toEqual({ [lone]: lone });
      for (const r of recs) expect(r.hash).toBe(auditHash(r));
      expect(await verifyAuditLog(s)).toMatchObject({ ok: true, records: 2 });
      await s.close();
    });

    it("appends a record of its own (failures, restores), filters and pages the log", async () => {
      const s = await make();
      s.setAuditContext({ actor: "os:alice" });
      const first = await s.appendAudit({ action: "auth.failure", subject: "13-sig", detail: { code: "ERR_PASSPHRASE_WRONG" } });
      expect(first).toMatchObject({ seq: 1, actor: "os:alice", action: "auth.failure", detail: '{"code":"ERR_PASSPHRASE_WRONG"}', prevHash: GENESIS_HASH });
      s.setAuditContext({ actor: "os:bob", now: () => new Date(Date.UTC(2027, 0, 1)) });
      // past one read page (500), so the keyset paging is exercised
      for (let i = 0; i < 510; i++) await s.appendAudit({ action: i % 2 ? "x.odd" : "x.even", subject: `s${i}` });
      expect((await all(s)).length).toBe(511);
      expect((await all(s, { actor: "os:alice" })).map((r) => r.seq)).toEqual([1]);
      expect((await all(s, { action: "x.odd" })).length).toBe(255);
      expect((await all(s, { subject: "s7" })).map((r) => r.action)).toEqual(["x.odd"]);
      expect((await all(s, { since: new Date(Date.UTC(2027, 0, 1)), limit: 3 })).map((r) => r.seq)).toEqual([2, 3, 4]);
      expect((await all(s, { afterSeq: 509 })).map((r) => r.seq)).toEqual([510, 511]);
      expect((await verifyAuditLog(s)).ok).toBe(true);
      await s.close();
    });
  });
}
