/**
 * What the PostgreSQL store reads in order: the revocation log (CRL streams, binary COPY, deltas and partitions),
 * issuance information left for the sweep, and liveness checks paged by id under concurrent writers.
 */
import { describe, expect, it } from "vitest";
import { admin, ca, items, migratedTemplate as templateOf } from "../../test/postgres-store-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { isJpkiError } from "../errors.js";
import { decodeEntries } from "../profile/crl-entry.js";
import { seedSweepFixture } from "./contract.js";
import { RevocationBlocks } from "./revocation-log.js";
import { PostgresStore, parseLogCopy } from "./postgres.js";

const server = usePostgres();

const migratedTemplate = (): Promise<string> => templateOf(server);

describe("PostgresStore reads in order", () => {
  it("commits liveness checks in id order under concurrent writers: a client paging by the last id it saw misses none", async () => {
    const url = await server.createDatabase(await migratedTemplate());
    const writers = await Promise.all(Array.from({ length: 4 }, () => PostgresStore.open(url)));
    const reader = await PostgresStore.open(url);
    const verifierId = "v-paging";
    const batch = (n: number) =>
      Array.from({ length: n }, (_, i) => ({ verifierId, at: new Date(), caId: "13-sig", serial: (0x1000 + i).toString(16), certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined }));
    try {
      let stop = false;
      const loops = writers.map(async (w, k) => {
        while (!stop) await w.recordStatusChecks(batch(5 + 7 * k), []);
      });
      // GET /v1/status/history's paging, while the writers go on
      let after = 0;
      let seen = 0;
      const page = async () => {
        const rows = await reader.listStatusChecks({ verifierId, after, limit: 1000 });
        seen += rows.length;
        if (rows.length) after = rows.at(-1)!.id;
        return rows.length;
      };
      // 3 s of paging, and on until the writers have committed more than 500: a count of rows in 3 s was a speed the
      // writers had to reach, which a loaded host's PostgreSQL need not
      const until = Date.now() + 3000;
      while (Date.now() < until || seen <= 500) await page();
      stop = true;
      await Promise.all(loops);
      while (await page()) {}
      const all = (await reader.listStatusChecks({ verifierId, after: 0, limit: 10_000_000 })).length;
      expect(all).toBeGreaterThan(500);
      expect(seen).toBe(all);
    } finally {
      for (const s of [...writers, reader]) await s.close();
    }
  }, 30_000);

  it("leaves a notice batch's revoked certificates' issuance information rows for the sweep, which leaves exactly the live ones", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    const f = await seedSweepFixture(s);
    const a = await admin(url);
    try {
      const rows = async () => (await a.query<{ serial: string }>("SELECT serial FROM registry_issuances ORDER BY serial")).rows.map((r) => r.serial);
      // the manual revocation deleted its row (0e06); the notice batch left 0e05 and 0e07, which no read returns
      expect(await rows()).toEqual(["0e01", "0e02", "0e03", "0e04", "0e05", "0e07", "0e08"]);
      expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 3 })).toBe(f.expired);
      expect(await rows()).toEqual(f.live);
    } finally {
      await a.end();
      await s.close();
    }
  });

  it("streams a CRL from the revocation log, block by block in revocation order over several pages, and a consumer that stops early gives its connection back", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 2 });
    await s.putCa(ca);
    const n = 20_200;
    const codes = Array.from({ length: n }, (_, i) => `r${String(i).padStart(6, "0")}`);
    await s.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    const serial = (i: number) => (0x100000 + i).toString(16);
    await s.commitIssuances(codes.map((residentCode, i) => ({
      serial: serial(i), caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    // five notice batches of 4,000, each revoking in descending serial order (five large blocks), then 200
    // manual revocations (200 blocks of one): more blocks than a page's first 64, of very different sizes
    const order: string[] = [];
    for (let k = 0; k < 5; k++) {
      const batch = Array.from({ length: 4000 }, (_, j) => 20_000 - 1 - (k * 4000 + j));
      order.push(...batch.map(serial));
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
        commit: { at: new Date(1000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"], revocations: batch.map((i) => ({ serial: serial(i), reason: 1, source: "t", residentCode: codes[i]! })) },
      }));
    }
    for (let i = 20_000; i < n; i++) {
      await s.revoke({ serial: serial(i), revokedAt: new Date(2000), reason: 1, source: "manual" });
      order.push(serial(i));
    }
    const counts: number[] = [];
    const listed: string[] = [];
    for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) {
      counts.push(chunk.count);
      const serials = decodeEntries(chunk.der).map((e) => e.serial);
      expect(serials.length).toBe(chunk.count);
      listed.push(...serials);
    }
    expect(counts).toEqual([4000, 4000, 4000, 4000, 4000, ...Array.from({ length: 200 }, () => 1)]);
    expect(listed).toEqual(order); // the order they were revoked in, not by serial
    // More early exits than the pool has connections, one with the next page already asked for: each must have
    // rolled back and released its own.
    for (let i = 0; i < 5; i++) {
      for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) {
        expect(chunk.count).toBe(4000);
        break;
      }
    }
    expect(await s.dirtyCas()).toEqual(["13-sig"]);
    await s.close();
  });

  it("reads the log by binary COPY: a CA id that needs quoting, and a failing read that is ERR_STORE and gives its connection back", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true, poolSize: 1 });
    const odd = { ...ca, id: "13-o'k\\x" };
    await s.putCa(odd);
    await s.putCa(ca);
    await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    await s.commitIssuances(["r1", "r2"].map((residentCode, i) => ({
      serial: `0f0${i + 1}`, caId: i ? "13-sig" : odd.id, type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    for (const serial of ["0f01", "0f02"]) await s.revoke({ serial, revokedAt: new Date(3000), reason: 1, source: "manual" });
    const list = async (caId: string) => {
      const out: string[] = [];
      for await (const chunk of s.crlEntries(caId, { expiredBefore: new Date(0) })) out.push(...decodeEntries(chunk.der).map((e) => e.serial));
      return out;
    };
    expect(await list(odd.id)).toEqual(["0f01"]);
    expect(await list("13-sig")).toEqual(["0f02"]);
    const a = await admin(url);
    await a.query("ALTER TABLE revocation_log RENAME TO revocation_log_gone");
    await expect(list("13-sig")).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE"));
    await a.query("ALTER TABLE revocation_log_gone RENAME TO revocation_log");
    await a.end();
    expect(await list("13-sig")).toEqual(["0f02"]); // the one connection came back
    await s.close();
  });

  it("parses a binary COPY of log blocks however its bytes are cut into messages, and refuses one that ends early", () => {
    const i4 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
    const i8 = (v: bigint) => { const b = Buffer.alloc(8); b.writeBigInt64BE(v); return b; };
    const f = (b: Buffer | null) => (b ? Buffer.concat([i4(b.length), b]) : i4(-1));
    const row = (id: bigint, entries: number, min: bigint, der: Buffer, meta: Buffer | null) =>
      Buffer.concat([Buffer.from([0, 5]), f(i8(id)), f(i4(entries)), f(i8(min)), f(der), f(meta)]);
    const stream = Buffer.concat([
      Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), i4(0), i4(3), Buffer.from("xyz"), // a header extension, skipped
      row(7n, 2, 1000n, Buffer.from("3003020101", "hex"), null),
      row(9n, 1, 2000n, Buffer.from("300402020102", "hex"), Buffer.alloc(8, 1)),
      Buffer.from([0xff, 0xff]),
    ]);
    const want = [
      { id: 7n, entries: 2, minNotAfter: 1000, der: Buffer.from("3003020101", "hex"), meta: null },
      { id: 9n, entries: 1, minNotAfter: 2000, der: Buffer.from("300402020102", "hex"), meta: Buffer.alloc(8, 1) },
    ];
    expect(parseLogCopy([stream])).toEqual(want);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(parseLogCopy([stream.subarray(0, cut), Buffer.alloc(0), stream.subarray(cut)])).toEqual(want);
    }
    expect(parseLogCopy(Array.from(stream, (b) => Buffer.from([b])))).toEqual(want);
    expect(() => parseLogCopy([stream.subarray(0, stream.length - 3)])).toThrow(/ends early/);
    expect(() => parseLogCopy([Buffer.from("not a copy at all")])).toThrow(/signature/);
  });

  it("a delta CRL lists the revocations its base's snapshot did not see: one still running when the base was reserved, not one committed before; a full CRL lists the log blocks its snapshot sees, whatever their ids", async () => {
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    await s.putCa(ca);
    await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
    await s.commitIssuances(["r1", "r2"].map((residentCode, i) => ({
      serial: `0e0${i + 1}`, caId: "13-sig", type: "signature" as const, residentCode, municipalityCode: "131016", fourItems: items,
      notBefore: new Date(0), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
    })));
    // A revoking transaction has written its row but not committed when the base is reserved; a later one
    // (a higher transaction id) committed before: a mark by transaction id order would get both wrong.
    // As another jpki process would, it appends its log block too: that block takes the lower id and commits last.
    const full = async () => {
      const out: string[] = [];
      for await (const chunk of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) out.push(...decodeEntries(chunk.der).map((e) => e.serial));
      return out;
    };
    const a = await admin(url);
    await a.query("BEGIN");
    await a.query("UPDATE certificates SET revoked_at = 1000, reason = 1, revocation_source = 't', revoked_xid = pg_current_xact_id() WHERE serial = '0e01'");
    const blocks = new RevocationBlocks();
    blocks.add("13-sig", "0e01", 1000, 1, Date.UTC(2030, 0, 1), "131016");
    const [b1] = blocks.take();
    await a.query("INSERT INTO revocation_log (ca_id, entries, min_not_after, der, meta) VALUES ($1, $2, $3, $4, $5)", [b1!.caId, b1!.entries, b1!.minNotAfter, b1!.der, b1!.meta]);
    await s.revoke({ serial: "0e02", revokedAt: new Date(2000), reason: 1, source: "manual" });
    expect(await full()).toEqual(["0e02"]);
    const base = await s.reserveCrl("13-sig", new Date(0), new Date(Date.UTC(2030, 0, 1)));
    await a.query("COMMIT");
    await a.end();
    expect(await full()).toEqual(["0e01", "0e02"]); // id order, not commit order: both are listed
    expect(await s.publishCrl({ caId: "13-sig", number: base.number, entries: 1, path: "crl/13-sig.crl", sha256: "ab" }, () => undefined)).toBe(true);
    const listed: string[] = [];
    for await (const chunk of s.deltaCrlEntries("13-sig", base.number, { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
    expect(listed).toEqual(["0e01"]);
    await s.close();
  });

  // Found in review: pg_restore --clean of a backup from before migration 22 leaves carried_revocations as it was
  // (IF NOT EXISTS), while the backup brings back the certificate of a serial an earlier restore had carried.
  // Both rows were listed: the partition CRL and the delta named the serial twice, which crl-index.ts refuses.
  it("lists on a partition and a delta what the revocation log holds, once each: a revocation in the store and an entry carried over", async () => {
    // Partitions and deltas read the log since migration 23, as full CRLs do: a carried entry is there (carryRevocations
    // appends it), and no row of carried_revocations adds it a second time.
    const url = await server.createDatabase();
    const s = await PostgresStore.open(url, { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      const far = new Date(Date.UTC(2030, 0, 1));
      await s.commitIssuances(["0c01", "0c02"].map((serial, i) => ({
        serial, caId: "13-sig", type: "signature" as const, residentCode: `r${i + 1}`, municipalityCode: "131016", fourItems: items,
        notBefore: new Date(0), notAfter: far, issuedAt: new Date(0), der: Buffer.from([0x30, 0]),
      })));
      const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3));
      const r = await s.reserveCrl("13-sig", t, n);
      await s.publishCrl({ caId: "13-sig", number: r.number, entries: 0, path: "p", sha256: "a" }, () => undefined);
      await s.revoke({ serial: "0c01", revokedAt: new Date(4000), reason: 1, source: "restore" });
      await s.carryRevocations([{ caId: "13-sig", serial: "0c03", revokedAt: new Date(5000), reason: 1, notAfter: far, municipality: "131016" }]);
      const parts = await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: new Date(0) });
      expect(parts.get("131016")!.flatMap((c) => decodeEntries(c.der)).map((e) => e.serial)).toEqual(["0c01", "0c03"]);
      const delta = await s.reserveDeltaCrl("13-sig", t, n);
      expect(delta?.baseNumber).toBe(r.number);
      const listed: string[] = [];
      for await (const chunk of s.deltaCrlEntries("13-sig", r.number, { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
      expect(listed).toEqual(["0c01", "0c03"]);
    } finally {
      await s.close();
    }
  });
});
