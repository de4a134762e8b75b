import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { SqliteStore } from "../store/sqlite.js";
import type { CaRecord, IssuanceRecord, RegisteredIssuance, Store } from "../store/types.js";
import { applyNoticesToRegistry } from "./apply.js";
import { changeResidentCode, compareWithRegistered, correct, counterNoticeId, moveOut, noticeDue, parseProcedure, recordDeath, relocate, rename, runProcedures } from "./counter.js";
import { parseNotice, type ChangeNoticeInput } from "./notice.js";
import { makeResidentCode } from "./resident-code.js";

const NOW = new Date(Date.UTC(2026, 4, 1, 3));
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const A = makeResidentCode("1000000001");
const B = makeResidentCode("1000000002");
const C = makeResidentCode("1000000003");

function reg(serial: string, type: "signature" | "authentication", over: Partial<RegisteredIssuance> = {}): RegisteredIssuance {
  return { serial, caId: type === "signature" ? "13-sig" : "13-auth", type, residentCode: A, fourItems: items, notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), ...over };
}

function notice(kind: ChangeNoticeInput["kind"], extra: Partial<ChangeNoticeInput> = {}) {
  return parseNotice({ noticeId: "n1", residentCode: A, kind, effectiveDate: "2026-04-30", sequence: 1, municipalityCode: "131016", ...extra }, { now: NOW });
}

describe("compareWithRegistered (the registry side's comparison)", () => {
  const both = [reg("01", "signature"), reg("02", "authentication")];

  it("a relocation affects the signature certificate only, and only when the certified address differs", () => {
    const moved = compareWithRegistered(notice("relocation", { after: { ...items, address: "東京都千代田区千代田２番２号" } }), both, NOW);
    expect(moved.affected.map((a) => [a.serial, a.reason])).toEqual([["01", "affiliationChanged"]]);
    expect(noticeDue(moved)).toBe(true);
    expect(moved.certified).toEqual(items);
    const same = compareWithRegistered(notice("relocation", { after: items }), both, NOW);
    expect(same.affected).toEqual([]);
    expect(noticeDue(same)).toBe(false);
  });

  it("a correction to a variant of the certified character (異体字) changes no certified text: no notice", () => {
    const variant = compareWithRegistered(notice("correction", { after: { ...items, name: "山﨑　太郎" } }), [reg("01", "signature", { fourItems: { ...items, name: "山崎　太郎" } })], NOW);
    expect(noticeDue(variant)).toBe(false);
  });

  it("death affects both; a resident-code change affects none but is due for holders (the link follows)", () => {
    expect(compareWithRegistered(notice("death"), both, NOW).affected.map((a) => [a.serial, a.reason])).toEqual([["01", "cessationOfOperation"], ["02", "cessationOfOperation"]]);
    const code = compareWithRegistered(notice("resident-code-change", { newResidentCode: B }), both, NOW);
    expect(code.affected).toEqual([]);
    expect(noticeDue(code)).toBe(true);
    expect(noticeDue(compareWithRegistered(notice("resident-code-change", { newResidentCode: B }), [], NOW))).toBe(false);
  });

  it("an authentication-only holder's move is not due; expired registrations are ignored (notAfter inclusive)", () => {
    const after = { ...items, address: "東京都千代田区千代田２番２号" };
    expect(noticeDue(compareWithRegistered(notice("relocation", { after }), [reg("02", "authentication")], NOW))).toBe(false);
    expect(noticeDue(compareWithRegistered(notice("death"), [reg("01", "signature", { notAfter: new Date(NOW.getTime() - 1) })], NOW))).toBe(false);
    expect(noticeDue(compareWithRegistered(notice("death"), [reg("01", "signature", { notAfter: NOW })], NOW))).toBe(true);
  });

  it("the notice's `before` is the signature certificate's certified items when both are registered", () => {
    const older = { ...items, address: "東京都千代田区千代田３番３号" };
    const c = compareWithRegistered(notice("death"), [reg("02", "authentication", { fourItems: older }), reg("01", "signature")], NOW);
    expect(c.certified).toEqual(items);
  });
});

describe("parseProcedure", () => {
  it("takes each kind's fields and refuses others, naming the field", () => {
    expect(parseProcedure({ kind: "relocate", residentCode: A, address: "東京都" })).toEqual({ kind: "relocate", residentCode: A, address: "東京都" });
    const fail = (o: unknown, field: string) =>
      expect(() => parseProcedure(o)).toThrow(expect.objectContaining({ code: "ERR_COUNTER_PROCEDURE_INVALID", details: expect.objectContaining({ field }) }));
    fail({ kind: "relocate", residentCode: A }, "address");
    fail({ kind: "rename", residentCode: A, name: "x", address: "y" }, "address");
    fail({ kind: "correct", residentCode: A }, "name");
    fail({ kind: "marry", residentCode: A }, "kind");
    fail({ kind: "death", residentCode: A, effectiveDate: "2026-02-30" }, "effectiveDate");
    expect(() => parseProcedure({ kind: "death", residentCode: "12345678901" })).toThrow(expect.objectContaining({ code: "ERR_RESIDENT_CODE_INVALID" }));
    // A change's new code that fails its check digit is named as itself, not as the resident's code.
    expect(() => parseProcedure({ kind: "change-code", residentCode: A, newCode: "22345678902" })).toThrow(
      expect.objectContaining({ code: "ERR_RESIDENT_CODE_INVALID", message: expect.stringContaining('field "newCode"'), details: expect.objectContaining({ field: "newCode" }) }),
    );
  });
});

function ca(id: string, purpose: "signature" | "authentication"): CaRecord {
  return { id, prefectureCode: "13", purpose, certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };
}

function cert(serial: string, residentCode: string, type: "signature" | "authentication"): IssuanceRecord {
  return {
    serial, caId: type === "signature" ? "13-sig" : "13-auth", type, residentCode, municipalityCode: "131016", fourItems: items,
    notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(1000), der: Buffer.from(serial, "hex"),
  };
}

async function store(): Promise<Store> {
  const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-counter-")), "jpki.db"), { create: true });
  await s.putCa(ca("13-sig", "signature"));
  await s.putCa(ca("13-auth", "authentication"));
  await s.upsertResidents([A, B, C].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
  await s.commitIssuances([cert("0a01", A, "signature"), cert("0a02", A, "authentication"), cert("0b02", B, "authentication")]);
  return s;
}

describe("counter procedures (library)", () => {
  it("numbers notices per resident without gaps, counting only the notices sent", async () => {
    const s = await store();
    const opts = { now: NOW };
    // a correction that leaves every certified item as it is: no notice, no number
    const same = await correct(s, A, { birthDate: items.birthDate }, opts);
    expect(same.notice).toBeUndefined();
    const r1 = await relocate(s, A, "東京都千代田区千代田２番２号", opts);
    expect(r1.notice).toMatchObject({ noticeId: counterNoticeId(await s.counterNoticeIdKey(), A, 1), sequence: 1, kind: "relocation", before: items });
    // the CA side has not ingested notice 1 yet: the signature certificate is still registered, so a rename
    // (its certified items differ from the items after) is due too
    const r2 = await rename(s, A, "佐藤　太郎", opts);
    expect(r2.notice?.sequence).toBe(2);
    expect(await s.residentNoticeSequence(A)).toBe(2);
    // B holds only an authentication certificate: moving away affects nothing registered
    expect((await moveOut(s, B, "271004", "大阪府大阪市北区梅田１丁目１番１号", opts)).notice).toBeUndefined();
    expect((await s.getResident(B))?.municipalityCode).toBe("271004");
    // C holds nothing: its death sends nothing, and closes the record
    expect((await recordDeath(s, C, opts)).notice).toBeUndefined();
    await expect(relocate(s, C, "東京都千代田区千代田２番２号", opts)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_NOT_ELIGIBLE"));
    await s.close();
  });

  it("refuses items with U+FFFD (a broken byte in a counter command's argv, which Node decodes lossily), changing nothing", async () => {
    const s = await store();
    await expect(rename(s, A, "佐\ufffd\ufffd　太郎", { now: NOW })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_INVALID") && !(e as Error).message.includes("佐"));
    await expect(relocate(s, A, "東京都千代田区\ufffd２番２号", { now: NOW })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_INVALID") && !(e as Error).message.includes("千代田"));
    expect((await s.getResident(A))?.fourItems).toEqual(items);
    expect(await s.pendingOutbox(10)).toEqual([]);
    await s.close();
  });

  it("takes the items in the registry's normal form: the certified ones padded are no change, a change in NFD is stored composed", async () => {
    const s = await store();
    // a trailing U+3000 pasted after the name, a padded address: before, refused (two separators; no prefecture first)
    const same = await correct(s, A, { name: `${items.name}\u3000`, address: ` ${items.address} ` }, { now: NOW });
    expect(same.notice).toBeUndefined();
    expect((await s.getResident(A))?.fourItems).toEqual(items);
    // び typed as ひ + U+3099: the notice, the record and the outbox carry the composed name the registry compares
    const composed = "山田\u3000ひびき";
    const r = await rename(s, A, composed.normalize("NFD"), { now: NOW });
    expect(r.notice?.after?.name).toBe(composed);
    expect(r.affected.map((a) => a.serial)).toEqual(["0a01"]);
    expect((await s.getResident(A))?.fourItems.name).toBe(composed);
    expect((await s.pendingOutbox(10)).map((o) => (JSON.parse(o.body) as { after: { name: string } }).after.name)).toEqual([composed]);
    await s.close();
  });

  it("a certificate that already certifies U+FFFD (an earlier version let it in) is still revoked: the record is corrected, the death recorded", async () => {
    const s = await store();
    const D = makeResidentCode("1000000004");
    const broken = { ...items, name: "山\ufffd　太郎" };
    await s.upsertResidents([{ residentCode: D, municipalityCode: "131016", fourItems: broken, status: "active" }]);
    await s.commitIssuances([{ ...cert("0d01", D, "signature"), fourItems: broken }]);
    // the record's broken name is refused as new text (a relocation re-checks it) and corrected at the counter
    await expect(relocate(s, D, "東京都千代田区千代田２番２号", { now: NOW })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_INVALID"));
    const fixed = await correct(s, D, { name: "山田　太郎" }, { now: NOW });
    expect(fixed.notice).toMatchObject({ sequence: 1, before: broken, after: items });
    expect((await recordDeath(s, D, { now: NOW })).notice).toMatchObject({ sequence: 2, before: broken });
    await s.close();
  });

  // A record stored before bidi controls and zero-width characters were refused (c2fcd57) failed every procedure with
  // 'field "name" contains U+202E…', as if the clerk had typed it: nothing said the stored record was why, nor how
  // to mend it.
  it("a record stored with a character no longer accepted: the error says the stored record holds it and how to correct it, never the items", async () => {
    const s = await store();
    const D = makeResidentCode("1000000004");
    const stored = { ...items, name: "山田\u202e　太郎", address: "東京都千代田区\u200b千代田１番１号" };
    await s.upsertResidents([{ residentCode: D, municipalityCode: "131016", fourItems: stored, status: "active" }]);
    const refusal = (p: Promise<unknown>) => p.then(() => undefined, (e: Error & { code?: string; details?: Record<string, unknown> }) => e);
    const e = await refusal(rename(s, D, "鈴木　一郎", { now: NOW }));
    expect(e?.code, String(e)).toBe("ERR_RESIDENT_INVALID");
    expect(e!.details).toMatchObject({ field: "address", problem: "format-character", stored: true });
    expect(e!.message).toContain(`the record of resident ${D} as stored holds what is no longer accepted`);
    expect(e!.message).toContain('field "address" contains U+200B');
    expect(e!.message).toContain("jpki counter correct --resident");
    for (const item of ["山田", "太郎", "千代田"]) expect(e!.message).not.toContain(item);
    // the name given is checked as typed, and the stored one is named when it is the one at fault
    const name = await refusal(relocate(s, D, "東京都千代田区千代田２番２号", { now: NOW }));
    expect(name!.details).toMatchObject({ field: "name", stored: true });
    const typed = await refusal(correct(s, D, { name: "鈴木\u200d　一郎", address: items.address }, { now: NOW }));
    expect(typed!.details).toMatchObject({ field: "name", problem: "format-character" });
    expect(typed!.details!.stored).toBeUndefined();
    // the correction the message names mends the record; procedures work again
    await correct(s, D, { name: items.name, address: items.address }, { now: NOW });
    await relocate(s, D, "東京都千代田区千代田２番２号", { now: NOW });
    await s.close();
  });

  it("a resident-code change re-links the registered certificates; the next notice continues the sequence under the new code", async () => {
    const s = await store();
    const D = makeResidentCode("1000000004");
    await expect(changeResidentCode(s, A, B, { now: NOW })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_CODE_IN_USE"));
    const c = await changeResidentCode(s, A, D, { now: NOW });
    expect(c.notice).toMatchObject({ kind: "resident-code-change", newResidentCode: D, sequence: 1 });
    expect(await s.registeredIssuances(A)).toEqual([]);
    expect((await s.registeredIssuances(D)).map((r) => r.serial)).toEqual(["0a01", "0a02"]);
    // closed, naming the new code: a notice the registry's feed still files under A goes to D (registry/apply.ts)
    expect(await s.getResident(A)).toMatchObject({ status: "removed", successorCode: D });
    // a clerk who still has the old code is told the code to use, not only that the record is closed
    await expect(relocate(s, A, "東京都千代田区千代田２番２号", { now: NOW })).rejects.toSatisfy(
      (e: unknown) => isJpkiError(e, "ERR_RESIDENT_NOT_ELIGIBLE") && (e as Error).message.includes(`changed to ${D}`) && !(e as Error).message.includes("千代田"),
    );
    const next = await recordDeath(s, D, { now: NOW });
    expect(next.notice).toMatchObject({ residentCode: D, sequence: 2, noticeId: counterNoticeId(await s.counterNoticeIdKey(), D, 2) });
    await s.close();
  });

  it("a notice of the registry's feed still filed under the old code after a counter's resident-code change is applied under the new code", async () => {
    const s = await store();
    const D = makeResidentCode("1000000004");
    await changeResidentCode(s, A, D, { now: NOW });
    const death = { noticeId: "F-2", residentCode: A, kind: "death", effectiveDate: "2026-04-30", sequence: 2, municipalityCode: "131016" };
    async function* feed() {
      yield { line: 1, value: death };
    }
    expect(await applyNoticesToRegistry(s, feed(), NOW)).toMatchObject({ applied: 1, skipped: 0, errors: [] });
    expect(await s.getResident(D)).toMatchObject({ status: "deceased" });
    await expect(relocate(s, D, "東京都千代田区千代田２番２号", { now: NOW })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_RESIDENT_NOT_ELIGIBLE"));
    await s.close();
  });

  it("a batch goes on past a failing procedure, which changes nothing, and later procedures see earlier ones", async () => {
    const s = await store();
    const r = await runProcedures(s, [
      { kind: "relocate", residentCode: A, address: "東京都千代田区千代田２番２号" },
      { kind: "move-in", residentCode: A, municipality: "131016", address: "東京都千代田区千代田３番３号" },
      { kind: "relocate", residentCode: A, address: "東京都千代田区千代田４番４号" },
      { kind: "relocate", residentCode: A, address: "大阪府大阪市北区梅田１丁目１番１号" },
      { kind: "death", residentCode: A, effectiveDate: "2099-01-01" },
    ], { now: NOW });
    expect(r.errors.map((e) => [e.index, e.code])).toEqual([[1, "ERR_COUNTER_PROCEDURE_INVALID"], [3, "ERR_RESIDENT_INVALID"], [4, "ERR_COUNTER_PROCEDURE_INVALID"]]);
    expect(r.notices.map((n) => [n.sequence, n.after?.address])).toEqual([[1, "東京都千代田区千代田２番２号"], [2, "東京都千代田区千代田４番４号"]]);
    expect((await s.getResident(A))?.fourItems.address).toBe("東京都千代田区千代田４番４号");
    // exactly the notices decided are in the outbox, in order, as the canonical JSON the CA side parses back to
    // the same notice; the failed procedures enqueued nothing
    const pending = await s.pendingOutbox(10);
    expect(pending.map((p) => [p.noticeId, p.residentCode, p.sequence, p.createdAt])).toEqual([[counterNoticeId(await s.counterNoticeIdKey(), A, 1), A, 1, NOW], [counterNoticeId(await s.counterNoticeIdKey(), A, 2), A, 2, NOW]]);
    expect(pending.map((p) => parseNotice(JSON.parse(p.body), { now: NOW }))).toEqual(r.notices);
    await s.close();
  });
});
