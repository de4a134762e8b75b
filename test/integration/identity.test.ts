/**
 * Issue 7, points 3 and 4: no identity is ever merged or overwritten, and no certificate certifies what a
 * notice already changed — through the CLI (in-process) and, for the signing window, the library.
 */
import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { IssuanceService } from "../../src/ca/issuance.js";
import { NoticeIngestor } from "../../src/ca/notices.js";
import { applyNoticesToRegistry } from "../../src/registry/apply.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { readRecords } from "../../src/registry/import.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import type { Store } from "../../src/store/types.js";
import { cardKeys, cli, copyTemplate, openWorkspace, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

type Row = Record<string, string>;
let dir: string;
let ws: string;
let residents: Row[];
const w = () => ["--workspace", ws];
const pub = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "pem" }) as string;
const NEW_ADDRESS = "東京都千代田区永田町１丁目７番１号";

function itemsOf(r: Row) {
  return { name: r.name ?? `${r.familyName}　${r.givenName}`, address: r.address!, birthDate: r.birthDate!, gender: r.gender! };
}
function notice(id: string, r: Row, kind: string, seq: number, extra: Record<string, unknown> = {}) {
  return { noticeId: id, residentCode: r.residentCode, kind, effectiveDate: "2026-05-01", sequence: seq, municipalityCode: r.municipalityCode, ...extra };
}
const relocation = (id: string, r: Row, seq: number) => notice(id, r, "relocation", seq, { after: { ...itemsOf(r), address: NEW_ADDRESS } });

async function withStore<T>(f: (s: Store) => Promise<T>): Promise<T> {
  const wsp = await openWorkspace(ws);
  try {
    return await f(wsp.store);
  } finally {
    await wsp.close();
  }
}

/**
 * The setup every test starts from, made once per file (a CA init's RSA keys, the import and the issuances were
 * most of each test's time): a directory holding the workspace (ws) and card.pub.pem beside it. Each test gets
 * its own copy (copyWorkspace: the directory, and on PostgreSQL its database), as the tests change it.
 */
let template: string;

beforeAll(async () => {
  template = tempDir("jpki-identity-template-");
  const tw = ["--workspace", join(template, "ws")];
  await tokyoWorkspace(join(template, "ws"));
  residents = [...generateResidents({ count: 4, seed: "identity", prefectures: ["13"] })] as unknown as Row[];
  writeJsonl(join(template, "residents.jsonl"), residents);
  expect((await cli([...tw, "registry", "import", join(template, "residents.jsonl")], { cwd: template })).code).toBe(0);
  writeFileSync(join(template, "card.pub.pem"), pub);
  const batchKey = cardKeys(pub);
  writeJsonl(join(template, "apps.jsonl"), residents.map((r) => ({ residentCode: r.residentCode, type: "signature", publicKey: batchKey() })));
  const issued = await cli([...tw, "issue", "--batch", join(template, "apps.jsonl")], { cwd: template });
  expect(issued.code, issued.stderr).toBe(0);
});

beforeEach(async () => {
  dir = tempDir("jpki-identity-");
  ws = await copyTemplate(template, dir);
});

describe("no identity is ever merged or overwritten", () => {
  it("a resident-code change to a code already in use is rejected on the CA side and in registry apply; both records stay their own", async () => {
    const [a, b] = residents as [Row, Row];
    const before = await withStore(async (s) => ({ a: await s.getResident(a.residentCode!), b: await s.getResident(b.residentCode!), certsB: await s.findCertificates({ residentCode: b.residentCode! }) }));
    const file = writeJsonl(join(dir, "merge.jsonl"), [notice("M-1", a, "resident-code-change", 1, { newResidentCode: b.residentCode })]);
    const ca = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(ca.code).toBe(7);
    const rejects = readFileSync(ca.json().rejectFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rejects).toEqual([expect.objectContaining({ line: 1, code: "ERR_RESIDENT_CODE_IN_USE" })]);
    const reg = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
    expect(reg.code).toBe(7);
    expect(reg.json().errors).toEqual([expect.objectContaining({ line: 1, code: "ERR_RESIDENT_CODE_IN_USE" })]);
    await withStore(async (s) => {
      expect(await s.getResident(a.residentCode!)).toEqual(before.a);
      expect(await s.getResident(b.residentCode!)).toEqual(before.b);
      expect((await s.findCertificates({ residentCode: b.residentCode! })).map((c) => c.serial)).toEqual(before.certsB.map((c) => c.serial));
      expect(await s.getNotice("M-1")).toBeUndefined();
    });
  });

  it("a change to a code nobody holds still works, on both sides, in either order", async () => {
    const [a] = residents as [Row];
    const fresh = makeResidentCode("0000009991");
    const file = writeJsonl(join(dir, "move.jsonl"), [notice("C-1", a, "resident-code-change", 1, { newResidentCode: fresh })]);
    expect((await cli([...w(), "registry", "apply", file], { cwd: dir })).code).toBe(0); // the registry first this time
    const ca = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(ca.code, ca.stderr).toBe(0);
    expect(ca.json()).toMatchObject({ applied: 1, rejected: 0 });
    await withStore(async (s) => expect((await s.findCertificates({ residentCode: fresh })).length).toBe(1));
  });

  it("a resident-code change moves the resident's consents (新旧証明書の紐付け) to the new code with the record", async () => {
    const [a] = residents as [Row];
    const fresh = makeResidentCode("0000009992");
    const v = await cli([...w(), "--json", "verifier", "add", "--name", "Example Bank K.K.", "--kind", "private"], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    const id = v.json().id as string;
    expect((await cli([...w(), "registry", "consent", "grant", "--resident", a.residentCode!, "--verifier", id], { cwd: dir })).code).toBe(0);
    const file = writeJsonl(join(dir, "code.jsonl"), [notice("K-1", a, "resident-code-change", 1, { newResidentCode: fresh })]);
    expect((await cli([...w(), "registry", "apply", file], { cwd: dir })).code).toBe(0);
    const list = async (code: string) => (await cli([...w(), "--json", "registry", "consent", "list", "--resident", code], { cwd: dir })).json().consents;
    expect(await list(a.residentCode!)).toEqual([]);
    expect(await list(fresh)).toEqual([expect.objectContaining({ resident: fresh, verifier: id, withdrawnAt: null })]);
    // The old code is a closed record now: a consent granted under it would be recorded and never be used (the
    // certificates follow the new code), so the registry refuses it rather than let the operator think it holds.
    const v2 = (await cli([...w(), "--json", "verifier", "add", "--name", "Example Card K.K.", "--kind", "private"], { cwd: dir })).json().id as string;
    const stale = await cli([...w(), "registry", "consent", "grant", "--resident", a.residentCode!, "--verifier", v2], { cwd: dir });
    expect(stale.code).toBe(7);
    expect(stale.stderr).toContain("ERR_RESIDENT_NOT_ELIGIBLE");
    expect(await list(a.residentCode!)).toEqual([]);
  });

  it("notices under a new code that arrive before the resident-code change are held, then applied when it arrives", async () => {
    const [a] = residents as [Row];
    const fresh = makeResidentCode("0000009992");
    const later = writeJsonl(join(dir, "later.jsonl"), [{ ...notice("L-2", a, "death", 2), residentCode: fresh }]);
    const first = await cli([...w(), "notices", "ingest", later, "--json"], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ held: 1, rejected: 0 });
    const change = writeJsonl(join(dir, "change.jsonl"), [notice("L-1", a, "resident-code-change", 1, { newResidentCode: fresh })]);
    const second = await cli([...w(), "notices", "ingest", change, "--json"], { cwd: dir });
    expect(second.code, second.stderr).toBe(0);
    expect(second.json()).toMatchObject({ applied: 2, released: 1, held: 0 });
    await withStore(async (s) => {
      expect((await s.findCertificates({ residentCode: fresh, status: "valid" })).length).toBe(0); // the death revoked the relinked one
      expect((await s.findCertificates({ residentCode: fresh })).length).toBe(1);
    });
    // a first notice for a code nobody knows is still a wrong code
    const typo = writeJsonl(join(dir, "typo.jsonl"), [{ ...notice("L-3", a, "death", 1), residentCode: makeResidentCode("0000009993") }]);
    const t = await cli([...w(), "notices", "ingest", typo, "--json"], { cwd: dir });
    expect(t.code).toBe(7);
  });

  it("a held resident-code change applied when its gap fills also applies what was held under the new code (found by the fault-injection harness)", async () => {
    const [a] = residents as [Row];
    const fresh = makeResidentCode("0000009994");
    const early = writeJsonl(join(dir, "early.jsonl"), [
      notice("G-2", a, "resident-code-change", 2, { newResidentCode: fresh }), // waits for sequence 1
      { ...notice("G-3", a, "death", 3), residentCode: fresh }, // waits for the change
    ]);
    expect((await cli([...w(), "notices", "ingest", early, "--json"], { cwd: dir })).json()).toMatchObject({ held: 2, applied: 0 });
    const gap = writeJsonl(join(dir, "gap.jsonl"), [relocation("G-1", a, 1)]);
    const r = await cli([...w(), "notices", "ingest", gap, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ applied: 3, released: 2, held: 0 });
    const pending = await cli([...w(), "notices", "pending", "--json"], { cwd: dir });
    expect(pending.json().held).toEqual([]);
    await withStore(async (s) => expect((await s.findCertificates({ residentCode: fresh, status: "valid" })).length).toBe(0));
    // the registry keeps the old code as a closed record: no certificate can be issued under it
    const feed = writeJsonl(join(dir, "all.jsonl"), [relocation("G-1", a, 1), notice("G-2", a, "resident-code-change", 2, { newResidentCode: fresh })]);
    expect((await cli([...w(), "registry", "apply", feed, "--json"], { cwd: dir })).json()).toMatchObject({ applied: 2, errors: [] });
    expect((await cli([...w(), "registry", "show", a.residentCode!, "--json"], { cwd: dir })).json()).toMatchObject({ status: "removed" });
    const old = await cli([...w(), "issue", "--resident", a.residentCode!, "--public-key", join(dir, "card.pub.pem")], { cwd: dir });
    expect(old.stderr).toContain("ERR_RESIDENT_NOT_ELIGIBLE");
  });

  it("a notice id seen before with a different body is ERR_NOTICE_CONFLICT, never counted as a duplicate", async () => {
    const [a, b] = residents as [Row, Row];
    const first = writeJsonl(join(dir, "first.jsonl"), [relocation("N-1", a, 1)]);
    expect((await cli([...w(), "notices", "ingest", first], { cwd: dir })).code).toBe(0);
    // the same id again: same body is a duplicate; another resident under that id is a conflict
    const again = writeJsonl(join(dir, "again.jsonl"), [relocation("N-1", a, 1), relocation("N-1", b, 1), relocation("N-2", b, 1), relocation("N-2", a, 2)]);
    const r = await cli([...w(), "notices", "ingest", again, "--json"], { cwd: dir });
    expect(r.code).toBe(13);
    expect(r.json()).toMatchObject({ read: 4, duplicates: 1, applied: 1, rejected: 2 });
    const codes = readFileSync(r.json().rejectFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)).map((x) => [x.line, x.code]);
    expect(codes).toEqual([[2, "ERR_NOTICE_CONFLICT"], [4, "ERR_NOTICE_CONFLICT"]]);
  });

  it("a notice effective after today (JST) is rejected by both sides and can be sent again when due", async () => {
    const [a] = residents as [Row];
    const future = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);
    const file = writeJsonl(join(dir, "future.jsonl"), [{ ...relocation("F-1", a, 1), effectiveDate: future }]);
    const r = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(r.code).toBe(8);
    expect(readFileSync(r.json().rejectFile, "utf8")).toContain("ERR_NOTICE_NOT_YET_EFFECTIVE");
    const reg = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
    expect(reg.json().errors).toEqual([expect.objectContaining({ code: "ERR_NOTICE_NOT_YET_EFFECTIVE" })]);
    await withStore(async (s) => expect(await s.getNotice("F-1")).toBeUndefined());
  });
});

describe("no certificate certifies what a notice already changed", () => {
  it("ingest, then issue before the registry caught up: refused (ERR_REGISTRY_BEHIND); after registry apply the new address is certified", async () => {
    const [a] = residents as [Row];
    const file = writeJsonl(join(dir, "move.jsonl"), [relocation("R-1", a, 1)]);
    expect((await cli([...w(), "notices", "ingest", file], { cwd: dir })).code).toBe(0);
    const early = await cli([...w(), "issue", "--resident", a.residentCode!, "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
    expect(early.code).toBe(7);
    expect(early.stderr).toContain("ERR_REGISTRY_BEHIND");
    expect(early.stderr).not.toContain(NEW_ADDRESS);
    await withStore(async (s) => expect((await s.findCertificates({ residentCode: a.residentCode!, status: "valid" })).length).toBe(0));
    expect((await cli([...w(), "registry", "apply", file], { cwd: dir })).code).toBe(0);
    const late = await cli([...w(), "issue", "--resident", a.residentCode!, "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
    expect(late.code, late.stderr).toBe(0);
    await withStore(async (s) => expect((await s.getCertificate(late.json().serial))?.fourItems.address).toBe(NEW_ADDRESS));
  });

  it("a certificate signed before a notice's batch but committed after it is never committed with the old items", async () => {
    const [a, b] = residents as [Row, Row];
    const wsp = await openWorkspace(ws);
    try {
      const feedA = writeJsonl(join(dir, "window-a.jsonl"), [relocation("W-1", a, 1)]);
      const feedB = writeJsonl(join(dir, "window-b.jsonl"), [relocation("W-2", b, 1)]);
      const ingestor = new NoticeIngestor({ store: wsp.store, clock: wsp.clock });
      const service = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      // window 1: signed, then the CA ingests the notice (registry not yet applied) — the commit refuses it
      const signedA = await service.prepare({ residentCode: a.residentCode!, type: "signature", publicKey: Buffer.from(pub) });
      await ingestor.ingest(readRecords(feedA));
      expect(await wsp.store.commitIssuances([signedA])).toEqual([{ status: "stale", why: "registry-behind" }]);
      // window 2: signed, then both sides take the notice between signing and committing — issue() signs again
      const real = wsp.store;
      let raced = false;
      const racing: Store = new Proxy(real, {
        get(target, prop, receiver) {
          if (prop === "commitIssuances") {
            return async (recs: Parameters<Store["commitIssuances"]>[0]) => {
              if (!raced) {
                raced = true;
                await ingestor.ingest(readRecords(feedB));
                await applyNoticesToRegistry(real, readRecords(feedB), wsp.clock.now());
              }
              return real.commitIssuances(recs);
            };
          }
          const v = Reflect.get(target, prop, receiver);
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const racingService = new IssuanceService({ store: racing, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      const issued = await racingService.issue({ residentCode: b.residentCode!, type: "signature", publicKey: Buffer.from(pub) });
      expect(raced).toBe(true);
      expect((await real.getCertificate(issued.serial))?.fourItems.address).toBe(NEW_ADDRESS);
      // no valid certificate of either resident certifies the old address
      for (const r of [a, b]) {
        for (const c of await real.findCertificates({ residentCode: r.residentCode!, status: "valid" })) expect(c.fourItems.address).toBe(NEW_ADDRESS);
      }
    } finally {
      await wsp.close();
    }
  });
});
