/**
 * Operator release of held notices (`jpki notices pending --release-all`): every held notice, read a page at a
 * time, and a held notice re-filed by a resident-code change released before it is still found.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { SqliteStore } from "../store/sqlite.js";
import type { FourItems } from "../profile/types.js";
import type { IssuanceRecord, Store } from "../store/types.js";
import { NoticeIngestor } from "./notices.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const clock = new FixedClock("2026-05-01T00:00:00Z");

function notice(id: string, residentCode: string, sequence: number, kind = "correction", extra: Record<string, unknown> = {}) {
  return { noticeId: id, residentCode, kind, effectiveDate: "2026-04-01", sequence, municipalityCode: "131016", ...(kind === "correction" ? { after: items } : {}), ...extra };
}

async function* records(rows: readonly Record<string, unknown>[]) {
  let line = 0;
  for (const value of rows) yield { line: ++line, value };
}

function cert(serial: string, residentCode: string, fourItems: FourItems = items): IssuanceRecord {
  return {
    serial, caId: "13-sig", type: "signature", residentCode, municipalityCode: "131016", fourItems,
    notBefore: new Date(1000), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(1000), der: Buffer.from(serial, "hex"),
  };
}

async function storeWith(codes: readonly string[], fourItems: FourItems = items): Promise<Store> {
  const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-release-")), "jpki.db"), { create: true });
  await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
  await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems, status: "active" as const })));
  return s;
}

/** The store, with every listHeldNotices call's limit written down. */
function spied(s: Store, limits: number[]): Store {
  return new Proxy(s, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === "listHeldNotices") return (limit?: number, after?: never) => (limits.push(limit ?? 1000), target.listHeldNotices(limit, after));
      return typeof v === "function" ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

describe("NoticeIngestor: a stop signal", () => {
  it("begins no batch that came after the stop (a pipe's lines sent after the signal): nothing read, applied or rejected, and the run says it stopped", async () => {
    const codes = ["0000000001", "0000000002"].map(makeResidentCode);
    const s = await storeWith(codes);
    try {
      const stop = new AbortController();
      const rejects: unknown[] = [];
      // the input waits; the signal comes; then a good line and a malformed one arrive
      async function* late() {
        await new Promise((r) => setImmediate(r));
        stop.abort();
        yield { line: 1, value: notice("S-1", codes[0]!, 1) };
        yield { line: 2, value: { not: "a notice" } };
      }
      const r = await new NoticeIngestor({ store: s, clock }).ingest(late(), { signal: stop.signal, batchSize: 10, onReject: (x) => rejects.push(x) });
      expect(r).toMatchObject({ stopped: true, read: 0, applied: 0, rejected: 0 });
      expect(rejects).toEqual([]);
      expect(await s.getNotice("S-1")).toBeUndefined();
    } finally {
      await s.close();
    }
  });
});

describe("NoticeIngestor.release: every held notice", () => {
  it("reads the held notices a page at a time (never more than the page size) and releases them all", async () => {
    const codes = ["0000000001", "0000000002", "0000000003"].map(makeResidentCode);
    const s = await storeWith(codes);
    try {
      // seven held notices (each resident's sequence 1 never came), pages of 2 split residents between pages
      const feed = [2, 3, 4].flatMap((seq) => codes.map((c, i) => notice(`H-${i}-${seq}`, c, seq))).slice(0, 7);
      const ingested = await new NoticeIngestor({ store: s, clock }).ingest(records(feed));
      expect(ingested).toMatchObject({ read: 7, held: 7, applied: 0 });
      // Before: one read of up to 1,000,000 held notices, all in memory, and any beyond them never released.
      const limits: number[] = [];
      const r = await new NoticeIngestor({ store: spied(s, limits), clock }).release(undefined, { pageSize: 2 });
      expect(r).toMatchObject({ released: 7, applied: 7, refused: [] });
      expect(Math.max(...limits)).toBe(2);
      expect(limits.length).toBeGreaterThanOrEqual(4);
      expect(await s.listHeldNotices()).toEqual([]);
      for (const c of codes) expect((await s.loadNoticeContext({ noticeIds: [], residentCodes: [c] })).lastSequence.get(c)).toBe(c === codes[0] ? 4 : 3);
    } finally {
      await s.close();
    }
  });

  it("a page size that is not a whole number ≥ 1 is ERR_USAGE", async () => {
    const s = await storeWith([]);
    try {
      await expect(new NoticeIngestor({ store: s, clock }).release(undefined, { pageSize: 0 })).rejects.toMatchObject({ code: "ERR_USAGE" });
    } finally {
      await s.close();
    }
  });

  // A resident's held resident-code change, released, re-files the resident's later held notices under the new
  // code. Before, the release looked for them under the old code, took them as applied meanwhile, and left them
  // held: a held death after the change never revoked. Paged, the new code may also sort before the page
  // already walked: a second pass finds them.
  for (const pageSize of [1, 1000]) {
    it(`releases a held notice re-filed by a resident-code change released before it (page size ${pageSize})`, async () => {
      const from = makeResidentCode("0000000009");
      const to = makeResidentCode("0000000004"); // sorts before the old code
      const s = await storeWith([from]);
      try {
        await s.commitIssuances([cert("0a01", from)]);
        const feed = [notice("C-3", from, 3, "resident-code-change", { newResidentCode: to }), notice("D-5", from, 5, "death")];
        expect(await new NoticeIngestor({ store: s, clock }).ingest(records(feed))).toMatchObject({ held: 2 });
        const r = await new NoticeIngestor({ store: s, clock }).release(undefined, { pageSize });
        expect(r).toMatchObject({ released: 2, revocations: 1, refused: [] });
        expect(await s.listHeldNotices()).toEqual([]);
        expect(await s.revocationSummary()).toEqual([expect.objectContaining({ serial: "0a01", source: "notice:D-5", reason: 5 })]);
      } finally {
        await s.close();
      }
    });
  }

  it("by id, the same: a held notice re-filed by a code change released with it is released too", async () => {
    const from = makeResidentCode("0000000009");
    const to = makeResidentCode("0000000004");
    const s = await storeWith([from]);
    try {
      await s.commitIssuances([cert("0a01", from)]);
      const feed = [notice("C-3", from, 3, "resident-code-change", { newResidentCode: to }), notice("D-5", from, 5, "death")];
      await new NoticeIngestor({ store: s, clock }).ingest(records(feed));
      expect(await new NoticeIngestor({ store: s, clock }).release(["C-3", "D-5"])).toMatchObject({ released: 2, revocations: 1 });
      expect(await s.listHeldNotices()).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

// The issue: revoke exactly the certificates whose certified items no longer hold. The items were certified in the
// registry's normal form (registry import: trimmed, NFC); a notice's `after` as an exporter wrote it (NFD, padded)
// was compared and stored as given, so the same name took for a name change and revoked the signature certificate.
describe("NoticeIngestor: a notice's items in the registry's normal form", () => {
  const certified: FourItems = { name: "山田\u3000ゆずる", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" };
  const nfd = (s: string) => s.normalize("NFD");
  const code = makeResidentCode("0000000007");

  async function ingest(s: Store, rows: readonly Record<string, unknown>[]) {
    const rejects: unknown[] = [];
    const r = await new NoticeIngestor({ store: s, clock }).ingest(records(rows), { onReject: (x) => rejects.push(x) });
    return { ...r, rejects };
  }

  async function storedAfter(s: Store, id: string): Promise<unknown> {
    const body = (await s.loadNoticeContext({ noticeIds: [id], residentCodes: [] })).known.get(id)?.body;
    return (JSON.parse(body!) as { after?: unknown }).after;
  }

  it("a relocation whose after-items are the certified ones in NFD or padded revokes nothing, and is stored composed", async () => {
    expect(nfd(certified.name)).not.toBe(certified.name);
    const s = await storeWith([code], certified);
    try {
      await s.commitIssuances([cert("0b01", code, certified)]);
      const r = await ingest(s, [
        // JSON Lines: the name in NFD, the address padded (before: both taken, and the signature certificate revoked)
        notice("R-1", code, 1, "relocation", { after: { ...certified, name: nfd(certified.name), address: `${certified.address} ` } }),
        // a trailing U+3000 after the name (before: refused, the name then had two separators)
        notice("R-2", code, 2, "relocation", { after: { ...certified, name: `${certified.name}\u3000` } }),
        // CSV: the name split, each cell as a macOS exporter and a fixed-width export write it
        notice("R-3", code, 3, "転居", {
          sequence: "3", afterFamilyName: "山田 ", afterGivenName: nfd("ゆずる"), afterAddress: `${certified.address}\u3000`,
          afterBirthDate: certified.birthDate, afterGender: "1",
        }),
      ]);
      expect(await s.revocationSummary()).toEqual([]);
      expect(r).toMatchObject({ applied: 3, revocations: 0, rejects: [] });
      for (const id of ["R-1", "R-2", "R-3"]) expect(await storedAfter(s, id)).toEqual(certified);
    } finally {
      await s.close();
    }
  });

  it("notices an earlier version stored with their items as given: a held one released revokes nothing, one sent again is a duplicate", async () => {
    const s = await storeWith([code], certified);
    try {
      await s.commitIssuances([cert("0b03", code, certified)]);
      // as an earlier version parsed them: the NFD after kept as given; R-2 applied, R-4 held (R-3 not yet come)
      const asGiven = (id: string, sequence: number) => ({
        noticeId: id, residentCode: code, kind: "relocation", effectiveDate: "2026-04-01", sequence, municipalityCode: "131016",
        after: { ...certified, name: nfd(certified.name) }, newMunicipalityCode: "131016",
      });
      const row = (n: ReturnType<typeof asGiven>, status: "applied" | "held") =>
        ({ noticeId: n.noticeId, residentCode: code, sequence: n.sequence, kind: n.kind, body: JSON.stringify(n), status, revocations: 0 });
      await s.commitNoticeBatch({ noticeIds: ["R-2", "R-4"], residentCodes: [code] }, () => ({
        commit: {
          at: clock.now(), notices: [row(asGiven("R-2", 2), "applied"), row(asGiven("R-4", 4), "held")],
          sequences: [{ residentCode: code, last: 2 }], revocations: [], relinks: [], dirtyCas: [],
        },
      }));
      const r = await ingest(s, [asGiven("R-2", 2), notice("R-3", code, 3, "relocation", { after: certified })]);
      expect(await s.revocationSummary()).toEqual([]);
      expect(r).toMatchObject({ duplicates: 1, applied: 2, released: 1, revocations: 0, rejects: [] }); // released
    } finally {
      await s.close();
    }
  });

  it("a real change given in NFD still revokes, and is stored composed", async () => {
    const s = await storeWith([code], certified);
    try {
      await s.commitIssuances([cert("0b02", code, certified)]);
      const renamed = { ...certified, name: "鈴木\u3000ゆずる" };
      const r = await ingest(s, [notice("N-1", code, 1, "name-change", { after: { ...renamed, name: nfd(renamed.name) } })]);
      expect(r).toMatchObject({ applied: 1, revocations: 1, rejects: [] });
      expect(await s.revocationSummary()).toEqual([expect.objectContaining({ serial: "0b02", source: "notice:N-1", reason: 3 })]);
      expect(await storedAfter(s, "N-1")).toEqual(renamed);
    } finally {
      await s.close();
    }
  });
});

describe("NoticeIngestor: what an earlier run stored, said apart from a feed's own repeats", () => {
  it("counts a notice stored by another run as alreadyApplied / alreadyHeld, one this run stored (a feed repeating it a batch later) as a plain duplicate", async () => {
    const codes = ["0000000011", "0000000012", "0000000013"].map(makeResidentCode);
    const s = await storeWith(codes);
    try {
      const run = new Date("2026-05-01T00:00:00Z");
      const c = new FixedClock(run);
      const first = [notice("A-1", codes[0]!, 1), notice("A-2", codes[1]!, 2)]; // A-2 held: its sequence 1 never came
      await new NoticeIngestor({ store: s, clock: c }).ingest(records(first), { batchSize: 1 });
      c.advance(60_000);
      // The rerun repeats A-1 in its own batch, and B-1 (its own) three batches later.
      const feed = [notice("A-1", codes[0]!, 1), notice("A-1", codes[0]!, 1), notice("A-2", codes[1]!, 2), notice("B-1", codes[2]!, 1), notice("B-1", codes[2]!, 1)];
      const r = await new NoticeIngestor({ store: s, clock: c }).ingest(records(feed), { batchSize: 1 });
      expect(r).toMatchObject({ read: 5, applied: 1, duplicates: 4, alreadyApplied: 2, alreadyHeld: 1 });
      // A clock that stands still across both runs cannot tell them apart: never said to be resumed then.
      const still = await new NoticeIngestor({ store: s, clock: c }).ingest(records([notice("B-1", codes[2]!, 1)]));
      expect(still).toMatchObject({ duplicates: 1, alreadyApplied: 0, alreadyHeld: 0 });
    } finally {
      await s.close();
    }
  });

  it("counts a notice an earlier run held and this run applied (its predecessor came now) as this run's when the feed repeats it", async () => {
    const [code] = ["0000000021"].map(makeResidentCode);
    const s = await storeWith([code!]);
    try {
      const c = new FixedClock(new Date("2026-05-01T00:00:00Z"));
      await new NoticeIngestor({ store: s, clock: c }).ingest(records([notice("H-2", code!, 2)])); // held: sequence 1 not yet come
      c.advance(60_000);
      const feed = [notice("H-1", code!, 1), notice("H-2", code!, 2)]; // H-1 releases H-2; the feed then repeats H-2
      const r = await new NoticeIngestor({ store: s, clock: c }).ingest(records(feed), { batchSize: 1 });
      expect(r).toMatchObject({ read: 2, applied: 2, released: 1, duplicates: 1, alreadyApplied: 0, alreadyHeld: 0 });
    } finally {
      await s.close();
    }
  });
});
