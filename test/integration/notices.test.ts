/**
 * Registry change notices end to end: every kind × certificate type, no-change notices, duplicates, gaps,
 * bad notices, CRLs regenerated and checked with openssl, registry apply, the watch daemon.
 */
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { generateResidents } from "../../src/registry/fixtures.js";
import { RejectFile } from "../../src/ca/ingestion.js";
import { formatIngest } from "../../src/cli/commands/notices.js";
import { CLAIM_STALE_MS, thisNamespace } from "../../src/ca/spool-claim.js";
import { NOTICE_RULES } from "../../src/registry/notice-rules.js";
import { MAX_SEQUENCE_JUMP } from "../../src/registry/notice.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { cardKey, cardKeys, cli, copyTemplate, expectedStore, listFiles, openWorkspace, settledSpool, storeKindOf, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

type Row = Record<string, string>;
let dir: string;
let ws: string;
let residents: Row[];
let pub: string;
const w = () => ["--workspace", ws];
const certs = new Map<string, { signature: string; authentication: string }>();

function itemsOf(r: Row) {
  return { name: r.name ?? `${r.familyName}　${r.givenName}`, address: r.address!, birthDate: r.birthDate!, gender: r.gender! };
}

function notice(i: number, r: Row, kind: string, seq: number, extra: Record<string, unknown> = {}) {
  return { noticeId: `T-${i}`, residentCode: r.residentCode, kind, effectiveDate: "2026-05-01", sequence: seq, municipalityCode: r.municipalityCode, ...extra };
}

async function state() {
  const s = await openWorkspace(ws);
  try {
    return await s.store.revocationSummary();
  } finally {
    await s.close();
  }
}

/**
 * The setup every test starts from, made once per file (a CA init's RSA keys, the import, 24 issuances and the
 * serials looked up took most of each test's time, 2-4 s a test on PostgreSQL): a directory holding the
 * workspace (ws) and the files the tests read beside it (card.pub.pem, certs/, residents.jsonl). Each test gets
 * its own copy (copyWorkspace: the directory, and on PostgreSQL its database), as the tests change it.
 */
let template: string;

beforeAll(async () => {
  template = tempDir("jpki-notices-template-");
  const tws = join(template, "ws");
  const tw = ["--workspace", tws];
  await tokyoWorkspace(tws);
  expect(storeKindOf(tws)).toBe(expectedStore);
  residents = [...generateResidents({ count: 12, seed: "notices", prefectures: ["13"] })] as unknown as Row[];
  writeJsonl(join(template, "residents.jsonl"), residents);
  expect((await cli([...tw, "registry", "import", join(template, "residents.jsonl")], { cwd: template })).code).toBe(0);
  pub = readFileSync(cardKey(template, "card").pub, "utf8");
  const key = cardKeys(pub);
  const apps = residents.flatMap((r) => ["signature", "authentication"].map((type) => ({ residentCode: r.residentCode, type, publicKey: key() })));
  writeJsonl(join(template, "apps.jsonl"), apps);
  const issued = await cli([...tw, "issue", "--batch", join(template, "apps.jsonl"), "--out-dir", join(template, "certs"), "--json"], { cwd: template });
  expect(issued.code, issued.stderr).toBe(0);
  for (const r of residents) {
    const rows = (await cli([...tw, "registry", "show", r.residentCode!, "--json"], { cwd: template })).json().certificates as Array<{ serial: string; type: "signature" | "authentication" }>;
    certs.set(r.residentCode!, { signature: rows.find((c) => c.type === "signature")!.serial, authentication: rows.find((c) => c.type === "authentication")!.serial });
  }
});

beforeEach(async () => {
  dir = tempDir("jpki-notices-");
  ws = await copyTemplate(template, dir);
  expect(storeKindOf(ws)).toBe(expectedStore);
});

describe("jpki notices ingest", () => {
  it("applies the rules table for every kind × certificate type, recording the notice that caused each revocation", async () => {
    const r = residents;
    const moved = (x: Row) => ({ ...itemsOf(x), address: "東京都千代田区永田町１丁目７番１号" });
    const feed = [
      notice(1, r[0]!, "relocation", 1, { after: moved(r[0]!) }),
      notice(2, r[1]!, "move-out", 1, { after: { ...itemsOf(r[1]!), address: "大阪府大阪市北区中之島１丁目３番２０号" }, newMunicipalityCode: "271276" }),
      notice(3, r[2]!, "move-in", 1, { after: moved(r[2]!), newMunicipalityCode: "131016" }),
      notice(4, r[3]!, "name-change", 1, { after: { ...itemsOf(r[3]!), name: "山本　" + itemsOf(r[3]!).name.split("　")[1] } }),
      notice(5, r[4]!, "correction", 1, { after: { ...itemsOf(r[4]!), birthDate: "1970-01-01" } }),
      notice(6, r[5]!, "correction", 1, { after: itemsOf(r[5]!) }), // certified text unchanged: revokes nothing
      notice(7, r[6]!, "death", 1),
      notice(8, r[7]!, "removal", 1),
      notice(9, r[8]!, "resident-code-change", 1, { newResidentCode: "00000000019" }),
    ];
    const file = writeJsonl(join(dir, "feed.jsonl"), feed);
    const res = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    const s = res.json();
    expect(s).toMatchObject({ read: 9, applied: 9, duplicates: 0, held: 0, rejected: 0 });
    expect(s.revocationsByReason).toEqual({ affiliationChanged: 5, cessationOfOperation: 4 });
    const rev = new Map((await state()).map((x) => [x.serial, x]));
    const sig = (i: number) => rev.get(certs.get(r[i]!.residentCode!)!.signature);
    const auth = (i: number) => rev.get(certs.get(r[i]!.residentCode!)!.authentication);
    for (const i of [0, 1, 2, 3, 4]) {
      expect(sig(i), `signature ${i}`).toMatchObject({ reason: 3, source: `notice:T-${i + 1}` });
      expect(auth(i), `authentication ${i}`).toBeUndefined();
    }
    expect(sig(5)).toBeUndefined();
    for (const i of [6, 7]) {
      expect(sig(i)).toMatchObject({ reason: 5, source: `notice:T-${i + 1}` });
      expect(auth(i)).toMatchObject({ reason: 5, source: `notice:T-${i + 1}` });
    }
    expect(sig(8)).toBeUndefined();
    expect(auth(8)).toBeUndefined();
    // the relinked issuance records follow the new code: a later death under it revokes both
    writeJsonl(join(dir, "feed2.jsonl"), [{ ...notice(10, r[8]!, "death", 2), residentCode: "00000000019" }]);
    const res2 = await cli([...w(), "notices", "ingest", join(dir, "feed2.jsonl"), "--json"], { cwd: dir });
    expect(res2.json().revocationsByReason).toEqual({ cessationOfOperation: 2 });

    // the CRL was regenerated once for the CA that revoked, and openssl reads the reasons
    expect(s.crls.filter((c: { scope: string }) => c.scope === "full").map((c: { ca: string }) => c.ca)).toEqual(["13-auth", "13-sig"]);
    // with the municipality partitions that revoked something (never the others) and the ARLs published for the first time
    expect(s.crls.filter((c: { scope: string }) => c.scope === "partition").length).toBeGreaterThan(0);
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-CAfile", join(ws, "ca", "13-sig.pem"), "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(text).toContain("Affiliation Changed");
    expect(text).toContain("Cessation Of Operation");
    expect(text).toContain(certs.get(r[0]!.residentCode!)!.signature.toUpperCase());
    expect(text).not.toContain(certs.get(r[5]!.residentCode!)!.signature.toUpperCase());
    // openssl verify agrees per certificate
    const verify = (serial: string) =>
      execFileSync("openssl", ["verify", "-crl_check", "-CAfile", join(ws, "ca", "13-sig.pem"), "-CRLfile", join(ws, "crl", "13-sig.crl"), join(dir, "certs", `${serial}.pem`)], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(verify(certs.get(r[5]!.residentCode!)!.signature)).toContain("OK");
    expect(() => verify(certs.get(r[0]!.residentCode!)!.signature)).toThrow(/certificate revoked/);
  });

  it("is idempotent: re-ingesting the same file changes nothing and says so", async () => {
    const feed = [notice(1, residents[0]!, "death", 1), notice(2, residents[1]!, "relocation", 1, { after: { ...itemsOf(residents[1]!), address: "東京都港区芝公園４丁目２番８号" } })];
    const file = writeJsonl(join(dir, "feed.jsonl"), feed);
    await cli([...w(), "notices", "ingest", file], { cwd: dir });
    const before = await state();
    const again = await cli([...w(), "notices", "ingest", file], { cwd: dir });
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("nothing changed: all 2 notices were already ingested");
    expect(await state()).toEqual(before);
  });

  it("a rerun after a run killed half-way says it resumed: the batches that run committed are counted as already applied, nothing is applied twice", async () => {
    // Ten deaths (two revocations each), a relocation held for its missing sequence 1, then notice T-8 repeated.
    const deaths = residents.slice(0, 10).map((r, i) => notice(i + 1, r, "death", 1));
    const early = notice(11, residents[10]!, "relocation", 2, { after: { ...itemsOf(residents[10]!), address: "東京都港区芝公園４丁目２番８号" } });
    const feed = [...deaths.slice(0, 5), early, ...deaths.slice(5), deaths[7]!];
    // What a run killed by kill -9 leaves: its committed batches, a prefix of the file (batches of 2 here).
    const prefix = writeJsonl(join(dir, "prefix.jsonl"), feed.slice(0, 6));
    expect((await cli([...w(), "notices", "ingest", prefix, "--batch-size", "2"], { cwd: dir })).code).toBe(0);
    const file = writeJsonl(join(dir, "feed.jsonl"), feed);
    const again = await cli([...w(), "notices", "ingest", file, "--batch-size", "2", "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    const r = again.json();
    // duplicates keeps its meaning (all notices not taken again); the new fields say which an earlier run stored.
    expect(r).toMatchObject({ read: 12, applied: 5, duplicates: 7, alreadyApplied: 5, alreadyHeld: 1, held: 0, revocations: 10 });
    expect(formatIngest(r)).toContain("resumed: 5 of these notices were applied and 1 held by an earlier run and were skipped");
    const revoked = await state();
    expect(revoked).toHaveLength(20); // each death revoked both certificates, once
    expect(new Set(revoked.map((x) => x.serial)).size).toBe(20);
    // On a terminal, the progress line says it as it goes.
    const tty = writeJsonl(join(dir, "feed-tty.jsonl"), feed.slice(0, 4));
    const shown = await cli([...w(), "notices", "ingest", tty, "--batch-size", "2"], { cwd: dir, tty: true });
    expect(shown.stderr).toContain("duplicates 4 (4 from an earlier run)");
    // A plain rerun of a finished file is no resume: it says nothing changed, as before.
    const third = await cli([...w(), "notices", "ingest", file], { cwd: dir });
    expect(third.stdout).toContain("nothing changed: all 12 notices were already ingested");
    expect(third.stdout).not.toContain("resumed");
  });

  it("holds a notice that arrives before its predecessor, applies both when the gap fills, releases on request", async () => {
    const r = residents[0]!;
    const second = notice(2, r, "relocation", 2, { after: { ...itemsOf(r), address: "東京都港区芝公園４丁目２番８号" } });
    const first = notice(1, r, "correction", 1, { after: itemsOf(r) });
    const a = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "a.jsonl"), [second]), "--json"], { cwd: dir });
    expect(a.json()).toMatchObject({ applied: 0, held: 1, revocations: 0 });
    const pending = await cli([...w(), "notices", "pending", "--json"], { cwd: dir });
    expect(pending.json().held).toEqual([expect.objectContaining({ noticeId: "T-2", sequence: 2, waitingFor: 1 })]);
    for (const bad of ["abc", "-1", "0", "1.5"]) {
      const r = await cli([...w(), "notices", "pending", "--limit", bad], { cwd: dir });
      expect([r.code, r.stderr]).toEqual([2, expect.stringContaining("ERR_USAGE")]);
    }
    const b = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "b.jsonl"), [first]), "--json"], { cwd: dir });
    expect(b.json()).toMatchObject({ applied: 2, released: 1, revocations: 1 });
    expect((await cli([...w(), "notices", "pending", "--json"], { cwd: dir })).json().held).toEqual([]);

    // an operator releases a notice whose predecessor never comes
    const r2 = residents[1]!;
    await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "c.jsonl"), [notice(3, r2, "death", 5)])], { cwd: dir });
    expect((await state()).some((x) => x.source === "notice:T-3")).toBe(false);
    // A wrong passphrase releases nothing. Before: the release committed (two revocations on no CRL, the CAs
    // left due), the command failed with ERR_PASSPHRASE_WRONG, and the retry was refused as "not held: T-3".
    const wrong = await cli([...w(), "notices", "pending", "--release", "T-3"], { cwd: dir, env: { JPKI_PASSPHRASE: "wrong horse" } });
    expect(wrong.stderr).toContain("ERR_PASSPHRASE_WRONG");
    expect((await state()).some((x) => x.source === "notice:T-3")).toBe(false);
    expect((await cli([...w(), "notices", "pending", "--json"], { cwd: dir })).json().held).toEqual([expect.objectContaining({ noticeId: "T-3" })]);
    const rel = await cli([...w(), "notices", "pending", "--release", "T-3", "--json"], { cwd: dir });
    expect(rel.code, rel.stderr).toBe(0);
    expect(rel.json()).toMatchObject({ released: 1, revocations: 2 });
    // each CRL named by its scope, as ingest names them (before: {ca, number, entries} alone, a partition's like a full CRL's)
    const relCrls = rel.json().crls as Array<{ ca: string; scope: string; municipality?: string }>;
    expect(relCrls.filter((c) => c.scope === "full").map((c) => c.ca).sort()).toEqual(["13-auth", "13-sig"]);
    expect(relCrls.filter((c) => c.scope === "partition").map((c) => [c.ca, c.municipality])).toContainEqual(["13-sig", r2.municipalityCode]);
    expect((await state()).filter((x) => x.source === "notice:T-3")).toHaveLength(2);
    const s = await openWorkspace(ws);
    try {
      expect(await s.store.dirtyCas()).toEqual([]);
    } finally {
      await s.close();
    }
    // Releasing it again says it was applied, not that it is unknown.
    const again = await cli([...w(), "notices", "pending", "--release", "T-3", "T-404"], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("not held: T-404; already applied: T-3");
  });

  it("a death arriving after an operator released the notice past its gap still revokes what remains; a late move is still stale", async () => {
    const r = residents[10]!;
    const moved = notice(31, r, "relocation", 2, { after: { ...itemsOf(r), address: "東京都港区芝公園４丁目２番８号" } });
    expect((await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "moved.jsonl"), [moved]), "--json"], { cwd: dir })).json()).toMatchObject({ held: 1 });
    expect((await cli([...w(), "notices", "pending", "--release-all", "--json"], { cwd: dir })).json()).toMatchObject({ released: 1, revocations: 1 });
    // Before: ERR_NOTICE_STALE ("sequence 1 is not after 2"), and the dead person's authentication certificate stayed valid.
    const death = writeJsonl(join(dir, "death.jsonl"), [notice(32, r, "death", 1)]);
    const late = await cli([...w(), "notices", "ingest", death, "--json"], { cwd: dir });
    expect(late.code, late.stderr).toBe(0);
    expect(late.json()).toMatchObject({ applied: 1, rejected: 0, revocationsByReason: { cessationOfOperation: 1 } });
    const rev = new Map((await state()).map((x) => [x.serial, x]));
    expect(rev.get(certs.get(r.residentCode!)!.authentication)).toMatchObject({ reason: 5, source: "notice:T-32" });
    expect(rev.get(certs.get(r.residentCode!)!.signature)).toMatchObject({ reason: 3, source: "notice:T-31" });
    expect((await cli([...w(), "notices", "ingest", death, "--json"], { cwd: dir })).json()).toMatchObject({ applied: 0, duplicates: 1, revocations: 0 });
    // the sequence did not go back: a later notice still follows the released one
    const after = writeJsonl(join(dir, "after.jsonl"), [notice(33, r, "correction", 1, { after: itemsOf(r) }), notice(34, r, "removal", 3)]);
    const res = await cli([...w(), "notices", "ingest", after, "--json"], { cwd: dir });
    expect(res.code).toBe(13);
    expect(res.json()).toMatchObject({ applied: 1, rejected: 1, revocations: 0 });
    const stale = readFileSync(res.json().rejectFile, "utf8");
    expect(stale).toContain("ERR_NOTICE_STALE");
    expect(stale).toContain("passed when an operator released a later notice"); // not "already applied": it never was
  });

  it("a counter procedure ingested at once says when its notice is held (its predecessor still waits in the spool)", async () => {
    const r = residents[11]!;
    const moved = await cli([...w(), "counter", "relocate", "--resident", r.residentCode!, "--address", `${r.address}別館`], { cwd: dir });
    expect(moved.code, moved.stderr).toBe(0); // spooled: not ingested yet
    const died = await cli([...w(), "counter", "death", "--resident", r.residentCode!, "--ingest", "--no-crl"], { cwd: dir });
    expect(died.code, died.stderr).toBe(0);
    // Before: "notices ingested 0: revocations 0", as if done.
    expect(died.stdout).toContain("ingested 0, held 1 (waiting for an earlier notice of the resident: 'jpki notices pending')");
  });

  it("a notice held under the old resident code is applied under the new one after a resident-code change", async () => {
    const r = residents[3]!;
    const newCode = "00000000019";
    // seq 3 (death, still under the old code) arrives first and is held; then the code change (seq 1),
    // then a correction under the new code (seq 2) fills the gap: the death applies to the relinked records.
    await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "h1.jsonl"), [notice(3, r, "death", 3)])], { cwd: dir });
    await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "h2.jsonl"), [notice(1, r, "resident-code-change", 1, { newResidentCode: newCode })])], { cwd: dir });
    const last = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "h3.jsonl"), [{ ...notice(2, r, "correction", 2, { after: itemsOf(r) }), residentCode: newCode }]), "--json"], { cwd: dir });
    expect(last.json()).toMatchObject({ applied: 2, released: 1, revocations: 2 });
    const revoked = (await state()).filter((x) => x.source === "notice:T-3");
    expect(revoked.map((x) => x.serial).sort()).toEqual([certs.get(r.residentCode!)!.signature, certs.get(r.residentCode!)!.authentication].sort());
    expect((await cli([...w(), "notices", "pending", "--json"], { cwd: dir })).json().held).toEqual([]);
  });

  it("a death still filed under the old code after its resident-code change was applied revokes under the new code, in one file and in the next run", async () => {
    for (const [i, split] of [[4, false], [5, true]] as const) {
      const r = residents[i]!;
      const newCode = makeResidentCode(`000000088${i}`);
      const change = notice(10 * i + 1, r, "resident-code-change", 1, { newResidentCode: newCode });
      const death = notice(10 * i + 2, r, "death", 2); // the registry sent it under the code it had filed first
      if (split) {
        expect((await cli([...w(), "notices", "ingest", writeJsonl(join(dir, `c${i}.jsonl`), [change]), "--json"], { cwd: dir })).code).toBe(0);
      }
      const res = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, `d${i}.jsonl`), split ? [death] : [change, death]), "--json"], { cwd: dir });
      expect(res.code, res.stderr).toBe(0);
      expect(res.json()).toMatchObject({ applied: split ? 1 : 2, held: 0, rejected: 0, revocations: 2 });
      const revoked = (await state()).filter((x) => x.source === `notice:T-${10 * i + 2}`);
      expect(revoked.map((x) => x.serial).sort()).toEqual([certs.get(r.residentCode!)!.signature, certs.get(r.residentCode!)!.authentication].sort());
      // the next notice of the person continues the sequence under the new code
      const after = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, `e${i}.jsonl`), [{ ...notice(10 * i + 3, r, "correction", 2, { after: itemsOf(r) }), residentCode: newCode }]), "--json"], { cwd: dir });
      expect(after.json()).toMatchObject({ applied: 0, rejected: 1 });
    }
  });

  it("a resident-code change keeps both certificates and re-links their issuance records and sequence to the new code", async () => {
    // NOTICE_RULES says relink for both types; the ingestor and the store carry it out.
    expect(NOTICE_RULES["resident-code-change"]).toEqual({ signature: { effect: "relink" }, authentication: { effect: "relink" } });
    const r = residents[9]!;
    const oldCode = r.residentCode!;
    const newCode = makeResidentCode("0000000777");
    expect(residents.some((x) => x.residentCode === newCode)).toBe(false);
    const serials = [certs.get(oldCode)!.signature, certs.get(oldCode)!.authentication].sort();
    const under = async (code: string) => {
      const s = await openWorkspace(ws);
      try {
        return (await s.store.findCertificates({ residentCode: code })).map((c) => ({ serial: c.serial, revoked: Boolean(c.revocation) })).sort((a, b) => a.serial.localeCompare(b.serial));
      } finally {
        await s.close();
      }
    };
    expect(await under(oldCode)).toEqual(serials.map((serial) => ({ serial, revoked: false })));

    const res = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "rc.jsonl"), [notice(1, r, "resident-code-change", 1, { newResidentCode: newCode })]), "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.json()).toMatchObject({ applied: 1, revocations: 0, crls: [] });
    // kept, and now under the new code only
    expect(await under(newCode)).toEqual(serials.map((serial) => ({ serial, revoked: false })));
    expect(await under(oldCode)).toEqual([]);
    expect(await state()).toEqual([]);

    // the sequence moved with them: the next notice under the new code (seq 2) applies at once, not held,
    // and decides against the relinked records (a relocation revokes the signature certificate only)
    const moved = { ...itemsOf(r), address: "東京都港区芝公園４丁目２番８号" };
    const next = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "rc2.jsonl"), [{ ...notice(2, r, "relocation", 2, { after: moved }), residentCode: newCode }]), "--json"], { cwd: dir });
    expect(next.json()).toMatchObject({ applied: 1, held: 0, rejected: 0, revocations: 1 });
    expect((await state()).map((x) => [x.serial, x.source])).toEqual([[certs.get(oldCode)!.signature, "notice:T-2"]]);
  });

  it("moving out and back to the same address still revokes: the first move already revoked", async () => {
    const r = residents[2]!;
    const out = { ...itemsOf(r), address: "大阪府大阪市北区中之島１丁目３番２０号" };
    const file = writeJsonl(join(dir, "f.jsonl"), [
      notice(1, r, "move-out", 1, { after: out, newMunicipalityCode: "271276" }),
      notice(2, r, "move-in", 2, { after: itemsOf(r), newMunicipalityCode: r.municipalityCode }),
    ]);
    const res = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(res.json()).toMatchObject({ applied: 2, revocations: 1 });
    expect((await state()).find((x) => x.serial === certs.get(r.residentCode!)!.signature)).toMatchObject({ reason: 3, source: "notice:T-1" });
  });

  it("rejects bad notices to a reject file with line numbers, still applies the good ones, exit code 13", async () => {
    const good = notice(1, residents[0]!, "death", 1);
    const file = join(dir, "mixed.jsonl");
    writeFileSync(
      file,
      [
        JSON.stringify(good),
        "{ not json",
        JSON.stringify({ ...notice(2, residents[1]!, "emigration-to-mars", 1) }),
        JSON.stringify({ ...notice(3, residents[1]!, "death", 1), residentCode: "12345678901" }),
        JSON.stringify({ ...notice(4, residents[1]!, "death", 1), effectiveDate: "2023-02-30" }),
        JSON.stringify({ ...notice(5, residents[1]!, "death", 1), residentCode: "00000000019" }),
        // a field named twice: JSON.parse keeps the last, and this line revoked as a death what it also calls a move
        `{"kind":"relocation",${JSON.stringify(notice(6, residents[1]!, "death", 1)).slice(1)}`,
      ].join("\n") + "\n",
    );
    const res = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(res.code).toBe(13);
    const s = res.json();
    expect(s).toMatchObject({ read: 7, applied: 1, rejected: 6 });
    // a line that does not parse is rejected as read, the others once their batch is decided: in line order here
    const rejects = readFileSync(s.rejectFile, "utf8").trim().split("\n").map((l) => JSON.parse(l)).sort((a, b) => a.line - b.line);
    expect(rejects.map((x) => x.line)).toEqual([2, 3, 4, 5, 6, 7]);
    expect(rejects.map((x) => x.code)).toEqual(["ERR_IMPORT_FORMAT", "ERR_NOTICE_KIND_UNKNOWN", "ERR_RESIDENT_CODE_INVALID", "ERR_NOTICE_MALFORMED", "ERR_RESIDENT_UNKNOWN", "ERR_IMPORT_FORMAT"]);
    expect(rejects[5].reason).toMatch(/field "kind" is given more than once/);
    expect((await state()).filter((x) => x.source === "notice:T-1")).toHaveLength(2);
  });
});

describe("jpki notices ingest: a sequence implausibly far ahead", () => {
  // The registry side refuses such a notice (registry apply, ERR_NOTICE_SEQUENCE_JUMP). The CA side held it, and
  // a release applied it: every later notice of the resident was then stale, and a death revoked nothing.
  it("rejects a notice more than MAX_SEQUENCE_JUMP ahead (never held), and the in-order notices after it still revoke", async () => {
    const r = residents[4]!;
    const near = residents[5]!;
    const file = writeJsonl(join(dir, "jump.jsonl"), [notice(1, r, "correction", 1 + MAX_SEQUENCE_JUMP, { after: itemsOf(r) }), notice(2, near, "correction", MAX_SEQUENCE_JUMP, { after: itemsOf(near) })]);
    const res = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(13);
    expect(res.json()).toMatchObject({ read: 2, applied: 0, held: 1, rejected: 1 });
    const rejects = readFileSync(res.json().rejectFile, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(rejects).toEqual([expect.objectContaining({ line: 1, code: "ERR_NOTICE_SEQUENCE_JUMP", record: expect.objectContaining({ noticeId: "T-1" }) })]);
    expect((await cli([...w(), "notices", "pending", "--json"], { cwd: dir })).json().held.map((h: { noticeId: string }) => h.noticeId)).toEqual(["T-2"]);
    // nothing held for the resident, so a release-all cannot apply it; the next notice in order applies and revokes
    expect((await cli([...w(), "notices", "pending", "--release-all"], { cwd: dir })).code).toBe(0);
    const death = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "death.jsonl"), [notice(3, r, "death", 1)]), "--json"], { cwd: dir });
    expect(death.json()).toMatchObject({ applied: 1, rejected: 0, revocations: 2 });
  });

  it("refuses to release a notice an older version held that far ahead; it stays held and revokes nothing", async () => {
    const r = residents[6]!;
    const other = residents[7]!;
    const s = await openWorkspace(ws);
    try {
      const far = notice(9, r, "death", 1 + MAX_SEQUENCE_JUMP);
      await s.store.commitNoticeBatch({ noticeIds: ["T-9"], residentCodes: [r.residentCode!] }, () => ({
        commit: { at: new Date(), notices: [{ noticeId: "T-9", residentCode: r.residentCode!, sequence: far.sequence, kind: "death", body: JSON.stringify(far), status: "held" as const, revocations: 0 }], sequences: [], revocations: [], relinks: [], dirtyCas: [] },
      }));
    } finally {
      await s.close();
    }
    await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "gap.jsonl"), [notice(10, other, "death", 3)])], { cwd: dir });
    // both at once: which did the operator mean? Neither is done (--release-all released everything)
    const both = await cli([...w(), "notices", "pending", "--release", "T-9", "--release-all"], { cwd: dir });
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining("ERR_USAGE")]);
    expect((await state()).some((x) => x.source === "notice:T-10")).toBe(false);
    for (const args of [["--release", "T-9"], ["--release-all"]]) {
      const rel = await cli([...w(), "notices", "pending", ...args], { cwd: dir });
      expect([rel.code, rel.stderr], args.join(" ")).toEqual([8, expect.stringContaining("ERR_NOTICE_SEQUENCE_JUMP")]);
      expect(rel.stderr).toContain("T-9");
      expect((await state()).some((x) => x.source === "notice:T-9")).toBe(false);
    }
    // --release-all still released the one within bounds
    expect((await state()).filter((x) => x.source === "notice:T-10")).toHaveLength(2);
    expect((await cli([...w(), "notices", "pending", "--json"], { cwd: dir })).json().held.map((h: { noticeId: string }) => h.noticeId)).toEqual(["T-9"]);
    const death = await cli([...w(), "notices", "ingest", writeJsonl(join(dir, "death.jsonl"), [notice(11, r, "death", 1)]), "--json"], { cwd: dir });
    expect(death.json()).toMatchObject({ applied: 1, revocations: 2 });
  });
});

describe("jpki notices ingest: where the rejects go", () => {
  it("a rejects directory that cannot be made fails the run before anything is applied, with a typed error", async () => {
    // The workspace's rejects/ is a file (an operator's mistake, a full disk would do the same half-way).
    rmSync(join(ws, "rejects"), { recursive: true, force: true });
    writeFileSync(join(ws, "rejects"), "");
    const file = writeJsonl(join(dir, "feed.jsonl"), [notice(1, residents[0]!, "death", 1), "{ not json"]);
    // Before: the first batch was committed, then writing the second's reject crashed (ERR_INTERNAL, exit 70,
    // a stack trace), and so did every rerun.
    const res = await cli([...w(), "notices", "ingest", file, "--batch-size", "1", "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(2);
    expect(JSON.parse(res.stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("reject file directory") });
    expect(res.stderr).not.toMatch(/\n\s+at /);
    expect(await state()).toEqual([]);
    // Once it is a directory again, the same command takes the file.
    rmSync(join(ws, "rejects"));
    const again = await cli([...w(), "notices", "ingest", file, "--batch-size", "1", "--json"], { cwd: dir });
    expect(again.code).toBe(13);
    expect(again.json()).toMatchObject({ read: 2, applied: 1, rejected: 1 });
  });

  it("a reject file that cannot be written half-way is ERR_FILE_UNUSABLE naming it, not a crash", () => {
    // A spool claim's sidecar (replace: the name is the caller's own) taken by a directory once the run is under
    // way: the final rename fails (as a full disk fails a write).
    const target = join(dir, "taken.rejects.jsonl");
    const f = new RejectFile(target, { replace: true });
    f.write({ line: 1, code: "ERR_IMPORT_FORMAT", message: "line 1: malformed JSON" });
    mkdirSync(join(target, "inside"), { recursive: true });
    let thrown: unknown;
    try {
      f.close();
    } catch (e) {
      thrown = e;
    }
    f.abandon();
    expect(thrown).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining(`reject file ${target}: cannot be written`) });
    expect(listFiles(dir).filter((x) => x.endsWith(".tmp"))).toEqual([]);
  });
});

describe("jpki notices ingest: a reject file never replaces another", () => {
  const bad = (i: number) => JSON.stringify({ ...notice(i, residents[1]!, "death", 1), residentCode: "12345678901" });

  // --reject-file named an existing file and the run renamed its rejects over it: the earlier run's record of
  // which notices were refused, the only one, was gone.
  it("refuses an existing --reject-file before anything is ingested, and leaves it as it was", async () => {
    const earlier = join(dir, "monday.rejects.jsonl");
    writeFileSync(earlier, '{"line":7,"code":"ERR_RESIDENT_UNKNOWN"}\n');
    const file = join(dir, "tuesday.jsonl");
    writeFileSync(file, [JSON.stringify(notice(1, residents[0]!, "death", 1)), bad(2)].join("\n") + "\n");
    const res = await cli([...w(), "notices", "ingest", file, "--reject-file", earlier, "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(2);
    expect(JSON.parse(res.stderr).error).toMatchObject({ code: "ERR_REJECT_FILE_EXISTS", message: expect.stringContaining(`reject file ${earlier} already exists`) });
    expect(readFileSync(earlier, "utf8")).toBe('{"line":7,"code":"ERR_RESIDENT_UNKNOWN"}\n');
    expect(await state()).toEqual([]);
    const fresh = join(dir, "tuesday.rejects.jsonl");
    const again = await cli([...w(), "notices", "ingest", file, "--reject-file", fresh, "--json"], { cwd: dir });
    expect(again.code).toBe(13);
    expect(again.json()).toMatchObject({ applied: 1, rejected: 1, rejectFile: fresh });
    expect(readFileSync(earlier, "utf8")).toBe('{"line":7,"code":"ERR_RESIDENT_UNKNOWN"}\n');
  });

  // The default name carries a millisecond time stamp: two runs on same-named files in one millisecond (two
  // hosts on one workspace directory, say) got the same name, and the second's rejects replaced the first's.
  it("two runs on same-named files in one millisecond each keep their own default reject file", async () => {
    const a = join(dir, "a", "feed.jsonl");
    const b = join(dir, "b", "feed.jsonl");
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    writeFileSync(a, bad(1) + "\n");
    writeFileSync(b, bad(2) + "\n");
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date());
    const runs: Array<Awaited<ReturnType<typeof cli>>> = [];
    try {
      for (const f of [a, b]) runs.push(await cli([...w(), "notices", "ingest", f, "--no-crl", "--json"], { cwd: dir }));
    } finally {
      vi.useRealTimers();
    }
    const [first, second] = runs as [Awaited<ReturnType<typeof cli>>, Awaited<ReturnType<typeof cli>>];
    expect([first.code, second.code], first.stderr + second.stderr).toEqual([7, 7]);
    const [fa, fb] = [first.json().rejectFile as string, second.json().rejectFile as string];
    expect(fa).toMatch(/rejects\/feed\.jsonl-[0-9T-]+Z\.rejects\.jsonl$/);
    expect(fb).toBe(fa.replace(/\.rejects\.jsonl$/, "-2.rejects.jsonl"));
    const ids = (f: string) => readFileSync(f, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { record: { noticeId: string } }).record.noticeId);
    expect([ids(fa), ids(fb)]).toEqual([["T-1"], ["T-2"]]);
  });

  it("a name another process takes during the run sends the rejects to the next free name, never over it", () => {
    const target = join(dir, "taken.rejects.jsonl");
    const f = new RejectFile(target);
    f.write({ line: 1, code: "ERR_IMPORT_FORMAT", message: "line 1: malformed JSON" });
    writeFileSync(target, "another run's rejects\n");
    mkdirSync(join(dir, "taken-2.rejects.jsonl")); // a directory takes a name too
    expect(f.close()).toBe(join(dir, "taken-3.rejects.jsonl"));
    expect(readFileSync(target, "utf8")).toBe("another run's rejects\n");
    expect(JSON.parse(readFileSync(join(dir, "taken-3.rejects.jsonl"), "utf8"))).toMatchObject({ line: 1, code: "ERR_IMPORT_FORMAT" });
    expect(listFiles(dir).filter((x) => x.endsWith(".tmp"))).toEqual([]);
  });
});

describe("jpki registry apply and jpki watch", () => {
  it("registry apply updates the records so the next issuance certifies the new items", async () => {
    const r = residents[0]!;
    const newAddress = "東京都港区芝公園４丁目２番８号";
    const file = writeJsonl(join(dir, "feed.jsonl"), [notice(1, r, "relocation", 1, { after: { ...itemsOf(r), address: newAddress } })]);
    expect((await cli([...w(), "notices", "ingest", file], { cwd: dir })).code).toBe(0);
    const applied = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
    expect(applied.json()).toMatchObject({ read: 1, applied: 1 });
    const issued = await cli([...w(), "issue", "--resident", r.residentCode!, "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const inspect = await cli(["inspect", join(ws, "certs", `${issued.json().serial}.pem`), "--json"], { cwd: dir });
    expect(inspect.json().fourItems.address).toBe(newAddress);
  });

  it("a certificate issued while the CA side is two notices behind the registry is revoked by neither (it certifies the state after both)", async () => {
    const r = residents[1]!;
    const [first, second] = ["東京都港区芝公園４丁目２番８号", "東京都港区六本木６丁目１０番１号"];
    const file = writeJsonl(join(dir, "two-moves.jsonl"), [
      notice(1, r, "relocation", 1, { after: { ...itemsOf(r), address: first } }),
      notice(2, r, "relocation", 2, { after: { ...itemsOf(r), address: second } }),
    ]);
    expect((await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir })).json()).toMatchObject({ applied: 2 });
    const issued = await cli([...w(), "issue", "--resident", r.residentCode!, "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const ingested = await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir });
    expect(ingested.code, ingested.stderr).toBe(0);
    expect(ingested.json()).toMatchObject({ applied: 2 });
    // the notice of the first move differs from what the new certificate certifies: it was revoked for it (was)
    expect((await state()).map((x) => x.serial)).not.toContain(issued.json().serial);
    const s = await openWorkspace(ws);
    try {
      expect((await s.store.findCertificates({ residentCode: r.residentCode!, type: "signature", status: "valid" })).map((c) => c.serial)).toEqual([issued.json().serial]);
    } finally {
      await s.close();
    }
  });

  it("watch --once ingests dropped files, moves them to done/ or failed/, regenerates CRLs", async () => {
    const spool = join(dir, "spool");
    mkdirSync(spool);
    writeJsonl(join(spool, "001.jsonl"), [notice(1, residents[0]!, "death", 1)]);
    // a CSV header that names a column twice: no record can be read (a bad line, e.g. not UTF-8, would cost
    // that line only and the file would go to done/ with its rejects)
    writeFileSync(join(spool, "002.csv"), "noticeId,noticeId\nX-1,X-1\n");
    writeFileSync(join(spool, "004.csv"), "noticeId,residentCode\nX-1,12345678901\n"); // readable, every notice bad
    writeJsonl(join(spool, ".003.jsonl"), [notice(3, residents[1]!, "death", 1)]); // still being written: ignored
    // Entries that are not regular files go to failed/ unread: a FIFO no producer ever opens (reading it blocked
    // the watcher for good, SIGTERM included), a symbolic link to a file outside the spool (it was followed and
    // its notice applied), a directory.
    execFileSync("mkfifo", [join(spool, "005.jsonl")]);
    symlinkSync(writeJsonl(join(dir, "elsewhere.jsonl"), [notice(6, residents[2]!, "death", 1)]), join(spool, "006.jsonl"));
    mkdirSync(join(spool, "007.jsonl"));
    settledSpool(spool);
    const res = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.json()).toMatchObject({ files: 6, failed: 4 });
    expect(listFiles(join(spool, "done"))).toEqual(["001.jsonl", "004.csv", "004.csv.rejects.jsonl"]);
    expect(listFiles(join(spool, "failed"))).toEqual(
      ["002.csv", "005.jsonl", "006.jsonl", "007.jsonl"].flatMap((f) => [f, `${f}.error.json`]),
    );
    const why = (f: string) => JSON.parse(readFileSync(join(spool, "failed", `${f}.error.json`), "utf8")) as { code: string; message: string };
    expect(why("005.jsonl")).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("is a FIFO (named pipe), not a regular file") });
    expect(why("006.jsonl")).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("is a symbolic link") });
    expect(why("007.jsonl")).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("is a directory") });
    expect((await state()).filter((x) => x.source === "notice:T-6")).toEqual([]);
    expect(listFiles(join(spool, "processing"))).toEqual([]);
    expect(existsSync(join(spool, ".003.jsonl"))).toBe(true);
    expect((await state()).filter((x) => x.source === "notice:T-1")).toHaveLength(2);
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-auth.crl"), "-noout", "-text"], { encoding: "utf8" });
    expect(text).toContain("Cessation Of Operation");
    // --json: each CRL it published is logged on stderr as one JSON line, as it is published — those of the schedule
    // (counted in `crls`) and those a file's ingestion published (in its result) alike; stdout keeps one document.
    const logged = res.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    const fromFiles = (res.json().results as Array<{ crls?: unknown[] }>).flatMap((r) => r.crls ?? []);
    expect(logged).toHaveLength(res.json().crls + fromFiles.length);
    expect(logged.length).toBeGreaterThan(0);
    for (const l of logged) {
      expect(l).toMatchObject({ event: "crl-published", ca: expect.stringMatching(/^13-(sig|auth)$/), scope: expect.any(String), number: expect.stringMatching(/^\d+$/), entries: expect.any(Number), why: expect.any(String) });
      expect(existsSync(l.path as string)).toBe(true);
    }
    expect(logged.filter((l) => l.why === "notices").map(({ event: _e, why: _w, noticeFile: _f, ...c }) => c)).toEqual(fromFiles);
    expect(logged.some((l) => l.ca === "13-auth" && l.scope === "full")).toBe(true);
  });
});

describe("jpki watch --once --json: the CRLs of its closing round", () => {
  it("logs the CRLs --once publishes at the end for revocations the interval had not yet made due", async () => {
    const spool = join(dir, "spool-closing");
    mkdirSync(spool);
    // a CRL for every CA first, so that only the revocation below is left for the closing round
    expect((await cli([...w(), "watch", spool, "--once"], { cwd: dir })).code).toBe(0);
    const serial = certs.get(residents[5]!.residentCode!)!.signature;
    expect((await cli([...w(), "revoke", "--serial", serial, "--reason", "card-returned"], { cwd: dir })).code).toBe(0);
    const res = await cli([...w(), "watch", spool, "--once", "--json", "--crl-interval", "3600"], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    const logged = res.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(res.json().crls).toBeGreaterThan(0);
    expect(logged).toHaveLength(res.json().crls);
    expect(logged).toContainEqual(expect.objectContaining({ event: "crl-published", ca: "13-sig", scope: "full", why: "dirty", entries: 1 }));
  });
});

describe("jpki watch: several watchers on one spool", () => {
  // A claim moved a file into processing/, but every watcher "resumed" whatever it found there first: a second
  // watcher (or an operator's 'watch --once') ingested the file the first was still working on, and whichever
  // finished second found it gone (a crash, or the file sent to failed/ after its notices were applied).
  it("leaves a file another live watcher claimed alone, and resumes it once that watcher is gone", async () => {
    const spool = join(dir, "spool-shared");
    mkdirSync(join(spool, "processing"), { recursive: true });
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 600000)"], { stdio: "ignore" });
    const gone = new Promise((res) => other.on("exit", res));
    try {
      writeJsonl(join(spool, "processing", `${other.pid}~feed.jsonl`), [notice(1, residents[0]!, "death", 1)]);
      const busy = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
      expect(busy.code, busy.stderr).toBe(0);
      expect(busy.json()).toMatchObject({ files: 0, failed: 0 });
      expect(listFiles(join(spool, "processing"))).toEqual([`${other.pid}~feed.jsonl`]);
      expect((await state()).filter((x) => x.source === "notice:T-1")).toEqual([]);
    } finally {
      other.kill("SIGKILL");
      await gone;
    }
    settledSpool(spool);
    const resumed = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(resumed.json()).toMatchObject({ files: 1, failed: 0, results: [expect.objectContaining({ file: "feed.jsonl", applied: 1 })] });
    expect(listFiles(join(spool, "processing"))).toEqual([]);
    expect(listFiles(join(spool, "done"))).toEqual(["feed.jsonl"]);
    expect((await state()).filter((x) => x.source === "notice:T-1")).toHaveLength(2);
  });
});

describe("jpki watch: watchers in separate PID namespaces on one spool (containers, hosts sharing a volume)", () => {
  // A claim named its watcher by pid alone. A watcher in another container sees that pid as not running (or as
  // some other process): it took over the file the other was still ingesting — both ingested it, and whichever
  // finished second found it gone.
  it("leaves a claim of another namespace's watcher alone while its heartbeat is fresh, whatever its pid is here; takes it over once stale", async () => {
    const spool = join(dir, "spool-ns");
    const processing = join(spool, "processing");
    mkdirSync(processing, { recursive: true });
    const exited = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    await new Promise((res) => exited.on("exit", res));
    const ns = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
    const entry = `${exited.pid}~@${ns}~feed.jsonl`; // a pid that runs nothing here
    writeJsonl(join(processing, entry), [notice(1, residents[0]!, "death", 1)]);
    writeFileSync(join(processing, `.${entry}.alive`), "");
    const busy = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(busy.code, busy.stderr).toBe(0);
    expect(busy.json()).toMatchObject({ files: 0, failed: 0 });
    expect(listFiles(processing)).toEqual([`.${entry}.alive`, entry]);
    expect((await state()).filter((x) => x.source === "notice:T-1")).toEqual([]);
    // its watcher stopped beating (killed, its container gone): past the timeout, the file is taken over
    const past = new Date(Date.now() - CLAIM_STALE_MS - 60_000);
    utimesSync(join(processing, `.${entry}.alive`), past, past);
    settledSpool(spool);
    const resumed = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(resumed.json()).toMatchObject({ files: 1, failed: 0, results: [expect.objectContaining({ file: "feed.jsonl", applied: 1 })] });
    expect(listFiles(processing)).toEqual([]);
    expect(listFiles(join(spool, "done"))).toEqual(["feed.jsonl"]);
    expect((await state()).filter((x) => x.source === "notice:T-1")).toHaveLength(2);
  });
});

describe("jpki watch: a killed counter's temporary file in the spool", () => {
  // `jpki counter` stages its notice file in the spool under a dot-name and renames it into place. Killed between
  // the two, it left the dot-name for good: no sweep looked at the spool itself.
  it("is never taken as a notice file, and is swept by the namespace-aware staging rule", async () => {
    const spool = join(dir, "spool-counter");
    mkdirSync(spool);
    const ns = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
    const body = JSON.stringify(notice(21, residents[2]!, "death", 1)) + "\n";
    // A counter of this namespace, killed after staging (a child process that exits without the rename).
    const staging = pathToFileURL(join(import.meta.dirname, "../../dist/src/store/staging.js")).href;
    const script = `const { stageFile } = await import(${JSON.stringify(staging)}); stageFile(process.argv[1], process.argv[2]);`;
    execFileSync(process.execPath, ["--input-type=module", "-e", script, join(spool, "counter-2026-05-01T09-00-00-000Z-1-00000000.jsonl"), body]);
    const killed = listFiles(spool);
    expect(killed).toEqual([expect.stringMatching(/^\.counter-.*\.jsonl\.\d+~@[0-9a-f]{16}\.[0-9a-f]{12}\.tmp$/)]);
    // Being written right now by a counter in another container (its pid means nothing here), and an earlier
    // version's pid-only name: fresh, they are left alone; the earlier version's a day untouched goes.
    const exited = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    await new Promise((res) => exited.on("exit", res));
    const writing = `.counter-b.jsonl.${exited.pid}~@${ns}.0123456789ab.tmp`;
    const earlier = `.counter-c.jsonl.${exited.pid}.0123456789ab.tmp`;
    const abandoned = `.counter-d.jsonl.${exited.pid}.0123456789ab.tmp`;
    for (const f of [writing, earlier, abandoned]) writeFileSync(join(spool, f), body);
    const dayAgo = new Date(Date.now() - 25 * 3600_000);
    utimesSync(join(spool, abandoned), dayAgo, dayAgo);
    writeJsonl(join(spool, "feed.jsonl"), [notice(22, residents[3]!, "death", 1)]);
    settledSpool(spool);
    const res = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(res.code, res.stderr).toBe(0);
    expect(res.json()).toMatchObject({ files: 1, failed: 0, results: [expect.objectContaining({ file: "feed.jsonl", applied: 1 })] });
    expect(listFiles(spool).sort()).toEqual([earlier, writing, "done", "failed", "processing"].sort());
    expect(listFiles(join(spool, "done"))).toEqual(["feed.jsonl"]);
    expect(listFiles(join(spool, "processing"))).toEqual([]);
    expect((await state()).filter((x) => x.source === "notice:T-21")).toEqual([]);
  });
});

describe("jpki watch: files of the same name", () => {
  // The reject file went to done/NAME.rejects.jsonl whenever done/NAME was free, replacing the reject file an
  // earlier NAME left there once an operator had moved that notice file away: its rejected notices were lost.
  it("keeps every reject file: a later file of the same name goes beside the earlier one's, under a stamped name", async () => {
    const spool = join(dir, "spool-names");
    mkdirSync(spool);
    const done = join(spool, "done");
    const unknown = makeResidentCode("0000009999");
    const drop = (i: number) => writeJsonl(join(spool, "feed.jsonl"), [notice(i, residents[i]!, "death", 1), { ...notice(10 + i, residents[0]!, "death", 1), residentCode: unknown }]);
    const rejectedIds = (f: string) => readFileSync(join(done, f), "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { record: { noticeId: string } }).record.noticeId);
    drop(1);
    settledSpool(spool);
    const first = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(first.json()).toMatchObject({ files: 1, results: [expect.objectContaining({ rejected: 1, rejectFile: join(done, "feed.jsonl.rejects.jsonl") })] });
    rmSync(join(done, "feed.jsonl")); // the operator archives the notice file, and looks at its rejects later
    drop(2);
    settledSpool(spool);
    const second = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(second.json()).toMatchObject({ files: 1, results: [expect.objectContaining({ rejected: 1 })] });
    const files = listFiles(done);
    expect(files).toEqual([expect.stringMatching(/^[0-9T-]+Z-feed\.jsonl$/), expect.stringMatching(/^[0-9T-]+Z-feed\.jsonl\.rejects\.jsonl$/), "feed.jsonl.rejects.jsonl"]);
    expect(files[1]).toBe(`${files[0]}.rejects.jsonl`);
    expect(second.json().results[0].rejectFile).toBe(join(done, files[1]!));
    expect(rejectedIds("feed.jsonl.rejects.jsonl")).toEqual(["T-11"]);
    expect(rejectedIds(files[1]!)).toEqual(["T-12"]);
    expect(listFiles(join(spool, "processing"))).toEqual([]);
  });
});

describe("the sample feed (fixtures/notices)", () => {
  it("ingests the CSV sample, and the JSON Lines sample is then all duplicates", async () => {
    const root = join(import.meta.dirname, "../..");
    const wsDir = join(dir, "sample-ws");
    expect((await cli(["--workspace", wsDir, "ca", "init", "-p", "13", "--purpose", "signature"], { cwd: dir })).code).toBe(0);
    expect((await cli(["--workspace", wsDir, "registry", "import", join(root, "fixtures/registry/residents.sample.jsonl")], { cwd: dir })).code).toBe(0);
    const csv = await cli(["--workspace", wsDir, "notices", "ingest", join(root, "fixtures/notices/notices.sample.csv"), "--json"], { cwd: dir });
    expect(csv.code, csv.stderr).toBe(0);
    expect(csv.json()).toMatchObject({ rejected: 0 });
    const jsonl = await cli(["--workspace", wsDir, "notices", "ingest", join(root, "fixtures/notices/notices.sample.jsonl"), "--json"], { cwd: dir });
    expect(jsonl.json()).toMatchObject({ duplicates: csv.json().read, applied: 0 });
    const bad = await cli(["--workspace", wsDir, "notices", "ingest", join(root, "fixtures/notices/bad-notices.jsonl"), "--json"], { cwd: dir });
    expect(bad.code).toBe(8);
    expect(bad.json().rejectFile.startsWith(join(wsDir, "rejects"))).toBe(true);
  });
});

describe("jpki registry apply after a resident-code change", () => {
  it("a death still filed under the old code, in one file and in the next run: both sides follow the person to the new code, and issuance there is refused", async () => {
    for (const [i, split] of [[6, false], [7, true]] as const) {
      const r = residents[i]!;
      const newCode = makeResidentCode(`000000077${i}`);
      const change = notice(10 * i + 1, r, "resident-code-change", 1, { newResidentCode: newCode });
      const death = notice(10 * i + 2, r, "death", 2); // the registry filed it under the code it had recorded first
      for (const [k, feed] of (split ? [[change], [death]] : [[change, death]]).entries()) {
        const file = writeJsonl(join(dir, `moved-${i}-${k}.jsonl`), feed);
        const applied = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
        expect(applied.json()).toMatchObject({ applied: feed.length, skipped: 0, errors: [] });
        expect((await cli([...w(), "notices", "ingest", file, "--json"], { cwd: dir })).json()).toMatchObject({ applied: feed.length, rejected: 0 });
      }
      const shown = async (code: string) => (await cli([...w(), "registry", "show", code, "--json"], { cwd: dir })).json();
      expect(await shown(newCode)).toMatchObject({ residentCode: newCode, status: "deceased" });
      expect(await shown(r.residentCode!)).toMatchObject({ status: "removed", successorCode: newCode });
      // not 'registry behind' (the CA side's death is reflected): the record is closed, for good
      const issued = await cli([...w(), "issue", "--resident", newCode, "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
      expect(issued.code).toBe(7);
      expect(issued.stderr).toContain("ERR_RESIDENT_NOT_ELIGIBLE");
    }
  });
});

  it("a certificate issued under the new code before the CA side took the change does not block it: the change relinks, the new certificate supersedes the old, a later death revokes them all", async () => {
    const r = residents[9]!;
    const newCode = makeResidentCode("0000000996");
    const old = certs.get(r.residentCode!)!;
    // The registry takes the change first and the counter issues under the new code; the CA side hears of it later.
    const change = writeJsonl(join(dir, "change.jsonl"), [notice(91, r, "resident-code-change", 1, { newResidentCode: newCode })]);
    expect((await cli([...w(), "registry", "apply", change, "--json"], { cwd: dir })).json()).toMatchObject({ applied: 1 });
    const issued = await cli([...w(), "issue", "--resident", newCode, "--type", "signature", "--public-key", join(dir, "card.pub.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const renewed = issued.json().serial as string;
    // Before: refused as ERR_RESIDENT_CODE_IN_USE (the new code held a certificate), so the old code's two
    // certificates stayed valid and unlinked, and the death below revoked only the renewed one.
    const ingested = await cli([...w(), "notices", "ingest", change, "--json"], { cwd: dir });
    expect(ingested.code, ingested.stderr).toBe(0);
    expect(ingested.json()).toMatchObject({ applied: 1, rejected: 0, revocationsByReason: { superseded: 1 } });
    let rev = new Map((await state()).map((x) => [x.serial, x]));
    expect(rev.get(old.signature)).toMatchObject({ reason: 4, source: "notice:T-91" });
    expect(rev.get(old.authentication)).toBeUndefined(); // kept: nothing of its type was issued under the new code
    expect(rev.get(renewed)).toBeUndefined();
    const death = writeJsonl(join(dir, "death.jsonl"), [{ ...notice(92, r, "death", 2), residentCode: newCode }]);
    expect((await cli([...w(), "notices", "ingest", death, "--json"], { cwd: dir })).json()).toMatchObject({ applied: 1, revocationsByReason: { cessationOfOperation: 2 } });
    rev = new Map((await state()).map((x) => [x.serial, x]));
    expect(rev.get(old.authentication)).toMatchObject({ reason: 5, source: "notice:T-92" });
    expect(rev.get(renewed)).toMatchObject({ reason: 5, source: "notice:T-92" });
  });

describe("jpki registry apply ordering", () => {
  it("keeps the newest state when an older notice arrives after a newer one, and re-applying changes nothing", async () => {
    const r = residents[0]!;
    const renamed = { ...itemsOf(r), name: "山本　" + itemsOf(r).name.split("　")[1] };
    const file = writeJsonl(join(dir, "out-of-order.jsonl"), [
      notice(2, r, "name-change", 2, { after: renamed }),
      notice(1, r, "correction", 1, { after: itemsOf(r) }), // older: re-states the old name
    ]);
    const res = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
    expect(res.json()).toMatchObject({ read: 2, applied: 1, skipped: 1 });
    const shown = await cli([...w(), "registry", "show", r.residentCode!, "--json"], { cwd: dir });
    expect(shown.json().fourItems.name).toBe(renamed.name);
    const again = await cli([...w(), "registry", "apply", file, "--json"], { cwd: dir });
    expect(again.json()).toMatchObject({ applied: 0, skipped: 2 });
  });
});

describe("jpki fixtures generate", () => {
  it("writes the same population and feed for the same seed, and the feed ingests cleanly", async () => {
    const a = await cli(["fixtures", "generate", "--residents", "400", "--notices", "150", "--seed", "42", "-o", "a", "--json"], { cwd: dir });
    const b = await cli(["fixtures", "generate", "--residents", "400", "--notices", "150", "--seed", "42", "-o", "b"], { cwd: dir });
    const c = await cli(["fixtures", "generate", "--residents", "400", "--notices", "150", "--seed", "43", "-o", "c"], { cwd: dir });
    expect([a.code, b.code, c.code]).toEqual([0, 0, 0]);
    expect(a.json()).toMatchObject({ residents: { count: 400 }, notices: { count: 150 } });
    for (const f of ["residents.jsonl", "notices.jsonl"]) {
      expect(readFileSync(join(dir, "a", f))).toEqual(readFileSync(join(dir, "b", f)));
      expect(readFileSync(join(dir, "a", f))).not.toEqual(readFileSync(join(dir, "c", f)));
    }
    const wsDir = join(dir, "fx-ws");
    expect((await cli(["--workspace", wsDir, "ca", "init", "-p", "13", "--purpose", "signature"], { cwd: dir })).code).toBe(0);
    expect((await cli(["--workspace", wsDir, "registry", "import", join(dir, "a", "residents.jsonl")], { cwd: dir })).code).toBe(0);
    const ing = await cli(["--workspace", wsDir, "notices", "ingest", join(dir, "a", "notices.jsonl"), "--json"], { cwd: dir });
    expect(ing.code, ing.stderr).toBe(0);
    expect(ing.json()).toMatchObject({ read: 150, applied: 150, rejected: 0 });
    const reg = await cli(["--workspace", wsDir, "registry", "apply", join(dir, "a", "notices.jsonl"), "--json"], { cwd: dir });
    expect(reg.json()).toMatchObject({ read: 150, applied: 150 });
  }, 120_000);
});
