/**
 * The messages one notice batch sends its PostgreSQL store (Client#query calls: a Query of several statements is
 * one): each is a round trip, and on a loaded host a scheduling delay of the backend. The batch's context reads
 * and its relinks travel as simple-protocol messages of several statements, their arrays written as literals
 * (textArrayLiteral): those must reach the server as the values they were, whatever characters they hold.
 */
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { admin, ca, certifiedResidents, items, queriesDuring } from "../../test/postgres-store-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { PostgresStore, textArrayLiteral } from "./postgres.js";

const server = usePostgres();

/** A message's text, its white space folded. */
function label(arg: unknown): string {
  const text = typeof arg === "string" ? arg : (arg as { text?: unknown }).text;
  return String(text).replace(/\s+/g, " ");
}

/** The messages, for a failure's report: each one's first words. */
const listed = (sent: readonly string[]) => sent.map((x) => x.slice(0, 100)).join("\n");

describe("PostgreSQL notice batch messages", () => {
  it("textArrayLiteral: a text[] literal the server reads back as the same strings, whatever they hold", async () => {
    const url = await server.createDatabase();
    const c = await admin(url);
    try {
      const values = ["", "NULL", "null", "a,b", "{x}", '"quoted"', "back\\slash", "\\", "it's", "''", "tab\there", "line\nbreak", " spaced ", "山田　太郎", "😀", "E'x'", "$1", "a\\\"b"];
      for (const standard of ["on", "off"]) {
        await c.query(`SET standard_conforming_strings = ${standard}`);
        const r = await c.query<{ a: string[] }>(`SELECT ${textArrayLiteral(values)} AS a`);
        expect(r.rows[0]!.a, `standard_conforming_strings ${standard}`).toEqual(values);
      }
      expect((await c.query<{ a: string[] }>(`SELECT ${textArrayLiteral([])} AS a`)).rows[0]!.a).toEqual([]);
      expect(() => textArrayLiteral(["a\0b"])).toThrow(/NUL/);
    } finally {
      await c.end();
    }
  });

  it("a batch with a revocation and a resident-code change in 12 messages: its context reads in one, its relinks in one (after the disclosure index's mark, locked), its log, notices, sequences and revisions in one", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      const codes = ["r1", "r2"];
      await certifiedResidents(s, codes, (i) => `0f0${i}`);
      const { value: done, calls } = await queriesDuring(() =>
        s.commitNoticeBatch({ noticeIds: ["n1", "n2"], residentCodes: ["r1", "r2", "r2b"], registryCodes: ["r2", "r2b"] }, (ctx) => ({
          commit: {
            at: new Date(6000),
            notices: [
              { noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: '{"noticeId":"n1"}', status: "applied" as const, revocations: 1 },
              { noticeId: "n2", residentCode: "r2", sequence: 1, kind: "resident-code-change", body: '{"noticeId":"n2","newResidentCode":"r2b"}', status: "applied" as const, revocations: 0 },
            ],
            sequences: [{ residentCode: "r1", last: 1 }, { residentCode: "r2b", last: 1 }],
            revocations: (ctx.certificates.get("r1") ?? []).map((x) => ({ serial: x.serial, reason: 5, source: "notice:n1", residentCode: "r1" })),
            relinks: [{ from: "r2", to: "r2b" }],
            dirtyCas: ["13-sig"],
          },
        })),
      );
      const sent = calls.map((c) => label(c[0]));
      expect(done.revoked).toBe(1);
      // what was written: the revocation, the relink, the notices and sequences, the CA due
      expect((await s.getCertificate("0f00"))?.revocation?.reason).toBe(5);
      expect((await s.getCertificate("0f01"))?.residentCode).toBe("r2b");
      expect((await s.getNotice("n1"))?.revocations).toBe(1);
      expect((await s.getNotice("n2"))?.status).toBe("applied");
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: ["r1", "r2b"] });
      expect(ctx.lastSequence).toEqual(new Map([["r1", 1], ["r2b", 1]]));
      // BEGIN, the shared and the residents' locks, the context (one message), the registry records, the disclosure
      // index's mark (read and locked against its indexer: PostgreSQL 34, once per batch that relinks), the relinks
      // (one message), the revocations, the log blocks + notices + sequences + revisions, the partitions, the audit, COMMIT
      expect(sent.filter((x) => x.includes("FROM resident_sequences WHERE")), listed(sent)).toHaveLength(1);
      expect(sent.filter((x) => x.includes("INSERT INTO notices") || x.includes("INSERT INTO revocation_log")), listed(sent)).toHaveLength(1);
      expect(sent.filter((x) => x.includes("UPDATE certificates c SET resident_code")), listed(sent)).toHaveLength(1);
      expect(sent.filter((x) => x.includes("disclosure_index_state")), listed(sent)).toHaveLength(1);
      expect(sent, listed(sent)).toHaveLength(12);
    } finally {
      await s.close();
    }
  });

  it("revokes where the context read the rows, and by serial a row the batch relinked first: one revoking statement, each certificate revoked once", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      const codes = ["r1", "r2", "r3"];
      await certifiedResidents(s, codes, (i) => `0f1${i}`);
      // 0f12 revoked by hand before the batch, which names it again: not revoked twice, its revocation kept
      await s.revoke({ serial: "0f12", revokedAt: new Date(5000), reason: 1, source: "manual" });
      const { value: done, calls } = await queriesDuring(() =>
        s.commitNoticeBatch({ noticeIds: ["n1", "n2"], residentCodes: ["r1", "r2", "r2b", "r3"], registryCodes: ["r2", "r2b"] }, (ctx) => ({
          commit: {
            at: new Date(6000),
            notices: [
              { noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: '{"noticeId":"n1"}', status: "applied" as const, revocations: 1 },
              { noticeId: "n2", residentCode: "r2", sequence: 1, kind: "resident-code-change", body: '{"noticeId":"n2","newResidentCode":"r2b"}', status: "applied" as const, revocations: 1 },
            ],
            sequences: [{ residentCode: "r1", last: 1 }, { residentCode: "r2b", last: 1 }],
            // r1's certificate as the context read it; r2's, which the relink below moves to r2b before the revocations
            revocations: [
              ...(ctx.certificates.get("r1") ?? []).map((x) => ({ serial: x.serial, reason: 5, source: "notice:n1", residentCode: "r1" })),
              ...(ctx.certificates.get("r2") ?? []).map((x) => ({ serial: x.serial, reason: 4, source: "notice:n2", residentCode: "r2b" })),
              { serial: "0f12", reason: 3, source: "notice:n3", residentCode: "r3" },
            ],
            relinks: [{ from: "r2", to: "r2b" }],
            dirtyCas: ["13-sig"],
          },
        })),
      );
      const sent = calls.map((c) => label(c[0]));
      expect(done.revoked).toBe(2);
      expect((await s.getCertificate("0f10"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 5, source: "notice:n1" });
      expect((await s.getCertificate("0f11"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 4, source: "notice:n2" });
      expect((await s.getCertificate("0f11"))?.residentCode).toBe("r2b");
      expect((await s.getCertificate("0f12"))?.revocation).toEqual({ revokedAt: new Date(5000), reason: 1, source: "manual" });
      // one revoking statement: the moved row went by serial in it, not by a second statement after a miss
      expect(sent.filter((x) => x.includes("SET revoked_at")), listed(sent)).toHaveLength(1);
      // the CRL's source: the manual revocation's entry and the batch's two, each once
      const c = await admin(url);
      try {
        expect((await c.query<{ n: string }>("SELECT sum(entries)::text AS n FROM revocation_log WHERE ca_id = '13-sig'")).rows[0]!.n).toBe("3");
      } finally {
        await c.end();
      }
    } finally {
      await s.close();
    }
  });

  it("gives a resident's certificates in issue order (not serial order) with the rows' ctids, and revokes them there", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" as const }]);
      // issued in the order 0f2b, 0f2a: the reverse of their serials'
      await s.commitIssuances([["0f2b", "signature", 1000], ["0f2a", "authentication", 2000]].map(([serial, type, at]) => ({
        serial: serial as string, caId: "13-sig", type: type as "signature" | "authentication", residentCode: "r1", municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(at as number), der: Buffer.from([0x30, at === 1000 ? 1 : 2]),
      })));
      expect((await s.loadNoticeContext({ noticeIds: [], residentCodes: ["r1"] })).certificates.get("r1")?.map((x) => x.serial)).toEqual(["0f2b", "0f2a"]);
      const spy = vi.spyOn(pg.Client.prototype, "query");
      let revoking: unknown[] | undefined;
      try {
        await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["r1"] }, (ctx) => {
          expect(ctx.certificates.get("r1")?.map((x) => [x.serial, x.type])).toEqual([["0f2b", "signature"], ["0f2a", "authentication"]]);
          expect(ctx.everCertified.has("r1")).toBe(true);
          return {
            commit: {
              at: new Date(6000),
              notices: [{ noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: '{"noticeId":"n1"}', status: "applied" as const, revocations: 2 }],
              sequences: [{ residentCode: "r1", last: 1 }],
              revocations: (ctx.certificates.get("r1") ?? []).map((x) => ({ serial: x.serial, reason: 5, source: "notice:n1", residentCode: "r1" })),
              relinks: [],
              dirtyCas: ["13-sig"],
            },
          };
        });
        revoking = spy.mock.calls.find((c) => label(c[0]).includes("SET revoked_at"))?.[1] as unknown[] | undefined;
      } finally {
        spy.mockRestore();
      }
      // $5: each row's ctid as the context read it, a text[] in binary: "(page,item)" for both, none NULL
      const tids = revoking?.[4] as Buffer;
      expect(tids.readInt32BE(4), "no NULL ctid").toBe(0);
      expect(tids.toString("latin1").match(/\(\d+,\d+\)/g)).toHaveLength(2);
      for (const serial of ["0f2a", "0f2b"]) expect((await s.getCertificate(serial))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 5, source: "notice:n1" });
    } finally {
      await s.close();
    }
  });
});

describe("PostgreSQL notice batch: the rows it revokes by ctid, between the context read and the update", () => {
  it("a manual revocation waits for the batch (and is refused after), VACUUM moves no row: revoked once, by ctid, one log entry", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const c = await admin(url);
    try {
      await s.putCa(ca);
      const codes = ["r1", "r9"];
      await certifiedResidents(s, codes, (i) => `0e1${i}`);
      // dead versions of a neighbour on the page, from before the batch began: VACUUM may prune them under it
      for (let i = 0; i < 5; i++) await c.query("UPDATE certificates SET registry_sequence = $1 WHERE serial = '0e11'", [i]);
      const query = pg.Client.prototype.query;
      let manual: Promise<unknown> | undefined;
      let lockedAgainstOthers: unknown;
      // Just before the batch's revoking statement goes, from other connections: is the row the context read still
      // locked against a writer; VACUUM of the table (the neighbour's dead versions pruned, the page compacted); and
      // `jpki revoke` of the same certificate, let go only once it waits for the batch.
      const spy = vi.spyOn(pg.Client.prototype, "query").mockImplementation(function (this: pg.Client, ...args: unknown[]) {
        if (manual || !label(args[0]).startsWith("WITH by_tid")) return (query as (...a: unknown[]) => unknown).apply(this, args);
        const go = async () => {
          lockedAgainstOthers = await c.query("SELECT serial FROM certificates WHERE serial = '0e10' FOR NO KEY UPDATE NOWAIT").then(() => false, (e: { code?: string }) => e.code);
          await c.query("VACUUM certificates");
          manual = s.revoke({ serial: "0e10", revokedAt: new Date(7000), reason: 1, source: "manual" }).then(() => "revoked", (e: { code?: string }) => e.code);
          // waits on a condition: the manual revocation's backend blocked on a lock (or it finished: then it did not wait)
          for (let settled = false; !settled; ) {
            const waiting = await c.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'SELECT * FROM certificates WHERE serial = $1 FOR NO KEY UPDATE%'");
            settled = waiting.rowCount! > 0 || (await Promise.race([manual.then(() => true), new Promise<boolean>((r) => setImmediate(() => r(false)))]));
          }
          return (query as (...a: unknown[]) => Promise<unknown>).apply(this, args);
        };
        return go();
      });
      let sent: string[];
      let done: Awaited<ReturnType<typeof s.commitNoticeBatch>>;
      try {
        done = await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["r1"], registryCodes: [] }, (ctx) => ({
          commit: {
            at: new Date(6000),
            notices: [{ noticeId: "n1", residentCode: "r1", sequence: 1, kind: "death", body: '{"noticeId":"n1"}', status: "applied" as const, revocations: 1 }],
            sequences: [{ residentCode: "r1", last: 1 }],
            revocations: (ctx.certificates.get("r1") ?? []).map((x) => ({ serial: x.serial, reason: 5, source: "notice:n1", residentCode: "r1" })),
            relinks: [],
            dirtyCas: ["13-sig"],
          },
        }));
        sent = spy.mock.calls.map((x) => label(x[0]));
      } finally {
        spy.mockRestore();
      }
      expect(lockedAgainstOthers).toBe("55P03"); // lock_not_available: the context's row lock holds until the commit
      expect(await manual).toBe("ERR_CERT_ALREADY_REVOKED");
      expect(done.revoked).toBe(1);
      expect((await s.getCertificate("0e10"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 5, source: "notice:n1" });
      // found where the context read it: the fallback by serial never ran, VACUUM or not
      expect(sent.filter((x) => x.includes("$5::int8[]) AS u(serial")), listed(sent)).toHaveLength(0);
      expect((await c.query<{ n: string }>("SELECT sum(entries)::text AS n FROM revocation_log WHERE ca_id = '13-sig'")).rows[0]!.n).toBe("1");
    } finally {
      await c.end();
      await s.close();
    }
  });
  it("a relink chain in one batch (r1 → r2, then r2 → r3: relinked one by one): the certificates it moved are revoked by serial, each once, with its own reason and source", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      const codes = ["r1", "r2", "r3"];
      await certifiedResidents(s, codes, (i) => `0d2${i}`);
      const { value: done, calls } = await queriesDuring(() =>
        s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: codes, registryCodes: codes }, (ctx) => ({
          commit: {
            at: new Date(6000),
            notices: [{ noticeId: "n1", residentCode: "r1", sequence: 1, kind: "resident-code-change", body: '{"noticeId":"n1","newResidentCode":"r2"}', status: "applied" as const, revocations: 3 }],
            sequences: [],
            // in this order: r3's (never moved), then r1's (moved twice) and r2's (moved once)
            revocations: ["r3", "r1", "r2"].flatMap((code, k) => (ctx.certificates.get(code) ?? []).map((x) => ({ serial: x.serial, reason: k + 1, source: `notice:n${k}`, residentCode: code }))),
            relinks: [{ from: "r1", to: "r2" }, { from: "r2", to: "r3" }],
            dirtyCas: ["13-sig"],
          },
        })),
      );
      const sent = calls.map((c) => label(c[0]));
      expect(done.revoked).toBe(3);
      expect(sent.filter((x) => x.includes("SET revoked_at")), listed(sent)).toHaveLength(1);
      expect((await s.getCertificate("0d22"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 1, source: "notice:n0" });
      expect((await s.getCertificate("0d20"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 2, source: "notice:n1" });
      expect((await s.getCertificate("0d21"))?.revocation).toEqual({ revokedAt: new Date(6000), reason: 3, source: "notice:n2" });
      expect((await s.getCertificate("0d20"))?.residentCode).toBe("r3");
      expect((await s.getCertificate("0d21"))?.residentCode).toBe("r3");
      // one log block of the three, whichever part of the statement revoked each
      const c = await admin(url);
      try {
        const r = await c.query<{ entries: number }>("SELECT entries FROM revocation_log WHERE ca_id = '13-sig'");
        expect(r.rows.map((x) => x.entries)).toEqual([3]);
      } finally {
        await c.end();
      }
      expect((await s.revocationSummary()).map((x) => x.serial).sort()).toEqual(["0d20", "0d21", "0d22"]);
    } finally {
      await s.close();
    }
  });
});
