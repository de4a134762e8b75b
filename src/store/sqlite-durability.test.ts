/**
 * What must outlive a power cut on SQLite, which runs with synchronous=NORMAL (the WAL synced only at checkpoints):
 * the revocations a CRL lists, before its file is installed — else the CRL stays on disk, the store loses them, and
 * the next CRL drops them — and a manual revocation once it is reported done. A power cut cannot be made here: the
 * test records the WAL syncs instead, and asks that the WAL file was synced, and when. The CRL publisher calls
 * syncCommitted before publishCrl (crl/publisher.ts); the store contract has it too.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { CaRecord, IssuanceRecord } from "./types.js";

const calls = vi.hoisted(() => ({ events: [] as string[] }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  return {
    ...real,
    open: async (...args: Parameters<typeof real.open>) => {
      const h = await real.open(...args);
      const datasync = h.datasync.bind(h);
      return Object.assign(h, {
        datasync: async () => {
          await datasync();
          calls.events.push(`sync ${String(args[0])}`);
        },
      });
    },
  };
});

const { SqliteStore } = await import("./sqlite.js");

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const ca: CaRecord = { id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };
const cert = (serial: string): IssuanceRecord => ({
  serial, caId: "13-sig", type: "signature", residentCode: "12345678906", municipalityCode: "131016", fourItems: items,
  notBefore: new Date(1000), notAfter: new Date(Date.UTC(2030, 0, 1)), issuedAt: new Date(1000), der: Buffer.from(serial, "hex"),
});

describe("SqliteStore durability (synchronous=NORMAL)", () => {
  it("syncs the WAL when asked (before a CRL is installed), and after a manual revocation commits, before it resolves", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-durable-")), "jpki.db");
    const wal = `sync ${path}-wal`;
    const s = SqliteStore.open(path, { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents([{ residentCode: "12345678906", municipalityCode: "131016", fourItems: items, status: "active" }]);
      await s.commitIssuances([cert("0a01"), { ...cert("0a02"), type: "authentication" }]);
      calls.events.length = 0;
      await s.revoke({ serial: "0a01", revokedAt: new Date(4000), reason: 1, source: "manual" });
      expect(calls.events).toEqual([wal]);

      calls.events.length = 0;
      const { number } = await s.reserveCrl("13-sig", new Date(5000), new Date(6000));
      expect(calls.events).toEqual([]);
      await s.syncCommitted();
      expect(calls.events).toEqual([wal]);
    } finally {
      await s.close();
    }
  });

  it("callers arriving while a sync is in flight share the next one, which starts after it: never one begun before their call", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-durable-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    try {
      await s.putCa(ca); // a commit: the WAL file exists
      calls.events.length = 0;
      const first = s.syncCommitted();
      const [second, third] = [s.syncCommitted(), s.syncCommitted()];
      expect(second).toBe(third);
      await Promise.all([first, second, third]);
      expect(calls.events).toEqual([`sync ${path}-wal`, `sync ${path}-wal`]);
      await s.syncCommitted(); // none in flight: its own
      expect(calls.events).toHaveLength(3);
    } finally {
      await s.close();
    }
  });

  it("syncs on the checkpointer's thread once a batch has started it (not on libuv's pool, behind the signatures)", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-durable-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    try {
      await s.putCa(ca);
      await s.upsertResidents(Array.from({ length: 2000 }, (_, i) => ({ residentCode: `r${i}`, municipalityCode: "131016", fourItems: items, status: "active" as const })));
      // Before the thread: the pool's sync, as for a lone command.
      calls.events.length = 0;
      await s.syncCommitted();
      expect(calls.events).toEqual([`sync ${path}-wal`]);
      // A batch's groups, 2,000 certificates: the checkpointer's thread starts (sqlite.ts ISSUANCES_PER_CHECKPOINT).
      for (let g = 0; g < 4; g++) {
        const group = Array.from({ length: 500 }, (_, i) => ({ ...cert((0x10000 + g * 500 + i).toString(16)), residentCode: `r${g * 500 + i}` }));
        expect((await s.commitIssuances(group)).every((r) => r.status === "committed")).toBe(true);
      }
      calls.events.length = 0;
      await s.syncCommitted();
      expect(calls.events).toEqual([]); // synced by the thread (checkpointer.test.ts), not through node:fs/promises
    } finally {
      await s.close();
    }
  });

  it("an in-memory store has no WAL to sync", async () => {
    const s = SqliteStore.open(":memory:", { create: true });
    try {
      await s.putCa(ca);
      calls.events.length = 0;
      await s.syncCommitted();
      expect(calls.events).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
