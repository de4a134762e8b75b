import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { FixedClock } from "../pki/clock.js";
import { SqliteStore } from "../store/sqlite.js";
import { Workspace } from "../workspace/workspace.js";
import { applyNoticesToRegistry } from "./apply.js";
import { MAX_SEQUENCE_JUMP } from "./notice.js";
import type { RecordResult } from "./import.js";
import { makeResidentCode } from "./resident-code.js";

const NOW = new Date(Date.UTC(2026, 4, 1, 3));
const A = makeResidentCode("2000000001");
const OSAKA = "271004";
const CHIYODA = "131016";
const inOsaka = { name: "小野　隆", address: "大阪府大阪市北区梅田１丁目１番１号", birthDate: "1980-12-31", gender: "male" as const };
const inTokyo = { ...inOsaka, address: "東京都千代田区千代田１番１号" };

async function* lines(values: Array<Record<string, unknown>>): AsyncGenerator<RecordResult> {
  let line = 0;
  for (const value of values) yield { line: ++line, value };
}

describe("applyNoticesToRegistry", () => {
  it("a notice applied across a gap takes the municipality it was recorded by: the missed move is not lost", async () => {
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-apply-")), "jpki.db"), { create: true });
    await s.upsertResidents([{ residentCode: A, municipalityCode: OSAKA, fourItems: inOsaka, status: "active" }]);
    // The move-out (1) is late: the rename (2), recorded by the municipality moved to, arrives first.
    const rename = { noticeId: "G-2", residentCode: A, kind: "name-change", effectiveDate: "2026-04-20", sequence: 2, municipalityCode: CHIYODA, after: { ...inTokyo, name: "小野　実" } };
    const moveOut = { noticeId: "G-1", residentCode: A, kind: "move-out", effectiveDate: "2026-04-10", sequence: 1, municipalityCode: OSAKA, newMunicipalityCode: CHIYODA, after: inTokyo };
    const r = await applyNoticesToRegistry(s, lines([rename, moveOut]), NOW);
    expect(r).toMatchObject({ read: 2, applied: 1, skipped: 1, errors: [] });
    // Not a Tokyo address filed under Osaka, a record no procedure at the counter could change any more.
    expect(await s.getResident(A)).toMatchObject({ municipalityCode: CHIYODA, fourItems: { ...inTokyo, name: "小野　実" } });
    await s.close();
  });

  it("a death or removal older than a notice applied across its gap still closes the record, keeping the newer items", async () => {
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-apply-")), "jpki.db"), { create: true });
    const B = makeResidentCode("2000000003");
    await s.upsertResidents([A, B].map((residentCode) => ({ residentCode, municipalityCode: CHIYODA, fourItems: inTokyo, status: "active" as const })));
    const moved = (code: string, id: string) => ({ noticeId: id, residentCode: code, kind: "relocation", effectiveDate: "2026-04-20", sequence: 2, municipalityCode: CHIYODA, after: { ...inTokyo, address: "東京都千代田区永田町１丁目７番１号" } });
    const ended = (code: string, id: string, kind: string) => ({ noticeId: id, residentCode: code, kind, effectiveDate: "2026-04-10", sequence: 1, municipalityCode: CHIYODA });
    const r = await applyNoticesToRegistry(s, lines([moved(A, "D-2"), ended(A, "D-1", "death"), moved(B, "E-2"), ended(B, "E-1", "removal"), { ...moved(B, "E-0"), sequence: 1 }]), NOW);
    // Before: both skipped as older, the records left active (a certificate could be issued to a dead person).
    expect(r).toMatchObject({ read: 5, applied: 4, skipped: 1, errors: [] });
    expect(await s.getResident(A)).toMatchObject({ status: "deceased", fourItems: { address: "東京都千代田区永田町１丁目７番１号" } });
    expect(await s.getResident(B)).toMatchObject({ status: "removed", fourItems: { address: "東京都千代田区永田町１丁目７番１号" } });
    expect((await s.getResidentForIssuance(A))?.registrySequence).toBe(2);
    expect(await applyNoticesToRegistry(s, lines([ended(A, "D-1", "death")]), NOW)).toMatchObject({ applied: 0, skipped: 1 });
    await s.close();
  });

  it("refuses a notice whose sequence is implausibly far ahead of the record's: it does not poison the resident's later notices", async () => {
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-apply-")), "jpki.db"), { create: true });
    await s.upsertResidents([{ residentCode: A, municipalityCode: OSAKA, fourItems: inOsaka, status: "active" }]);
    const rename = (noticeId: string, sequence: number, name: string) => ({ noticeId, residentCode: A, kind: "name-change", effectiveDate: "2026-04-20", sequence, municipalityCode: OSAKA, after: { ...inOsaka, name } });
    // A broken feed's 2^53 − 1: applied, every later notice of this person was skipped as already applied.
    const r = await applyNoticesToRegistry(s, lines([rename("P-1", Number.MAX_SAFE_INTEGER, "小野　偽"), rename("P-2", 1, "小野　実"), rename("P-3", 1 + MAX_SEQUENCE_JUMP + 1, "小野　遠")]), NOW);
    expect(r).toMatchObject({ read: 3, applied: 1, skipped: 0 });
    expect(r.errors.map((e) => [e.line, e.code])).toEqual([[1, "ERR_NOTICE_SEQUENCE_JUMP"], [3, "ERR_NOTICE_SEQUENCE_JUMP"]]);
    expect(r.errors[0]!.message).not.toContain("小野");
    expect(await s.getResident(A)).toMatchObject({ fourItems: { ...inOsaka, name: "小野　実" } });
    // as far ahead as allowed is still applied across the gap
    expect(await applyNoticesToRegistry(s, lines([rename("P-4", 1 + MAX_SEQUENCE_JUMP, "小野　近")]), NOW)).toMatchObject({ applied: 1, errors: [] });
    await s.close();
  });

  it("a death filed under the old code after a resident-code change ends issuance under the new code", async () => {
    // The CA side here has not ingested the feed (no 'registry-behind' to stop it): only the registry record does.
    const clock = new FixedClock(NOW);
    const ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-apply-")), { clock });
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const B = makeResidentCode("2000000002");
    await ws.store.upsertResidents([{ residentCode: A, municipalityCode: CHIYODA, fourItems: inTokyo, status: "active" }]);
    const service = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw", checkProfile: "full" });
    const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const publicKey = () => key;
    const change = { noticeId: "K-1", residentCode: A, kind: "resident-code-change", effectiveDate: "2026-04-10", sequence: 1, municipalityCode: CHIYODA, newResidentCode: B };
    expect(await applyNoticesToRegistry(ws.store, lines([change]), NOW)).toMatchObject({ applied: 1, errors: [] });
    expect((await service.issue({ residentCode: B, type: "signature", publicKey: publicKey() })).residentCode).toBe(B);
    const death = { noticeId: "K-2", residentCode: A, kind: "death", effectiveDate: "2026-04-20", sequence: 2, municipalityCode: CHIYODA };
    expect(await applyNoticesToRegistry(ws.store, lines([death]), NOW)).toMatchObject({ applied: 1, skipped: 0, errors: [] });
    await expect(service.issue({ residentCode: B, type: "signature", publicKey: publicKey() })).rejects.toMatchObject({ code: "ERR_RESIDENT_NOT_ELIGIBLE" });
    await expect(service.issue({ residentCode: A, type: "signature", publicKey: publicKey() })).rejects.toMatchObject({ code: "ERR_RESIDENT_NOT_ELIGIBLE" });
    await ws.close();
  });
});
