import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { describe, expect, it, vi } from "vitest";
import { CLOSED_BEFORE_SUCCESSORS, expectSuccessorsFilled, keyed, seedSweepFixture, storeContract } from "./contract.js";
import { auditContract } from "./audit-contract.js";
import Database from "better-sqlite3";
import { MIGRATIONS, NEW_STORE_PAGE_SIZE, pageCacheKiB, SCHEMA_VERSION, SqliteStore } from "./sqlite.js";
import { WalCheckpointer } from "./checkpointer.js";
import { copyStore } from "./copy.js";
import { certifiedKeyOf } from "./rows.js";
import { WRITER_GUARD_MESSAGE } from "./writer-guard.js";
import { JpkiError } from "../errors.js";
import type { UpgradeProgress } from "./upgrade.js";
import { childOutput } from "../../test/child-output.js";
import { until } from "../../test/until.js";

const fresh = () => Promise.resolve(SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db"), { create: true }));

/**
 * A store file at schema version `version` (migrations 1..version run, its version and application id set), open
 * for the test to put rows in as that version had them; with `ca` (default) the CA 13-sig in it.
 */
function storeAtVersion(version: number, o: { ca?: boolean; pageSize?: number } = {}): { path: string; db: Database.Database } {
  const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
  const db = new Database(path);
  if (o.pageSize !== undefined) db.pragma(`page_size = ${o.pageSize}`);
  for (const m of MIGRATIONS.slice(0, version)) typeof m === "string" ? db.exec(m) : m(db);
  db.pragma(`user_version = ${version}`);
  db.pragma(`application_id = ${0x4a504b49}`);
  if (o.ca ?? true) db.prepare("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES ('13-sig', '13', 'signature', x'3000', 'pem', x'01', 0)").run();
  return { path, db };
}

storeContract("sqlite", fresh);
auditContract("sqlite", fresh);

describe("SqliteStore specifics", () => {
  it("leaves a notice batch's revoked certificates' issuance information rows for the sweep, which leaves exactly the live ones", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const f = await seedSweepFixture(s);
    const rows = () => {
      const db = new Database(path, { readonly: true });
      try {
        return db.prepare("SELECT serial FROM registry_issuances ORDER BY serial").pluck().all();
      } finally {
        db.close();
      }
    };
    // the manual revocation deleted its row (0e06); the notice batch left 0e05 and 0e07
    expect(rows()).toEqual(["0e01", "0e02", "0e03", "0e04", "0e05", "0e07", "0e08"]);
    expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 3 })).toBe(f.expired);
    expect(rows()).toEqual(f.live);
    await s.close();
  });

  it("rolls a whole group back when a certificate's issuance information row conflicts (the serial already held on the registry side)", async () => {
    // registerCertified runs OR FAIL (no statement journal): the group's transaction, not the statement, is what
    // undoes it, and a looser conflict clause (IGNORE, REPLACE) must not let the group through.
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    try {
      await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
      const a = keyed("0b01", "r1", 1000, "key-a");
      const b = keyed("0b02", "r2", 1000, "key-b");
      await s.upsertResidents(["r1", "r2"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: a.fourItems, status: "active" as const })));
      const db = new Database(path);
      try {
        db.prepare("INSERT INTO registry_issuances (serial, resident_code, ca_id, type, name, address, birth_date, gender, not_before, not_after) VALUES ('0b02', 'r9', '13-sig', 'signature', 'x', 'x', 'x', 'x', 0, 0)").run();
      } finally {
        db.close();
      }
      await expect(s.commitIssuances([a, b])).rejects.toMatchObject({ code: "ERR_STORE" });
      expect(await s.getCertificate("0b01")).toBeUndefined();
      expect(await s.getCertificate("0b02")).toBeUndefined();
      const check = new Database(path, { readonly: true });
      try {
        expect(check.prepare("SELECT serial, resident_code FROM registry_issuances ORDER BY serial").raw().all()).toEqual([["0b02", "r9"]]);
      } finally {
        check.close();
      }
    } finally {
      await s.close();
    }
  });

  it("stores an issued certificate's two lookup keys as the octets the other writers compute (bound as hex, unhex()ed)", async () => {
    // The issuing commit binds the keys as hex text. Migrations 23 and 29, restores and PostgreSQL compute them as
    // octets (derIdKey, certifiedKeyOf): a lookup by certificate id or by key must find what either wrote.
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
    const a = keyed("0a01", "r1", 1000, "key-a");
    await s.upsertResidents(["r1", "r2", "r3"].map((residentCode) => ({ residentCode, municipalityCode: "131016", fourItems: a.fourItems, status: "active" as const })));
    const b = keyed("0a02", "r2", 1000, "key-a"); // the same key for another resident, in the same group: refused
    const noKey = { ...keyed("0a03", "r3", 1000, "key-c"), der: Buffer.from([0x30, 0x00]) };
    expect((await s.commitIssuances([a, b, noKey])).map((r) => r.status)).toEqual(["committed", "key-in-use", "committed"]);
    const db = new Database(path, { readonly: true });
    try {
      expect(db.prepare("SELECT serial, der_sha256_prefix, certified_key FROM certificates ORDER BY serial").raw().all()).toEqual([
        ["0a01", derId(a.der), certifiedKeyOf(a.der)],
        ["0a03", derId(noKey.der), Buffer.alloc(0)],
      ]);
    } finally {
      db.close();
    }
    // found by its id (SHA-256 of the DER, hex), as a liveness check asks
    expect((await s.certificatesForStatus({ serials: [], certificateIds: [createHash("sha256").update(a.der).digest("hex")] })).map((c) => c.serial)).toEqual(["0a01"]);
    await s.close();
  });

  it("stores a notice body given as UTF-8 bytes as text, the very bytes of its string (what dumps, copies and readers see)", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const body = JSON.stringify({ noticeId: "u1", before: { name: "𠮷野　太郎", address: "東京都\u2028" } });
    const asText = JSON.stringify({ noticeId: "u2", before: { name: "𠮷野　太郎" } });
    await s.commitNoticeBatch({ noticeIds: ["u1", "u2"], residentCodes: ["r1"] }, () => ({
      commit: {
        at: new Date(1000),
        notices: [
          { noticeId: "u1", residentCode: "r1", sequence: 1, kind: "relocation", body: new Uint8Array(Buffer.from(body)), status: "applied" as const, revocations: 0 },
          { noticeId: "u2", residentCode: "r1", sequence: 2, kind: "relocation", body: asText, status: "applied" as const, revocations: 0 },
        ],
        sequences: [{ residentCode: "r1", last: 2 }],
        revocations: [],
        relinks: [],
        dirtyCas: [],
      },
    }));
    await s.close();
    const db = new Database(path, { readonly: true });
    try {
      const rows = db.prepare("SELECT notice_id, typeof(body) AS type, hex(body) AS hex FROM notices ORDER BY notice_id").all();
      expect(rows).toEqual([
        { notice_id: "u1", type: "text", hex: Buffer.from(body).toString("hex").toUpperCase() },
        { notice_id: "u2", type: "text", hex: Buffer.from(asText).toString("hex").toUpperCase() },
      ]);
    } finally {
      db.close();
    }
  });

  it("creates a new store file, its WAL and its shared memory owner-only whatever the umask", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    const old = process.umask(0);
    try {
      const s = SqliteStore.open(join(dir, "jpki.db"), { create: true });
      try {
        await s.upsertResidents([]);
        for (const f of ["jpki.db", "jpki.db-wal", "jpki.db-shm"]) expect([f, statSync(join(dir, f)).mode & 0o777]).toEqual([f, 0o600]);
      } finally {
        await s.close();
      }
    } finally {
      process.umask(old);
    }
  });

  it("refuses files that are not jpki stores, without touching them", () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    writeFileSync(join(dir, "garbage.db"), "x".repeat(5000));
    expect(() => SqliteStore.open(join(dir, "garbage.db"))).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(() => SqliteStore.open(join(dir, "absent.db"))).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_MISSING" }));
  });

  it("migrates a new file to the current schema version and reopens it", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    await s.close();
    // the file itself says it is ours and at the version of the last migration
    const pragmas = () => {
      const db = new Database(path, { readonly: true });
      try {
        return { version: db.pragma("user_version", { simple: true }), app: db.pragma("application_id", { simple: true }) };
      } finally {
        db.close();
      }
    };
    expect(SCHEMA_VERSION).toBe(MIGRATIONS.length);
    expect(pragmas()).toEqual({ version: MIGRATIONS.length, app: 0x4a504b49 });
    const again = SqliteStore.open(path);
    expect(await again.countResidents()).toBe(0);
    await again.close();
    expect(pragmas()).toEqual({ version: MIGRATIONS.length, app: 0x4a504b49 });
  });

  /** A store file's page size and journal mode, read by a connection of its own. */
  const fileLayout = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return { pageSize: db.pragma("page_size", { simple: true }), journal: db.pragma("journal_mode", { simple: true }) };
    } finally {
      db.close();
    }
  };

  it("makes a new store with NEW_STORE_PAGE_SIZE pages, in WAL mode", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    await SqliteStore.open(path, { create: true }).close();
    expect(fileLayout(path)).toEqual({ pageSize: NEW_STORE_PAGE_SIZE, journal: "wal" });
  });

  it("keeps the page size of a store made with another one, and works on it", async () => {
    // A store from a jpki with another default: whichever NEW_STORE_PAGE_SIZE is, this one differs from it.
    const other = NEW_STORE_PAGE_SIZE === 4096 ? 8192 : 4096;
    const { path, db } = storeAtVersion(SCHEMA_VERSION, { ca: false, pageSize: other });
    db.pragma("journal_mode = WAL");
    db.close();
    // Opened as `create` would (jpki ca init over it): the page size is not the new stores' either.
    const s = SqliteStore.open(path, { create: true });
    const f = await seedSweepFixture(s);
    expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 3 })).toBe(f.expired);
    await s.close();
    const again = SqliteStore.open(path);
    expect(await again.countResidents()).toBe(4);
    await again.close();
    expect(fileLayout(path)).toEqual({ pageSize: other, journal: "wal" });
    const check = new Database(path, { readonly: true });
    expect(check.pragma("integrity_check", { simple: true })).toBe("ok");
    check.close();
  });

  it("migrates a version-5 store: CAs awaiting a CRL stay due, published CRLs stay the latest, abandoned reservations do not count", async () => {
    const { path, db } = storeAtVersion(5, { ca: false });
    const caRow = db.prepare("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES (?, ?, 'signature', x'3000', 'pem', x'01', 0)");
    caRow.run("13-sig", "13");
    caRow.run("27-sig", "27");
    db.prepare("INSERT INTO crl_dirty (ca_id, since) VALUES ('13-sig', 5)").run();
    const crl = db.prepare("INSERT INTO crls (ca_id, number, this_update, next_update, entries, path, sha256) VALUES (?, ?, 0, 1000, ?, ?, ?)");
    crl.run("13-sig", 1, 0, "crl/13-sig.crl", "aa");
    crl.run("27-sig", 1, 2, "crl/27-sig.crl", "bb");
    crl.run("27-sig", 2, null, null, null); // reserved by a run that crashed before publishing
    crl.run("27-sig", 3, 4, "crl/27-sig.crl", "cc");
    db.close();
    const s = SqliteStore.open(path);
    expect(await s.dirtyCas()).toEqual(["13-sig"]);
    expect(await s.latestCrl("27-sig")).toMatchObject({ number: 3n, entries: 4, state: "published" });
    expect((await s.reserveCrl("27-sig", new Date(0), new Date(1))).number).toBe(4n);
    await s.close();
  });
});

describe("SqliteStore upgrade to the OCSP schema", () => {
  it("opens a version-7 store: its facts stay, OCSP responders start empty and can be installed", async () => {
    const { path, db } = storeAtVersion(7);
    db.prepare("INSERT INTO crl_state (ca_id, revision, published_revision) VALUES ('13-sig', 3, 2)").run();
    db.close();
    const s = SqliteStore.open(path);
    expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig"]);
    expect(await s.caRevisions()).toEqual(new Map([["13-sig", 3]]));
    expect(await s.ocspResponders()).toEqual([]);
    const r = { caId: "13-sig", serial: "0c01", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", notBefore: new Date(1000), notAfter: new Date(2000) };
    await s.putOcspResponder(r);
    expect(await s.ocspResponders()).toEqual([r]);
    await s.close();
    const check = new Database(path, { readonly: true });
    expect(check.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
    check.close();
  });
});

describe("SqliteStore upgrade to liveness checks (version 15)", () => {
  it("opens a version-14 store: its certificates are found by certificate id (the SHA-256 of the DER, filled by the migration)", async () => {
    const { path, db } = storeAtVersion(14);
    db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id) VALUES ('0a01', '13-sig', 'signature', '12345678906', '131016', 0, 9999999999999, 0, x'30030201ff', NULL)").run();
    db.prepare(
      "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES ('12345678906', '0a01', '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, NULL, NULL, NULL)",
    ).run();
    db.close();
    const s = SqliteStore.open(path);
    const id = createHash("sha256").update(Buffer.from("30030201ff", "hex")).digest("hex");
    expect((await s.certificatesForStatus({ serials: [], certificateIds: [id] })).map((c) => c.serial)).toEqual(["0a01"]);
    expect(await s.listStatusChecks({ verifierId: "v-01" })).toEqual([]);
    await s.close();
  });
});

describe("SqliteStore upgrade to registered issuance information (version 16)", () => {
  it("opens a version-15 store: each unrevoked certificate's issuance information is registered, a revoked one's not", async () => {
    const { path, db } = storeAtVersion(15);
    for (const [serial, revokedAt] of [["0a01", null], ["0a02", 5]] as const) {
      db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256) VALUES (?, '13-sig', 'signature', '12345678906', '131016', 7, 9999999999999, 0, x'30030201ff', NULL, 'x')").run(serial);
      db.prepare(
        "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES ('12345678906', ?, '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, ?, NULL, NULL)",
      ).run(serial, revokedAt);
    }
    db.close();
    const s = SqliteStore.open(path);
    expect(await s.registeredIssuances("12345678906")).toEqual([
      { serial: "0a01", caId: "13-sig", type: "signature", residentCode: "12345678906", fourItems: { name: "n", address: "a", birthDate: "1980-01-01", gender: "male" }, notBefore: new Date(7), notAfter: new Date(9999999999999) },
    ]);
    await s.close();
  });
});

describe("SqliteStore upgrade to certificate ids indexed by their first 8 octets (version 23)", () => {
  it("opens a version-22 store: liveness checks find its certificates by id, and a row sharing only the prefix is not taken", async () => {
    const { path, db } = storeAtVersion(22);
    const der = (serial: string) => Buffer.from(`3003020101${serial}`, "hex");
    const id = (serial: string) => createHash("sha256").update(der(serial)).digest("hex");
    for (const serial of ["0a01", "0a02"]) {
      db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256) VALUES (?, '13-sig', 'signature', '12345678906', '131016', 7, 9999999999999, 0, ?, NULL, ?)").run(serial, der(serial), id(serial));
      db.prepare(
        "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES ('12345678906', ?, '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, NULL, NULL, NULL)",
      ).run(serial);
    }
    db.close();
    let s = SqliteStore.open(path);
    const found = async (ids: string[]) => (await s.certificatesForStatus({ serials: [], certificateIds: ids })).map((c) => c.serial).sort();
    expect(await found([id("0a01"), id("0a02")])).toEqual(["0a01", "0a02"]);
    expect(await found([id("0a01").toUpperCase(), id("0a01").slice(0, 16), "zz"])).toEqual([]);
    await s.close();
    // Two certificates whose digests share the first 8 octets (made here by hand): the index finds both, the
    // whole digest tells which one was asked for.
    const raw = new Database(path);
    // The hex digests are gone; the column stays (dropping it would rewrite every row in one transaction).
    expect(raw.prepare("SELECT count(*) FROM certificates WHERE der_sha256 IS NOT NULL").pluck().get()).toBe(0);
    expect(raw.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' AND name LIKE '%der_sha256%'").pluck().all()).toEqual(["certificates_der_sha256_prefix"]);
    raw.prepare("UPDATE certificates SET der_sha256_prefix = (SELECT der_sha256_prefix FROM certificates WHERE serial = '0a01') WHERE serial = '0a02'").run();
    raw.close();
    s = SqliteStore.open(path);
    expect(await found([id("0a01")])).toEqual(["0a01"]);
    await s.close();
  });
});

describe("SqliteStore upgrade to certified keys (version 29)", () => {
  it("opens a version-28 store: a key its certificates hold is refused to another resident", async () => {
    const { path, db } = storeAtVersion(28);
    const old = keyed("0a01", "r1", 0, "the card's key");
    db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix) VALUES ('0a01', '13-sig', 'signature', 'r1', '131016', 0, 9999999999999, 0, ?, NULL, x'00')").run(old.der);
    db.prepare(
      "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES ('r1', '0a01', '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, NULL, NULL, NULL)",
    ).run();
    db.close();
    const s = SqliteStore.open(path);
    const r2 = keyed("0a02", "r2", 1000, "the card's key");
    await s.upsertResidents([{ residentCode: "r2", municipalityCode: "131016", fourItems: r2.fourItems, status: "active" }]);
    expect(await s.commitIssuances([r2])).toEqual([{ status: "key-in-use", serial: "0a01", why: "other-resident" }]);
    expect(await s.commitIssuances([keyed("0a03", "r2", 1000, "a key of its own")])).toEqual([{ status: "committed", superseded: [] }]);
    await s.close();
  });
});

/** A certificate row as the previous release's commitIssuances inserted it (schema 28: no certified_key). */
const OLD_INSERT_28 =
  "INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix) VALUES (?, '13-sig', 'signature', ?, '131016', 0, 9999999999999, 0, ?, NULL, ?)";
const OLD_CERTIFIED_28 =
  "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES (?, ?, '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, NULL, NULL, NULL)";
const derId = (der: Uint8Array) => createHash("sha256").update(der).digest().subarray(0, 8);

describe("SqliteStore writer guard (version 32): an older jpki still running cannot write rows the new schema relies on", () => {
  it("refuses the certificate an older jpki, open since before the upgrade, inserts without its certified key (or certificate id); nothing of its transaction stays", async () => {
    const { path, db: old } = storeAtVersion(28);
    old.close();
    // The previous release's process: its connection and its statements prepared before the upgrade.
    const writer = new Database(path);
    writer.pragma("busy_timeout = 5000");
    const insert = writer.prepare(OLD_INSERT_28);
    const certified = writer.prepare(OLD_CERTIFIED_28);
    const commit = writer.transaction((serial: string, code: string, der: Buffer) => {
      certified.run(code, serial);
      insert.run(serial, code, der, derId(der));
    });
    const before = keyed("0a01", "r1", 0, "written before the upgrade");
    commit("0a01", "r1", before.der);

    const s = SqliteStore.open(path);
    try {
      const taken = keyed("0a02", "r2", 0, "the card's key");
      expect(() => commit("0a02", "r2", taken.der)).toThrow(
        expect.objectContaining({
          code: "SQLITE_CONSTRAINT_CHECK",
          message: expect.stringMatching(/^CHECK constraint failed: jpki writer guard: this store was upgraded by a newer jpki, .* Stop this process and run the new release$/),
        }),
      );
      // An older writer still (before version 23): the hex digest instead of the certificate id, no key either.
      expect(() =>
        writer
          .prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id) VALUES ('0a03', '13-sig', 'signature', 'r3', '131016', 0, 9999999999999, 0, x'3000', NULL)")
          .run(),
      ).toThrow(expect.objectContaining({ code: "SQLITE_CONSTRAINT_CHECK" }));
      // A writer that fills the key but not the id is refused too.
      expect(() =>
        writer
          .prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, certified_key) VALUES ('0a03', '13-sig', 'signature', 'r3', '131016', 0, 9999999999999, 0, x'3000', NULL, x'')")
          .run(),
      ).toThrow(expect.objectContaining({ code: "SQLITE_CONSTRAINT_CHECK" }));
      // Nothing of the refused transactions stayed; the row from before the upgrade was filled by it.
      expect(writer.prepare("SELECT serial FROM certified ORDER BY serial").pluck().all()).toEqual(["0a01"]);
      expect(writer.prepare("SELECT serial, certified_key FROM certificates ORDER BY serial").raw().all()).toEqual([["0a01", certifiedKeyOf(before.der)]]);
      // So the key the refused writer wanted is free, and the key of the row it wrote before is not.
      await s.upsertResidents([{ residentCode: "r2", municipalityCode: "131016", fourItems: taken.fourItems, status: "active" }]);
      expect(await s.commitIssuances([keyed("0a04", "r2", 1000, "written before the upgrade")])).toEqual([{ status: "key-in-use", serial: "0a01", why: "other-resident" }]);
      expect(await s.commitIssuances([taken])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      writer.close();
      await s.close();
    }
  });

  it("version 33: the guard is a CHECK constraint in the table's definition, no trigger (which cost every insert a statement journal); a version-32 store keeps its rows and passes integrity_check", async () => {
    const { path, db } = storeAtVersion(32);
    const kept = keyed("0a01", "r1", 0, "issued at version 32");
    db.prepare(OLD_CERTIFIED_28).run("r1", "0a01");
    db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix, certified_key) VALUES ('0a01', '13-sig', 'signature', 'r1', '131016', 0, 9999999999999, 0, ?, NULL, ?, ?)").run(kept.der, derId(kept.der), certifiedKeyOf(kept.der));
    db.close();
    const s = SqliteStore.open(path);
    try {
      const raw = new Database(path);
      try {
        expect(raw.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = 'certificates'").pluck().all()).toEqual([]);
        expect(raw.prepare("SELECT sql FROM sqlite_schema WHERE name = 'certificates'").pluck().get()).toMatch(/, CONSTRAINT "jpki writer guard: [^"]*" CHECK \(certified_key IS NOT NULL AND der_sha256_prefix IS NOT NULL\)\)$/);
        expect(raw.pragma("integrity_check", { simple: true })).toBe("ok");
        expect(raw.prepare("SELECT serial, certified_key FROM certificates").raw().all()).toEqual([["0a01", certifiedKeyOf(kept.der)]]);
        expect(() => raw.prepare(OLD_INSERT_28).run("0a02", "r2", Buffer.from("3000", "hex"), derId(Buffer.from("3000", "hex")))).toThrow(expect.objectContaining({ code: "SQLITE_CONSTRAINT_CHECK" }));
        // A later ALTER TABLE … ADD COLUMN puts its column before the constraint (SQLite keeps that offset).
        raw.exec("ALTER TABLE certificates ADD COLUMN later INTEGER");
        expect(raw.prepare("SELECT sql FROM sqlite_schema WHERE name = 'certificates'").pluck().get()).toMatch(/, later INTEGER, CONSTRAINT "jpki writer guard: [^"]*" CHECK \(.*\)\)$/);
      } finally {
        raw.close();
      }
      const next = keyed("0a03", "r3", 1000, "issued at version 33");
      await s.upsertResidents([{ residentCode: "r3", municipalityCode: "131016", fourItems: next.fourItems, status: "active" }]);
      expect(await s.commitIssuances([next])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      await s.close();
    }
  });

  it("fills what an older writer left empty before the guard (after the fill committed), so those rows are found by id and their keys stay taken", async () => {
    const { path, db } = storeAtVersion(31);
    const slipped = keyed("0a01", "r1", 0, "slipped past the fill");
    // As an older jpki wrote them after version 29's fill: no key; and (older still) no certificate id.
    db.prepare(OLD_CERTIFIED_28).run("r1", "0a01");
    db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id) VALUES ('0a01', '13-sig', 'signature', 'r1', '131016', 0, 9999999999999, 0, ?, NULL)").run(slipped.der);
    db.prepare(OLD_CERTIFIED_28).run("r0", "0a00");
    db.prepare(OLD_INSERT_28).run("0a00", "r0", Buffer.from("3000", "hex"), derId(Buffer.from("3000", "hex")));
    db.close();
    const s = SqliteStore.open(path);
    try {
      const check = new Database(path, { readonly: true });
      // The key read from the DER; a DER with no key to read gets the empty marker, so no row is left NULL.
      expect(check.prepare("SELECT serial, der_sha256_prefix, certified_key FROM certificates ORDER BY serial").raw().all()).toEqual([
        ["0a00", derId(Buffer.from("3000", "hex")), Buffer.alloc(0)],
        ["0a01", derId(slipped.der), certifiedKeyOf(slipped.der)],
      ]);
      check.close();
      expect((await s.certificatesForStatus({ serials: [], certificateIds: [createHash("sha256").update(slipped.der).digest("hex")] })).map((c) => c.serial)).toEqual(["0a01"]);
      const again = keyed("0a02", "r2", 1000, "slipped past the fill");
      await s.upsertResidents([{ residentCode: "r2", municipalityCode: "131016", fourItems: again.fourItems, status: "active" }]);
      expect(await s.commitIssuances([again])).toEqual([{ status: "key-in-use", serial: "0a01", why: "other-resident" }]);
    } finally {
      await s.close();
    }
  });

  it("finds the keys an older writer certified to two residents, which the upgrade filled without a word (Store.sharedCertifiedKeys): live ones only, by whole key, not one resident's renewal", async () => {
    const { path, db } = storeAtVersion(31);
    const now = new Date(5_000);
    const LIVE = Date.UTC(2030, 0, 1);
    // As an older jpki wrote them after version 29's fill: no key (it never checked one either).
    const old = (serial: string, code: string, key: string, o: { notAfter?: number; revokedAt?: number; certifiedKey?: Buffer } = {}) => {
      const c = keyed(serial, code, 0, key);
      db.prepare(OLD_CERTIFIED_28.replace("9999999999999, NULL, NULL, NULL", "?, ?, ?, ?")).run(code, serial, o.notAfter ?? LIVE, o.revokedAt ?? null, o.revokedAt === undefined ? null : 0, o.revokedAt === undefined ? null : "manual");
      db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256_prefix, certified_key) VALUES (?, '13-sig', 'signature', ?, '131016', 0, ?, 0, ?, NULL, ?, ?)").run(
        serial, code, o.notAfter ?? LIVE, c.der, derId(c.der), o.certifiedKey ?? null,
      );
      return c;
    };
    const stolen = old("0b01", "r1", "one key, two residents");
    old("0b02", "r2", "one key, two residents");
    old("0b03", "r2", "one key, two residents");
    old("0b11", "r3", "one revoked");
    old("0b12", "r4", "one revoked", { revokedAt: 1_000 });
    old("0b21", "r5", "one expired");
    old("0b22", "r6", "one expired", { notAfter: 4_000 });
    old("0b31", "r7", "a renewal that kept its key");
    old("0b32", "r7", "a renewal that kept its key");
    // Another key whose 8 octets are the same (certified_key is a lookup, not the key): not the same key.
    old("0b41", "r8", "another key, the same 8 octets", { certifiedKey: certifiedKeyOf(stolen.der)! });
    db.close();
    const s = SqliteStore.open(path);
    try {
      expect(await s.sharedCertifiedKeys({ now })).toEqual([
        {
          certifiedKey: certifiedKeyOf(stolen.der)!.toString("hex"),
          certificates: ["0b01:r1", "0b02:r2", "0b03:r2"].map((x) => ({ serial: x.slice(0, 4), caId: "13-sig", type: "signature", residentCode: x.slice(5), notAfter: new Date(LIVE) })),
        },
      ]);
      // once one of them is revoked, the key is one resident's: nothing found
      await s.revoke({ serial: "0b01", revokedAt: new Date(6_000), reason: 1, source: "manual" });
      expect(await s.sharedCertifiedKeys({ now })).toEqual([]);
    } finally {
      await s.close();
    }
  });

  it("the current code never trips it: a DER with no key to read is stored with the empty marker, by an issuance and by a load", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const target = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    try {
      await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from("3000", "hex"), encryptedKeyPem: "pem", keyId: Buffer.from([1]), createdAt: new Date(0) });
      const noKey = { ...keyed("0a01", "r1", 0, "unused"), der: Buffer.from("30030201ff", "hex") };
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: noKey.fourItems, status: "active" }]);
      expect(await s.commitIssuances([noKey])).toEqual([{ status: "committed", superseded: [] }]);
      const keys = (p: string) => {
        const db = new Database(p, { readonly: true });
        try {
          return db.prepare("SELECT serial, certified_key FROM certificates").raw().all();
        } finally {
          db.close();
        }
      };
      expect(keys(path)).toEqual([["0a01", Buffer.alloc(0)]]);
      const t = SqliteStore.open(target, { create: true });
      try {
        await t.load(s.dump());
      } finally {
        await t.close();
      }
      expect(keys(target)).toEqual([["0a01", Buffer.alloc(0)]]);
    } finally {
      await s.close();
    }
  });

  it.each(["CHECK constraint", "trigger"])("a refusal this jpki meets (a store upgraded again by a still newer one, its guard a %s) is ERR_STORE_UPGRADED, saying to run the new release", async (form) => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    try {
      await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from("3000", "hex"), encryptedKeyPem: "pem", keyId: Buffer.from([1]), createdAt: new Date(0) });
      const rec = keyed("0a01", "r1", 0, "a key");
      await s.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: rec.fourItems, status: "active" }]);
      // A newer jpki's guard, relying on a column this one may leave empty (here: the application id).
      const newer = new Database(path);
      if (form === "trigger") {
        newer.exec(`CREATE TRIGGER newer_guard BEFORE INSERT ON certificates WHEN NEW.application_id IS NULL BEGIN SELECT RAISE(ABORT, '${WRITER_GUARD_MESSAGE.replace(/'/g, "''")}'); END`);
      } else {
        const sql = newer.prepare("SELECT sql FROM sqlite_schema WHERE name = 'certificates'").pluck().get() as string;
        const version = newer.pragma("schema_version", { simple: true }) as number;
        newer.unsafeMode(true);
        newer.pragma("writable_schema = ON");
        newer.prepare("UPDATE sqlite_schema SET sql = ? WHERE name = 'certificates'").run(sql.replace("CHECK (certified_key IS NOT NULL", "CHECK (application_id IS NOT NULL AND certified_key IS NOT NULL"));
        newer.pragma(`schema_version = ${version + 1}`);
        newer.pragma("writable_schema = RESET");
      }
      newer.close();
      const e = await s.commitIssuances([rec]).then(() => undefined, (x: unknown) => x);
      expect(e).toMatchObject({ code: "ERR_STORE_UPGRADED", details: { reason: "writer-guard" } });
      expect((e as Error).message).toMatch(/^the store was upgraded by a newer jpki while this process had it open, and refused its write while .*: stop this process and run the new release$/);
      expect(await s.commitIssuances([{ ...rec, applicationId: "app-1" }])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      await s.close();
    }
  });
});

/** The built store module, for a child process to open a store with (test/global-setup.ts builds dist/). */
const DIST_SQLITE = pathToFileURL(join(import.meta.dirname, "..", "..", "dist", "src", "store", "sqlite.js")).href;

/**
 * Opens the store at `path` in a child process whose upgrade runs in pages of `pageRows` and that kills itself with
 * SIGKILL inside page `page` of the fill leading to schema `version` (its rows written, not committed): a kill -9
 * in the middle of an upgrade. Resolves with the signal that ended it.
 */
async function killedInUpgrade(path: string, o: { pageRows: number; version: number; page: number }): Promise<NodeJS.Signals | null> {
  const script = `import(${JSON.stringify(DIST_SQLITE)}).then((m) => {
    m.SqliteStore.open(process.argv[1], { upgrade: { pageRows: ${o.pageRows}, inPage: (page, version) => {
      if (version === ${o.version} && page === ${o.page}) process.kill(process.pid, "SIGKILL");
    } } });
    console.log("finished without being killed");
  })`;
  const child = childOutput(spawn(process.execPath, ["--input-type=module", "-e", script, path], { stdio: ["ignore", "pipe", "inherit"] }));
  const { signal } = await child.ended; // once its stdout is read to the end (child-output.ts)
  expect(child.stdout()).toBe("");
  return signal;
}

/** A store at schema version 22 (before version 23's certificate ids) holding `n` certificates, each its own key. */
function version22Store(n: number, keyBytes = 0): { path: string; ders: Buffer[] } {
  const { path, db } = storeAtVersion(22);
  const ders: Buffer[] = [];
  db.exec("BEGIN");
  for (let i = 0; i < n; i++) {
    const serial = (0x0a00 + i).toString(16).padStart(4, "0");
    const c = keyed(serial, `r${i}`, 0, `${"k".repeat(keyBytes)}key ${i}`);
    ders.push(c.der as Buffer);
    db.prepare("INSERT INTO certificates (serial, ca_id, type, resident_code, municipality_code, not_before, not_after, issued_at, der, application_id, der_sha256) VALUES (?, '13-sig', 'signature', ?, '131016', 0, 9999999999999, 0, ?, NULL, ?)").run(
      serial,
      `r${i}`,
      c.der,
      createHash("sha256").update(c.der).digest("hex"),
    );
    db.prepare(
      "INSERT INTO certified (resident_code, serial, ca_id, type, municipality_code, name, address, birth_date, gender, not_after, revoked_at, reason, source) VALUES (?, ?, '13-sig', 'signature', '131016', 'n', 'a', '1980-01-01', 'male', 9999999999999, NULL, NULL, NULL)",
    ).run(`r${i}`, serial);
  }
  db.exec("COMMIT");
  db.close();
  return { path, ders };
}

/** What a raw connection sees of an upgrade in progress: the version, its marks, which rows have each column. */
function upgradeState(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    const cols = (db.pragma("table_info(certificates)") as Array<{ name: string }>).map((c) => c.name);
    const filled = (col: string) => (cols.includes(col) ? (db.prepare(`SELECT serial FROM certificates WHERE ${col} IS NOT NULL ORDER BY rowid`).pluck().all() as string[]) : []);
    return {
      version: db.pragma("user_version", { simple: true }) as number,
      marks: Object.fromEntries((db.prepare("SELECT key, value FROM meta WHERE key LIKE 'upgrade.%'").raw().all() as Array<[string, string]>).map(([k, v]) => [k, JSON.parse(v) as { done: number }])),
      ids: filled("der_sha256_prefix"),
      keys: filled("certified_key"),
    };
  } finally {
    db.close();
  }
}

describe("SqliteStore upgrades that fill a column for every certificate in pages (versions 23 and 29)", () => {
  const serials = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => (0x0a00 + from + i).toString(16).padStart(4, "0"));

  it("goes on after a kill -9 in the middle of each fill from its last committed page, and ends with every row filled", async () => {
    const { path, ders } = version22Store(23);
    // Killed in the third page of version 23's fill: two pages of 5 committed, the third's rows lost with it.
    expect(await killedInUpgrade(path, { pageRows: 5, version: 23, page: 3 })).toBe("SIGKILL");
    expect(upgradeState(path)).toEqual({ version: 22, marks: { "upgrade.23.fill": expect.objectContaining({ done: 10 }) }, ids: serials(0, 10), keys: [] });
    // A row the committed pages filled, marked by hand: the next run must not compute it again.
    const raw = new Database(path);
    raw.prepare("UPDATE certificates SET der_sha256_prefix = x'00' WHERE serial = '0a04'").run();
    raw.close();
    // The next run finishes version 23 from row 11, then is killed in the second page of version 29's fill.
    expect(await killedInUpgrade(path, { pageRows: 5, version: 29, page: 2 })).toBe("SIGKILL");
    expect(upgradeState(path)).toEqual({ version: 28, marks: { "upgrade.29.fill": expect.objectContaining({ done: 5 }) }, ids: serials(0, 23), keys: serials(0, 5) });
    const db = new Database(path);
    expect(db.prepare("SELECT der_sha256_prefix FROM certificates WHERE serial = '0a04'").pluck().get()).toEqual(Buffer.from([0]));
    db.prepare("UPDATE certificates SET der_sha256_prefix = ? WHERE serial = '0a04'").run(createHash("sha256").update(ders[4]!).digest().subarray(0, 8));
    db.close();

    const seen: UpgradeProgress[] = [];
    const s = SqliteStore.open(path, { upgrade: { pageRows: 5, onProgress: (p) => seen.push(p) } });
    try {
      // Version 29 went on from its mark (5 rows), one page of 5 at a time, and said when it was done.
      expect(seen.map((p) => [p.stage, p.done])).toEqual([["filling", 10], ["filling", 15], ["filling", 20], ["indexing", 23], ["done", 23]]);
      expect(seen.every((p) => p.what === "certified keys")).toBe(true);
      const check = new Database(path, { readonly: true });
      const rows = check.prepare("SELECT der, der_sha256, der_sha256_prefix, certified_key FROM certificates ORDER BY rowid").all() as Array<{ der: Buffer; der_sha256: string | null; der_sha256_prefix: Buffer; certified_key: Buffer }>;
      expect(rows).toHaveLength(23);
      for (const r of rows) {
        expect(r.der_sha256_prefix).toEqual(createHash("sha256").update(r.der).digest().subarray(0, 8));
        expect(r.certified_key).toEqual(certifiedKeyOf(r.der));
        expect(r.der_sha256).toBeNull();
      }
      expect(check.pragma("user_version", { simple: true })).toBe(SCHEMA_VERSION);
      expect(check.prepare("SELECT count(*) FROM meta WHERE key LIKE 'upgrade.%'").pluck().get()).toBe(0);
      expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' ORDER BY name").pluck().all()).toEqual(["certificates_application", "certificates_certified_key", "certificates_der_sha256_prefix", "sqlite_autoindex_certificates_1"]);
      check.close();
      // What reads the columns: liveness checks by certificate id, and the key-in-use check of an issuance.
      const id = (i: number) => createHash("sha256").update(ders[i]!).digest("hex");
      expect((await s.certificatesForStatus({ serials: [], certificateIds: [id(4), id(12), id(22)] })).map((c) => c.serial).sort()).toEqual(["0a04", "0a0c", "0a16"]);
      const taken = keyed("0b00", "r-new", 1000, "key 17");
      await s.upsertResidents([{ residentCode: "r-new", municipalityCode: "131016", fourItems: taken.fourItems, status: "active" }]);
      expect(await s.commitIssuances([taken])).toEqual([{ status: "key-in-use", serial: "0a11", why: "other-resident" }]);
      expect(await s.commitIssuances([keyed("0b01", "r-new", 1000, "a key of its own")])).toEqual([{ status: "committed", superseded: [] }]);
    } finally {
      await s.close();
    }
  });

  it("a second process opening the store between two pages finishes the fill itself; the first then finds it done", async () => {
    const { path } = version22Store(12);
    const versions: number[] = [];
    let second: SqliteStore | undefined;
    const first = SqliteStore.open(path, {
      upgrade: {
        pageRows: 5,
        onProgress: (p) => {
          if (p.what !== "certified keys" || p.stage !== "filling" || second) return;
          // Half filled and committed: a process opening now takes none of it for done.
          versions.push(upgradeState(path).version);
          second = SqliteStore.open(path);
          versions.push(upgradeState(path).version);
        },
      },
    });
    try {
      expect(versions).toEqual([28, SCHEMA_VERSION]);
      expect(upgradeState(path).keys).toEqual(serials(0, 12));
      const taken = keyed("0b00", "r-new", 1000, "key 7");
      await first.upsertResidents([{ residentCode: "r-new", municipalityCode: "131016", fourItems: taken.fourItems, status: "active" }]);
      expect(await second!.commitIssuances([taken])).toEqual([{ status: "key-in-use", serial: "0a07", why: "other-resident" }]);
    } finally {
      await first.close();
      await second?.close();
    }
  });

  it("keeps the WAL to about a page of rows, not the table (checkpointed between pages)", async () => {
    // 200 certificates of ≈ 1.1 KB: ≈ 55 table pages of 4 KiB, which a fill in one transaction wrote to the WAL at least once
    const { path } = version22Store(200, 1000);
    const table = statSync(path).size;
    const s = SqliteStore.open(path, { upgrade: { pageRows: 20 } });
    try {
      // The WAL file keeps the size of the most it ever held (it is reused from its start, not truncated).
      expect(statSync(`${path}-wal`).size).toBeLessThan(table / 4);
      expect(upgradeState(path).keys).toHaveLength(200);
    } finally {
      await s.close();
    }
  });

  it("a new store drops the hex digest column (its table is empty), as new stores always did", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    await SqliteStore.open(path, { create: true }).close();
    const db = new Database(path, { readonly: true });
    expect((db.pragma("table_info(certificates)") as Array<{ name: string }>).map((c) => c.name)).not.toContain("der_sha256");
    db.close();
  });
});

describe("SqliteStore.openAsync while another process holds the write lock during an upgrade", () => {
  /** A store one version old, and another connection holding its write lock (another process's upgrade page, as far as an opener can tell). */
  function heldOlderStore(): { path: string; holder: Database.Database } {
    const { path, db } = storeAtVersion(SCHEMA_VERSION - 1);
    db.pragma("journal_mode = WAL"); // as every store opened by jpki is: readers go on while the lock is held
    db.close();
    const holder = new Database(path);
    holder.exec("BEGIN IMMEDIATE");
    return { path, holder };
  }
  const versionOf = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return db.pragma("user_version", { simple: true }) as number;
    } finally {
      db.close();
    }
  };

  it("waits without blocking the event loop, and a stop ends the wait at once with the signal's reason, nothing applied; the next open upgrades", async () => {
    const { path, holder } = heldOlderStore();
    try {
      const stop = new AbortController();
      // Timer ticks while the open is still waiting (none counted once it has settled): SQLite's busy handler slept
      // inside the call, and no timer ran until the 20 s lock timeout had ended it. Waited for, not counted over a
      // fixed 300 ms (a loaded host runs fewer ticks in it, though nothing blocks the loop). The first try of the
      // lock runs in a setImmediate, before the first 10 ms tick: a tick while unsettled is a turn during the wait.
      let settled = false;
      let ticks = 0;
      const ticker = setInterval(() => settled || ticks++, 10);
      const opening = SqliteStore.openAsync(path, { signal: stop.signal }).then(
        () => "opened",
        (e: unknown) => e,
      );
      void opening.finally(() => (settled = true));
      try {
        await until(() => ticks >= 3 || settled, "the loop to turn while the open waits for the lock");
      } finally {
        clearInterval(ticker);
      }
      expect(settled).toBe(false);
      stop.abort();
      // the stop's own reason, not the lock timeout's ERR_WORKSPACE_LOCKED: the stop ended the wait (no bound on the
      // time it took, which a loaded host's turn of the loop can pass)
      expect(await opening).toBe(stop.signal.reason);
      expect(versionOf(path)).toBe(SCHEMA_VERSION - 1);
    } finally {
      holder.exec("ROLLBACK");
      holder.close();
    }
    const s = await SqliteStore.openAsync(path, { signal: new AbortController().signal });
    await s.close();
    expect(versionOf(path)).toBe(SCHEMA_VERSION);
  });

  it("without a stop, upgrades once the other process lets go of the lock", async () => {
    const { path, holder } = heldOlderStore();
    let settled = false;
    const opening = SqliteStore.openAsync(path, { signal: new AbortController().signal });
    void opening.finally(() => (settled = true)).catch(() => undefined);
    // the open waiting: a 10 ms timer has run (its first try of the lock, in a setImmediate, came before) and it has
    // not settled (a fixed 200 ms stood for it: on a loaded host the open might not have tried the lock yet)
    let ticked = false;
    setTimeout(() => (ticked = true), 10);
    await until(() => ticked, "a 10 ms timer");
    expect(settled).toBe(false);
    expect(versionOf(path)).toBe(SCHEMA_VERSION - 1);
    holder.exec("ROLLBACK");
    holder.close();
    const s = await opening;
    expect(versionOf(path)).toBe(SCHEMA_VERSION);
    await s.close();
  });

  it("gives up once the lock has been held for the lock timeout (20 s): ERR_WORKSPACE_LOCKED (exit 3) saying an upgrade is in progress, nothing applied, the connection closed", async () => {
    const { path, holder } = heldOlderStore();
    // Faked timers and clock, so the test does not wait the 20 s: the wait's pauses are setTimeout and its deadline
    // performance.now(), and each try of the lock returns at once (busy_timeout 0), so the code path is the real one
    // with the real limit; only the time between tries is not spent.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    try {
      let outcome: unknown = "waiting";
      void SqliteStore.openAsync(path, { signal: new AbortController().signal }).then(
        () => (outcome = "opened"),
        (e: unknown) => (outcome = e),
      );
      await vi.advanceTimersByTimeAsync(19_900);
      expect(outcome).toBe("waiting");
      await vi.advanceTimersByTimeAsync(200);
      expect(outcome).toBeInstanceOf(JpkiError);
      expect(outcome).toMatchObject({ code: "ERR_WORKSPACE_LOCKED", details: { reason: "upgrade-in-progress" }, message: expect.stringContaining(`from schema version ${SCHEMA_VERSION - 1} to ${SCHEMA_VERSION}`) });
      expect((outcome as JpkiError).exitCode).toBe(3);
    } finally {
      vi.useRealTimers();
      holder.exec("ROLLBACK");
      holder.close();
    }
    expect(versionOf(path)).toBe(SCHEMA_VERSION - 1);
    // the failed open's connection is closed: nothing of it keeps the file (an exclusive lock is had at once)
    const other = new Database(path);
    other.pragma("busy_timeout = 0");
    other.pragma("locking_mode = EXCLUSIVE");
    other.exec("BEGIN EXCLUSIVE; COMMIT");
    other.close();
  });

  it("a signal already aborted refuses the open before the store file is touched", async () => {
    const { path, db } = storeAtVersion(SCHEMA_VERSION - 1);
    db.close();
    const stop = new AbortController();
    stop.abort();
    await expect(SqliteStore.openAsync(path, { signal: stop.signal })).rejects.toBe(stop.signal.reason);
    expect(versionOf(path)).toBe(SCHEMA_VERSION - 1);
  });
});

describe("SqliteStore upgrade to closed records naming their successor (version 25)", () => {
  it("opens a version-24 store: a record closed by an applied resident-code change names the new code, others none", async () => {
    const { path, db } = storeAtVersion(24, { ca: false });
    for (const sql of CLOSED_BEFORE_SUCCESSORS.sql) db.exec(sql);
    db.close();
    const s = SqliteStore.open(path);
    await expectSuccessorsFilled(s);
    await s.close();
  });
});

describe("SqliteStore upgrade to the registry's outbox (version 17)", () => {
  it("opens a version-16 store: the outbox arrives empty and takes notices", async () => {
    const { path, db } = storeAtVersion(16, { ca: false });
    db.close();
    const s = SqliteStore.open(path);
    await s.upsertResidents([{ residentCode: "12345678906", municipalityCode: "131016", fourItems: { name: "n", address: "a", birthDate: "1980-01-01", gender: "male" }, status: "active" }]);
    expect(await s.pendingOutbox(10)).toEqual([]);
    const n = { noticeId: "ctr:12345678906:1", residentCode: "12345678906", sequence: 1, body: "{}", createdAt: new Date(1) };
    await s.applyToRegistry((read) => ({ put: [{ ...read("12345678906")!, noticeSequence: 1 }], remove: [], enqueue: [n], result: undefined }));
    expect(await s.pendingOutbox(10)).toEqual([n]);
    await s.close();
  });

  it("opens a version-20 store: its rollover links stay, and a rollover without links (a compromised key) is accepted", async () => {
    const { path, db } = storeAtVersion(20, { ca: false });
    const putCa = db.prepare("INSERT INTO cas (id, prefecture, purpose, cert_der, key_pem, key_id, created_at) VALUES (?, '13', 'signature', ?, 'k', ?, 1)");
    for (const id of ["13-sig", "13-sig-g2"]) putCa.run(id, Buffer.from(id), Buffer.from(id));
    db.prepare("INSERT INTO ca_links (new_ca_id, old_ca_id, old_with_new, new_with_old, created_at) VALUES ('13-sig-g2', '13-sig', ?, ?, 5)").run(Buffer.from("o"), Buffer.from("n"));
    db.close();
    const s = SqliteStore.open(path);
    expect(await s.listCaLinks()).toEqual([{ oldCaId: "13-sig", newCaId: "13-sig-g2", oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(5) }]);
    const g3 = { id: "13-sig-g3", prefectureCode: "13", purpose: "signature" as const, certificateDer: Buffer.from("g3"), encryptedKeyPem: "k", keyId: Buffer.from("g3"), createdAt: new Date(6) };
    await s.putCaRollover(g3, { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", createdAt: new Date(6) });
    expect((await s.listCaLinks()).map((l) => [l.newCaId, l.oldWithNew === undefined])).toEqual([["13-sig-g2", false], ["13-sig-g3", true]]);
    await s.close();
  });
});

describe("SqliteStore disclosure log index (version 22)", () => {
  const rec = (residentCode: string | undefined, i: number) => ({
    verifierId: "v-1", serial: i.toString(16), issuer: "13-sig", residentCode, purpose: "signature" as const, legalBasis: undefined,
    at: new Date(i), validationTime: new Date(i), answer: "valid", itemsDisclosed: false,
  });
  const indexState = (path: string) => {
    const db = new Database(path, { readonly: true });
    try {
      return {
        indexed: db.prepare("SELECT count(*) FROM disclosures_by_resident").pluck().get(),
        through: db.prepare("SELECT indexed_through FROM disclosure_index_state").pluck().get(),
        newest: db.prepare("SELECT max(id) FROM disclosures").pluck().get(),
      };
    } finally {
      db.close();
    }
  };

  it("appends without touching the per-resident index, indexes in batches, and lists every record by resident across both", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const residents = ["12345678901", "22345678901", "32345678901", undefined];
    const of = (r: string | undefined) => (i: number) => residents[i % 4] === r;
    let n = 0;
    try {
      // A serving-path commit writes the table (and the audit log) only: the index waits for a batch.
      await s.appendDisclosures(Array.from({ length: 11 }, () => rec(residents[n % 4], n++)));
      await s.recordStatusChecks([], Array.from({ length: 5 }, () => rec(residents[n % 4], n++)));
      expect(indexState(path)).toEqual({ indexed: 0, through: 0, newest: 16 });
      expect((await s.listDisclosures({ residentCode: "12345678901" })).map((d) => d.at.getTime())).toEqual([0, 4, 8, 12]);
      // Past a batch's worth, the commit that crosses it indexes everything before it.
      while (n < 4200) await s.appendDisclosures(Array.from({ length: 100 }, () => rec(residents[n % 4], n++)));
      const after = indexState(path);
      expect(after.through).toBeGreaterThanOrEqual(4096);
      expect(after.through).toBeLessThan(4200);
      expect(after.indexed).toBe((after.through as number) - Math.floor((after.through as number) / 4)); // no row without a resident
      // Indexed and tail together, in order, the limit counting both.
      const all = Array.from({ length: n }, (_, i) => i).filter(of("22345678901"));
      expect((await s.listDisclosures({ residentCode: "22345678901", limit: 100_000 })).map((d) => d.at.getTime())).toEqual(all);
      expect((await s.listDisclosures({ residentCode: "22345678901", limit: 1050 })).map((d) => d.at.getTime())).toEqual(all.slice(-1050));
      // A changed resident code (住民票コード変更) moves indexed and unindexed records alike.
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["22345678901", "42345678901"] }, () => ({
        commit: { at: new Date(9e6), notices: [], sequences: [], relinks: [{ from: "22345678901", to: "42345678901" }], dirtyCas: [], revocations: [] },
      }));
      expect(await s.listDisclosures({ residentCode: "22345678901" })).toEqual([]);
      const moved = await s.listDisclosures({ residentCode: "42345678901", limit: 100_000 });
      expect(moved.map((d) => d.at.getTime())).toEqual(all);
      expect(new Set(moved.map((d) => d.residentCode))).toEqual(new Set(["42345678901"]));
    } finally {
      await s.close();
    }
    // What this connection left unindexed goes under the index when it closes.
    const closed = indexState(path);
    expect(closed.through).toBe(n);
    expect(closed.indexed).toBe(n - n / 4);
    const again = SqliteStore.open(path);
    expect((await again.listDisclosures({ residentCode: "42345678901", limit: 100_000 })).length).toBe(n / 4);
    // A copy (jpki store copy, a restore) arrives indexed: no reader of the copy scans a tail of every record.
    const copyPath = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const copy = SqliteStore.open(copyPath, { create: true });
    await copyStore(again, copy);
    await again.close();
    expect(indexState(copyPath)).toEqual({ indexed: n - n / 4, through: n, newest: n });
    expect((await copy.listDisclosures({ residentCode: "42345678901", limit: 100_000 })).map((d) => d.at.getTime())).toEqual(
      Array.from({ length: n }, (_, i) => i).filter((i) => i % 4 === 1),
    );
    await copy.close();
  });

  it("indexes the records of a writer killed before it closed once the next writer's appends take the tail past the mark", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const killed = SqliteStore.open(path, { create: true });
    let n = 0;
    for (let k = 0; k < 30; k++) await killed.appendDisclosures(Array.from({ length: 100 }, () => rec("12345678901", n++)));
    // never closed (as a `jpki serve` killed with SIGKILL): its 3,000 records stay above the mark
    expect(indexState(path)).toEqual({ indexed: 0, through: 0, newest: 3000 });
    const next = SqliteStore.open(path);
    try {
      for (let k = 0; k < 10; k++) await next.appendDisclosures(Array.from({ length: 100 }, () => rec("22345678901", n++)));
      expect(indexState(path).through).toBe(0); // 4,000 above the mark: not yet
      await next.recordStatusChecks([], Array.from({ length: 100 }, () => rec("22345678901", n++)));
      expect(indexState(path)).toEqual({ indexed: 4100, through: 4100, newest: 4100 });
      expect((await next.listDisclosures({ residentCode: "12345678901", limit: 100_000 })).length).toBe(3000);
    } finally {
      await next.close();
      await killed.close();
    }
  });

  it("opens a version-21 store: its disclosure records are indexed by resident and listed as before", async () => {
    const { path, db } = storeAtVersion(21, { ca: false });
    const ins = db.prepare("INSERT INTO disclosures (verifier_id, serial, issuer, resident_code, purpose, legal_basis, at, validation_time, answer, items_disclosed) VALUES ('v-1', ?, '13-sig', ?, 'signature', NULL, ?, ?, 'valid', 0)");
    for (let i = 0; i < 30; i++) ins.run(i.toString(16), i % 3 ? "12345678901" : null, i, i);
    db.close();
    const s = SqliteStore.open(path);
    expect(indexState(path)).toEqual({ indexed: 20, through: 30, newest: 30 });
    expect((await s.listDisclosures({ residentCode: "12345678901" })).map((d) => d.serial)).toEqual(Array.from({ length: 30 }, (_, i) => i).filter((i) => i % 3).map((i) => i.toString(16)));
    await s.close();
  });
});

describe("SqliteStore bulk writes", () => {
  it("pages a long history by since either way (by id, or by time past the first 500 by id) with the same answers", async () => {
    const s = SqliteStore.open(join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db"), { create: true });
    try {
      // 5000 checks, their times in order but for a stretch the clock was ahead (1000–1099 at 10000–10099) and
      // one it went back over (3000–3099 at 100–199)
      const at = (i: number) => (i >= 1000 && i < 1100 ? i + 9000 : i >= 3000 && i < 3100 ? i - 2900 : i);
      const checks = Array.from({ length: 5000 }, (_, i) => ({ verifierId: "v-long", at: new Date(at(i)), caId: "13-sig", serial: i.toString(16), certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined }));
      await s.recordStatusChecks(checks, []);
      const expected = (since: number, after: number, limit: number) => checks.map((c, i) => ({ i, at: c.at.getTime() })).filter((c) => c.at >= since && c.i + 1 > after).slice(0, limit).map((c) => c.at);
      for (const [since, after, limit] of [[0, 0, 100], [4900, 0, 1000], [150, 0, 1000], [150, 2000, 50], [4999, 0, 10], [6000, 0, 10], [8000, 0, 1000], [8000, 1050, 20]] as const) {
        const got = (await s.listStatusChecks({ verifierId: "v-long", since: new Date(since), after, limit })).map((r) => r.at.getTime());
        expect(got, `since ${since} after ${after}`).toEqual(expected(since, after, limit));
      }
    } finally {
      await s.close();
    }
  });

  it("a disclosure write waits for another process's write lock without stopping the event loop, then lands", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    const store = SqliteStore.open(join(dir, "jpki.db"), { create: true });
    // another writer (as another `jpki serve --workers` process would be) holds the write lock for 150 ms
    const other = new Database(join(dir, "jpki.db"));
    try {
      other.exec("BEGIN IMMEDIATE");
      const rec = { verifierId: "v-1", serial: "0a", issuer: "13-sig", residentCode: "12345678906", purpose: "signature" as const, legalBasis: undefined, at: new Date(0), validationTime: new Date(0), answer: "valid", itemsDisclosed: false };
      // SQLite's busy handler would have slept inside the call, holding the loop: no timer could have run while the
      // write waited, and this thread's COMMIT (the other writer's) not at all. Ticks are counted only while the write
      // is pending, and it must still be pending when the lock is let go: no count per 150 ms, which a loaded host
      // falls short of though nothing blocks the loop.
      let settled = false;
      let ticks = 0;
      const timer = setInterval(() => settled || ticks++, 5);
      const written = store.appendDisclosures([rec]);
      void written.finally(() => (settled = true)).catch(() => undefined);
      // waited for, not counted over a fixed 150 ms (a loaded host runs fewer ticks in it, though nothing blocks the loop)
      await until(() => ticks >= 3 || settled, "the loop to turn while the write waits for the lock");
      const pendingAtCommit = !settled;
      const ticksWhileLocked = ticks;
      other.exec("COMMIT");
      clearInterval(timer);
      expect(pendingAtCommit).toBe(true);
      expect(ticksWhileLocked).toBeGreaterThanOrEqual(1);
      await written;
      expect((await store.listDisclosures({ residentCode: "12345678906" })).map((d) => d.serial)).toEqual(["0a"]);
    } finally {
      other.close();
      await store.close();
    }
  });

  it("a verifier fetch record write (jpki serve's flush, every second on the serving thread) likewise waits for another process's write lock without stopping the event loop, then lands", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    const store = SqliteStore.open(join(dir, "jpki.db"), { create: true });
    const other = new Database(join(dir, "jpki.db"));
    try {
      other.exec("BEGIN IMMEDIATE");
      // before, the busy handler slept inside the call: no timer ran until the lock was free (or 20 s had passed).
      // Counted while the write is pending, as the disclosure write's above.
      let settled = false;
      let ticks = 0;
      const timer = setInterval(() => settled || ticks++, 5);
      const written = store.recordVerifierFetches([{ verifierId: "v-1", scope: "crl", path: "/crl/13-sig.crl", status: 200, at: new Date(1000), count: 3, lastAt: new Date(2000) }]);
      void written.finally(() => (settled = true)).catch(() => undefined);
      await until(() => ticks >= 3 || settled, "the loop to turn while the write waits for the lock");
      const pendingAtCommit = !settled;
      const ticksWhileLocked = ticks;
      other.exec("COMMIT");
      clearInterval(timer);
      expect(pendingAtCommit).toBe(true);
      expect(ticksWhileLocked).toBeGreaterThanOrEqual(1);
      await written;
      expect((await store.listVerifierFetches({ verifierId: "v-1" })).map((f) => [f.path, f.count])).toEqual([["/crl/13-sig.crl", 3]]);
    } finally {
      other.close();
      await store.close();
    }
  });

  it("a verifier fetch record write given a deadline (jpki serve's flush, a watched call) is not begun past it while another process holds the write lock: ERR_STORE_UNRESPONSIVE, nothing written", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-store-"));
    const store = SqliteStore.open(join(dir, "jpki.db"), { create: true });
    const other = new Database(join(dir, "jpki.db"));
    try {
      other.exec("BEGIN IMMEDIATE");
      const written = store.recordVerifierFetches([{ verifierId: "v-1", scope: "crl", path: "/crl/13-sig.crl", status: 200, at: new Date(1000), count: 3, lastAt: new Date(2000) }], { deadline: performance.now() + 50 });
      await expect(written).rejects.toMatchObject({ code: "ERR_STORE_UNRESPONSIVE" });
      other.exec("COMMIT");
      expect(await store.listVerifierFetches({ verifierId: "v-1" })).toEqual([]);
    } finally {
      other.close();
      await store.close();
    }
  });

  it("has the serving path's appends (disclosure records, liveness checks) copied back on the checkpointer's thread, not left to the writer's own checkpoint", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    // In WAL mode only a checkpoint writes the database file: its size says what has been copied back.
    const dbSize = () => statSync(path).size;
    const rec = (i: number) => ({ verifierId: "v-1", serial: i.toString(16).padStart(32, "0"), issuer: "13-sig", residentCode: String(10_000_000_000 + (i % 997) * 7919), purpose: "signature" as const, legalBasis: undefined, at: new Date(i), validationTime: new Date(i), answer: "valid", itemsDisclosed: false });
    try {
      const before = dbSize();
      // 192 group commits of 20 records: about a hundred pages, far below the 16384 WAL frames at which the
      // writer's own automatic checkpoint would copy them.
      let n = 0;
      for (let k = 0; k < 160; k++) await s.appendDisclosures(Array.from({ length: 20 }, () => rec(n++)));
      for (let k = 0; k < 32; k++) {
        const at = new Date(n);
        await s.recordStatusChecks([{ verifierId: "v-1", at, caId: "13-sig", serial: "0a", certificateId: undefined, status: "unknown", reason: undefined, revokedAt: undefined, replacedBy: undefined }], Array.from({ length: 20 }, () => rec(n++)));
      }
      // (asked until it holds: the checkpoint on a loaded host, with its fsyncs, took seconds)
      await until(() => dbSize() > before + 64 * 4096, "the checkpointer's copy of the appends");
      expect((await s.listDisclosures({ residentCode: rec(n - 1).residentCode, limit: 100_000 })).length).toBeGreaterThan(0);
    } finally {
      await s.close();
    }
  });
  it("copies a batch's issuances back on the checkpointer's thread every 2,000 certificates, not after each group", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    // In WAL mode only a checkpoint writes the database file: its size says what has been copied back.
    const dbSize = () => statSync(path).size;
    const group = (g: number) => Array.from({ length: 500 }, (_, i) => keyed((0x10000 + g * 500 + i).toString(16), `r${g * 500 + i}`, 1000, `key-${g}-${i}`));
    // The checkpoints asked of the thread, counted: a copy asked for after a group would come when the thread runs,
    // and a pause of a second after three groups (then "the file has not grown") let a late one pass unseen.
    const kicks = vi.spyOn(WalCheckpointer.prototype, "kick");
    try {
      await s.putCa({ id: "13-sig", prefectureCode: "13", purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) });
      const four = keyed("0a", "r0", 1000, "k").fourItems;
      await s.upsertResidents(Array.from({ length: 2000 }, (_, i) => ({ residentCode: `r${i}`, municipalityCode: "131016", fourItems: four, status: "active" as const })));
      // The writer's own automatic checkpoint runs at 16384 frames, far above what this writes.
      const before = dbSize();
      for (let g = 0; g < 3; g++) expect((await s.commitIssuances(group(g))).every((r) => r.status === "committed")).toBe(true);
      expect(kicks).not.toHaveBeenCalled();
      expect(dbSize()).toBe(before);
      expect((await s.commitIssuances(group(3))).every((r) => r.status === "committed")).toBe(true);
      // The fourth group makes 2,000: one checkpoint asked, and the thread copies them back (asked until the file
      // holds them: a copy under way had grown it by part of them, which "grew at all, then more than 500 KiB" raced).
      expect(kicks).toHaveBeenCalledTimes(1);
      await until(() => dbSize() > before + 500 * 1024, "the checkpointer's copy of 2,000 certificates");
    } finally {
      kicks.mockRestore();
      await s.close();
    }
    const again = SqliteStore.open(path);
    try {
      expect((await again.getCertificate((0x10000 + 1999).toString(16)))?.residentCode).toBe("r1999");
    } finally {
      await again.close();
    }
  });

  it("keeps the WAL of back-to-back notice batches bounded: past settleFrames the writer waits for the checkpointer, and the WAL starts over after each wait", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    // 256 frames (1 MiB) instead of SETTLE_FRAMES (32768), so a few megabytes of batches show it.
    const s = SqliteStore.open(path, { create: true, settleFrames: 256 });
    /** The WAL header's checkpoint sequence number (https://sqlite.org/fileformat.html#wal_file_format): one more each time the WAL starts over. */
    const startsOver = () => {
      const fd = openSync(`${path}-wal`, "r");
      try {
        const header = Buffer.alloc(32);
        readSync(fd, header, 0, 32, 0);
        return header.readUInt32BE(12);
      } finally {
        closeSync(fd);
      }
    };
    const waits = vi.spyOn(WalCheckpointer.prototype, "settled");
    try {
      // Batches of ≈ 40 pages, committed one after the other as ingestion does: from microtasks, with no turn of the
      // event loop between them (the checkpointer's progress must reach the writer all the same).
      const batch = (k: number) =>
        s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
          commit: {
            at: new Date(0),
            notices: Array.from({ length: 200 }, (_, i) => ({ noticeId: `W-${k}-${i}`, residentCode: `w${k}-${i}`, sequence: 1, kind: "death", body: "q".repeat(600), status: "applied" as const, revocations: 0 })),
            sequences: [],
            revocations: [],
            relinks: [],
            dirtyCas: [],
          },
        }));
      // The thread starts with the first bulk commit: the WAL grows until it runs.
      for (let k = 0; k < 50; k++) await batch(k);
      const before = { startsOver: startsOver(), waits: waits.mock.calls.length };
      // 250 batches more (≈ 10,000 frames): the writer waits whenever the thread's latest report puts the WAL past 256
      // frames, and the WAL starts over after each wait. Counted, not measured: how far the WAL's file grows between
      // two waits depends on how late the thread's reports come (a starved host's came late: 8.8 → 13.7 MB at load 8,
      // where a bound of "never past where it was" failed, and a bound in bytes only moves the line).
      for (let k = 50; k < 300; k++) await batch(k);
      const waited = waits.mock.calls.length - before.waits;
      // Without the waits none (and the file grew by what the batches wrote, measured: 8.8 → 42.6 MB); the thread's
      // reports reach the writer from its shared memory, so it sees one past 256 frames while its microtasks run.
      expect(waited).toBeGreaterThan(0);
      // each wait was for a checkpoint of everything committed: the next batch began the WAL again
      expect(startsOver() - before.startsOver).toBeGreaterThanOrEqual(waited);
    } finally {
      waits.mockRestore();
      await s.close();
    }
    const again = SqliteStore.open(path);
    try {
      expect((await again.getNotice("W-299-199"))?.status).toBe("applied");
      expect((await again.getNotice("W-0-0"))?.status).toBe("applied");
    } finally {
      await again.close();
    }
  });
});

describe("SqliteStore page cache", () => {
  it("is 64 MiB, and 2 % of the file once it passes 3.2 GB, up to 1 GiB", () => {
    expect(pageCacheKiB(0)).toBe(65536);
    expect(pageCacheKiB(50 * 64 * 1048576)).toBe(65536);
    expect(pageCacheKiB(17 * 1024 ** 3)).toBe(Math.ceil((17 * 1024 ** 3) / 50 / 1024));
    expect(pageCacheKiB(200 * 1024 ** 3)).toBe(1 << 20);
  });

  it("grows with the file (a sparse file stands for a national-scale store)", async () => {
    const path = join(mkdtempSync(join(tmpdir(), "jpki-cache-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const pragma = vi.spyOn(Database.prototype, "pragma");
    const now = vi.spyOn(Date, "now");
    try {
      await s.countResidents();
      expect(pragma.mock.calls.map((c) => String(c[0])).filter((c) => c.startsWith("cache_size"))).toEqual([]);
      // 12 GiB without writing them: SQLite reads the page count from the header, the size from stat
      truncateSync(path, 12 * 1024 ** 3);
      const later = Date.now() + 2000;
      now.mockImplementation(() => later);
      await s.countResidents();
      expect(pragma.mock.calls.map((c) => String(c[0])).filter((c) => c.startsWith("cache_size"))).toEqual([`cache_size = -${pageCacheKiB(12 * 1024 ** 3)}`]);
    } finally {
      now.mockRestore();
      pragma.mockRestore();
      await s.close();
    }
  });

  it("reads pages into it, never through a memory map of the file (Linux: /proc/self/maps)", async () => {
    // Mapped, the hot paths' scattered first touches were page faults, slower than preads on these machines (open).
    const path = join(mkdtempSync(join(tmpdir(), "jpki-store-")), "jpki.db");
    const s = SqliteStore.open(path, { create: true });
    const mapped = () => readFileSync("/proc/self/maps", "utf8").split("\n").filter((l) => l.endsWith(` ${path}`));
    try {
      for (let k = 0; k < 20; k++) {
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
          commit: {
            at: new Date(0),
            notices: Array.from({ length: 200 }, (_, i) => ({ noticeId: `M-${k}-${i}`, residentCode: `m${k}-${i}`, sequence: 1, kind: "death", body: "q".repeat(600), status: "applied" as const, revocations: 0 })),
            sequences: [],
            revocations: [],
            relinks: [],
            dirtyCas: [],
          },
        }));
      }
      expect((await s.getNotice("M-0-0"))?.status).toBe("applied");
      for await (const _ of s.crlEntries("13-sig", { expiredBefore: new Date(0) })) void _;
      expect(mapped()).toEqual([]);
    } finally {
      await s.close();
    }
  });
});

/**
 * A child process opening the store at `path` with SqliteStore.openAsync (as every CLI command and daemon does), its
 * fills in pages of `pageRows`, each page holding the lock `holdMs` longer (so that others meet it held), and killing
 * itself with SIGKILL inside page `killAt.page` of the fill to `killAt.version`. Resolves with how it ended and the
 * pages it wrote (committed or not).
 */
function asyncOpener(path: string, o: { pageRows: number; holdMs: number; killAt?: { version: number; page: number }; onReady?: () => void }) {
  // "ready" once the module is loaded, just before the open: a test holding the write lock releases it when every
  // opener is ready, so they contend from the start (a child still loading its modules while the others finished
  // the whole upgrade made the sharing, and which child reached the page to be killed in, a matter of timing).
  const script = `import(${JSON.stringify(DIST_SQLITE)}).then(async (m) => {
    let pages = 0;
    console.log("ready");
    const s = await m.SqliteStore.openAsync(process.argv[1], { signal: new AbortController().signal, upgrade: { pageRows: ${o.pageRows}, inPage: (page, version) => {
      pages++;
      ${o.killAt ? `if (version === ${o.killAt.version} && page === ${o.killAt.page}) process.kill(process.pid, "SIGKILL");` : ""}
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ${o.holdMs});
    } } });
    await s.close();
    console.log("opened " + pages);
  }, (e) => { console.log("failed " + (e.code ?? e.message)); })`;
  const child = spawn(process.execPath, ["--input-type=module", "-e", script, path], { stdio: ["ignore", "pipe", "inherit"] });
  const out = childOutput(child);
  let ready = false;
  child.stdout.on("data", () => !ready && (ready = /^ready$/m.test(out.stdout())) && o.onReady?.());
  // once its stdout is read to the end (child-output.ts): its last line ("opened N", "failed …") is what callers check
  return out.ended.then(({ code, signal }) => ({ code, signal, out: out.stdout().trim() }));
}

describe("SqliteStore.openAsync by several processes at once during an upgrade that fills in pages", () => {
  it("a process killed in the middle of a fill, then two at once: they share the pages left, and the store ends upgraded with every row filled once", async () => {
    const { path, ders } = version22Store(90);
    // The one killed runs alone: it commits the pages before page 4 of version 29's fill and dies inside that page.
    const killed = await asyncOpener(path, { pageRows: 3, holdMs: 3, killAt: { version: 29, page: 4 } });
    expect(killed.signal).toBe("SIGKILL");
    const mid = upgradeState(path);
    expect(mid.version).toBe(28);
    expect(mid.marks["upgrade.29.fill"]).toMatchObject({ done: 9 }); // three pages of three rows; the fourth rolled back
    // Then two at once, released together: the write lock is held here until both are about to open.
    const holder = new Database(path);
    holder.exec("BEGIN IMMEDIATE");
    let ready = 0;
    const release = () => {
      if (++ready === 2) setTimeout(() => holder.exec("ROLLBACK"), 200);
    };
    const [a, b] = await Promise.all([asyncOpener(path, { pageRows: 3, holdMs: 3, onReady: release }), asyncOpener(path, { pageRows: 3, holdMs: 3, onReady: release })]);
    holder.close();
    expect([a.code, b.code]).toEqual([0, 0]);
    const pages = [a, b].map((r) => Number(/^opened (\d+)$/m.exec(r.out)?.[1]));
    // Both waited for the lock without failing; between them every page left ran once: no page of a fill twice
    // (27 rows of version 29 and 30 pages of the next fill are left, in pages of 3, each fill's last one empty).
    expect(pages.every((n) => Number.isInteger(n) && n >= 0)).toBe(true);
    expect(pages[0]! + pages[1]!).toBeLessThanOrEqual(9 + 1 + 30 + 1);
    const st = upgradeState(path);
    expect(st).toEqual({ version: SCHEMA_VERSION, marks: {}, ids: expect.any(Array), keys: expect.any(Array) });
    expect(st.ids).toHaveLength(90);
    expect(st.keys).toHaveLength(90);
    const check = new Database(path, { readonly: true });
    const rows = check.prepare("SELECT der, der_sha256_prefix, certified_key FROM certificates ORDER BY rowid").all() as Array<{ der: Buffer; der_sha256_prefix: Buffer; certified_key: Buffer }>;
    check.close();
    rows.forEach((r, i) => {
      expect(r.der).toEqual(ders[i]);
      expect(r.der_sha256_prefix).toEqual(createHash("sha256").update(r.der).digest().subarray(0, 8));
      expect(r.certified_key).toEqual(certifiedKeyOf(r.der));
    });
  }, 60_000);
});

describe("SqliteStore.openAsync ended in the middle of a fill", () => {
  const serials = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => (0x0a00 + from + i).toString(16).padStart(4, "0"));
  /**
   * What an open of version22Store(23) in pages of 5 left when it ended after two pages of version 29's fill: those
   * pages and the whole of version 23, its connection closed (another takes the write lock at once); and the next
   * open going on from there to the end.
   */
  async function expectLeftInFill29ThenFinished(path: string): Promise<void> {
    expect(upgradeState(path)).toEqual({ version: 28, marks: { "upgrade.29.fill": expect.objectContaining({ done: 10 }) }, ids: serials(0, 23), keys: serials(0, 10) });
    const other = new Database(path);
    other.pragma("busy_timeout = 0");
    other.exec("BEGIN IMMEDIATE; ROLLBACK");
    other.close();
    const s = await SqliteStore.openAsync(path, { upgrade: { pageRows: 5 } });
    await s.close();
    expect(upgradeState(path)).toEqual({ version: SCHEMA_VERSION, marks: {}, ids: serials(0, 23), keys: serials(0, 23) });
  }

  it("a page that throws is rolled back whole: the open fails with ERR_STORE, the pages before it stay, and the next open goes on from them", async () => {
    const { path } = version22Store(23);
    const failing = SqliteStore.openAsync(path, {
      signal: new AbortController().signal,
      upgrade: {
        pageRows: 5,
        inPage: (page, version) => {
          if (version === 29 && page === 3) throw new Error("a fault in the page");
        },
      },
    });
    await expect(failing).rejects.toMatchObject({ code: "ERR_STORE", message: expect.stringContaining("a fault in the page") });
    // the third page's rows went with it; the connection is closed (another one takes the write lock at once)
    await expectLeftInFill29ThenFinished(path);
  });

  it("a signal during its own upgrade (nobody else holding the lock) ends it before the next page: the pages committed stay, the next open goes on from them", async () => {
    const { path, ders } = version22Store(23);
    db22ToWal(path);
    const stop = new AbortController();
    const stopped = new Error("stopped by SIGUSR2");
    // a daemon's SIGTERM as it comes: a signal to the process, its handler aborting the stop (SIGUSR2 here, which
    // the test runner leaves alone); sent inside the second page of version 29's fill, before it commits
    const onSignal = () => stop.abort(stopped);
    process.once("SIGUSR2", onSignal);
    try {
      const inPage = (page: number, version: number) => {
        if (version === 29 && page === 2) process.kill(process.pid, "SIGUSR2");
      };
      await expect(SqliteStore.openAsync(path, { signal: stop.signal, upgrade: { pageRows: 5, inPage } })).rejects.toBe(stopped);
    } finally {
      process.removeListener("SIGUSR2", onSignal);
    }
    // the page the signal came in committed; none after it ran, and the connection is closed
    await expectLeftInFill29ThenFinished(path);
    const check = new Database(path, { readonly: true });
    const rows = check.prepare("SELECT der, certified_key FROM certificates ORDER BY rowid").all() as Array<{ der: Buffer; certified_key: Buffer }>;
    check.close();
    expect(rows.map((r) => r.der)).toEqual(ders);
    for (const r of rows) expect(r.certified_key).toEqual(certifiedKeyOf(r.der));
  });

  it("a stop while it waits for the lock between two pages keeps the pages committed; the next open goes on from them", async () => {
    const { path } = version22Store(23);
    db22ToWal(path);
    const stop = new AbortController();
    let holder: Database.Database | undefined;
    const opening = SqliteStore.openAsync(path, {
      signal: stop.signal,
      upgrade: {
        pageRows: 5,
        // two pages of version 29 committed: another process takes the lock before the third
        onProgress: (p) => {
          if (p.what === "certified keys" && p.stage === "filling" && p.done === 10 && !holder) {
            holder = new Database(path);
            holder.exec("BEGIN IMMEDIATE");
            setTimeout(() => stop.abort(), 100);
          }
        },
      },
    }).then(
      () => "opened",
      (e: unknown) => e,
    );
    try {
      expect(await opening).toBe(stop.signal.reason);
    } finally {
      holder?.exec("ROLLBACK");
      holder?.close();
    }
    await expectLeftInFill29ThenFinished(path);
  });
});

/** Puts a store file made by storeAtVersion in WAL mode, as every store jpki opens is (readers go on while the lock is held). */
function db22ToWal(path: string): void {
  const db = new Database(path);
  db.pragma("journal_mode = WAL");
  db.close();
}
