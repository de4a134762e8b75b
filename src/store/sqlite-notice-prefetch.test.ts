/**
 * A notice batch's context read ahead (store/notice-prefetch.ts) is used only while it still says what a read in the
 * committing transaction would: another connection's commit since, or a write of this connection outside notice
 * batches, makes it read afresh; what the batch before wrote is read again. The "inline" mode reads ahead on a
 * second connection in this thread (the compiled thread module is not there when the sources run), with the same
 * window and checks as the thread.
 */
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import type Database from "better-sqlite3";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SqliteStore } from "./sqlite.js";
import { decodeContextRead, encodeContextRead, prepareNoticeContext, readNoticeContext } from "./sqlite-notice-context.js";
import type { CaRecord, NoticeCommit, NoticeContext, NoticeContextKeys } from "./types.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const ca: CaRecord = { id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };

const keys = (...codes: string[]): NoticeContextKeys => ({ noticeIds: codes.map((c) => `N-${c}`), residentCodes: codes, registryCodes: [] });

/** A batch applying the next sequence of each code, recording the context it decided from. */
function nextSequences(seen: NoticeContext[], ...codes: string[]) {
  return (ctx: NoticeContext) => {
    seen.push(ctx);
    const commit: NoticeCommit = {
      at: new Date(1000),
      notices: codes.map((c) => ({ noticeId: `N-${c}-${(ctx.lastSequence.get(c) ?? 0) + 1}`, residentCode: c, sequence: (ctx.lastSequence.get(c) ?? 0) + 1, kind: "relocation", body: "{}", status: "applied" as const, revocations: 0 })),
      sequences: codes.map((c) => ({ residentCode: c, last: (ctx.lastSequence.get(c) ?? 0) + 1 })),
      revocations: [],
      relinks: [],
      dirtyCas: [],
    };
    return { commit };
  };
}

describe("SQLite notice contexts read ahead", () => {
  const open: SqliteStore[] = [];
  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
  });
  async function stores(): Promise<{ a: SqliteStore; b: SqliteStore; path: string }> {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-readahead-")), "jpki.db");
    const a = SqliteStore.open(path, { create: true, noticePrefetch: "inline" });
    open.push(a);
    await a.putCa(ca);
    await a.upsertResidents(["r1", "r2", "r3"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    const b = SqliteStore.open(path, { noticePrefetch: "off" });
    open.push(b);
    return { a, b, path };
  }

  it("uses the context read ahead when nothing it holds changed", async () => {
    const { a } = await stores();
    const seen: NoticeContext[] = [];
    await a.commitNoticeBatch(keys("r1"), nextSequences(seen, "r1"), { next: () => keys("r2") });
    await a.commitNoticeBatch(keys("r2"), nextSequences(seen, "r2"));
    expect(a.readAhead).toEqual({ used: 1, merged: 0, stale: 0, missed: 0 });
    expect(seen[1]!.lastSequence.get("r2")).toBeUndefined();
    expect(seen[1]!.residents.has("r2")).toBe(true); // never certified, no sequence: its registry record read
  });

  it("reads afresh when another connection committed after the read ahead", async () => {
    const { a, b } = await stores();
    const seen: NoticeContext[] = [];
    await a.commitNoticeBatch(keys("r1"), nextSequences(seen, "r1"), { next: () => keys("r2") });
    // another process applies a notice of r2 between the two batches
    await b.commitNoticeBatch(keys("r2"), nextSequences([], "r2"));
    await a.commitNoticeBatch(keys("r2"), nextSequences(seen, "r2"));
    expect(seen[1]!.lastSequence.get("r2")).toBe(1);
    expect(a.readAhead).toEqual({ used: 0, merged: 0, stale: 1, missed: 0 });
    expect((await a.loadNoticeContext(keys("r2"))).lastSequence.get("r2")).toBe(2);
  });

  it("reads afresh when this connection wrote outside notice batches after the read ahead", async () => {
    const { a } = await stores();
    await a.commitIssuances([
      { serial: "0e01", caId: "13-sig", type: "signature", residentCode: "r2", municipalityCode: "131016", fourItems: items, notBefore: new Date(500), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(500), der: Buffer.from([0x30, 0]) },
    ]);
    const seen: NoticeContext[] = [];
    await a.commitNoticeBatch(keys("r1"), nextSequences(seen, "r1"), { next: () => keys("r2") });
    // an operator's revocation on the same connection (as `jpki serve` shares it): no notice batch, no other connection
    await a.revoke({ serial: "0e01", revokedAt: new Date(600), reason: 1, source: "manual" });
    await a.commitNoticeBatch(keys("r2"), nextSequences(seen, "r2"));
    expect(seen[1]!.certificates.get("r2")).toBeUndefined();
    expect(seen[1]!.everCertified.has("r2")).toBe(true);
    expect(a.readAhead).toEqual({ used: 0, merged: 0, stale: 1, missed: 0 });
  });

  it("reads again what the batch before wrote, and takes the rest as read ahead", async () => {
    const { a } = await stores();
    const seen: NoticeContext[] = [];
    // the first batch moves r2 on, and the second, read ahead as the first began, asks for r2 and r3
    await a.commitNoticeBatch(keys("r2"), nextSequences(seen, "r2"), { next: () => keys("r2", "r3") });
    let fresh: Promise<NoticeContext> | undefined;
    await a.commitNoticeBatch(keys("r2", "r3"), (ctx) => {
      // read in the committing transaction (the store's calls run at once), for the comparison
      fresh = a.loadNoticeContext(keys("r2", "r3"));
      return nextSequences(seen, "r2", "r3")(ctx);
    });
    expect(seen[1]!.lastSequence.get("r2")).toBe(1);
    expect(seen[1]!.lastSequence.has("r3")).toBe(false);
    expect(a.readAhead).toEqual({ used: 0, merged: 1, stale: 0, missed: 0 });
    // what a read in the transaction gives; the registry records may be more (NoticeContext.residents)
    const { residents, successors, ...rest } = seen[1]!;
    const { residents: freshResidents, successors: _, ...freshRest } = (await fresh)!;
    expect(rest).toEqual(freshRest);
    for (const [code, seq] of freshResidents) expect(residents.get(code)).toBe(seq);
    expect(successors?.size).toBe(0);
  });

  it("gives a context read on the thread exactly as read, once across (encodeContextRead, decodeContextRead)", async () => {
    const { a, path } = await stores();
    await a.putCa({ ...ca, id: "13-auth", purpose: "authentication" });
    const cert = (serial: string, code: string, type: "signature" | "authentication") => ({
      serial, caId: type === "signature" ? "13-sig" : "13-auth", type, residentCode: code, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(500), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(500), der: Buffer.from([0x30, 0]),
    });
    await a.commitIssuances([cert("0e01", "r1", "signature"), { ...cert("0e02", "r1", "authentication"), registrySequence: 0 }, cert("0e03", "r2", "signature")]);
    await a.revoke({ serial: "0e03", revokedAt: new Date(600), reason: 1, source: "manual" });
    const seen: NoticeContext[] = [];
    await a.commitNoticeBatch(keys("r1"), nextSequences(seen, "r1"));
    // a held notice of r3 (sequence 3 of none applied), and r2's first
    await a.commitNoticeBatch(keys("r3"), () => ({
      commit: { at: new Date(2000), notices: [{ noticeId: "H-r3", residentCode: "r3", sequence: 3, kind: "relocation", body: "{}", status: "held" as const, revocations: 0 }], sequences: [], revocations: [], relinks: [], dirtyCas: [] },
    }));
    const db = new (createRequire(import.meta.url)("better-sqlite3") as typeof Database)(path, { readonly: true });
    try {
      const k = { noticeIds: ["N-r1-1", "H-r3", "nope"], residentCodes: ["r1", "r2", "r3", "r9"], registryCodes: ["r1"] };
      const read = db.transaction(() => readNoticeContext(prepareNoticeContext(db), k))();
      expect(read.ctx.certificates.get("r1")).toHaveLength(2);
      expect(read.ctx.held.get("r3")).toHaveLength(1);
      expect(read.ctx.known.size).toBe(2);
      expect(decodeContextRead(structuredClone(encodeContextRead(read)))).toStrictEqual(read);
    } finally {
      db.close();
    }
  });

  it("does not use a context read ahead for other keys", async () => {
    const { a } = await stores();
    const seen: NoticeContext[] = [];
    await a.commitNoticeBatch(keys("r1"), nextSequences(seen, "r1"), { next: () => keys("r3") });
    await a.commitNoticeBatch(keys("r2"), nextSequences(seen, "r2"));
    expect(seen[1]!.residents.has("r2")).toBe(true);
    expect(a.readAhead).toEqual({ used: 0, merged: 0, stale: 1, missed: 0 });
  });
});
