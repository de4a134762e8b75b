/**
 * The store contract: one behavioural suite every Store implementation must pass (SQLite now,
 * PostgreSQL next). Called from each backend's test file with a factory for a fresh, empty store.
 */
import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isJpkiError } from "../errors.js";
import { tlvOf } from "../pki/der.js";
import { decodeEntries, isEntriesTotal, type CrlEntryInput, type EntriesTotal } from "../profile/crl-entry.js";
import { GroupCommitter } from "../ca/group-commit.js";
import { applyNoticesToRegistry } from "../registry/apply.js";
import type { RecordResult } from "../registry/import.js";
import { MAX_SEQUENCE_JUMP } from "../registry/notice.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { isRegistered, type CaRecord, type CertificateStatusRow, type DumpBatch, type IssuanceRecord, type OcspResponderRecord, type Store } from "./types.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };

function ca(id = "13-sig"): CaRecord {
  return { id, prefectureCode: id.slice(0, 2), purpose: "signature", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem: "pem", keyId: Buffer.alloc(20, 1), createdAt: new Date(0) };
}

/** 13-sig's OCSP signing certificate and its key (as stored: wrapped), serial 0c01. */
function ocspSigner(encryptedKeyPem: string): OcspResponderRecord {
  return { caId: "13-sig", serial: "0c01", certificateDer: Buffer.from([0x30, 0]), encryptedKeyPem, notBefore: new Date(1000), notAfter: new Date(2000) };
}

/** A store with the CAs 13-sig and 13-auth. */
async function twoCas(make: () => Promise<Store>): Promise<Store> {
  const s = await make();
  await s.putCa(ca());
  await s.putCa(ca("13-auth"));
  return s;
}

function resident(residentCode: string) {
  return { residentCode, municipalityCode: "131016", fourItems: items, status: "active" as const };
}

function cert(serial: string, residentCode: string, issuedAt: number, notAfter = Date.UTC(2030, 0, 1)): IssuanceRecord {
  return {
    serial, caId: "13-sig", type: "signature", residentCode, municipalityCode: "131016", fourItems: items,
    notBefore: new Date(issuedAt), notAfter: new Date(notAfter), issuedAt: new Date(issuedAt), der: Buffer.from(serial, "hex"),
  };
}

/**
 * A certificate whose DER carries the public key `key` (a stand-in subjectPublicKeyInfo holding those octets): a
 * v1 tbsCertificate with the serial, empty names and validity, enough for the key to be read (pki/tbs.ts).
 */
export function keyed(serial: string, residentCode: string, issuedAt: number, key: string, type: "signature" | "authentication" = "signature"): IssuanceRecord {
  const tlv = (tag: number, ...parts: Buffer[]) => tlvOf(tag, parts);
  const spki = tlv(0x30, tlv(0x30, Buffer.from([0x06, 0x01, 0x2a])), tlv(0x03, Buffer.from([0]), Buffer.from(key)));
  const tbs = tlv(0x30, tlv(0x02, Buffer.from(serial, "hex")), tlv(0x30), tlv(0x30), tlv(0x30), tlv(0x30), spki);
  return { ...cert(serial, residentCode, issuedAt), type, caId: type === "signature" ? "13-sig" : "13-auth", der: tlv(0x30, tbs, tlv(0x30), tlv(0x03, Buffer.from([0]))) };
}

/**
 * A notice batch's `decide` for resident r1 (notice `id`): the sequence after the one its context read, each read
 * recorded in `seen` — two batches that decided from the same state would record the same number.
 */
export function nextSequenceDecider(seen: number[]) {
  return (id: string) => (ctx: import("./types.js").NoticeContext) => {
    const last = ctx.lastSequence.get("r1") ?? 0;
    seen.push(last);
    return {
      commit: {
        at: new Date(1000),
        notices: [{ noticeId: id, residentCode: "r1", sequence: last + 1, kind: "relocation", body: "{}", status: "applied" as const, revocations: 0 }],
        sequences: [{ residentCode: "r1", last: last + 1 }],
        revocations: [],
        relinks: [],
        dirtyCas: [],
      },
    };
  };
}

/** Change notices as `registry apply` reads them from a file, one a line. */
async function* lines(values: ReadonlyArray<Record<string, unknown>>): AsyncGenerator<RecordResult> {
  let line = 0;
  for (const value of values) yield { line: ++line, value };
}

const APPLY_NOW = new Date(Date.UTC(2026, 4, 1, 3));
const moved = { ...items, address: "東京都港区芝公園４丁目２番８号" };

function notice(noticeId: string, residentCode: string, kind: string, sequence: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { noticeId, residentCode, kind, effectiveDate: "2026-04-20", sequence, municipalityCode: "131016", ...extra };
}

/**
 * Closed records as a store before successors were kept left them (SQLite version 24, PostgreSQL 18), as plain SQL
 * both backends' upgrade tests run: which of them the upgrade gives a successor, {@link expectSuccessorsFilled} checks.
 */
export const CLOSED_BEFORE_SUCCESSORS = (() => {
  const [a, b] = [makeResidentCode("2000000041"), makeResidentCode("2000000042")];
  const row = (code: string, status: string, seq: number) => `('${code}', '131016', '${items.name}', '${items.address}', '${items.birthDate}', 'male', '${status}', ${seq})`;
  const notice = (id: string, code: string, seq: number, kind: string, status: string, body: string) => `('${id}', '${code}', ${seq}, '${kind}', '${status}', '${body}', 1, 1, 0)`;
  return {
    a,
    b,
    sql: [
      `INSERT INTO residents (resident_code, municipality_code, name, address, birth_date, gender, status, notice_sequence) VALUES
        ${row(a, "removed", 1)}, ${row(b, "active", 1)}, ${row("d", "removed", 1)}, ${row("e", "removed", 1)}, ${row("g", "removed", 1)}, ${row("h", "removed", 2)}, ${row("k", "removed", 1)}`,
      `INSERT INTO notices (notice_id, resident_code, sequence, kind, status, body, received_at, applied_at, revocations) VALUES
        ${notice("M-a", a, 1, "resident-code-change", "applied", `{"newResidentCode":"${b}","noticeId":"M-a"}`)},
        ${notice("M-d", "d", 1, "removal", "applied", '{"noticeId":"M-d"}')},
        ${notice("M-e", "e", 1, "resident-code-change", "applied", '{"newResidentCode":"nobody","noticeId":"M-e"}')},
        ${notice("M-g", "g", 1, "resident-code-change", "applied", "not json")},
        ${notice("M-h", "h", 1, "resident-code-change", "applied", `{"newResidentCode":"${b}","noticeId":"M-h"}`)},
        ${notice("M-k", "k", 1, "resident-code-change", "held", `{"newResidentCode":"${b}","noticeId":"M-k"}`)}`,
    ],
  };
})();

/**
 * After the upgrade: only the record closed by the applied resident-code change at its own sequence, to a code the
 * registry holds, names a successor — and a death still filed under its old code then reaches the new one.
 */
export async function expectSuccessorsFilled(s: Store): Promise<void> {
  const { a, b } = CLOSED_BEFORE_SUCCESSORS;
  expect(await s.getResident(a)).toMatchObject({ status: "removed", successorCode: b });
  // a removal; a change to a code the registry does not hold; a body that is not JSON; a change at another
  // sequence than the one the record was closed at; a change the CA side only holds
  for (const code of ["d", "e", "g", "h", "k"]) expect((await s.getResident(code))?.successorCode).toBeUndefined();
  expect(await applyNoticesToRegistry(s, lines([notice("M-2", a, "death", 2)]), APPLY_NOW)).toMatchObject({ applied: 1, errors: [] });
  expect(await s.getResidentForIssuance(b)).toMatchObject({ record: { status: "deceased" }, registrySequence: 2 });
}

/**
 * The CRL entries a store lists for a CA, decoded. Read twice: as they are, and with their total first (what the
 * CRL publisher streams by), which must announce exactly the entries and bytes that follow, the same entries.
 */
async function crlList(s: Store, caId: string, expiredBefore: Date): Promise<CrlEntryInput[]> {
  const out: CrlEntryInput[] = [];
  for await (const chunk of s.crlEntries(caId, { expiredBefore })) {
    const decoded = decodeEntries(chunk.der);
    expect(decoded.length).toBe(chunk.count);
    out.push(...decoded);
  }
  const { total, entries, bytes } = await crlListWithTotal(s.crlEntries(caId, { expiredBefore, withTotal: true }));
  expect(total).toEqual({ totalBytes: bytes, totalCount: entries.length });
  expect(entries).toEqual(out);
  return out;
}

/** crlEntries read with `withTotal`: the total (which must come first, once), the entries and their DER bytes. */
async function crlListWithTotal(items: AsyncIterable<unknown>, afterTotal?: () => Promise<void>): Promise<{ total: EntriesTotal | undefined; entries: CrlEntryInput[]; bytes: number }> {
  let total: EntriesTotal | undefined;
  const entries: CrlEntryInput[] = [];
  let bytes = 0;
  let first = true;
  for await (const item of items) {
    if (isEntriesTotal(item)) {
      expect(first).toBe(true);
      total = item;
      await afterTotal?.();
    } else {
      const chunk = item as { der: Buffer; count: number };
      const decoded = decodeEntries(chunk.der);
      expect(decoded.length).toBe(chunk.count);
      entries.push(...decoded);
      bytes += chunk.der.length;
    }
    first = false;
  }
  return { total, entries, bytes };
}

/**
 * Registered issuance information of every kind the sweep meets (store/types.ts sweepRegisteredIssuances), on
 * a fresh store: live certificates (one expiring exactly at the cut-off, still valid then), expired ones, and
 * revoked ones — by a notice batch (SQLite leaves those rows in place), manually, and one both revoked and
 * expired. Returns the cut-off, the serials that must stay, and how many the sweep counts.
 */
export async function seedSweepFixture(
  s: Store,
  residents: readonly [string, string, string, string] = ["s1", "s2", "s3", "s4"],
  cutoff = new Date(Date.UTC(2026, 0, 1)),
): Promise<{ cutoff: Date; live: string[]; expired: number; residents: string[] }> {
  const [s1, s2, s3, s4] = residents;
  const c = cutoff.getTime();
  const [live, yearBefore] = [c + 5 * 365 * 86_400_000, c - 365 * 86_400_000];
  await s.putCa(ca());
  await s.upsertResidents(residents.map(resident));
  const auth = (c: IssuanceRecord): IssuanceRecord => ({ ...c, type: "authentication" });
  await s.commitIssuances([
    cert("0e01", s1, 1000, live),
    auth(cert("0e02", s1, 1000, c)), // expires at the cut-off itself: live
    cert("0e03", s2, 1000, yearBefore), // expired
    auth(cert("0e04", s2, 1000, c - 1000)), // expired, a second before
    cert("0e05", s3, 1000, live), // revoked by a notice batch
    auth(cert("0e06", s3, 1000, live)), // revoked manually
    cert("0e07", s4, 1000, yearBefore), // revoked by a notice batch and expired
    auth(cert("0e08", s4, 1000, live)), // live
  ]);
  await s.commitNoticeBatch({ noticeIds: [], residentCodes: [s3, s4] }, () => ({
    commit: {
      at: new Date(3000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"],
      revocations: [{ serial: "0e05", reason: 3, source: "notice:n1", residentCode: s3 }, { serial: "0e07", reason: 5, source: "notice:n2", residentCode: s4 }],
    },
  }));
  await s.revoke({ serial: "0e06", revokedAt: new Date(4000), reason: 1, source: "manual" });
  return { cutoff, live: ["0e01", "0e02", "0e08"], expired: 2, residents: [...residents] };
}

export function storeContract(name: string, make: () => Promise<Store>): void {
  describe(`Store contract: ${name}`, () => {
    it("answers a ping (the store watchdog's own probe, SELECT 1), an empty store too", async () => {
      const s = await make();
      await expect(s.ping()).resolves.toBeUndefined();
      await s.close();
    });

    it("refuses a second CA with the same id (ERR_CA_EXISTS)", async () => {
      const s = await make();
      await s.putCa(ca());
      await expect(s.putCa(ca())).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_EXISTS"));
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig"]);
      await s.close();
    });

    it("keeps a token CA's key reference (RFC 7512 URI) and none for a software CA", async () => {
      const s = await make();
      const keyRef = "pkcs11:token=CA%20token;object=27-sig;id=%0A%FF?module-path=/usr/lib/softhsm/libsofthsm2.so";
      await s.putCa(ca());
      await s.putCa({ ...ca("27-sig"), encryptedKeyPem: "", keyRef });
      expect(await s.getCa("27-sig")).toEqual({ ...ca("27-sig"), encryptedKeyPem: "", keyRef });
      expect(await s.getCa("13-sig")).toEqual(ca());
      expect((await s.listCas()).map((c) => c.keyRef)).toEqual([undefined, keyRef]);
      await s.close();
    });

    it("commits a key rollover (new generation + link certificates) once: a second rollover of the same CA is refused (ERR_ROLLOVER_CONFLICT)", async () => {
      const s = await make();
      await s.putCa(ca());
      const link = (newCaId: string, oldCaId = "13-sig") => ({ oldCaId, newCaId, oldWithNew: Buffer.from(`o>${newCaId}`), newWithOld: Buffer.from(`n>${newCaId}`), createdAt: new Date(1000) });
      await expect(s.putCaRollover(ca("13-sig-g2"), link("13-sig-g2", "27-sig"))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_UNKNOWN"));
      await s.putCaRollover(ca("13-sig-g2"), link("13-sig-g2"));
      // the same old generation again (two runs at once: the second loses), and the same new id again
      await expect(s.putCaRollover(ca("13-sig-g9"), link("13-sig-g9"))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_ROLLOVER_CONFLICT"));
      await expect(s.putCaRollover(ca("13-sig-g2"), link("13-sig-g2", "13-sig-g2"))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_ROLLOVER_CONFLICT"));
      await s.putCaRollover(ca("13-sig-g3"), link("13-sig-g3", "13-sig-g2"));
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig", "13-sig-g2", "13-sig-g3"]);
      expect((await s.listCaLinks()).map((l) => [l.oldCaId, l.newCaId, l.oldWithNew?.toString(), l.newWithOld?.toString(), l.createdAt.getTime()])).toEqual([
        ["13-sig", "13-sig-g2", "o>13-sig-g2", "n>13-sig-g2", 1000],
        ["13-sig-g2", "13-sig-g3", "o>13-sig-g3", "n>13-sig-g3", 1000],
      ]);
      // the last expiry among a CA's certificates: how long a retired generation keeps publishing CRLs
      await s.upsertResidents([resident("12345678906")]);
      expect(await s.lastCertificateExpiry("13-sig")).toBeUndefined();
      await s.commitIssuances([cert("0a01", "12345678906", 1, Date.UTC(2031, 0, 1)), { ...cert("0a02", "12345678906", 2, Date.UTC(2029, 0, 1)), type: "authentication" }]);
      expect(await s.lastCertificateExpiry("13-sig")).toEqual(new Date(Date.UTC(2031, 0, 1)));
      expect(await s.lastCertificateExpiry("13-sig-g2")).toBeUndefined();
      await s.close();
    });

    it("retires CA ids: putCa and putCaRollover refuse them (ERR_CA_RETIRED), an id in use cannot be retired (ERR_CA_EXISTS), each retirement audited once", async () => {
      const s = await make();
      await s.putCa(ca());
      const r = (id: string, at = 5000) => ({ id, retiredAt: new Date(at), reason: `CRLs of ${id} published` });
      await s.retireCaIds([r("13-sig-g2"), r("13-auth")]);
      // retired again: the first record stays
      await s.retireCaIds([r("13-sig-g2", 9000)]);
      expect(await s.listRetiredCaIds()).toEqual([r("13-auth"), r("13-sig-g2")]);
      await expect(s.retireCaIds([r("27-sig"), r("13-sig")])).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_EXISTS"));
      expect((await s.listRetiredCaIds()).map((x) => x.id)).toEqual(["13-auth", "13-sig-g2"]); // nothing of the refused call
      await expect(s.putCa({ ...ca("13-auth"), purpose: "authentication" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_RETIRED"));
      const link = (newCaId: string) => ({ oldCaId: "13-sig", newCaId, oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(1000) });
      await expect(s.putCaRollover(ca("13-sig-g2"), link("13-sig-g2"))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_RETIRED"));
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig"]);
      expect(await s.listCaLinks()).toEqual([]);
      await s.putCaRollover(ca("13-sig-g3"), link("13-sig-g3"));
      const retired: string[] = [];
      for await (const a of s.auditRecords()) if (a.action === "ca.retire-id") retired.push(a.subject);
      expect(retired).toEqual(["13-sig-g2", "13-auth"]);
      await s.close();
    });

    it("records a rollover after a key compromise without link certificates: still the old generation's one successor, audited as compromised", async () => {
      const s = await make();
      await s.putCa(ca());
      const before = (await s.caRevisions()).get("13-sig") ?? 0;
      await s.putCaRollover(ca("13-sig-g2"), { oldCaId: "13-sig", newCaId: "13-sig-g2", createdAt: new Date(2000) });
      expect(await s.listCaLinks()).toEqual([{ oldCaId: "13-sig", newCaId: "13-sig-g2", createdAt: new Date(2000) }]);
      // the old generation's revision moves in the same commit: a running OCSP responder polls the revisions and
      // re-reads the compromised CAs when one moves (ocsp/responder.ts), so it answers cACompromise within a poll
      expect((await s.caRevisions()).get("13-sig")).toBeGreaterThan(before);
      await expect(s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig", newCaId: "13-sig-g3", createdAt: new Date(2000) })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_ROLLOVER_CONFLICT"));
      // one link alone is neither kind of rollover: the store refuses it
      await expect(s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", oldWithNew: Buffer.from("o"), createdAt: new Date(3000) })).rejects.toThrow();
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig", "13-sig-g2"]);
      // the next rollover from the new generation has its links again
      await s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(3000) });
      expect((await s.listCaLinks()).map((l) => [l.newCaId, l.oldWithNew?.toString(), l.newWithOld?.toString()])).toEqual([
        ["13-sig-g2", undefined, undefined],
        ["13-sig-g3", "o", "n"],
      ]);
      const rollovers: unknown[] = [];
      for await (const r of s.auditRecords()) if (r.action === "ca.rollover") rollovers.push({ subject: r.subject, compromised: (JSON.parse(r.detail) as { compromised?: boolean }).compromised });
      expect(rollovers).toEqual([{ subject: "13-sig-g2", compromised: true }, { subject: "13-sig-g3", compromised: undefined }]);
      await s.close();
    });

    it("declares a retired generation's key compromised once: its rollover row carries the time, both ARLs become due, one audit record, a dump carries it; the active generation and an unknown CA are refused", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCaRollover(ca("13-sig-g2"), { oldCaId: "13-sig", newCaId: "13-sig-g2", oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(1000) });
      await s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", createdAt: new Date(2000) }); // for a compromised key: no links
      // every ARL published: no ARL due before the declaration; 13-sig's full CRL is, since 13-sig-g2 was rolled
      // over as compromised (13-sig's OldWithNew certifies that key: crl/arl.ts), and 13-sig-g2's, whose revision
      // that rollover moved (for the OCSP responder's poll)
      const t = new Date(1500);
      for (const id of ["13-sig", "13-sig-g2", "13-sig-g3"]) {
        const r = await s.reserveCrl(id, t, new Date(9000), "arl");
        await s.publishCrl({ caId: id, number: r.number, entries: 0, path: `arl/${id}.crl`, sha256: "00", scope: "arl" }, () => undefined);
      }
      expect((await s.crlStatus()).filter((x) => x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2"]);
      const arlDue = async () => (await s.crlScopeStatus()).filter((x) => x.scope === "arl" && x.dirty).map((x) => x.caId);
      expect(await arlDue()).toEqual([]);
      await expect(s.declareCaCompromised("27-sig", new Date(5000))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_UNKNOWN"));
      await expect(s.declareCaCompromised("13-sig-g3", new Date(5000))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_ACTIVE"));
      // rolled over for a compromised key already: nothing to record
      expect(await s.declareCaCompromised("13-sig-g2", new Date(5000))).toEqual({ caId: "13-sig-g2", successorCaId: "13-sig-g3", at: new Date(2000), already: true });
      expect(await arlDue()).toEqual([]);
      expect(await s.declareCaCompromised("13-sig", new Date(5000))).toEqual({ caId: "13-sig", successorCaId: "13-sig-g2", at: new Date(5000), already: false });
      expect(await arlDue()).toEqual(["13-sig", "13-sig-g2"]);
      // their full CRLs too: complete for CA certificates as well (no IDP), they list the links from now on
      expect((await s.crlStatus()).filter((x) => x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2"]);
      // again, later: the first time stays, nothing changes
      expect(await s.declareCaCompromised("13-sig", new Date(7000))).toEqual({ caId: "13-sig", successorCaId: "13-sig-g2", at: new Date(5000), already: true });
      expect((await s.listCaLinks()).map((l) => [l.oldCaId, l.compromisedAt?.getTime()])).toEqual([
        ["13-sig", 5000],
        ["13-sig-g2", undefined],
      ]);
      const audit: Array<{ subject: string; detail: unknown }> = [];
      for await (const r of s.auditRecords()) if (r.action === "ca.compromised") audit.push({ subject: r.subject, detail: JSON.parse(r.detail) });
      expect(audit).toEqual([{ subject: "13-sig", detail: { successor: "13-sig-g2", oldWithNewSha256: expect.any(String), newWithOldSha256: expect.any(String) } }]);
      const copy = await make();
      await copy.load(s.dump());
      expect(await copy.listCaLinks()).toEqual(await s.listCaLinks());
      await copy.close();
      await s.close();
    });

    it("declaring the middle of g1 -> g2 -> g3 compromised makes g1's CRLs due too: its OldWithNew certifies g2's key", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCaRollover(ca("13-sig-g2"), { oldCaId: "13-sig", newCaId: "13-sig-g2", oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(1000) });
      await s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", oldWithNew: Buffer.from("o3"), newWithOld: Buffer.from("n3"), createdAt: new Date(2000) });
      for (const id of ["13-sig", "13-sig-g2", "13-sig-g3"]) {
        const r = await s.reserveCrl(id, new Date(1500), new Date(9000), "arl");
        await s.publishCrl({ caId: id, number: r.number, entries: 0, path: `arl/${id}.crl`, sha256: "00", scope: "arl" }, () => undefined);
      }
      expect(await s.declareCaCompromised("13-sig-g2", new Date(5000))).toMatchObject({ successorCaId: "13-sig-g3", already: false });
      expect((await s.crlScopeStatus()).filter((x) => x.scope === "arl" && x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2", "13-sig-g3"]);
      expect((await s.crlStatus()).filter((x) => x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2", "13-sig-g3"]);
      await s.close();
    });

    it("rolling g2 of g1 -> g2 over for a compromised key makes g1's CRLs due: its OldWithNew certifies g2's key", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCaRollover(ca("13-sig-g2"), { oldCaId: "13-sig", newCaId: "13-sig-g2", oldWithNew: Buffer.from("o"), newWithOld: Buffer.from("n"), createdAt: new Date(1000) });
      for (const id of ["13-sig", "13-sig-g2"]) {
        const r = await s.reserveCrl(id, new Date(1500), new Date(9000), "arl");
        await s.publishCrl({ caId: id, number: r.number, entries: 0, path: `arl/${id}.crl`, sha256: "00", scope: "arl" }, () => undefined);
      }
      await s.putCaRollover(ca("13-sig-g3"), { oldCaId: "13-sig-g2", newCaId: "13-sig-g3", createdAt: new Date(2000) });
      // g1's ARL, and g2's own: it lists g2's CA certificate revoked from now, as g2's full CRL does (crl/arl.ts arlEntries)
      expect((await s.crlScopeStatus()).filter((x) => x.scope === "arl" && x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2"]);
      // and g2's own full CRL: the rollover moved its revision (the OCSP responder's poll sees the compromise by it)
      expect((await s.crlStatus()).filter((x) => x.dirty).map((x) => x.caId)).toEqual(["13-sig", "13-sig-g2"]);
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
      await s.upsertResidents([resident("r1"), resident("r2")]);
      const sup = await s.commitIssuances([cert("01aa", "r1", 1000), cert("01bb", "r1", 2000), cert("01cc", "r2", 3000)]);
      expect(sup).toEqual([{ status: "committed", superseded: [] }, { status: "committed", superseded: ["01aa"] }, { status: "committed", superseded: [] }]);
      const first = await s.getCertificate("01aa");
      expect(first?.revocation).toEqual({ revokedAt: new Date(2000), reason: 4, source: "superseded:01bb" });
      expect(await s.getCertificateOwner("01cc")).toEqual({ caId: "13-sig", residentCode: "r2", der: Buffer.from("01cc", "hex") });
      expect(await s.getCertificateOwner("01dd")).toBeUndefined();
      // asked together (the validation API's answers of one turn share one read): each gets its own
      expect(await Promise.all(["01cc", "01dd", "01aa", "01cc"].map((x) => s.getCertificateOwner(x)))).toEqual([
        { caId: "13-sig", residentCode: "r2", der: Buffer.from("01cc", "hex") },
        undefined,
        { caId: "13-sig", residentCode: "r1", der: Buffer.from("01aa", "hex") },
        { caId: "13-sig", residentCode: "r2", der: Buffer.from("01cc", "hex") },
      ]);
      expect((await s.findCertificates({ residentCode: "r1", status: "valid" })).map((c) => c.serial)).toEqual(["01bb"]);
      // the supersession is a revocation: the CA is due for a CRL, marked in the same transaction
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      await s.close();
    });

    it("re-reads the registry record when committing: a change after signing makes the certificate stale, never committed", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2"), resident("r3")]);
      const signed = { ...cert("05aa", "r1", 1000), registrySequence: 0 };
      // the registry moves the resident after the items were read and signed
      await s.applyToRegistry((read) => ({ put: [{ ...read("r1")!, fourItems: { ...items, address: "東京都港区芝公園４丁目２番８号" }, noticeSequence: 1 }], remove: [], result: undefined }));
      // the CA side has applied a notice the registry has not
      await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["r2"] }, () => ({
        commit: { at: new Date(1500), notices: [{ noticeId: "n1", residentCode: "r2", sequence: 1, kind: "relocation", body: "{}", status: "applied", revocations: 0 }], sequences: [{ residentCode: "r2", last: 1 }], revocations: [], relinks: [], dirtyCas: [] },
      }));
      await s.applyToRegistry(() => ({ put: [], remove: ["r3"], result: undefined }));
      // a re-import corrects one item without any notice (no sequence moves): each item is compared
      await s.upsertResidents([resident("r4"), resident("r5"), resident("r6"), resident("r7"), resident("r8")]);
      const before = [cert("05dd", "r4", 1000), cert("05ee", "r5", 1000), cert("05ff", "r6", 1000), cert("05a0", "r7", 1000)];
      // a notice the registry applied that left every item as it was (the sequence alone moved): signed from sequence 0
      const sequenceOnly = { ...cert("05a1", "r8", 1000), registrySequence: 0 };
      await s.applyToRegistry((read) => ({ put: [{ ...read("r8")!, noticeSequence: 1 }], remove: [], result: undefined }));
      await s.upsertResidents([
        { ...resident("r4"), fourItems: { ...items, name: "山田　花子" } },
        { ...resident("r5"), fourItems: { ...items, birthDate: "1990-01-02" } },
        { ...resident("r6"), fourItems: { ...items, gender: "female" } },
        { ...resident("r7"), municipalityCode: "131024" },
      ]);
      const r = await s.commitIssuances([signed, cert("05bb", "r2", 1000), cert("05cc", "r3", 1000), ...before, sequenceOnly, cert("05a2", "nobody", 1000)]);
      expect(r).toEqual([
        { status: "stale", why: "registry-changed" },
        { status: "stale", why: "registry-behind" },
        { status: "stale", why: "resident-gone" },
        ...before.map(() => ({ status: "stale", why: "registry-changed" })),
        { status: "stale", why: "registry-changed" },
        { status: "stale", why: "resident-gone" },
      ]);
      for (const serial of ["05aa", "05bb", "05cc", "05dd", "05ee", "05ff", "05a0", "05a1", "05a2"]) expect(await s.getCertificate(serial)).toBeUndefined();
      // the same record signed from the sequence the registry now has commits
      expect(await s.commitIssuances([{ ...cert("05a3", "r8", 1000), registrySequence: 1 }])).toEqual([{ status: "committed", superseded: [] }]);
      await s.close();
    });

    it("returns the certificate already committed for an application id instead of a second one", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1")]);
      await s.commitIssuances([{ ...cert("06aa", "r1", 1000), applicationId: "app-1" }]);
      const [r] = await s.commitIssuances([{ ...cert("06bb", "r1", 2000), applicationId: "app-1" }]);
      expect(r).toMatchObject({ status: "duplicate-application", existing: { serial: "06aa" } });
      expect(await s.getCertificate("06bb")).toBeUndefined();
      expect((await s.getCertificate("06aa"))?.revocation).toBeUndefined();
      await s.close();
    });

    it("a repeat within one call fares as it would in one-by-one calls (a resident, an application id)", async () => {
      const s = await make();
      await s.putCa(ca());
      expect(await s.upsertResidents([resident("r1"), resident("r1"), resident("r2")])).toEqual({ inserted: 2, updated: 1 });
      const r = await s.commitIssuances([
        { ...cert("08aa", "r1", 1000), applicationId: "app-8" },
        cert("08bb", "r1", 2000),
        { ...cert("08cc", "r2", 3000), applicationId: "app-8" },
      ]);
      expect(r.map((x) => x.status)).toEqual(["committed", "committed", "duplicate-application"]);
      // the certificate the application got, as it stands at that point of the batch: superseded by 08bb
      expect(r[2]).toMatchObject({ existing: { serial: "08aa", applicationId: "app-8", revocation: { reason: 4, source: "superseded:08bb" } } });
      expect(await s.getCertificate("08cc")).toBeUndefined();
      await s.close();
    });

    it("finds no key certified to two residents where the issuances checked them (sharedCertifiedKeys): a renewal that kept its key is one resident's", async () => {
      const s = await twoCas(make);
      await s.upsertResidents(["r1", "r2"].map(resident));
      expect(await s.sharedCertifiedKeys({ now: new Date(0) })).toEqual([]);
      await s.commitIssuances([keyed("0f01", "r1", 1000, "key one")]);
      await s.commitIssuances([keyed("0f02", "r1", 2000, "key one")]);
      await s.commitIssuances([keyed("0f03", "r2", 2000, "key two")]);
      expect(await s.commitIssuances([keyed("0f04", "r2", 3000, "key one")])).toEqual([expect.objectContaining({ status: "key-in-use", why: "other-resident" })]);
      expect(await s.sharedCertifiedKeys({ now: new Date(0) })).toEqual([]);
      await s.close();
    });

    it("certifies a public key to one resident and one type: another resident's, the other type's, or a compromised key is refused; a renewal with it is not", async () => {
      const s = await twoCas(make);
      await s.upsertResidents(["r1", "r2", "r3", "r4"].map(resident));
      expect(await s.commitIssuances([keyed("0f01", "r1", 1000, "key one")])).toEqual([{ status: "committed", superseded: [] }]);
      // another resident, the other type of the same resident, then one group where the second record takes the first's key
      expect(await s.commitIssuances([keyed("0f02", "r2", 2000, "key one")])).toEqual([{ status: "key-in-use", serial: "0f01", why: "other-resident" }]);
      expect(await s.commitIssuances([keyed("0f03", "r1", 2000, "key one", "authentication")])).toEqual([{ status: "key-in-use", serial: "0f01", why: "other-type" }]);
      expect(await s.commitIssuances([keyed("0f04", "r3", 2000, "key two"), keyed("0f05", "r4", 2000, "key two"), keyed("0f06", "r4", 2000, "key three")])).toEqual([
        { status: "committed", superseded: [] },
        { status: "key-in-use", serial: "0f04", why: "other-resident" },
        { status: "committed", superseded: [] },
      ]);
      for (const serial of ["0f02", "0f03", "0f05"]) expect(await s.getCertificate(serial)).toBeUndefined();
      // a renewal with the same key supersedes; a key that differs in its last octet is another key
      expect(await s.commitIssuances([keyed("0f07", "r1", 3000, "key one")])).toEqual([{ status: "committed", superseded: ["0f01"] }]);
      expect(await s.commitIssuances([keyed("0f08", "r2", 3000, "key onf")])).toEqual([{ status: "committed", superseded: [] }]);
      // a revoked certificate still holds its key for its resident; one revoked for keyCompromise holds it for good
      await s.revoke({ serial: "0f07", revokedAt: new Date(4000), reason: 1, source: "manual" });
      expect(await s.commitIssuances([keyed("0f09", "r2", 5000, "key one")])).toEqual([{ status: "key-in-use", serial: "0f01", why: "other-resident" }]);
      expect(await s.commitIssuances([keyed("0f0a", "r1", 5000, "key one")])).toEqual([{ status: "key-in-use", serial: "0f07", why: "compromised" }]);
      expect((await s.findCertificates({ status: "valid" })).map((c) => c.serial).sort()).toEqual(["0f04", "0f06", "0f08"]);
      await s.close();
    });

    it("a key certified under a code the person has left (the registry took the resident-code change, the CA side not yet) is theirs, not another resident's", async () => {
      const s = await twoCas(make);
      await s.upsertResidents(["r1", "r3"].map(resident));
      expect(await s.commitIssuances([keyed("0f11", "r1", 1000, "key one")])).toEqual([{ status: "committed", superseded: [] }]);
      // the registry closes r1 for r1 → r2 → r4 (two changes); the certificate is still filed under r1
      await s.upsertResidents([{ ...resident("r1"), status: "removed", successorCode: "r2" }, { ...resident("r2"), status: "removed", successorCode: "r4" }, resident("r4")]);
      expect(await s.commitIssuances([keyed("0f12", "r3", 2000, "key one")])).toEqual([{ status: "key-in-use", serial: "0f11", why: "other-resident" }]);
      expect(await s.commitIssuances([keyed("0f13", "r4", 2000, "key one", "authentication")])).toEqual([{ status: "key-in-use", serial: "0f11", why: "other-type" }]);
      expect(await s.commitIssuances([keyed("0f14", "r4", 2000, "key one")])).toEqual([{ status: "committed", superseded: [] }]);
      // one person under two codes, as the registry says: not a key shared by two residents (jpki store check)
      expect(await s.sharedCertifiedKeys({ now: new Date(0) })).toEqual([]);
      await s.close();
    });

    it("keeps the registry sequence a certificate was issued at, for the notices that come after (and a copy keeps it)", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2")]);
      expect(await s.commitIssuances([{ ...cert("0e01", "r1", 1000), registrySequence: 0 }, cert("0e02", "r2", 1000)])).toEqual([
        { status: "committed", superseded: [] },
        { status: "committed", superseded: [] },
      ]);
      const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: ["r1", "r2"] });
      expect(ctx.certificates.get("r1")).toEqual([expect.objectContaining({ serial: "0e01", issuedAtSequence: 0 })]);
      expect(ctx.certificates.get("r2")![0]!.issuedAtSequence).toBeUndefined();
      expect((await s.getCertificate("0e01"))?.registrySequence).toBe(0);
      const dumped: unknown[] = [];
      for await (const b of s.dump()) if (b.kind === "certificates") dumped.push(...b.records);
      expect(dumped).toEqual([expect.objectContaining({ serial: "0e01", registrySequence: 0 }), expect.not.objectContaining({ registrySequence: expect.anything() })]);
      await s.close();
    });

    it("gives a notice context's certificates exactly: four items on an unrevoked signature certificate only, none on an authentication one, no revoked one", async () => {
      const s = await twoCas(make);
      const certified = { ...items, name: "𠮷田　花子" }; // a surrogate pair, as certified: the items come back as stored
      await s.upsertResidents([{ ...resident("r1"), fourItems: certified }]);
      // a revoked row of the resident, which the context leaves out
      await s.commitIssuances([{ ...keyed("0e20", "r1", 500, "k0", "authentication"), fourItems: certified }]);
      await s.revoke({ serial: "0e20", revokedAt: new Date(600), reason: 1, source: "manual" });
      await s.commitIssuances([
        { ...keyed("0e21", "r1", 1000, "k1"), fourItems: certified, registrySequence: 0 },
        { ...keyed("0e22", "r1", 1000, "k2", "authentication"), fourItems: certified, registrySequence: 0 },
      ]);
      const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: ["r1"] });
      // toStrictEqual: no other property, not even an undefined fourItems on the authentication certificate
      expect(ctx.certificates.get("r1")).toStrictEqual([
        { serial: "0e21", caId: "13-sig", type: "signature", residentCode: "r1", fourItems: certified, issuedAtSequence: 0 },
        { serial: "0e22", caId: "13-auth", type: "authentication", residentCode: "r1", issuedAtSequence: 0 },
      ]);
      expect(ctx.everCertified.has("r1")).toBe(true);
      await s.close();
    });

    it("tells a notice context which codes were ever certified: every certificate revoked, some unrevoked, none, unknown", async () => {
      const s = await twoCas(make);
      await s.upsertResidents(["r1", "r2", "r3"].map(resident));
      // r1: its only certificate revoked; r2: one revoked, two not; r3: a resident never certified; r9: no resident
      await s.commitIssuances([keyed("0e30", "r1", 500, "k1"), keyed("0e31", "r2", 500, "k2", "authentication")]);
      await s.revoke({ serial: "0e30", revokedAt: new Date(600), reason: 1, source: "manual" });
      await s.revoke({ serial: "0e31", revokedAt: new Date(600), reason: 1, source: "manual" });
      await s.commitIssuances([keyed("0e33", "r2", 2000, "k3"), keyed("0e32", "r2", 3000, "k4", "authentication")]);
      const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: ["r9", "r3", "r2", "r1"] });
      expect([...ctx.everCertified].sort()).toEqual(["r1", "r2"]);
      expect([...ctx.certificates.keys()]).toEqual(["r2"]);
      // in no order the contract promises (SQLite's differs from PostgreSQL's)
      expect(ctx.certificates.get("r2")!.map((c) => c.serial).sort()).toEqual(["0e32", "0e33"]);
      await s.close();
    });

    it("commits all or nothing: a duplicate serial rolls back the whole batch", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2"), resident("r3")]);
      await s.commitIssuances([cert("02aa", "r1", 1000)]);
      await expect(s.commitIssuances([cert("02bb", "r2", 2000), cert("02aa", "r3", 3000)])).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE"));
      expect(await s.getCertificate("02bb")).toBeUndefined();
      await s.close();
    });

    it("stores each certificate's DER byte for byte when many commit together (different lengths)", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents(["r1", "r2", "r3"].map(resident));
      const ders = [Buffer.from([0x30, 0x01, 0x00]), Buffer.alloc(1500, 0xa5), Buffer.from("3003020101", "hex")];
      await s.commitIssuances(ders.map((der, i) => ({ ...cert(`0c0${i}`, `r${i + 1}`, 1000), der })));
      for (const [i, der] of ders.entries()) expect((await s.getCertificate(`0c0${i}`))?.der.equals(der)).toBe(true);
      await s.close();
    });

    it("group commit: concurrent issuances share a transaction, and a record that fails it fails only its own caller", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents(["r1", "r2", "r3", "r4", "r5"].map(resident));
      await s.commitIssuances([cert("09aa", "r1", 1000)]);
      const calls: number[] = [];
      const g = new GroupCommitter((records) => (calls.push(records.length), s.commitIssuances(records)));
      // 09aa is taken: the group's transaction fails whole, then each record is committed on its own
      const out = await Promise.allSettled([cert("09b2", "r2", 2000), cert("09aa", "r3", 2000), cert("09b4", "r4", 2000), cert("09b5", "r5", 2000)].map((r) => g.submit(r)));
      expect(out.map((o) => (o.status === "fulfilled" ? o.value.status : isJpkiError(o.reason) && o.reason.code))).toEqual(["committed", "ERR_STORE", "committed", "committed"]);
      expect(calls).toEqual([4, 1, 1, 1, 1]);
      expect((await s.findCertificates({ status: "valid" })).map((c) => c.serial).sort()).toEqual(["09aa", "09b2", "09b4", "09b5"]);
      expect((await s.getCertificate("09aa"))?.residentCode).toBe("r1");
      await s.close();
    });

    it("reads residents for issuance for many concurrent callers, each its own (or none)", async () => {
      const s = await make();
      await s.upsertResidents(["r1", "r2", "r3"].map(resident));
      const codes = ["r1", "r2", "nobody", "r3", "r2"];
      const got = await Promise.all(codes.map((c) => s.getResidentForIssuance(c)));
      expect(got.map((g) => g?.record.residentCode)).toEqual(["r1", "r2", undefined, "r3", "r2"]);
      expect(got[0]).toEqual({ record: resident("r1"), registrySequence: 0, caSequence: 0 });
      await s.close();
    });

    it("reads a resident for issuance with its text exactly as stored: quotes, backslashes, controls, astral characters", async () => {
      // The four items read here go into the certificate: each field comes back as it went in, whatever it holds (a read
      // packing the row into one text, tried for speed, must escape what its format needs).
      const s = await make();
      const odd = { name: '髙\u{20BB7}\u3000"次"\\郎', address: "東京都千代田区\u0001永田町１丁目\u2028７番\t１号", birthDate: "19800101", gender: "female" as const };
      await s.upsertResidents([{ ...resident("r1"), municipalityCode: "131024", fourItems: odd }]);
      await s.applyToRegistry((read) => ({ put: [{ ...read("r1")!, noticeSequence: 7 }], remove: [], result: undefined }));
      expect(await s.getResidentForIssuance("r1")).toEqual({ record: { ...resident("r1"), municipalityCode: "131024", fourItems: odd }, registrySequence: 7, caSequence: 0 });
      await s.close();
    });

    it("revokes once; streams revoked entries in chunks, dropping long-expired ones", async () => {
      const s = await make();
      await s.putCa(ca());
      const many = Array.from({ length: 25 }, (_, i) => cert((0x100 + i).toString(16).padStart(4, "0"), `r${i}`, 1000, i === 0 ? 5000 : Date.UTC(2030, 0, 1)));
      await s.upsertResidents(many.map((c) => resident(c.residentCode)));
      await s.commitIssuances(many);
      for (const c of many) await s.revoke({ serial: c.serial, revokedAt: new Date(4000), reason: 1, source: "manual" });
      expect(await s.dirtyCas()).toEqual(["13-sig"]); // a manual revocation marks its CA in the same transaction
      await expect(s.revoke({ serial: many[1]!.serial, revokedAt: new Date(4000), reason: 1, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CERT_ALREADY_REVOKED"));
      await expect(s.revoke({ serial: "ffff", revokedAt: new Date(4000), reason: 1, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CERT_UNKNOWN"));
      const listed = await crlList(s, "13-sig", new Date(6000));
      expect(listed.map((e) => e.serial).sort()).toEqual(many.slice(1).map((c) => c.serial).sort()); // the first expired before the cut-off
      expect(listed.every((e) => e.revokedAt.getTime() === 4000 && e.reason === 1)).toBe(true);
      await s.close();
    });

    it("crlEntries with its total: the total is of one moment, and revocations committed after it are left to the next CRL", async () => {
      const s = await make();
      await s.putCa(ca());
      const certs = Array.from({ length: 30 }, (_, i) => cert((0x300 + i).toString(16).padStart(4, "0"), `t${i}`, 1000, i < 3 ? 5000 : Date.UTC(2030, 0, 1)));
      await s.upsertResidents(certs.map((c) => resident(c.residentCode)));
      await s.commitIssuances(certs);
      // Three blocks (one partly expired at the cut-off) before the total; the rest revoked once it was given.
      for (const range of [[0, 5], [5, 12], [12, 20]] as const) {
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
          commit: { at: new Date(4000 + range[0]), notices: [], sequences: [], revocations: certs.slice(...range).map((c) => ({ serial: c.serial, reason: 1, source: "test", residentCode: c.residentCode })), relinks: [], dirtyCas: ["13-sig"] },
        }));
      }
      const later = async () => {
        await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
          commit: { at: new Date(9000), notices: [], sequences: [], revocations: certs.slice(20).map((c) => ({ serial: c.serial, reason: 4, source: "test", residentCode: c.residentCode })), relinks: [], dirtyCas: ["13-sig"] },
        }));
        for (const c of certs.slice(25)) expect((await s.getCertificate(c.serial))?.revocation).toBeDefined();
      };
      const { total, entries, bytes } = await crlListWithTotal(s.crlEntries("13-sig", { expiredBefore: new Date(6000), withTotal: true }), later);
      expect(entries.map((e) => e.serial).sort()).toEqual(certs.slice(3, 20).map((c) => c.serial).sort()); // 0–2 expired before the cut-off
      expect(total).toEqual({ totalBytes: bytes, totalCount: 17 });
      // The next read lists the later ones too.
      expect((await crlList(s, "13-sig", new Date(6000))).length).toBe(27);
      await s.close();
    });

    it("crlEntries given known blocks (crl/reuse.ts) lists exactly what it lists without them, and reads what it is not given", async () => {
      const s = await make();
      await s.putCa(ca());
      const certs = Array.from({ length: 30 }, (_, i) => cert((0x500 + i).toString(16).padStart(4, "0"), `k${i}`, 1000, i < 3 ? 5000 : Date.UTC(2030, 0, 1)));
      await s.upsertResidents(certs.map((c) => resident(c.residentCode)));
      await s.commitIssuances(certs);
      const revokeRange = (from: number, to: number, at: number) =>
        s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
          commit: { at: new Date(at), notices: [], sequences: [], revocations: certs.slice(from, to).map((c) => ({ serial: c.serial, reason: 1, source: "test", residentCode: c.residentCode })), relinks: [], dirtyCas: ["13-sig"] },
        }));
      // Four blocks, the first partly expired at the cut-off (0–2 expire at 5000).
      for (const [from, to] of [[0, 5], [5, 12], [12, 20], [20, 24]] as const) await revokeRange(from, to, 4000 + from);
      const cutoff = new Date(6000);
      const reference = await crlListWithTotal(s.crlEntries("13-sig", { expiredBefore: cutoff, withTotal: true }));
      // A holder with nothing: a store that plans with it tags the whole blocks it sends (id and SHA-256), never the
      // partly expired one.
      const tagged = new Map<string, Buffer>();
      const asked: string[] = [];
      const holder = (give: (id: string, der: Buffer) => Buffer | undefined) => ({
        has: (id: string, length: number) => tagged.get(id)?.length === length,
        take: (id: string, length: number, digest: Buffer) => {
          asked.push(id);
          const der = tagged.get(id);
          return der && der.length === length && createHash("sha256").update(der).digest().equals(digest) ? give(id, der) : undefined;
        },
      });
      const collect = async (known: ReturnType<typeof holder>, afterTotal?: () => Promise<void>) => {
        const chunks: Array<{ der: Buffer; count: number; block?: { id: string; digest: Buffer } }> = [];
        const listed = await crlListWithTotal(
          (async function* () {
            for await (const item of s.crlEntries("13-sig", { expiredBefore: cutoff, withTotal: true, known })) {
              if (!isEntriesTotal(item)) chunks.push(item);
              yield item;
            }
          })(),
          afterTotal,
        );
        return { ...listed, chunks };
      };
      const first = await collect(holder(() => undefined));
      expect(first.entries).toEqual(reference.entries);
      expect(first.total).toEqual(reference.total);
      for (const c of first.chunks) {
        if (!c.block) continue;
        expect(createHash("sha256").update(c.der).digest().equals(c.block.digest)).toBe(true);
        expect(decodeEntries(c.der).some((e) => certs.slice(0, 5).some((x) => x.serial === e.serial))).toBe(false); // never the partly expired block
        tagged.set(c.block.id, Buffer.from(c.der));
      }
      if (s.kind === "postgres") expect(tagged.size).toBe(3); // the three whole blocks; SQLite reads its own log (may tag nothing)
      // Held: taken, and the same CRL entries; a block held but refused at take (its bytes changed) is read instead.
      asked.length = 0;
      const second = await collect(holder((_id, der) => der));
      expect(second.entries).toEqual(reference.entries);
      expect(second.total).toEqual(reference.total);
      if (s.kind === "postgres") expect(asked.sort()).toEqual([...tagged.keys()].sort());
      const refusedOne = await collect(holder((id, der) => (id === [...tagged.keys()][1] ? undefined : der)));
      expect(refusedOne.entries).toEqual(reference.entries);
      // Revocations committed once the total was given wait for the next CRL, as without known blocks.
      const later = await collect(holder((_id, der) => der), () => revokeRange(24, 30, 9000).then(() => undefined));
      expect(later.entries).toEqual(reference.entries);
      const next = await collect(holder((_id, der) => der));
      expect(next.entries.length).toBe(reference.entries.length + 6);
      await s.close();
    });

    it("refuses a revocation reason that is no CRLReason code, on every revoking path, and revokes nothing", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("a"), resident("b")]);
      await s.commitIssuances([cert("0b01", "a", 1000), cert("0b02", "b", 1000)]);
      // 1.5 was stored as 1.5 by SQLite and encoded as reason 1 in the CRL entry; 7 is unassigned (RFC 5280 §5.3.1)
      for (const reason of [1.5, 7, -1]) {
        await expect(s.revoke({ serial: "0b01", revokedAt: new Date(4000), reason, source: "manual" })).rejects.toSatisfy((e: unknown) => isJpkiError(e));
        await expect(
          s.commitNoticeBatch({ noticeIds: [], residentCodes: ["b"] }, () => ({
            commit: { at: new Date(4000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"], revocations: [{ serial: "0b02", reason, source: "notice:x", residentCode: "b" }] },
          })),
        ).rejects.toSatisfy((e: unknown) => isJpkiError(e));
      }
      expect((await crlList(s, "13-sig", new Date(6000))).length).toBe(0);
      expect((await s.getCertificate("0b01"))?.revocation).toBeUndefined();
      expect((await s.getCertificate("0b02"))?.revocation).toBeUndefined();
      await s.close();
    });

    it("lists a CRL entry per revocation from every path (notice batch, supersession, manual), dropping only the expired ones of a batch", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCa(ca("27-sig"));
      await s.upsertResidents(["a", "b", "c", "d", "e"].map(resident));
      const exp = Date.UTC(2020, 0, 1);
      await s.commitIssuances([cert("0a01", "a", 1000), cert("0a02", "b", 1000, exp), cert("0a03", "c", 1000), { ...cert("0a04", "d", 1000), caId: "27-sig" }, cert("0a05", "e", 1000)]);
      // one batch revokes three 13-sig certificates (one of them long expired) and one of 27-sig; a relink in
      // the same batch moves c to c2 before its certificate is revoked under the code it was read under
      await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["a", "b", "c", "c2", "d"] }, () => ({
        commit: {
          at: new Date(Date.UTC(2025, 0, 1)), notices: [], sequences: [], relinks: [{ from: "c", to: "c2" }], dirtyCas: ["13-sig", "27-sig"],
          revocations: [
            { serial: "0a01", reason: 3, source: "notice:n1", residentCode: "a" },
            { serial: "0a02", reason: 3, source: "notice:n1", residentCode: "b" },
            { serial: "0a03", reason: 5, source: "notice:n1", residentCode: "c" },
            { serial: "0a04", reason: 3, source: "notice:n1" }, // no hint: found by serial
            { serial: "0a01", reason: 1, source: "notice:n1", residentCode: "a" }, // already revoked: left as it is
          ],
        },
      }));
      expect((await s.getCertificate("0a03"))?.residentCode).toBe("c2");
      expect((await s.getCertificate("0a01"))?.revocation).toEqual({ revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 3, source: "notice:n1" });
      await s.commitIssuances([cert("0a06", "e", 2000)]); // supersedes 0a05
      await s.upsertResidents([resident("f")]);
      await s.commitIssuances([cert("0a07", "f", 3000)]);
      await s.revoke({ serial: "0a07", revokedAt: new Date(Date.UTC(2025, 5, 1)), reason: 1, source: "manual" });
      const cutoff = new Date(Date.UTC(2024, 0, 1));
      expect(await crlList(s, "13-sig", cutoff)).toEqual(
        expect.arrayContaining([
          { serial: "0a01", revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 3 },
          { serial: "0a03", revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 5 },
          { serial: "0a05", revokedAt: new Date(2000), reason: 4 },
          { serial: "0a07", revokedAt: new Date(Date.UTC(2025, 5, 1)), reason: 1 },
        ]),
      );
      expect((await crlList(s, "13-sig", cutoff)).length).toBe(4); // 0a02 expired before the cut-off
      expect((await crlList(s, "13-sig", new Date(0))).map((e) => e.serial).sort()).toEqual(["0a01", "0a02", "0a03", "0a05", "0a07"]);
      expect(await crlList(s, "27-sig", cutoff)).toEqual([{ serial: "0a04", revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 3 }]);
      expect((await s.revocationSummary()).map((r) => `${r.serial}:${r.reason}:${r.source}`)).toEqual([
        "0a01:3:notice:n1", "0a02:3:notice:n1", "0a03:5:notice:n1", "0a04:3:notice:n1", "0a05:4:superseded:0a06", "0a07:1:manual",
      ]);
      expect((await s.findCertificates({ status: "valid" })).map((c) => c.serial)).toEqual(["0a06"]);
      await s.close();
    });

    it("lists a CA's CRL entries in revocation order from every path (manual, notice batch, supersession), each as its certificate was revoked; deltas and partitions agree", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCa(ca("27-sig"));
      await s.upsertResidents(["a", "b", "c", "d", "e", "f", "g"].map(resident));
      // serials chosen so that revocation order is neither serial nor issuance order
      await s.commitIssuances([
        cert("0c09", "a", 1000), cert("0c03", "b", 1000, Date.UTC(2020, 0, 1)), cert("0c07", "c", 1000), { ...cert("0c01", "d", 1000), caId: "27-sig" },
        cert("0c05", "e", 1000), cert("0c02", "f", 1000), cert("0c08", "g", 1000),
      ]);
      await s.revoke({ serial: "0c07", revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 1, source: "manual" });
      const t = new Date(Date.UTC(2025, 0, 2)), n = new Date(Date.UTC(2025, 0, 9));
      const base = await s.reserveCrl("13-sig", t, n);
      await s.publishCrl({ caId: "13-sig", number: base.number, entries: 1, path: "crl/13-sig.crl", sha256: "ab" }, () => undefined);
      // one batch across both CAs, in its own order (one expired certificate among them)
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["e", "d", "b", "a"] }, () => ({
        commit: {
          at: new Date(Date.UTC(2025, 0, 3)), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig", "27-sig"],
          revocations: [
            { serial: "0c05", reason: 3, source: "notice:n1", residentCode: "e" },
            { serial: "0c01", reason: 3, source: "notice:n1", residentCode: "d" },
            { serial: "0c03", reason: 5, source: "notice:n1", residentCode: "b" },
            { serial: "0c09", reason: 0, source: "notice:n1", residentCode: "a" },
          ],
        },
      }));
      // two supersessions in one commit, in record order (g's, then f's)
      await s.commitIssuances([cert("0c0b", "g", Date.UTC(2025, 0, 4)), cert("0c04", "f", Date.UTC(2025, 0, 4))]);
      const order = ["0c07", "0c05", "0c03", "0c09", "0c08", "0c02"];
      const all = await crlList(s, "13-sig", new Date(0));
      expect(all.map((e) => e.serial)).toEqual(order);
      // each entry as its certificate's row has it
      for (const e of all) {
        const r = (await s.getCertificate(e.serial))!.revocation!;
        expect({ revokedAt: e.revokedAt, reason: e.reason }).toEqual({ revokedAt: r.revokedAt, reason: r.reason });
      }
      expect(all.map((e) => e.serial).sort()).toEqual((await s.findCertificates({ caId: "13-sig", status: "revoked" })).map((c) => c.serial).sort());
      // the expired one dropped at a later cut-off, the order of the others kept
      const cutoff = new Date(Date.UTC(2024, 0, 1));
      expect((await crlList(s, "13-sig", cutoff)).map((e) => e.serial)).toEqual(["0c07", "0c05", "0c09", "0c08", "0c02"]);
      expect((await crlList(s, "27-sig", cutoff)).map((e) => e.serial)).toEqual(["0c01"]);
      // a delta on the base lists exactly the later revocations, each entry as the full CRL has it
      const byDer = new Map(all.map((e) => [e.serial, JSON.stringify(e)]));
      const delta: string[] = [];
      for await (const chunk of s.deltaCrlEntries("13-sig", base.number, { expiredBefore: cutoff })) {
        for (const e of decodeEntries(chunk.der)) (expect(JSON.stringify(e)).toBe(byDer.get(e.serial)), delta.push(e.serial));
      }
      expect(delta.sort()).toEqual(["0c02", "0c05", "0c08", "0c09"]);
      // the one partition lists what the full CRL lists
      const part = (await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: cutoff })).get("131016")!.flatMap((c) => decodeEntries(c.der));
      expect(part.map((e) => JSON.stringify(e)).sort()).toEqual((await crlList(s, "13-sig", cutoff)).map((e) => JSON.stringify(e)).sort());
      await s.close();
    });

    it("reserves CRL numbers monotonically with the revision they cover; a higher number published first wins", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2")]);
      await s.commitIssuances([cert("07aa", "r1", 1000), cert("07bb", "r2", 1000)]);
      const t = new Date(0), n = new Date(1000);
      const installed: string[] = [];
      expect(await s.reserveCrl("13-sig", t, n)).toEqual({ number: 1n, revision: 0 });
      await s.revoke({ serial: "07aa", revokedAt: new Date(2000), reason: 1, source: "manual" });
      const second = await s.reserveCrl("13-sig", t, n);
      expect(second.number).toBe(2n);
      expect(second.revision).toBeGreaterThan(0);
      // #2 is published first; #1, built concurrently, must not replace it
      expect(await s.publishCrl({ caId: "13-sig", number: 2n, entries: 1, path: "crl/13-sig.crl", sha256: "ab" }, () => installed.push("#2"))).toBe(true);
      expect(await s.publishCrl({ caId: "13-sig", number: 1n, entries: 0, path: "crl/13-sig.crl", sha256: "cd" }, () => installed.push("#1"))).toBe(false);
      expect(installed).toEqual(["#2"]);
      expect(await s.latestCrl("13-sig")).toMatchObject({ number: 2n, entries: 1, path: "crl/13-sig.crl", state: "published" });
      expect(await s.dirtyCas()).toEqual([]);
      // a revocation after the reservation keeps the CA due even though a CRL was published after it
      const third = await s.reserveCrl("13-sig", t, n);
      await s.revoke({ serial: "07bb", revokedAt: new Date(3000), reason: 1, source: "manual" });
      await s.publishCrl({ caId: "13-sig", number: third.number, entries: 1, path: "crl/13-sig.crl", sha256: "ef" }, () => undefined);
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      expect(await s.reserveCrl("13-sig", t, n)).toMatchObject({ number: 4n });
      await s.close();
    });

    it("skipCrlNumbers moves a CA's one sequence (every scope, deltas too) past a gap, burning the numbers below, and never moves it back", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCa(ca("13-auth"));
      const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3));
      const base = await s.reserveCrl("13-sig", t, n);
      expect(await s.publishCrl({ caId: "13-sig", number: base.number, entries: 0, path: "crl/13-sig.crl", sha256: "ab" }, () => undefined)).toBe(true);
      expect(await s.dirtyCas()).toEqual([]);
      expect(await s.skipCrlNumbers("13-sig", 1001n, t)).toEqual({ before: 2n, next: 1001n });
      // nothing published, nothing made due, the latest CRL (a delta's base) unchanged
      expect(await s.latestCrl("13-sig")).toMatchObject({ number: 1n, state: "published" });
      expect(await s.dirtyCas()).toEqual([]);
      expect(await s.reserveCrl("13-sig", t, n, "131016")).toMatchObject({ number: 1001n });
      expect(await s.reserveCrl("13-sig", t, n, "arl")).toMatchObject({ number: 1002n });
      expect(await s.reserveDeltaCrl("13-sig", t, n)).toMatchObject({ number: 1003n, baseNumber: 1n });
      expect(await s.reserveCrl("13-sig", t, n)).toMatchObject({ number: 1004n });
      // a lower target leaves the sequence as it is
      expect(await s.skipCrlNumbers("13-sig", 10n, t)).toEqual({ before: 1005n, next: 1005n });
      expect(await s.reserveCrl("13-sig", t, n)).toMatchObject({ number: 1005n });
      // per CA: the other CA's sequence did not move; one with no CRL yet moves too
      expect(await s.skipCrlNumbers("13-auth", 500n, t)).toEqual({ before: 1n, next: 500n });
      expect(await s.reserveCrl("13-auth", t, n)).toMatchObject({ number: 500n });
      await expect(s.skipCrlNumbers("99-sig", 5n, t)).rejects.toMatchObject({ code: "ERR_CA_UNKNOWN" });
      await s.close();
    });

    it("markCrlsDue makes every scope of one CA due (its full CRL, each partition, its ARL), revoking nothing", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCa(ca("13-auth"));
      await s.upsertResidents([resident("a"), { ...resident("b"), municipalityCode: "131024" }]);
      await s.commitIssuances([cert("0c01", "a", 1000), { ...cert("0c02", "b", 1000), municipalityCode: "131024" }]);
      const t = new Date(0), n = new Date(1000);
      const publish = async (caId: string, scope?: string) => {
        const r = await s.reserveCrl(caId, t, n, scope);
        await s.publishCrl({ caId, number: r.number, entries: 0, path: `p/${caId}/${scope ?? ""}`, sha256: "a", ...(scope ? { scope } : {}) }, () => undefined);
      };
      await publish("13-sig");
      for (const scope of ["131016", "131024", "arl"]) await publish("13-sig", scope);
      await publish("13-auth");
      const scopes = async () => (await s.crlScopeStatus()).map((x) => `${x.caId}/${x.scope}:${x.dirty ? "dirty" : "clean"}`).sort();
      expect(await s.dirtyCas()).toEqual([]);
      expect(await scopes()).toEqual(["13-auth/arl:clean", "13-sig/131016:clean", "13-sig/131024:clean", "13-sig/arl:clean"]);
      await s.markCrlsDue("13-sig");
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      expect(await scopes()).toEqual(["13-auth/arl:clean", "13-sig/131016:dirty", "13-sig/131024:dirty", "13-sig/arl:dirty"]);
      // an ARL never published through a row is made due too (its file may be in place: a restore's)
      await s.markCrlsDue("13-auth");
      expect(await scopes()).toEqual(["13-auth/arl:dirty", "13-sig/131016:dirty", "13-sig/131024:dirty", "13-sig/arl:dirty"]);
      expect(await s.dirtyCas()).toEqual(["13-auth", "13-sig"]);
      // nothing was revoked
      expect((await s.getCertificate("0c01"))?.revocation).toBeUndefined();
      await expect(s.markCrlsDue("99-sig")).rejects.toMatchObject({ code: "ERR_CA_UNKNOWN" });
      // the full CRL too, with delta CRLs on: no published full CRL stays a base for deltas, so the schedule
      // publishes a new full CRL at once (a restore kept the backup's, below the numbers verifiers had seen)
      await publish("13-auth");
      expect((await s.deltaCrlStatus()).find((d) => d.caId === "13-auth")).toMatchObject({ deltaReady: true });
      await s.markCrlsDue("13-auth");
      expect((await s.deltaCrlStatus()).find((d) => d.caId === "13-auth")).toMatchObject({ deltaReady: false });
      expect(await s.reserveDeltaCrl("13-auth", t, n)).toBeUndefined();
      await s.close();
    });

    it("carryRevocations lists a CRL entry of a certificate the store has no row of on every later full CRL of its CA (until its notAfter), marks only the full CRL due, and refuses a held serial or an unknown CA", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.putCa(ca("13-auth"));
      await s.upsertResidents([resident("a")]);
      await s.commitIssuances([cert("0d01", "a", 1000)]);
      const t = new Date(0), n = new Date(1000);
      for (const scope of [undefined, "131016"]) {
        const r = await s.reserveCrl("13-sig", t, n, scope);
        await s.publishCrl({ caId: "13-sig", number: r.number, entries: 0, path: `p/${scope ?? ""}`, sha256: "a", ...(scope ? { scope } : {}) }, () => undefined);
      }
      expect(await s.dirtyCas()).toEqual([]);
      await s.carryRevocations([
        { caId: "13-sig", serial: "0e01", revokedAt: new Date(4000), reason: 1, notAfter: new Date(Date.UTC(2030, 0, 1)) },
        { caId: "13-sig", serial: "0e02", revokedAt: new Date(5000), reason: 0, notAfter: new Date(7000) },
      ]);
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      // no partition: which municipality the certificate was issued in is not known
      expect((await s.crlScopeStatus()).filter((x) => x.dirty).map((x) => x.scope)).toEqual([]);
      expect((await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: new Date(6000) })).get("131016")).toEqual([]);
      expect(await crlList(s, "13-sig", new Date(6000))).toEqual([
        { serial: "0e01", revokedAt: new Date(4000), reason: 1 },
        { serial: "0e02", revokedAt: new Date(5000), reason: 0 },
      ]);
      expect((await crlList(s, "13-sig", new Date(8000))).map((e) => e.serial)).toEqual(["0e01"]);
      expect(await crlList(s, "13-auth", new Date(6000))).toEqual([]);
      // still no certificate, and a later revocation goes after it in the log
      expect(await s.getCertificate("0e01")).toBeUndefined();
      await s.revoke({ serial: "0d01", revokedAt: new Date(6000), reason: 4, source: "manual" });
      expect((await crlList(s, "13-sig", new Date(6000))).map((e) => e.serial)).toEqual(["0e01", "0e02", "0d01"]);
      await expect(s.carryRevocations([{ caId: "13-sig", serial: "0d01", revokedAt: new Date(4000), reason: 1, notAfter: n }])).rejects.toMatchObject({ code: "ERR_INTERNAL" });
      await expect(s.carryRevocations([{ caId: "99-sig", serial: "0e03", revokedAt: new Date(4000), reason: 1, notAfter: n }])).rejects.toMatchObject({ code: "ERR_CA_UNKNOWN" });
      expect((await crlList(s, "13-sig", new Date(6000))).map((e) => e.serial)).toEqual(["0e01", "0e02", "0d01"]);
      await s.close();
    });

    it("carryRevocations with the municipality whose partition listed the entry: that partition's CRL lists it too and is due, and a delta on an earlier base lists every carried entry", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("a")]);
      await s.commitIssuances([cert("0d01", "a", 1000)]);
      const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3)), far = new Date(Date.UTC(2030, 0, 1));
      for (const scope of [undefined, "131016"]) {
        const r = await s.reserveCrl("13-sig", t, n, scope);
        await s.publishCrl({ caId: "13-sig", number: r.number, entries: 0, path: `p/${scope ?? ""}`, sha256: "a", ...(scope ? { scope } : {}) }, () => undefined);
      }
      const base = (await s.latestCrl("13-sig"))!.number;
      // a code that is no municipality's: refused, nothing carried
      await expect(s.carryRevocations([{ caId: "13-sig", serial: "0e09", revokedAt: new Date(4000), reason: 1, notAfter: far, municipality: "13101" }])).rejects.toMatchObject({ code: "ERR_INTERNAL" });
      expect(await crlList(s, "13-sig", new Date(0))).toEqual([]);
      await s.carryRevocations([
        { caId: "13-sig", serial: "0e01", revokedAt: new Date(4000), reason: 1, notAfter: far, municipality: "131016" },
        // a partition the store never had (the certificate was the first issued there, after the backup)
        { caId: "13-sig", serial: "0e02", revokedAt: new Date(5000), reason: 0, notAfter: far, municipality: "132012" },
        { caId: "13-sig", serial: "0e03", revokedAt: new Date(6000), reason: 1, notAfter: far },
      ]);
      expect((await s.crlScopeStatus()).filter((x) => x.dirty).map((x) => x.scope)).toEqual(["131016", "132012"]);
      const parts = await s.crlPartitionEntries("13-sig", ["131016", "132012", "131024"], { expiredBefore: new Date(0) });
      const serials = (p: string) => parts.get(p)!.flatMap((c) => decodeEntries(c.der)).map((e) => [e.serial, e.revokedAt.getTime(), e.reason]);
      expect([serials("131016"), serials("132012"), serials("131024")]).toEqual([[["0e01", 4000, 1]], [["0e02", 5000, 0]], []]);
      expect((await crlList(s, "13-sig", new Date(0))).map((e) => e.serial)).toEqual(["0e01", "0e02", "0e03"]);
      // a delta on the full CRL published before the carry: a verifier holding that base learns of them from it
      const delta = await s.reserveDeltaCrl("13-sig", t, n);
      expect(delta?.baseNumber).toBe(base);
      const listed: string[] = [];
      for await (const chunk of s.deltaCrlEntries("13-sig", base, { expiredBefore: new Date(0) })) listed.push(...decodeEntries(chunk.der).map((e) => e.serial));
      expect(listed.sort()).toEqual(["0e01", "0e02", "0e03"]);
      // expired entries drop off the partition as off the full CRL
      expect((await s.crlPartitionEntries("13-sig", ["131016"], { expiredBefore: new Date(Date.UTC(2031, 0, 1)) })).get("131016")).toEqual([]);
      // OCSP's read: revoked, with the carried date and reason (the certificate itself stays unknown)
      expect(await s.certificateStatus("0e02")).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(5000), reason: 0 } });
      expect(await s.certificateStatus("0e03")).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(6000), reason: 1 } });
      expect(await s.certificateStatus("0e09")).toBeUndefined();
      expect(await s.getCertificate("0e02")).toBeUndefined();
      // the liveness check's read, by serial: the carried ones only
      expect(await s.carriedRevocations(["0e02", "0e09", "0d01", "0e01", "0e02"])).toEqual(new Map([
        ["0e01", { caId: "13-sig", revokedAt: new Date(4000), reason: 1 }],
        ["0e02", { caId: "13-sig", revokedAt: new Date(5000), reason: 0 }],
      ]));
      expect(await s.carriedRevocations([])).toEqual(new Map());
      // carried again (a second restore): the first entry stands, on the CRLs and for OCSP
      await s.carryRevocations([
        { caId: "13-sig", serial: "0e02", revokedAt: new Date(9000), reason: 5, notAfter: far, municipality: "132012" },
        { caId: "13-sig", serial: "0e04", revokedAt: new Date(9000), reason: 1, notAfter: far },
        { caId: "13-sig", serial: "0e04", revokedAt: new Date(9500), reason: 1, notAfter: far },
      ]);
      expect(await s.certificateStatus("0e02")).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(5000), reason: 0 } });
      // each serial once on every CRL
      expect((await crlList(s, "13-sig", new Date(0))).map((e) => [e.serial, e.revokedAt.getTime()])).toEqual([["0e01", 4000], ["0e02", 5000], ["0e03", 6000], ["0e04", 9000]]);
      const again = await s.crlPartitionEntries("13-sig", ["132012"], { expiredBefore: new Date(0) });
      expect(again.get("132012")!.flatMap((c) => decodeEntries(c.der)).map((e) => e.serial)).toEqual(["0e02"]);
      await s.close();
    });

    it("an install that fails records nothing, and a reservation left open keeps the CA due", async () => {
      const s = await make();
      await s.putCa(ca());
      const t = new Date(0), n = new Date(1000);
      const r1 = await s.reserveCrl("13-sig", t, n);
      await s.publishCrl({ caId: "13-sig", number: r1.number, entries: 0, path: "p", sha256: "a" }, () => undefined);
      expect(await s.dirtyCas()).toEqual([]);
      const r2 = await s.reserveCrl("13-sig", t, n);
      await expect(
        s.publishCrl({ caId: "13-sig", number: r2.number, entries: 0, path: "p", sha256: "b" }, () => {
          throw new Error("disk full");
        }),
      ).rejects.toThrow();
      expect(await s.latestCrl("13-sig")).toMatchObject({ number: r1.number });
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      const status = await s.crlStatus();
      expect(status).toEqual([{ caId: "13-sig", latest: expect.objectContaining({ number: 1n }), dirty: true }]);
      await s.close();
    });

    it("keeps municipality partitions: entries per partition, dirty per partition, numbers per CA shared by every scope", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("a"), { ...resident("b"), municipalityCode: "131024" }, { ...resident("c"), municipalityCode: "131024" }, resident("d")]);
      const inMuni = (c: IssuanceRecord, m: string): IssuanceRecord => ({ ...c, municipalityCode: m });
      await s.commitIssuances([cert("0b01", "a", 1000), inMuni(cert("0b02", "b", 1000), "131024"), inMuni(cert("0b03", "c", 1000, Date.UTC(2020, 0, 1)), "131024"), cert("0b04", "d", 1000)]);
      const t = new Date(0), n = new Date(1000);
      const scopes = async () => (await s.crlScopeStatus()).map((x) => `${x.scope || "full"}:${x.dirty ? "dirty" : "clean"}:${x.latest?.number ?? "-"}`);
      // every municipality the CA issued in is a partition, and every CA has an ARL; none is published yet
      expect(await scopes()).toEqual(["131016:clean:-", "131024:clean:-", "arl:clean:-"]);
      // one batch revokes in both partitions; a manual revocation in one
      await s.commitNoticeBatch({ noticeIds: ["n1"], residentCodes: ["a", "b", "c"] }, () => ({
        commit: {
          at: new Date(Date.UTC(2025, 0, 1)), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"],
          revocations: [
            { serial: "0b01", reason: 3, source: "notice:n1", residentCode: "a" },
            { serial: "0b02", reason: 3, source: "notice:n1", residentCode: "b" },
            { serial: "0b03", reason: 3, source: "notice:n1", residentCode: "c" },
          ],
        },
      }));
      await s.revoke({ serial: "0b04", revokedAt: new Date(Date.UTC(2025, 1, 1)), reason: 1, source: "manual" });
      expect(await scopes()).toEqual(["131016:dirty:-", "131024:dirty:-", "arl:clean:-"]);
      const decode = (list: readonly { der: Buffer }[] | undefined) => (list ?? []).flatMap((c) => decodeEntries(c.der)).map((e) => e.serial).sort();
      const cutoff = new Date(Date.UTC(2024, 0, 1));
      const parts = await s.crlPartitionEntries("13-sig", ["131016", "131024", "011002"], { expiredBefore: cutoff });
      expect(decode(parts.get("131016"))).toEqual(["0b01", "0b04"]);
      expect(decode(parts.get("131024"))).toEqual(["0b02"]); // 0b03 expired before the cut-off
      expect(parts.get("011002")).toEqual([]);
      expect(decode((await s.crlPartitionEntries("13-sig", ["131024"], { expiredBefore: new Date(0) })).get("131024"))).toEqual(["0b02", "0b03"]);
      // numbers: one sequence per CA, each scope's own numbers only increase
      const full = await s.reserveCrl("13-sig", t, n);
      const p1 = await s.reserveCrl("13-sig", t, n, "131016");
      const p2 = await s.reserveCrl("13-sig", t, n, "131024");
      const p1b = await s.reserveCrl("13-sig", t, n, "131016");
      expect([full.number, p1.number, p2.number, p1b.number]).toEqual([1n, 2n, 3n, 4n]);
      expect(await s.publishCrl({ caId: "13-sig", number: p1b.number, entries: 2, path: "crl/13-sig/131016.crl", sha256: "a", scope: "131016" }, () => undefined)).toBe(true);
      // the older reservation of the same partition never replaces the newer one
      expect(await s.publishCrl({ caId: "13-sig", number: p1.number, entries: 2, path: "crl/13-sig/131016.crl", sha256: "b", scope: "131016" }, () => undefined)).toBe(false);
      // a partition's higher number does not supersede the full CRL or another partition
      expect(await s.publishCrl({ caId: "13-sig", number: full.number, entries: 3, path: "crl/13-sig.crl", sha256: "c" }, () => undefined)).toBe(true);
      // a scope mismatch is refused
      await expect(s.publishCrl({ caId: "13-sig", number: p2.number, entries: 1, path: "x", sha256: "d", scope: "131016" }, () => undefined)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      expect(await scopes()).toEqual(["131016:clean:4", "131024:dirty:-", "arl:clean:-"]);
      expect(await s.latestCrl("13-sig")).toMatchObject({ number: 1n, scope: "" });
      expect(await s.latestCrl("13-sig", "131016")).toMatchObject({ number: 4n, scope: "131016" });
      expect(await s.dirtyCas()).toEqual([]);
      // a revocation in one partition leaves the other clean
      await s.upsertResidents([resident("e")]);
      await s.commitIssuances([cert("0b05", "e", 1000)]);
      await s.publishCrl({ caId: "13-sig", number: p2.number, entries: 1, path: "crl/13-sig/131024.crl", sha256: "e", scope: "131024" }, () => undefined);
      expect(await scopes()).toEqual(["131016:clean:4", "131024:clean:3", "arl:clean:-"]);
      await s.revoke({ serial: "0b05", revokedAt: new Date(Date.UTC(2025, 2, 1)), reason: 1, source: "manual" });
      expect(await scopes()).toEqual(["131016:dirty:4", "131024:clean:3", "arl:clean:-"]);
      // an ARL reservation left open (a killed publisher) keeps the ARL due
      await s.reserveCrl("13-sig", t, n, "arl");
      expect(await scopes()).toEqual(["131016:dirty:4", "131024:clean:3", "arl:dirty:-"]);
      await s.close();
    });

    it("publishes several CRLs in one transaction: each as publishCrl would, the settling step once after every install, a failed install holding back none of the others", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("a"), { ...resident("b"), municipalityCode: "131024" }, { ...resident("c"), municipalityCode: "131032" }]);
      const inMuni = (c: IssuanceRecord, m: string): IssuanceRecord => ({ ...c, municipalityCode: m });
      await s.commitIssuances([cert("0e01", "a", 1000), inMuni(cert("0e02", "b", 1000), "131024"), inMuni(cert("0e03", "c", 1000), "131032")]);
      for (const serial of ["0e01", "0e02", "0e03"]) await s.revoke({ serial, revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 1, source: "manual" });
      const t = new Date(0), n = new Date(1000);
      const scopes = async () => (await s.crlScopeStatus()).map((x) => `${x.scope || "full"}:${x.dirty ? "dirty" : "clean"}:${x.latest?.number ?? "-"}`);
      expect(await scopes()).toEqual(["131016:dirty:-", "131024:dirty:-", "131032:dirty:-", "arl:clean:-"]);
      const [p1, p2, p3] = [await s.reserveCrl("13-sig", t, n, "131016"), await s.reserveCrl("13-sig", t, n, "131024"), await s.reserveCrl("13-sig", t, n, "131032")];
      const rec = (number: bigint, scope: string) => ({ caId: "13-sig", number, entries: 1, path: `crl/13-sig/${scope}.crl`, sha256: "ab", scope });
      const events: string[] = [];
      const full = new Error("no space left on device");
      const out = await s.publishCrls(
        [
          { rec: rec(p1.number, "131016"), install: () => void events.push("install 131016") },
          { rec: rec(p2.number, "131024"), install: () => (events.push("install 131024"), (() => { throw full; })()) },
          { rec: rec(p3.number, "131032"), install: () => void events.push("install 131032") },
        ],
        () => void events.push("settle"),
      );
      expect(out).toEqual([true, { error: full }, true]);
      expect(events).toEqual(["install 131016", "install 131024", "install 131032", "settle"]);
      // the failed one stays due, its reservation open; the others are published and clean
      expect(await scopes()).toEqual(["131016:clean:1", "131024:dirty:-", "131032:clean:3", "arl:clean:-"]);
      // a settling step that throws records none of them
      const [q2, q3, q3b] = [await s.reserveCrl("13-sig", t, n, "131024"), await s.reserveCrl("13-sig", t, n, "131032"), await s.reserveCrl("13-sig", t, n, "131032")];
      await expect(
        s.publishCrls([{ rec: rec(q2.number, "131024"), install: () => undefined }, { rec: rec(q3b.number, "131032"), install: () => undefined }], () => {
          throw new Error("EIO");
        }),
      ).rejects.toBeTruthy();
      expect(await scopes()).toEqual(["131016:clean:1", "131024:dirty:-", "131032:dirty:3", "arl:clean:-"]);
      expect(await s.publishCrls([{ rec: rec(q2.number, "131024"), install: () => undefined }, { rec: rec(q3b.number, "131032"), install: () => undefined }], () => undefined)).toEqual([true, true]);
      expect(await scopes()).toEqual(["131016:clean:1", "131024:clean:4", "131032:clean:6", "arl:clean:-"]);
      // superseded (a higher number of its scope published): not installed, false in its place
      expect(await s.publishCrls([{ rec: rec(q3.number, "131032"), install: () => void events.push("never") }], () => undefined)).toEqual([false]);
      expect(events).not.toContain("never");
      // a store failure (a reservation of another scope) fails the whole call
      await expect(s.publishCrls([{ rec: rec(q3b.number, "131024"), install: () => undefined }], () => undefined)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      await s.close();
    });

    it("builds delta CRLs: on the latest full CRL, from the CA's one number sequence, listing what its base may miss, marking nothing clean", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents(["a", "b", "c", "d", "e"].map(resident));
      await s.commitIssuances([cert("0d01", "a", 1000), cert("0d02", "b", 1000), cert("0d03", "c", 1000), cert("0d04", "d", 1000, Date.UTC(2020, 0, 1)), cert("0d05", "e", 1000)]);
      const t = new Date(Date.UTC(2025, 0, 1)), n = new Date(Date.UTC(2025, 0, 3));
      const listed = async (base: bigint, expiredBefore = new Date(0)) => {
        const out: string[] = [];
        for await (const chunk of s.deltaCrlEntries("13-sig", base, { expiredBefore })) out.push(...decodeEntries(chunk.der).map((e) => e.serial));
        return out.sort();
      };
      const revoke = (serial: string) => s.revoke({ serial, revokedAt: new Date(Date.UTC(2025, 0, 1)), reason: 1, source: "manual" });
      const publish = (number: bigint, scope: string, entries = 0) => s.publishCrl({ caId: "13-sig", number, entries, path: `crl/${scope}`, sha256: "ab", scope }, () => undefined);
      // no base yet: no delta
      expect(await s.reserveDeltaCrl("13-sig", t, n)).toBeUndefined();
      expect(await s.deltaCrlStatus()).toEqual([{ caId: "13-sig", base: undefined, deltaReady: false, delta: undefined, pending: true }]);
      await revoke("0d01");
      const base1 = await s.reserveCrl("13-sig", t, n);
      await revoke("0d02"); // committed after the base was reserved: the base may miss it, so its deltas list it
      expect(await publish(base1.number, "")).toBe(true);
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      // a delta reserved with a later nextUpdate than its base's gets the base's (RFC 5280 §5.2.4)
      const d1 = await s.reserveDeltaCrl("13-sig", t, new Date(Date.UTC(2025, 0, 5)));
      expect(d1).toMatchObject({ number: 2n, baseNumber: 1n, nextUpdate: n });
      expect(await listed(1n)).toEqual(["0d02"]);
      await revoke("0d03");
      await revoke("0d04"); // expired long ago: only with an early enough cut-off
      expect(await listed(1n)).toEqual(["0d02", "0d03", "0d04"]);
      expect(await listed(1n, new Date(Date.UTC(2024, 0, 1)))).toEqual(["0d02", "0d03"]);
      // a delta marks nothing clean: the CA stays due for its next complete CRL
      expect(await publish(d1!.number, "delta", 1)).toBe(true);
      expect(await s.dirtyCas()).toEqual(["13-sig"]);
      expect(await s.latestCrl("13-sig", "delta")).toMatchObject({ number: 2n, scope: "delta", baseNumber: 1n, nextUpdate: n, state: "published" });
      expect((await s.latestCrl("13-sig"))?.baseNumber).toBeUndefined();
      // revocations came after d1 was reserved (0d03, 0d04): pending
      expect(await s.deltaCrlStatus()).toEqual([
        { caId: "13-sig", base: expect.objectContaining({ number: 1n, scope: "" }), deltaReady: true, delta: expect.objectContaining({ number: 2n, baseNumber: 1n }), pending: true },
      ]);
      const d2 = await s.reserveDeltaCrl("13-sig", t, n);
      const d3 = await s.reserveDeltaCrl("13-sig", t, n);
      expect([d2!.number, d3!.number]).toEqual([3n, 4n]);
      expect(await publish(d3!.number, "delta")).toBe(true);
      expect((await s.deltaCrlStatus())[0]!.pending).toBe(false);
      // an older delta never replaces a newer one
      expect(await publish(d2!.number, "delta")).toBe(false);
      // a new base: deltas on it list only what came after it; the delta scope is no partition
      const base2 = await s.reserveCrl("13-sig", t, n);
      expect(base2.number).toBe(5n);
      expect(await publish(base2.number, "", 4)).toBe(true);
      expect(await s.dirtyCas()).toEqual([]);
      expect(await listed(5n)).toEqual([]);
      await revoke("0d05");
      expect(await listed(5n)).toEqual(["0d05"]);
      expect(await listed(1n)).toEqual(["0d02", "0d03", "0d04", "0d05"]);
      expect(await s.reserveDeltaCrl("13-sig", t, n)).toMatchObject({ number: 6n, baseNumber: 5n });
      expect((await s.crlScopeStatus()).map((x) => x.scope)).toEqual(["131016", "arl"]);
      // no delta on a CRL that is no base, nor on a base past its nextUpdate; a delta is not reserved as a scope
      await expect(listed(2n)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      await expect(listed(99n)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      expect(await s.reserveDeltaCrl("13-sig", n, new Date(n.getTime() + 1000))).toBeUndefined();
      await expect(s.reserveCrl("13-sig", t, n, "delta")).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
      await s.close();
    });

    it("decides a notice batch from the context read in the transaction that commits it", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1")]);
      const seen: number[] = [];
      const decide = nextSequenceDecider(seen);
      await Promise.all([s.commitNoticeBatch({ noticeIds: ["a"], residentCodes: ["r1"] }, decide("a")), s.commitNoticeBatch({ noticeIds: ["b"], residentCodes: ["r1"] }, decide("b"))]);
      expect(seen).toEqual([0, 1]);
      expect((await s.loadNoticeContext({ noticeIds: ["a", "b"], residentCodes: ["r1"] })).lastSequence.get("r1")).toBe(2);
      await s.close();
    });

    it("keeps a notice body given as UTF-8 bytes as the same text: read back applied, held, listed and in a context", async () => {
      const s = await make();
      // CJK, a surrogate pair, an escaped quote and backslash, U+2028: the bytes are the canonical JSON's UTF-8
      const text = (id: string) => JSON.stringify({ noticeId: id, kind: "relocation", before: { name: "𠮷野　太郎\"\\", address: "東京都千代田区\u2028１丁目" } });
      // a view into a larger buffer, as a reader thread's bodies are
      const bytes = (id: string) => {
        const b = Buffer.from(` ${text(id)} `);
        return new Uint8Array(b.buffer, b.byteOffset + 1, Buffer.byteLength(text(id)));
      };
      await s.commitNoticeBatch({ noticeIds: ["u1", "u2"], residentCodes: ["r1"] }, () => ({
        commit: {
          at: new Date(1000),
          notices: [
            { noticeId: "u1", residentCode: "r1", sequence: 1, kind: "relocation", body: bytes("u1"), status: "applied" as const, revocations: 0 },
            { noticeId: "u2", residentCode: "r1", sequence: 3, kind: "relocation", body: bytes("u2"), status: "held" as const, revocations: 0 },
          ],
          sequences: [{ residentCode: "r1", last: 1 }],
          revocations: [],
          relinks: [],
          dirtyCas: [],
        },
      }));
      expect((await s.getNotice("u1"))?.body).toBe(text("u1"));
      expect((await s.getNotice("u2"))?.body).toBe(text("u2"));
      expect((await s.listHeldNotices()).map((h) => h.body)).toEqual([text("u2")]);
      const ctx = await s.loadNoticeContext({ noticeIds: ["u1", "u2"], residentCodes: ["r1"] });
      expect([...ctx.known.values()].map((k) => k.body).sort()).toEqual([text("u1"), text("u2")]);
      expect(ctx.held.get("r1")?.map((h) => h.body)).toEqual([text("u2")]);
      await s.close();
    });

    it("lists held notices in (resident code, sequence) order, a page after a given key at a time", async () => {
      const s = await make();
      const held = (id: string, residentCode: string, sequence: number) => ({ noticeId: id, residentCode, sequence, kind: "death", body: "{}", status: "held" as const, revocations: 0 });
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
        commit: { at: new Date(1000), notices: [held("c", "r2", 3), held("a", "r1", 4), held("b", "r1", 9), held("d", "r3", 2)], sequences: [], revocations: [], relinks: [], dirtyCas: [] },
      }));
      const ids = (l: { noticeId: string }[]) => l.map((n) => n.noticeId);
      expect(ids(await s.listHeldNotices())).toEqual(["a", "b", "c", "d"]);
      expect(ids(await s.listHeldNotices(2))).toEqual(["a", "b"]);
      expect(ids(await s.listHeldNotices(2, { residentCode: "r1", sequence: 9 }))).toEqual(["c", "d"]);
      expect(ids(await s.listHeldNotices(2, { residentCode: "r1", sequence: 4 }))).toEqual(["b", "c"]);
      expect(ids(await s.listHeldNotices(2, { residentCode: "r3", sequence: 2 }))).toEqual([]);
      await s.close();
    });

    it("answers OCSP's questions: a certificate's CA and revocation, every CA's revision (bumped by each revoking commit), the current responder", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2")]);
      await s.commitIssuances([cert("07aa", "r1", 1000), cert("07bb", "r2", 2000)]);
      expect(await s.certificateStatus("07aa")).toEqual({ caId: "13-sig", revocation: undefined });
      expect(await s.certificateStatus("07cc")).toBeUndefined();
      const before = (await s.caRevisions()).get("13-sig") ?? 0;
      await s.revoke({ serial: "07aa", revokedAt: new Date(5000), reason: 1, source: "manual" });
      expect(await s.certificateStatus("07aa")).toEqual({ caId: "13-sig", revocation: { revokedAt: new Date(5000), reason: 1 } });
      expect((await s.caRevisions()).get("13-sig")).toBeGreaterThan(before);
      expect(await s.ocspResponders()).toEqual([]);
      const r = ocspSigner("pem1");
      await s.putOcspResponder(r);
      await s.putOcspResponder({ ...r, serial: "0c02", encryptedKeyPem: "pem2", notAfter: new Date(3000) });
      expect(await s.ocspResponders()).toEqual([{ ...r, serial: "0c02", encryptedKeyPem: "pem2", notAfter: new Date(3000) }]);
      await s.close();
    });

    it("answers many status reads made at once each with its own certificate's status (OCSP's fresh answers)", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2"), resident("r3")]);
      await s.commitIssuances([cert("07a1", "r1", 1000), cert("07a2", "r2", 2000), cert("07a3", "r3", 3000)]);
      await s.revoke({ serial: "07a2", revokedAt: new Date(5000), reason: 1, source: "manual" });
      const far = new Date(Date.UTC(2040, 0, 1));
      // a CRL entry a restore carried over for a certificate the store has no row of: revoked
      await s.carryRevocations([{ caId: "13-sig", serial: "07a9", revokedAt: new Date(8000), reason: 0, notAfter: far }]);
      const expected = new Map<string, CertificateStatusRow | undefined>([
        ["07a1", { caId: "13-sig", revocation: undefined }],
        ["07a2", { caId: "13-sig", revocation: { revokedAt: new Date(5000), reason: 1 } }],
        ["07a3", { caId: "13-sig", revocation: undefined }],
        ["07a9", { caId: "13-sig", revocation: { revokedAt: new Date(8000), reason: 0 } }],
        ["07ff", undefined],
      ]);
      // in one turn, each serial asked several times, in an order unlike the rows'
      const asked = [...expected.keys()].flatMap((k, i) => Array.from({ length: 3 + i }, () => k)).reverse();
      const got = await Promise.all(asked.map((serial) => s.certificateStatus(serial)));
      expect(got).toEqual(asked.map((serial) => expected.get(serial)));
      await s.close();
    });

    it("a rewrap replaces CA keys and OCSP signing keys in one transaction with one audit record; a renewed signer or an unknown CA replaces none", async () => {
      const s = await twoCas(make);
      const r = ocspSigner("pem1");
      await s.putOcspResponder(r);
      await s.putOcspResponder({ ...r, caId: "13-auth", serial: "0d01" });
      const keys = async () => ({ cas: (await s.listCas()).map((c) => c.encryptedKeyPem), ocsp: (await s.ocspResponders()).map((o) => o.encryptedKeyPem) });
      const before = await keys();
      // 13-auth's signer was renewed (another serial) since the rewrap read it: its new key is not the one re-encrypted
      const renewed = { ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "x" }, { caId: "13-auth", serial: "0c01", encryptedKeyPem: "x" }] };
      await expect(s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "x" }], renewed)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_WORKSPACE_LOCKED"));
      expect(await keys()).toEqual(before);
      await expect(s.replaceCaKeys([{ id: "99-sig", encryptedKeyPem: "x" }], { ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "x" }] })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CA_UNKNOWN"));
      expect(await keys()).toEqual(before);
      const head = await s.auditHead();

      await s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }], { ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "o2" }, { caId: "13-auth", serial: "0d01", encryptedKeyPem: "o3" }] });
      expect((await s.getCa("13-sig"))!.encryptedKeyPem).toBe("k2");
      expect(await s.ocspResponders()).toEqual([{ ...r, caId: "13-auth", serial: "0d01", encryptedKeyPem: "o3" }, { ...r, encryptedKeyPem: "o2" }]);
      const rewrap = (await s.auditHead())!;
      expect(rewrap.seq).toBe(head!.seq + 1);
      expect(rewrap).toMatchObject({ action: "ca.rewrap", subject: "13-sig" });
      expect(JSON.parse(rewrap.detail)).toEqual({ cas: ["13-sig"], ocspSigners: [{ ca: "13-sig", serial: "0c01" }, { ca: "13-auth", serial: "0d01" }] });
      await s.close();
    });

    it("a rewrap replaces the verifier CA's key with the CA keys; one made or replaced since the rewrap read it replaces no key", async () => {
      const s = await twoCas(make);
      const keys = async () => ({ cas: (await s.listCas()).map((c) => c.encryptedKeyPem), verifierCa: (await s.getVerifierCa())?.encryptedKeyPem });
      const ca = { certificateDer: Buffer.from([0x30, 1, 2]), encryptedKeyPem: "v1", createdAt: new Date(1000) };
      // made after the rewrap found none (a 'verifier add' at the same time, under the old passphrase)
      await s.initVerifierCa(ca);
      const before = await keys();
      const head = await s.auditHead();
      await expect(s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }], { verifierCa: { before: undefined } })).rejects.toMatchObject({ code: "ERR_WORKSPACE_LOCKED", message: expect.stringContaining("verifier CA") });
      await expect(s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }], { verifierCa: { before: "v0", encryptedKeyPem: "v2" } })).rejects.toMatchObject({ code: "ERR_WORKSPACE_LOCKED" });
      expect(await keys()).toEqual(before);
      expect(await s.auditHead()).toEqual(head);

      await s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }], { verifierCa: { before: "v1", encryptedKeyPem: "v2" } });
      expect((await s.getCa("13-sig"))!.encryptedKeyPem).toBe("k2");
      expect(await s.getVerifierCa()).toEqual({ ...ca, encryptedKeyPem: "v2" });
      expect(JSON.parse((await s.auditHead())!.detail)).toEqual({ cas: ["13-sig"], verifierCa: true });
      await s.close();
    });

    it("a rewrap finding an OCSP signer it did not read (issued meanwhile, its key under the old passphrase) replaces no key", async () => {
      const s = await twoCas(make);
      const r = ocspSigner("pem1");
      await s.putOcspResponder(r);
      // what the rewrap read: 13-sig's signer only; 13-auth's first one is stored before the rewrap commits
      await s.putOcspResponder({ ...r, caId: "13-auth", serial: "0d01" });
      const keys = async () => ({ cas: (await s.listCas()).map((c) => c.encryptedKeyPem), ocsp: await s.ocspResponders() });
      const before = await keys();
      const head = await s.auditHead();
      const err = await s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }], { ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "o2" }] }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ERR_WORKSPACE_LOCKED", message: expect.stringContaining("CA 13-auth got an OCSP signing certificate") });
      expect(await keys()).toEqual(before);
      expect(await s.auditHead()).toEqual(head);
      await s.close();
    });

    it("an OCSP signer stored unless rewrapped: refused (ERR_KEYS_REWRAPPED), nothing stored, once a rewrap re-encrypted a key it was read with", async () => {
      const s = await twoCas(make);
      const r = ocspSigner("o1");
      await s.putOcspResponder(r);
      // what a renewal opened: both CA keys as stored now, and 13-sig's signer
      const seen = { cas: [{ id: "13-sig", encryptedKeyPem: "pem" }, { id: "13-auth", encryptedKeyPem: "pem" }], ocspSigners: [{ caId: "13-sig", serial: "0c01", encryptedKeyPem: "o1" }] };
      const auth = { ...r, caId: "13-auth", serial: "0d01", encryptedKeyPem: "a1" };
      await s.putOcspResponder(auth, { unlessRewrapped: seen });
      expect(await s.ocspResponders()).toEqual([auth, r]);
      // 13-sig's signer renewed by another process (another serial): no rewrap, stored
      const sig2 = { ...r, serial: "0c02", encryptedKeyPem: "o2" };
      await s.putOcspResponder(sig2);
      const auth2 = { ...auth, serial: "0d02", encryptedKeyPem: "a2" };
      await s.putOcspResponder(auth2, { unlessRewrapped: seen });
      expect(await s.ocspResponders()).toEqual([auth2, sig2]);

      await s.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "k2" }, { id: "13-auth", encryptedKeyPem: "k2" }], {
        ocspSigners: [{ caId: "13-sig", serial: "0c02", encryptedKeyPem: "x2" }, { caId: "13-auth", serial: "0d02", encryptedKeyPem: "y2" }],
      });
      const rewrapped = await s.ocspResponders();
      const head = await s.auditHead();
      const late = { ...r, serial: "0c03", encryptedKeyPem: "under the old passphrase" };
      const err = await s.putOcspResponder(late, { unlessRewrapped: seen }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ERR_KEYS_REWRAPPED", details: { changed: "the key of CA 13-sig", caId: "13-sig" } });
      expect((err as Error).message).toContain("restart 'jpki serve' with the new passphrase");
      // no CA key to go by (every CA key in a token): a signer it knew, re-encrypted, tells the same
      const tokenOnly = { cas: [], ocspSigners: [{ caId: "13-auth", serial: "0d02", encryptedKeyPem: "a2" }] };
      await expect(s.putOcspResponder(late, { unlessRewrapped: tokenOnly })).rejects.toMatchObject({ code: "ERR_KEYS_REWRAPPED", details: { changed: "the OCSP signing key of CA 13-auth" } });
      expect(await s.ocspResponders()).toEqual(rewrapped);
      expect(await s.auditHead()).toEqual(head);

      // read after the rewrap: stored
      const now = { cas: [{ id: "13-sig", encryptedKeyPem: "k2" }], ocspSigners: rewrapped.map((o) => ({ caId: o.caId, serial: o.serial, encryptedKeyPem: o.encryptedKeyPem })) };
      await s.putOcspResponder(late, { unlessRewrapped: now });
      expect((await s.ocspResponders()).find((o) => o.caId === "13-sig")).toEqual(late);
      await s.close();
    });

    it("registers verifiers (署名検証者) with hashed credentials, refuses a reused credential, revokes once", async () => {
      const s = await make();
      const v = { id: "v-01", name: "総務省", kind: "government" as const, tokenSha256: "ab".repeat(32), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(1000), revokedAt: undefined };
      await s.putVerifier(v);
      await s.putVerifier({ ...v, id: "v-02", name: "民間　事業者", kind: "private", tokenSha256: undefined, certSha256: "cd".repeat(32), certNotAfter: new Date(9000) });
      // the same id, or a token hash or certificate already registered to someone: ERR_VERIFIER_INVALID
      await expect(s.putVerifier(v)).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_VERIFIER_INVALID"));
      await expect(s.putVerifier({ ...v, id: "v-03" })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_VERIFIER_INVALID"));
      expect(await s.getVerifier("v-01")).toEqual(v);
      expect((await s.listVerifiers()).map((x) => [x.id, x.name, x.kind, x.certNotAfter?.getTime()])).toEqual([["v-01", "総務省", "government", undefined], ["v-02", "民間　事業者", "private", 9000]]);
      expect(await s.revokeVerifier("v-02", new Date(5000))).toMatchObject({ id: "v-02", revokedAt: new Date(5000) });
      expect((await s.getVerifier("v-02"))?.revokedAt).toEqual(new Date(5000));
      await expect(s.revokeVerifier("v-02", new Date(6000))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_VERIFIER_REVOKED"));
      await expect(s.revokeVerifier("v-99", new Date(6000))).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_VERIFIER_UNKNOWN"));
      expect(await s.getVerifier("v-99")).toBeUndefined();
      await s.close();
    });

    it("keeps one verifier CA (the first writer wins) and appends fetch records in order", async () => {
      const s = await make();
      expect(await s.getVerifierCa()).toBeUndefined();
      const first = { certificateDer: Buffer.from([0x30, 1, 2]), encryptedKeyPem: "pem-1", createdAt: new Date(1000) };
      expect(await s.initVerifierCa(first)).toEqual(first);
      expect(await s.initVerifierCa({ ...first, encryptedKeyPem: "pem-2" })).toEqual(first);
      expect(await s.getVerifierCa()).toEqual(first);
      await s.recordVerifierFetches([]);
      const f = (verifierId: string, status: number, at: number) => ({ verifierId, scope: "crl", path: "/crl/13-sig.crl", status, at: new Date(at), count: at, lastAt: new Date(at + 500) });
      await s.recordVerifierFetches([f("v-01", 200, 1), f("v-02", 304, 2)]);
      await s.recordVerifierFetches([f("v-01", 304, 3)]);
      expect(await s.listVerifierFetches()).toEqual([f("v-01", 200, 1), f("v-02", 304, 2), f("v-01", 304, 3)]);
      expect(await s.listVerifierFetches({ verifierId: "v-01" })).toEqual([f("v-01", 200, 1), f("v-01", 304, 3)]);
      expect(await s.listVerifierFetches({ verifierId: "v-01", limit: 1 })).toEqual([f("v-01", 200, 1)]);
      expect(await s.listVerifierFetches({ limit: 2, newest: true })).toEqual([f("v-01", 304, 3), f("v-02", 304, 2)]);
      expect(await s.listVerifierFetches({ verifierId: "v-01", newest: true })).toEqual([f("v-01", 304, 3), f("v-01", 200, 1)]);
      await s.close();
    });

    it("appends disclosure records (POST /v1/validate) and lists them by resident, in order", async () => {
      const s = await make();
      await s.appendDisclosures([]);
      const d = (residentCode: string | undefined, at: number, itemsDisclosed: boolean, legalBasis?: string) => ({
        verifierId: "v-01", serial: `0a${at}`, issuer: residentCode ? "13-sig" : "CN=elsewhere", residentCode, purpose: "signature" as const,
        legalBasis, at: new Date(at), validationTime: new Date(at - 1), answer: itemsDisclosed ? "valid" : "revoked", itemsDisclosed,
      });
      await s.appendDisclosures([d("12345678901", 1, true, "pension"), d("22345678901", 2, false), d(undefined, 3, false)]);
      await s.appendDisclosures([d("12345678901", 4, false)]);
      expect(await s.listDisclosures({ residentCode: "12345678901" })).toEqual([d("12345678901", 1, true, "pension"), d("12345678901", 4, false)]);
      // the newest: older records (a verifier's flood of checks) never hide a later one
      expect(await s.listDisclosures({ residentCode: "12345678901", limit: 1 })).toEqual([d("12345678901", 4, false)]);
      expect(await s.listDisclosures({ residentCode: "22345678901" })).toEqual([d("22345678901", 2, false)]);
      expect(await s.listDisclosures({ residentCode: "99999999999" })).toEqual([]);
      await s.close();
    });

    it("resolves an answered certificate's owner as it appends the record: the certificate held under the serial with that tbsCertificate", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("12345678901"), resident("22345678901")]);
      // Certificates as SEQUENCE { tbsCertificate, algorithm, signature }: a 2-octet outer length, as every real one.
      const tbsOf = (serial: string, fill = 1) => Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00, 0x02, 0x02]), Buffer.from(serial, "hex"), Buffer.alloc(252, fill)]);
      const der = (tbs: Buffer) => Buffer.concat([Buffer.from([0x30, 0x82, (tbs.length + 5) >> 8, (tbs.length + 5) & 0xff]), tbs, Buffer.from([0x30, 0x00, 0x03, 0x01, 0x00])]);
      await s.commitIssuances([{ ...cert("0f01", "12345678901", 1000), der: der(tbsOf("0f01")) }, { ...cert("0f02", "22345678901", 1000), der: der(tbsOf("0f02")) }]);
      const d = (serial: string, at: number, more: object = {}) => ({
        verifierId: "v-01", serial, issuer: "CN=as the certificate names it", residentCode: undefined as string | undefined, purpose: "signature" as const,
        legalBasis: undefined, at: new Date(at), validationTime: new Date(at), answer: "valid", itemsDisclosed: false, ...more,
      });
      const owners = await s.appendDisclosures([
        d("0f01", 1, { tbs: tbsOf("0f01") }), // ours
        d("0f02", 2, { tbs: tbsOf("0f02", 2) }), // another certificate under our serial (not what our CA signed)
        d("0f03", 3, { tbs: tbsOf("0f03") }), // a serial we never issued
        d("0f02", 4, { tbs: tbsOf("0f02").subarray(0, 200) }), // a part of ours only
        d("0f02", 5, { tbs: tbsOf("0f02") }), // ours again, after the others
        d("0f01", 6, { residentCode: "22345678901" }), // nothing to resolve: kept as given
      ]);
      expect(owners).toEqual([{ caId: "13-sig", residentCode: "12345678901" }, undefined, undefined, undefined, { caId: "13-sig", residentCode: "22345678901" }, undefined]);
      const listed = (code: string) => s.listDisclosures({ residentCode: code }).then((l) => l.map((x) => [x.serial, x.at.getTime(), x.issuer]));
      expect(await listed("12345678901")).toEqual([["0f01", 1, "13-sig"]]);
      expect(await listed("22345678901")).toEqual([["0f02", 5, "13-sig"], ["0f01", 6, "CN=as the certificate names it"]]);
      expect(await s.appendDisclosures([])).toEqual([]);
      // stored bytes of another shape (never ours: the CA writes DER) are judged alike by both stores, by the octets
      // after the outer header: an indefinite outer length, a SET for a SEQUENCE
      await s.upsertResidents([resident("32345678901")]);
      await s.commitIssuances([
        { ...cert("0f04", "32345678901", 1000), der: Buffer.concat([Buffer.from([0x30, 0x80]), tbsOf("0f04"), Buffer.from([0, 0])]) },
        { ...cert("0f05", "32345678901", 1000), type: "authentication", der: Buffer.concat([Buffer.from([0x31, 0x82, 0x01, 0x04]), tbsOf("0f05")]) },
      ]);
      expect(await s.appendDisclosures([d("0f04", 7, { tbs: tbsOf("0f04") }), d("0f05", 8, { tbs: tbsOf("0f05") })])).toEqual([
        { caId: "13-sig", residentCode: "32345678901" },
        { caId: "13-sig", residentCode: "32345678901" },
      ]);
      // the most length octets the rule reads (127, after 0xff), and DER over 2 KB (PostgreSQL keeps it out of line,
      // and reads only its head: postgres.ts DISCLOSURES_APPEND_CTES): judged by the same octets
      // (octets that do not compress: 64 SHA-256 digests, so the value cannot shrink back under the threshold)
      const noise = Buffer.concat(Array.from({ length: 64 }, (_, i) => createHash("sha256").update(`noise ${i}`).digest()));
      const bigTbs = (serial: string) => Buffer.concat([Buffer.from([0x30, 0x82, 0x08, 0x04, 0x02, 0x02]), Buffer.from(serial, "hex"), noise]);
      const longHeader = Buffer.concat([Buffer.from([0x30, 0xff]), Buffer.alloc(127, 0)]);
      await s.commitIssuances([
        { ...cert("0f06", "32345678901", 1000), der: Buffer.concat([longHeader, tbsOf("0f06")]) },
        { ...cert("0f07", "32345678901", 1000), der: der(bigTbs("0f07")) },
      ]);
      expect(await s.appendDisclosures([d("0f06", 9, { tbs: tbsOf("0f06") }), d("0f07", 10, { tbs: bigTbs("0f07") }), d("0f07", 11, { tbs: Buffer.concat([bigTbs("0f07").subarray(0, -1), Buffer.from([4])]) })])).toEqual([
        { caId: "13-sig", residentCode: "32345678901" },
        { caId: "13-sig", residentCode: "32345678901" },
        undefined,
      ]);
      await s.close();
    });

    it("keeps a group's records in the order of its answers, whatever order the owners' certificates are stored in", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("12345678901")]);
      const tbsOf = (serial: string) => Buffer.concat([Buffer.from([0x30, 0x82, 0x01, 0x00, 0x02, 0x02]), Buffer.from(serial, "hex"), Buffer.alloc(252, 1)]);
      const der = (tbs: Buffer) => Buffer.concat([Buffer.from([0x30, 0x82, (tbs.length + 5) >> 8, (tbs.length + 5) & 0xff]), tbs, Buffer.from([0x30, 0x00, 0x03, 0x01, 0x00])]);
      const serials = Array.from({ length: 24 }, (_, i) => (0x1001 + i).toString(16).padStart(4, "0"));
      await s.commitIssuances(serials.map((serial) => ({ ...cert(serial, "12345678901", 1000), der: der(tbsOf(serial)) })));
      // Answered newest certificate first, and a serial never issued between them: the records' ids (the order
      // listDisclosures gives, newest first) follow the answers, not the certificates' rows the owners came from.
      const answered = [...serials].reverse();
      answered.splice(12, 0, "0fff");
      const owners = await s.appendDisclosures(
        answered.map((serial, i) => ({
          verifierId: "v-01", serial, issuer: "CN=as the certificate names it", residentCode: undefined, purpose: "signature" as const,
          legalBasis: undefined, at: new Date(i + 1), validationTime: new Date(i + 1), answer: "valid", itemsDisclosed: false, tbs: tbsOf(serial),
        })),
      );
      expect(owners.map((o) => o?.residentCode)).toEqual(answered.map((serial) => (serial === "0fff" ? undefined : "12345678901")));
      const listed = await s.listDisclosures({ residentCode: "12345678901" });
      expect(listed.map((d) => [d.serial, d.at.getTime()])).toEqual(answered.flatMap((serial, i) => (serial === "0fff" ? [] : [[serial, i + 1]])));
      await s.close();
    });

    it("moves a resident's disclosure records with their certificates when a notice batch relinks a changed resident code (住民票コード変更)", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("12345678901"), resident("22345678901")]);
      await s.commitIssuances([cert("0d01", "12345678901", 1000), cert("0d02", "22345678901", 1000)]);
      const d = (residentCode: string, serial: string, at: number) => ({
        verifierId: "v-01", serial, issuer: "13-sig", residentCode, purpose: "signature" as const, legalBasis: undefined,
        at: new Date(at), validationTime: new Date(at), answer: "valid", itemsDisclosed: false,
      });
      await s.appendDisclosures([d("12345678901", "0d01", 1), d("22345678901", "0d02", 2)]);
      await s.recordStatusChecks([], [{ ...d("12345678901", "0d01", 3), answer: "status:good" }]);
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["12345678901", "32345678901"] }, () => ({
        commit: { at: new Date(4000), notices: [], sequences: [], relinks: [{ from: "12345678901", to: "32345678901" }], dirtyCas: [], revocations: [] },
      }));
      expect((await s.getCertificate("0d01"))?.residentCode).toBe("32345678901");
      // The resident asks under the code they hold now and sees who checked the certificate before the change.
      expect(await s.listDisclosures({ residentCode: "32345678901" })).toEqual([d("32345678901", "0d01", 1), { ...d("32345678901", "0d01", 3), answer: "status:good" }]);
      expect(await s.listDisclosures({ residentCode: "12345678901" })).toEqual([]);
      expect(await s.listDisclosures({ residentCode: "22345678901" })).toEqual([d("22345678901", "0d02", 2)]);
      await s.close();
    });

    it("relinks several changed codes in one batch, and a code changed twice within it, as one by one would", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents(["a", "b", "c"].map(resident));
      await s.commitIssuances([cert("0e11", "a", 1000), cert("0e12", "b", 1000), cert("0e13", "c", 1000)]);
      const d = (residentCode: string, serial: string) => ({
        verifierId: "v-01", serial, issuer: "13-sig", residentCode, purpose: "signature" as const, legalBasis: undefined,
        at: new Date(1), validationTime: new Date(1), answer: "valid", itemsDisclosed: false,
      });
      await s.appendDisclosures([d("a", "0e11"), d("b", "0e12"), d("c", "0e13")]);
      const held = (noticeId: string, residentCode: string, sequence: number) => ({ noticeId, residentCode, sequence, kind: "death" as const, body: "{}", status: "held" as const, revocations: 0 });
      await s.commitNoticeBatch({ noticeIds: ["h1", "h2"], residentCodes: ["a", "b", "c"] }, () => ({
        commit: { at: new Date(2000), notices: [held("h1", "a", 5), held("h2", "c", 5)], sequences: [{ residentCode: "a", last: 2 }, { residentCode: "b", last: 3 }, { residentCode: "c", last: 4 }], revocations: [], relinks: [], dirtyCas: [] },
      }));
      // two codes at once (set-wise on PostgreSQL), then c → c2 → c3 in one batch (one by one)
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["a", "a2", "b", "b2"] }, () => ({
        commit: { at: new Date(3000), notices: [], sequences: [], revocations: [], relinks: [{ from: "a", to: "a2" }, { from: "b", to: "b2" }], dirtyCas: [] },
      }));
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["c", "c2", "c3"] }, () => ({
        commit: { at: new Date(4000), notices: [], sequences: [], revocations: [], relinks: [{ from: "c", to: "c2" }, { from: "c2", to: "c3" }], dirtyCas: [] },
      }));
      expect(await Promise.all(["0e11", "0e12", "0e13"].map(async (x) => (await s.getCertificate(x))?.residentCode))).toEqual(["a2", "b2", "c3"]);
      const ctx = await s.loadNoticeContext({ noticeIds: [], residentCodes: ["a", "a2", "b", "b2", "c", "c2", "c3"], registryCodes: [] });
      expect([...ctx.lastSequence].sort()).toEqual([["a2", 2], ["b2", 3], ["c3", 4]]);
      expect([...ctx.held].map(([code, list]) => [code, list.map((n) => n.noticeId)]).sort()).toEqual([["a2", ["h1"]], ["c3", ["h2"]]]);
      for (const [code, serial] of [["a2", "0e11"], ["b2", "0e12"], ["c3", "0e13"]] as const) expect((await s.listDisclosures({ residentCode: code })).map((x) => x.serial)).toEqual([serial]);
      for (const code of ["a", "b", "c", "c2"]) expect(await s.listDisclosures({ residentCode: code })).toEqual([]);
      await s.close();
    });

    it("finds a liveness check's certificates by serial and by certificate id (SHA-256 of the DER) in one read", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([resident("r1"), resident("r2")]);
      await s.commitIssuances([cert("07aa", "r1", 1000), cert("07bb", "r2", 1000), cert("07cc", "r1", 2000)]);
      expect(await s.certificatesForStatus({ serials: [], certificateIds: [] })).toEqual([]);
      const id = (serial: string) => createHash("sha256").update(Buffer.from(serial, "hex")).digest("hex");
      const found = await s.certificatesForStatus({ serials: ["07aa", "ffff"], certificateIds: [id("07bb"), id("0000"), "not-hex"] });
      expect(found.map((c) => c.serial).sort()).toEqual(["07aa", "07bb"]);
      expect(found.find((c) => c.serial === "07aa")?.revocation).toMatchObject({ reason: 4 });
      await s.close();
    });

    it("records liveness checks with their disclosures in one write, and pages a verifier's own history by since and cursor", async () => {
      const s = await make();
      await s.recordStatusChecks([], []);
      const c = (verifierId: string, at: number, status: "good" | "revoked" | "unknown", more: object = {}) => ({
        verifierId, at: new Date(at), caId: "13-sig", serial: `0b${at}`, certificateId: undefined, status, reason: undefined, revokedAt: undefined, replacedBy: undefined, ...more,
      });
      const d = { verifierId: "v-01", serial: "0b1", issuer: "13-sig", residentCode: "12345678901", purpose: "signature" as const, legalBasis: undefined, at: new Date(1), validationTime: new Date(1), answer: "status:revoked+link", itemsDisclosed: false };
      const linked = c("v-01", 1, "revoked", { reason: 3, revokedAt: new Date(0), replacedBy: { caId: "14-sig", serial: "0c01" }, certificateId: "ab".repeat(32) });
      await s.recordStatusChecks([linked, c("v-02", 2, "good")], [d]);
      await s.recordStatusChecks([c("v-01", 3, "unknown", { caId: undefined, serial: undefined }), c("v-01", 4, "good")], []);
      const all = await s.listStatusChecks({ verifierId: "v-01" });
      expect(all.map(({ id: _id, ...r }) => r)).toEqual([linked, c("v-01", 3, "unknown", { caId: undefined, serial: undefined }), c("v-01", 4, "good")]);
      expect(all[0]!.id).toBeLessThan(all[1]!.id);
      const page = await s.listStatusChecks({ verifierId: "v-01", limit: 2 });
      expect(page.map((r) => r.serial)).toEqual(["0b1", undefined]);
      expect((await s.listStatusChecks({ verifierId: "v-01", after: page[1]!.id })).map((r) => r.serial)).toEqual(["0b4"]);
      expect((await s.listStatusChecks({ verifierId: "v-01", since: new Date(3) })).map((r) => r.at.getTime())).toEqual([3, 4]);
      // a clock that went back: since takes every check at or after it, in id order, paged by the cursor as without
      await s.recordStatusChecks([c("v-03", 50, "good"), c("v-03", 10, "good"), c("v-03", 90, "good"), c("v-03", 30, "good"), c("v-03", 70, "good")], []);
      const since40 = await s.listStatusChecks({ verifierId: "v-03", since: new Date(40) });
      expect(since40.map((r) => r.at.getTime())).toEqual([50, 90, 70]);
      const first = await s.listStatusChecks({ verifierId: "v-03", since: new Date(40), limit: 2 });
      expect(first.map((r) => r.at.getTime())).toEqual([50, 90]);
      expect((await s.listStatusChecks({ verifierId: "v-03", since: new Date(40), after: first[1]!.id })).map((r) => r.at.getTime())).toEqual([70]);
      expect(await s.listStatusChecks({ verifierId: "v-03", since: new Date(91) })).toEqual([]);
      expect((await s.listStatusChecks({ verifierId: "v-02" })).map((r) => r.serial)).toEqual(["0b2"]);
      expect(await s.listDisclosures({ residentCode: "12345678901" })).toEqual([d]);
      await s.close();
    });

    it("hands out liveness-check ids only upwards: skipStatusCheckIds moves the next one on (never back), and a dump carries the ids and the next one", async () => {
      const s = await make();
      const check = (at: number) => ({ verifierId: "v-01", at: new Date(at), caId: "13-sig", serial: `0b${at}`, certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined });
      expect(await s.nextStatusCheckId()).toBe(1);
      await s.recordStatusChecks([check(1), check(2)], []);
      const first = await s.listStatusChecks({ verifierId: "v-01" });
      expect(first.map((r) => r.id)).toEqual([1, 2]);
      expect(await s.nextStatusCheckId()).toBe(3);
      expect(await s.skipStatusCheckIds(1_000_000)).toEqual({ before: 3, next: 1_000_000 });
      expect(await s.skipStatusCheckIds(5)).toEqual({ before: 1_000_000, next: 1_000_000 });
      expect(await s.nextStatusCheckId()).toBe(1_000_000);
      await s.recordStatusChecks([check(3), check(4)], []);
      // a verifier paging from its last cursor sees the new checks
      expect((await s.listStatusChecks({ verifierId: "v-01", after: 2 })).map((r) => r.id)).toEqual([1_000_000, 1_000_001]);
      await s.skipStatusCheckIds(2_000_000);
      const batches: DumpBatch[] = [];
      for await (const b of s.dump()) batches.push(b);
      expect(batches[0]).toMatchObject({ kind: "header", nextStatusCheckId: 2_000_000 });
      expect(batches.flatMap((b) => (b.kind === "statusChecks" ? b.records.map((r) => r.id) : []))).toEqual([1, 2, 1_000_000, 1_000_001]);
      await expect(s.skipStatusCheckIds(0)).rejects.toMatchObject({ code: "ERR_USAGE" });
      await expect(s.skipStatusCheckIds(2 ** 53)).rejects.toMatchObject({ code: "ERR_USAGE" });
      await s.close();
    });

    it("counterNoticeIdKey(): 32 random bytes made on first use, the same ever after (asked at once too), and carried by a dump's header", async () => {
      const s = await make();
      let batches: DumpBatch[] = [];
      for await (const b of s.dump()) batches.push(b);
      expect(batches[0]).not.toHaveProperty("counterNoticeIdKey");
      const [k1, k2] = await Promise.all([s.counterNoticeIdKey(), s.counterNoticeIdKey()]);
      expect(k1.length).toBe(32);
      expect(k2.equals(k1)).toBe(true);
      expect((await s.counterNoticeIdKey()).equals(k1)).toBe(true);
      const other = await make();
      expect((await other.counterNoticeIdKey()).equals(k1)).toBe(false);
      await other.close();
      batches = [];
      for await (const b of s.dump()) batches.push(b);
      expect(batches[0]).toMatchObject({ kind: "header", counterNoticeIdKey: k1.toString("hex") });
      // never in the audit log
      for await (const r of s.auditRecords()) expect(r.detail).not.toContain(k1.toString("hex"));
      await s.close();
    });

    it("retirement(): none while the store takes writes; a dump told to retire it records its note, refuses every write, and may retire it again", async () => {
      const s = await make();
      await s.putCa(ca());
      expect(await s.retirement()).toBeUndefined();
      for await (const b of s.dump({ retire: () => "moved for the contract" })) void b;
      expect(await s.retirement()).toBe("moved for the contract");
      await expect(s.upsertResidents([resident("r1")])).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_STORE") && /retired, its writes refused/.test((e as Error).message));
      // a copy stopped after the retirement and run again retires it again: still read-only, the note the latest
      for await (const b of s.dump({ retire: () => "moved again" })) void b;
      expect(await s.retirement()).toBe("moved again");
      expect((await s.listCas()).map((c) => c.id)).toEqual(["13-sig"]);
      await s.close();
    });

    it("registers issuance information (発行情報) with the registry side at issuance and removes it on every revocation path", async () => {
      const s = await make();
      await s.putCa(ca());
      await s.upsertResidents([...["a", "b", "c"].map(resident), { ...resident("d"), fourItems: { ...items, name: "𠮷田　花子" } }]);
      const auth = { ...cert("0b02", "a", 1000), type: "authentication" as const };
      await s.commitIssuances([cert("0b01", "a", 1000), auth, cert("0b03", "b", 1000), cert("0b04", "c", 1000), { ...cert("0b05", "d", 1000), fourItems: { ...items, name: "𠮷田　花子" } }]);
      expect(await s.registeredIssuances("a")).toEqual([
        { serial: "0b01", caId: "13-sig", type: "signature", residentCode: "a", fourItems: items, notBefore: new Date(1000), notAfter: new Date(Date.UTC(2030, 0, 1)) },
        { serial: "0b02", caId: "13-sig", type: "authentication", residentCode: "a", fourItems: items, notBefore: new Date(1000), notAfter: new Date(Date.UTC(2030, 0, 1)) },
      ]);
      // a stale certificate is not committed, so nothing is registered for it
      await s.upsertResidents([{ ...resident("b"), fourItems: { ...items, address: "東京都千代田区千代田２番２号" } }]);
      expect(await s.commitIssuances([cert("0b06", "b", 1500)])).toEqual([{ status: "stale", why: "registry-changed" }]);
      expect((await s.registeredIssuances("b")).map((r) => r.serial)).toEqual(["0b03"]);
      // supersession, a notice batch and a manual revocation each remove the revoked certificate's registration
      await s.commitIssuances([cert("0b07", "a", 2000)]);
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["b"] }, () => ({
        commit: { at: new Date(3000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"], revocations: [{ serial: "0b03", reason: 3, source: "notice:n1", residentCode: "b" }] },
      }));
      await s.revoke({ serial: "0b04", revokedAt: new Date(4000), reason: 1, source: "manual" });
      expect((await s.registeredIssuances("a")).map((r) => r.serial)).toEqual(["0b02", "0b07"]);
      expect(await s.registeredIssuances("b")).toEqual([]);
      expect(await s.registeredIssuances("c")).toEqual([]);
      expect((await s.registeredIssuances("d"))[0]?.fourItems.name).toBe("𠮷田　花子");
      // a resident-code change applied by the registry re-links it, read in the transaction that decides
      let seen: string[] = [];
      await s.applyToRegistry((_read, registered) => {
        seen = registered("d").map((r) => r.serial);
        return { put: [], remove: [], relink: [{ from: "d", to: "d2" }], result: undefined };
      });
      expect(seen).toEqual(["0b05"]);
      expect(await s.registeredIssuances("d")).toEqual([]);
      expect((await s.registeredIssuances("d2")).map((r) => r.serial)).toEqual(["0b05"]);
      // the CA side, its notice of that change not applied yet, revokes it under the old code: gone under the new one too
      await s.commitNoticeBatch({ noticeIds: [], residentCodes: ["d"] }, () => ({
        commit: { at: new Date(5000), notices: [], sequences: [], relinks: [], dirtyCas: ["13-sig"], revocations: [{ serial: "0b05", reason: 3, source: "notice:n2", residentCode: "d" }] },
      }));
      expect(await s.registeredIssuances("d2")).toEqual([]);
      // the sweep removes only what expired before its cut-off
      await s.upsertResidents([resident("e")]);
      await s.commitIssuances([cert("0b08", "e", 1000, Date.UTC(2021, 0, 1))]);
      expect(await s.sweepRegisteredIssuances(new Date(Date.UTC(2021, 0, 1)))).toBe(0); // notAfter itself still counts
      expect(await s.sweepRegisteredIssuances(new Date(Date.UTC(2022, 0, 1)))).toBe(1);
      expect(await s.registeredIssuances("e")).toEqual([]);
      expect((await s.registeredIssuances("a")).length).toBe(2);
      await s.close();
    });

    it("sweeps issuance information in batches: revoked and expired rows go, the live ones and what registeredIssuances answers for them stay", async () => {
      const s = await make();
      const f = await seedSweepFixture(s);
      const registered = async () => (await Promise.all(f.residents.map((r) => s.registeredIssuances(r)))).flat();
      const before = await registered();
      // revoked certificates are not registered, on either backend, before any sweep
      expect(before.map((r) => r.serial)).toEqual(["0e01", "0e02", "0e03", "0e04", "0e08"]);
      // batches of 2 keys: the batch boundaries fall between and on the rows of every kind
      expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 2 })).toBe(f.expired);
      const after = await registered();
      expect(after.map((r) => r.serial)).toEqual(f.live);
      // what was valid at the cut-off is answered exactly as before
      expect(after).toEqual(before.filter((r) => isRegistered(r, f.cutoff)));
      // each batch that deleted expired rows is in the audit log with its count (no serials, no items)
      const sweeps = async () => {
        const out = [];
        for await (const r of s.auditRecords({ action: "registry.sweep" })) out.push(JSON.parse(r.detail) as { expiredBefore: string; removed: number });
        return out;
      };
      const logged = await sweeps();
      expect(logged.reduce((t, d) => t + d.removed, 0)).toBe(f.expired);
      for (const d of logged) expect(Object.keys(d).sort()).toEqual(["expiredBefore", "removed"]);
      expect(logged.every((d) => d.expiredBefore === f.cutoff.toISOString())).toBe(true);
      expect(await s.sweepRegisteredIssuances(f.cutoff)).toBe(0);
      expect(await sweeps()).toHaveLength(logged.length); // a sweep that deleted nothing logs nothing
      await expect(s.sweepRegisteredIssuances(f.cutoff, { batchSize: 0 })).rejects.toThrow(RangeError);
      await s.close();
    });

    it("a sweep stops between batches once its signal aborts (the next sweep takes the rest), and two sweeps at once count each row once", async () => {
      const s = await make();
      const f = await seedSweepFixture(s);
      const stop = new AbortController();
      stop.abort();
      // one batch of the first key only, "0e01", which is live
      expect(await s.sweepRegisteredIssuances(f.cutoff, { batchSize: 1, signal: stop.signal })).toBe(0);
      expect((await s.registeredIssuances("s2")).length).toBe(2);
      // two sweeps interleaving batch by batch (two connections on PostgreSQL), as two processes' schedules would
      const both = await Promise.all([s.sweepRegisteredIssuances(f.cutoff, { batchSize: 1 }), s.sweepRegisteredIssuances(f.cutoff, { batchSize: 1 })]);
      expect(both[0] + both[1]).toBe(f.expired);
      expect((await Promise.all(f.residents.map((r) => s.registeredIssuances(r)))).flat().map((r) => r.serial)).toEqual(f.live);
      await s.close();
    });

    it("records a checkpoint of the audit head once when two processes checkpoint the same head", async () => {
      const s = await make();
      await s.putCa(ca());
      const head = (await s.auditHead())!;
      const cp = { seq: head.seq, hash: head.hash, at: new Date(1000), caId: "13-sig", certificateDer: Buffer.from([1]), signature: Buffer.from([2]) };
      await s.putAuditCheckpoint(cp);
      await s.putAuditCheckpoint({ ...cp, at: new Date(2000), signature: Buffer.from([3]) });
      expect((await s.auditCheckpoints()).map((c) => [c.seq, c.at.getTime()])).toEqual([[head.seq, 1000]]);
      const records: string[] = [];
      for await (const r of s.auditRecords({ action: "audit.checkpoint" })) records.push(r.subject);
      expect(records.length).toBe(1);
      await s.close();
    });

    it("registry apply: a death still filed under the old code after a resident-code change kills the record under the new code, in one file and in two runs, for good", async () => {
      const [a, b] = [makeResidentCode("2000000011"), makeResidentCode("2000000012")];
      for (const split of [false, true]) {
        const s = await make();
        await s.upsertResidents([resident(a)]);
        const change = notice("C-1", a, "resident-code-change", 1, { newResidentCode: b });
        const death = notice("C-2", a, "death", 2); // filed under the code the registry had when it recorded it
        if (split) expect(await applyNoticesToRegistry(s, lines([change]), APPLY_NOW)).toMatchObject({ applied: 1, errors: [] });
        expect(await applyNoticesToRegistry(s, lines(split ? [death] : [change, death]), APPLY_NOW)).toMatchObject({ applied: split ? 1 : 2, skipped: 0, errors: [] });
        // the closed record names its successor, and every read of the records says so
        expect(await s.getResident(a)).toEqual({ ...resident(a), status: "removed", successorCode: b });
        expect(await s.getResidentForIssuance(a)).toEqual({ record: { ...resident(a), status: "removed", successorCode: b }, registrySequence: 1, caSequence: 0 });
        expect(await s.getResidentForIssuance(b)).toEqual({ record: { ...resident(b), status: "deceased" }, registrySequence: 2, caSequence: 0 });
        // never active again: later notices under either code are skipped
        const later = [notice("C-3", a, "relocation", 3, { after: moved }), notice("C-4", b, "correction", 4, { after: moved })];
        expect(await applyNoticesToRegistry(s, lines(later), APPLY_NOW)).toMatchObject({ applied: 0, skipped: 2, errors: [] });
        expect(await s.getResident(b)).toEqual({ ...resident(b), status: "deceased" });
        await s.close();
      }
    });

    it("registry apply: a later notice under the old code is decided against the new code's record (sequence, jump bound); one at or below the change is skipped", async () => {
      const [a, b] = [makeResidentCode("2000000021"), makeResidentCode("2000000022")];
      const s = await make();
      await s.upsertResidents([resident(a)]);
      await applyNoticesToRegistry(s, lines([notice("D-1", a, "resident-code-change", 1, { newResidentCode: b })]), APPLY_NOW);
      const feed = [
        notice("D-0", a, "name-change", 1, { after: { ...items, name: "山田　次郎" } }), // stale: at the change's sequence
        notice("D-2", a, "relocation", 2, { after: moved }),
        notice("D-J", a, "name-change", 2 + MAX_SEQUENCE_JUMP + 1, { after: { ...moved, name: "山田　偽" } }), // measured from the new code's 2
      ];
      const r = await applyNoticesToRegistry(s, lines(feed), APPLY_NOW);
      expect(r).toMatchObject({ read: 3, applied: 1, skipped: 1 });
      expect(r.errors.map((e) => [e.line, e.code])).toEqual([[3, "ERR_NOTICE_SEQUENCE_JUMP"]]);
      expect(await s.getResidentForIssuance(b)).toEqual({ record: { ...resident(b), fourItems: moved }, registrySequence: 2, caSequence: 0 });
      expect(await s.getResidentForIssuance(a)).toMatchObject({ record: { status: "removed", successorCode: b, fourItems: items }, registrySequence: 1 });
      await s.close();
    });

    it("registry apply: a second resident-code change filed under the first old code moves the person on (A → B, then B → C sent as A → C); the same change again is refused", async () => {
      const [a, b, c] = [makeResidentCode("2000000031"), makeResidentCode("2000000032"), makeResidentCode("2000000033")];
      const s = await make();
      await s.upsertResidents([resident(a)]);
      await s.grantConsent({ residentCode: a, verifierId: "v-01", at: new Date(1) });
      await applyNoticesToRegistry(s, lines([notice("E-1", a, "resident-code-change", 1, { newResidentCode: b })]), APPLY_NOW);
      const r = await applyNoticesToRegistry(
        s,
        lines([
          notice("E-2", a, "resident-code-change", 2, { newResidentCode: b }), // A → B again: B is the person's already
          notice("E-3", a, "resident-code-change", 2, { newResidentCode: c }),
          notice("E-4", a, "death", 3), // followed A → B → C
        ]),
        APPLY_NOW,
      );
      expect(r).toMatchObject({ applied: 2, skipped: 0 });
      expect(r.errors.map((e) => [e.line, e.code])).toEqual([[1, "ERR_RESIDENT_CODE_IN_USE"]]);
      expect(await s.getResident(a)).toMatchObject({ status: "removed", successorCode: b });
      expect(await s.getResidentForIssuance(b)).toMatchObject({ record: { status: "removed", successorCode: c }, registrySequence: 2 });
      expect(await s.getResidentForIssuance(c)).toEqual({ record: { ...resident(c), status: "deceased" }, registrySequence: 3, caSequence: 0 });
      // the registry's consents followed the person both times
      expect(await s.liveConsents("v-01", [a, b, c])).toEqual(new Set([c]));
      // a notice under A between the two changes is at or below B's closing one: skipped, C stays as it is
      expect(await applyNoticesToRegistry(s, lines([notice("E-5", a, "relocation", 2, { after: moved })]), APPLY_NOW)).toMatchObject({ applied: 0, skipped: 1 });
      await s.close();
    });

    it("keeps the registry's outbox: notices enqueued with the record change, listed in order, removed when acknowledged", async () => {
      const s = await make();
      await s.upsertResidents(["a", "b"].map(resident));
      const n = (residentCode: string, sequence: number, at: number) => ({ noticeId: `ctr:${residentCode}:${sequence}`, residentCode, sequence, body: `{"noticeId":"ctr:${residentCode}:${sequence}","x":"異動"}`, createdAt: new Date(at) });
      await s.applyToRegistry((read) => ({ put: [{ ...read("b")!, noticeSequence: 1 }], remove: [], enqueue: [n("b", 1, 10)], result: undefined }));
      await s.applyToRegistry((read) => ({
        put: [{ ...read("a")!, noticeSequence: 2 }, { ...read("b")!, noticeSequence: 2 }],
        remove: [],
        enqueue: [n("a", 1, 20), n("a", 2, 20), n("b", 2, 20)],
        result: undefined,
      }));
      // oldest first, a resident's in sequence order; the body byte for byte
      expect(await s.pendingOutbox(100)).toEqual([n("b", 1, 10), n("a", 1, 20), n("a", 2, 20), n("b", 2, 20)]);
      expect((await s.pendingOutbox(2)).map((x) => x.noticeId)).toEqual(["ctr:b:1", "ctr:a:1"]);
      expect(await s.residentNoticeSequence("b")).toBe(2);
      // a decision that fails writes neither the record nor its notice: they commit together or not at all
      await expect(
        s.applyToRegistry((read) => ({ put: [{ ...read("a")!, status: "deceased" as const, noticeSequence: 3 }], remove: [], enqueue: [n("a", 3, 30), n("b", 1, 30)], result: undefined })),
      ).rejects.toSatisfy((e: unknown) => isJpkiError(e));
      expect((await s.getResident("a"))?.status).toBe("active");
      expect(await s.pendingOutbox(100)).toHaveLength(4);
      // acknowledging removes exactly those; one acknowledged already (another deliverer) is no error
      expect(await s.ackOutbox(["ctr:b:1", "ctr:a:1"])).toBe(2);
      expect(await s.ackOutbox(["ctr:a:1", "ctr:zz:9"])).toBe(0);
      expect(await s.ackOutbox([])).toBe(0);
      expect((await s.pendingOutbox(100)).map((x) => x.noticeId)).toEqual(["ctr:a:2", "ctr:b:2"]);
      // a notice enqueued later comes after what is still pending
      await s.applyToRegistry((read) => ({ put: [{ ...read("b")!, noticeSequence: 3 }], remove: [], enqueue: [n("b", 3, 5)], result: undefined }));
      expect((await s.pendingOutbox(100)).map((x) => x.noticeId)).toEqual(["ctr:a:2", "ctr:b:2", "ctr:b:3"]);
      await s.close();
    });

    it("keeps the registry's consents: one live per resident and verifier, withdrawn ones as history", async () => {
      const s = await make();
      const g = await s.grantConsent({ residentCode: "12345678906", verifierId: "v-01", at: new Date(1) });
      expect(g).toEqual({ residentCode: "12345678906", verifierId: "v-01", grantedAt: new Date(1), withdrawnAt: undefined });
      // granting again while live keeps the first grant
      expect(await s.grantConsent({ residentCode: "12345678906", verifierId: "v-01", at: new Date(2) })).toEqual(g);
      await s.grantConsent({ residentCode: "22345678902", verifierId: "v-01", at: new Date(3) });
      expect(await s.liveConsents("v-01", ["12345678906", "22345678902", "99999999999"])).toEqual(new Set(["12345678906", "22345678902"]));
      expect(await s.liveConsents("v-02", ["12345678906"])).toEqual(new Set());
      expect(await s.withdrawConsent({ residentCode: "12345678906", verifierId: "v-01", at: new Date(4) })).toEqual({ ...g, withdrawnAt: new Date(4) });
      await expect(s.withdrawConsent({ residentCode: "12345678906", verifierId: "v-01", at: new Date(5) })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CONSENT_UNKNOWN"));
      expect(await s.liveConsents("v-01", ["12345678906", "22345678902"])).toEqual(new Set(["22345678902"]));
      await s.grantConsent({ residentCode: "12345678906", verifierId: "v-01", at: new Date(6) });
      expect((await s.listConsents({ residentCode: "12345678906" })).map((x) => [x.grantedAt.getTime(), x.withdrawnAt?.getTime()])).toEqual([[1, 4], [6, undefined]]);
      expect((await s.listConsents({ verifierId: "v-01" })).length).toBe(3);
      expect(await s.listConsents({ verifierId: "v-02" })).toEqual([]);
      // a resident-code change (住民票コード変更) applied by the registry moves the consents with the resident
      await s.applyToRegistry(() => ({ put: [], remove: [], relink: [{ from: "12345678906", to: "32345678903" }], result: undefined }));
      expect(await s.liveConsents("v-01", ["12345678906", "32345678903"])).toEqual(new Set(["32345678903"]));
      expect(await s.listConsents({ residentCode: "12345678906" })).toEqual([]);
      await s.close();
    });
  });
}
