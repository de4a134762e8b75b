/**
 * A day at the municipal counter (市町村窓口), issue 12 point 1: hundreds of procedures on a fixtures population
 * where some residents hold certificates and others do not. The registry side sends notices only for
 * certificate holders; after ingestion exactly the certificates the event→effect table names are revoked
 * (shared/spec/JPKI.md "Registry event → effect"), checked against a model written here from the table.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { sameCertifiedItems } from "../../src/profile/four-items.js";
import type { FourItems } from "../../src/profile/types.js";
import { generateNotices, generateResidents } from "../../src/registry/fixtures.js";
import { runProcedures } from "../../src/registry/counter.js";
import { deliverOutbox } from "../../src/registry/counter-link.js";
import { CrlUpdater } from "../../src/crl/updater.js";
import type { ChangeNoticeInput } from "../../src/registry/notice.js";
import type { ResidentInput } from "../../src/registry/resident.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { childOutput } from "../child-output.js";
import { cardKey, cardKeys, cli, MAIN, openWorkspace, settledSpool, storeEnv, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

type Type = "signature" | "authentication";
interface Cert {
  serial: string;
  type: Type;
  items: FourItems;
}

let dir: string;
let ws: string;
let residents: ResidentInput[];
const w = () => ["--workspace", ws];
/** serials per resident code, as issued */
const issued = new Map<string, Cert[]>();

function itemsOf(r: ResidentInput): FourItems {
  return { name: r.name!, address: r.address, birthDate: r.birthDate, gender: r.gender as FourItems["gender"] };
}

/** A generated notice as the counter procedure that would cause it. */
function procedureOf(n: ChangeNoticeInput): Record<string, unknown> {
  const base = { residentCode: n.residentCode };
  switch (n.kind) {
    case "relocation":
      return { ...base, kind: "relocate", address: n.after!.address };
    case "move-out":
    case "move-in":
      return { ...base, kind: n.kind, municipality: n.newMunicipalityCode, address: n.after!.address };
    case "name-change":
      return { ...base, kind: "rename", name: n.after!.name };
    case "correction":
      return { ...base, kind: "correct", ...n.after };
    case "death":
      return { ...base, kind: "death" };
    case "removal":
      return { ...base, kind: "remove" };
    case "resident-code-change":
      return { ...base, kind: "change-code", newCode: n.newResidentCode };
  }
}

beforeAll(async () => {
  dir = tempDir("jpki-counter-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  residents = [...generateResidents({ count: 160, seed: "counter", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli([...w(), "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const pub = readFileSync(cardKey(dir, "card").pub, "utf8");
  // 50 hold both certificates, 20 only the authentication one, the other 90 none
  const key = cardKeys(pub);
  const apps = residents.slice(0, 70).flatMap((r, i) => (i < 50 ? ["signature", "authentication"] : ["authentication"]).map((type) => ({ residentCode: r.residentCode, type, publicKey: key() })));
  writeJsonl(join(dir, "apps.jsonl"), apps);
  const iss = await cli([...w(), "issue", "--batch", join(dir, "apps.jsonl"), "--out-dir", join(dir, "certs"), "--json"], { cwd: dir });
  expect(iss.code, iss.stderr).toBe(0);
  const s = await openWorkspace(ws);
  try {
    for (const r of residents.slice(0, 70)) {
      const reg = await s.store.registeredIssuances(r.residentCode);
      // registered with the registry side at issuance, as certified
      expect(reg.length).toBe(residents.indexOf(r) < 50 ? 2 : 1);
      for (const x of reg) expect(x.fourItems).toEqual(itemsOf(r));
      issued.set(r.residentCode, reg.map((x) => ({ serial: x.serial, type: x.type, items: x.fourItems })));
    }
    expect(await s.store.registeredIssuances(residents[100]!.residentCode)).toEqual([]);
  } finally {
    await s.close();
  }
});

describe("jpki counter", () => {
  it("a day at the counter: notices only for certificate holders, and exactly the certificates the event→effect table names are revoked", async () => {
    const notices = [...generateNotices({ residents, count: 400, seed: "counter-day" })];
    const procedures = notices.map(procedureOf);
    writeJsonl(join(dir, "day.jsonl"), procedures);

    // The model, from the spec's table: per resident code its items, whether its record is open, and the CA's
    // unrevoked certificates; the registry's registered ones (this run ingests after the day, so none leaves).
    const items = new Map(residents.map((r) => [r.residentCode, itemsOf(r)]));
    const open = new Set(residents.map((r) => r.residentCode));
    const unrevoked = new Map([...issued].map(([k, v]) => [k, [...v]]));
    const registered = new Map([...issued].map(([k, v]) => [k, [...v]]));
    const expected = new Map<string, number>(); // serial → CRLReason
    const noticeDue: boolean[] = [];
    const sequence = new Map<string, number>(); // notices sent per resident (under a later code after a change)
    for (const n of notices) {
      const code = n.residentCode;
      expect(open.has(code)).toBe(true); // the generator never names a closed record
      const after = n.after ?? items.get(code)!;
      const affects = (c: Cert) =>
        n.kind === "death" || n.kind === "removal" ? true : n.kind === "resident-code-change" ? false : c.type === "signature" && !sameCertifiedItems(c.items, after);
      // a resident-code change is sent, certificates or not, once the CA side has had a notice of the resident
      const due = (registered.get(code) ?? []).some(affects) || (n.kind === "resident-code-change" && ((registered.get(code) ?? []).length > 0 || (sequence.get(code) ?? 0) > 0));
      noticeDue.push(due);
      if (due) sequence.set(code, (sequence.get(code) ?? 0) + 1);
      for (const c of unrevoked.get(code) ?? []) if (affects(c)) expected.set(c.serial, n.kind === "death" || n.kind === "removal" ? 5 : 3);
      unrevoked.set(code, (unrevoked.get(code) ?? []).filter((c) => !affects(c)));
      items.set(code, after);
      if (n.kind === "death" || n.kind === "removal") open.delete(code);
      if (n.kind === "resident-code-change") {
        const to = n.newResidentCode!;
        for (const m of [items, unrevoked, registered, sequence] as Array<Map<string, unknown>>) {
          if (m.has(code)) (m.set(to, m.get(code)), m.delete(code));
        }
        open.delete(code);
        open.add(to);
      }
    }
    // the day has everything: holders and non-holders, each kind, notices that revoke and ones that cannot
    expect(new Set(notices.map((n) => n.kind)).size).toBe(8);
    expect(noticeDue.filter(Boolean).length).toBeGreaterThan(20);
    expect(noticeDue.filter((x) => !x).length).toBeGreaterThan(200);

    const r = await cli([...w(), "counter", "batch", join(dir, "day.jsonl"), "--ingest", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json<{ done: Array<{ kind: string; residentCode: string; notice: string | null }>; errors: unknown[]; ingest: { applied: number; rejected: number; held: number } }>();
    expect(out.errors).toEqual([]);
    expect(out.done.length).toBe(procedures.length);
    // a notice exactly where a registered certificate is affected: never for a resident without one
    expect(out.done.map((d) => d.notice !== null)).toEqual(noticeDue);
    const holders = new Set(issued.keys());
    for (const [i, d] of out.done.entries()) {
      if (d.notice === null) continue;
      // the resident (under a later code after a change) was issued a certificate
      const original = notices.slice(0, i + 1).reduceRight((code, n) => (n.kind === "resident-code-change" && n.newResidentCode === code ? n.residentCode : code), d.residentCode);
      expect(holders.has(original), `notice ${d.notice} names a resident without a certificate`).toBe(true);
    }
    // every notice the CA side got was in sequence (none held) and accepted
    expect(out.ingest).toMatchObject({ applied: noticeDue.filter(Boolean).length, rejected: 0, held: 0 });

    const s = await openWorkspace(ws);
    try {
      const revoked = (await s.store.revocationSummary()).filter((x) => x.source.startsWith("notice:"));
      expect(new Map(revoked.map((x) => [x.serial, x.reason]))).toEqual(expected);
      // what the CA revoked is no longer registered with the registry side; what it kept still is, under the
      // resident's current code
      for (const [code, certs] of unrevoked) {
        expect((await s.store.registeredIssuances(code)).map((x) => x.serial).sort(), code).toEqual(certs.map((c) => c.serial).sort());
      }
    } finally {
      await s.close();
    }
  });

  it("spools a holder's notice for jpki watch; a non-holder's change and an unaffected holder's send nothing", async () => {
    const s0 = await openWorkspace(ws);
    // someone still holding a signature certificate, someone holding only an authentication one, someone with none
    let sigHolder: string | undefined;
    let authOnly: string | undefined;
    let none: string | undefined;
    try {
      for (const r of residents) {
        const rec = await s0.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        const reg = await s0.store.registeredIssuances(r.residentCode);
        if (!sigHolder && reg.some((x) => x.type === "signature")) sigHolder = r.residentCode;
        else if (!authOnly && reg.length && reg.every((x) => x.type === "authentication")) authOnly = r.residentCode;
        else if (!none && reg.length === 0 && !issued.has(r.residentCode)) none = r.residentCode;
      }
    } finally {
      await s0.close();
    }
    expect([sigHolder, authOnly, none].every(Boolean)).toBe(true);
    const address = "東京都千代田区千代田９番９号";
    for (const code of [none!, authOnly!]) {
      const r = await cli([...w(), "counter", "relocate", "--resident", code, "--address", address, "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().done[0].notice).toBeNull();
      expect(r.json().spooled).toBeNull();
    }
    const spool = join(ws, "spool");
    expect(existsSync(spool) ? readdirSync(spool).filter((f) => f.endsWith(".jsonl")) : []).toEqual([]);
    const r = await cli([...w(), "counter", "relocate", "--resident", sigHolder!, "--address", address, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const file = r.json().spooled as string;
    expect(file.startsWith(spool)).toBe(true);
    const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ residentCode: sigHolder, kind: "relocation", after: { address } });
    expect(lines[0].before.address).not.toBe(address); // the items as certified at issuance
    const sig = (await cli([...w(), "registry", "show", sigHolder!, "--json"], { cwd: dir })).json().certificates.find((c: { type: string; revoked?: unknown; status?: string }) => c.type === "signature");
    settledSpool(spool);
    const watch = await cli([...w(), "watch", spool, "--once", "--json"], { cwd: dir });
    expect(watch.code, watch.stderr).toBe(0);
    const s = await openWorkspace(ws);
    try {
      expect((await s.store.getCertificate(sig.serial))?.revocation).toMatchObject({ reason: 3, source: `notice:${lines[0].noticeId}` });
      expect((await s.store.registeredIssuances(sigHolder!)).map((x) => x.type)).toEqual(["authentication"]);
      // the record changed for all three, through the registry's store path
      for (const code of [none!, authOnly!, sigHolder!]) expect((await s.store.getResident(code))?.fourItems.address).toBe(address);
    } finally {
      await s.close();
    }
  });

  it("a counter killed (SIGKILL) after its commit and before delivery loses no notice: the next command delivers it and the certificate is revoked once", async () => {
    // two residents still holding a registered signature certificate, and one without any certificate
    const s0 = await openWorkspace(ws);
    const holders: Array<{ code: string; serial: string }> = [];
    let none = "";
    try {
      for (const r of residents) {
        const rec = await s0.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        const sig = (await s0.store.registeredIssuances(r.residentCode)).find((x) => x.type === "signature");
        if (sig && holders.length < 2) holders.push({ code: r.residentCode, serial: sig.serial });
        else if (!none && !issued.has(r.residentCode)) none = r.residentCode;
      }
      expect(await s0.store.pendingOutbox(10)).toEqual([]);
    } finally {
      await s0.close();
    }
    expect(holders.length === 2 && none !== "").toBe(true);
    const address = "東京都千代田区千代田８番８号";

    /** Runs `jpki counter ARGS` as its own process, halted once its transaction committed, and SIGKILLs it there. */
    const killAfterCommit = async (args: string[]) => {
      const halt = join(dir, `halt-${Date.now()}-${Math.random().toString(36).slice(2)}`);
      const child = spawn(process.execPath, [MAIN, "--workspace", ws, "counter", ...args], {
        env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)), JPKI_TEST_COUNTER_HALT: halt },
      });
      const out = childOutput(child);
      const exited = out.ended.then(({ code, signal }) => signal ?? code);
      let done = false;
      void exited.then(() => (done = true));
      while (!existsSync(halt) && !done) await new Promise((r) => setTimeout(r, 20));
      expect(done, `the counter exited before it committed: ${out.stderr()}`).toBe(false);
      child.kill("SIGKILL");
      expect(await exited).toBe("SIGKILL");
    };
    const revocationOf = async (serial: string) => {
      const s = await openWorkspace(ws);
      try {
        return (await s.store.getCertificate(serial))?.revocation;
      } finally {
        await s.close();
      }
    };

    // 1. killed between the commit and the ingestion: the record changed, the notice waits in the outbox
    await killAfterCommit(["relocate", "--resident", holders[0]!.code, "--address", address, "--ingest", "--no-crl"]);
    const s1 = await openWorkspace(ws);
    let pending;
    try {
      expect((await s1.store.getResident(holders[0]!.code))?.fourItems.address).toBe(address);
      pending = await s1.store.pendingOutbox(10);
    } finally {
      await s1.close();
    }
    expect(pending.map((p) => p.residentCode)).toEqual([holders[0]!.code]);
    expect(await revocationOf(holders[0]!.serial)).toBeUndefined();
    const deliver = await cli([...w(), "counter", "deliver", "--ingest", "--json"], { cwd: dir });
    expect(deliver.code, deliver.stderr).toBe(0);
    expect(deliver.json()).toMatchObject({ delivered: 1, ingest: { applied: 1, rejected: 0, revocations: 1 } });
    expect(await revocationOf(holders[0]!.serial)).toMatchObject({ reason: 3, source: `notice:${pending[0]!.noticeId}` });
    expect((await cli([...w(), "counter", "deliver", "--ingest", "--json"], { cwd: dir })).json()).toMatchObject({ delivered: 0 });
    // at least once is safe: the same notice delivered again (a deliverer killed after ingesting, before its
    // acknowledgement) is a duplicate for the CA side, not an error, and revokes nothing more
    const again = writeJsonl(join(dir, "again.jsonl"), [pending[0]!.body]);
    const dup = await cli([...w(), "notices", "ingest", again, "--no-crl", "--json"], { cwd: dir });
    expect(dup.code, dup.stderr).toBe(0);
    expect(dup.json()).toMatchObject({ applied: 0, duplicates: 1, rejected: 0, revocations: 0 });

    // 2. killed before spooling: the next procedure, another resident's, delivers the earlier notice first
    await killAfterCommit(["relocate", "--resident", holders[1]!.code, "--address", address]);
    const next = await cli([...w(), "counter", "relocate", "--resident", none, "--address", address, "--json"], { cwd: dir });
    expect(next.code, next.stderr).toBe(0);
    const out = next.json();
    expect(out).toMatchObject({ delivered: { earlier: 1, now: 0 }, spooled: null });
    expect(out.done[0].notice).toBeNull();
    const lines = readFileSync(out.spoolFiles[0], "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.residentCode, l.kind])).toEqual([[holders[1]!.code, "relocation"]]);
    settledSpool(join(ws, "spool"));
    expect((await cli([...w(), "watch", join(ws, "spool"), "--once", "--json"], { cwd: dir })).code).toBe(0);
    expect(await revocationOf(holders[1]!.serial)).toMatchObject({ reason: 3, source: `notice:${lines[0].noticeId}` });
  });

  it("a delivery that fails after the commit says the procedure is done and keeps its notice for jpki counter deliver", async () => {
    const s0 = await openWorkspace(ws);
    let holder: { code: string; serials: string[] } | undefined;
    try {
      for (const r of residents) {
        if (holder) break;
        const rec = await s0.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        const reg = await s0.store.registeredIssuances(r.residentCode);
        if (reg.length) holder = { code: r.residentCode, serials: reg.map((x) => x.serial) };
      }
    } finally {
      await s0.close();
    }
    expect(holder).toBeDefined();
    // The spool is a directory when the command checks it; once the record's transaction has committed (the
    // command halted there) it is swapped for a file, so the spooling then fails.
    const notADir = join(dir, "not-a-dir");
    mkdirSync(notADir);
    const halt = join(dir, `halt-${Date.now()}`);
    const child = spawn(process.execPath, [MAIN, "--workspace", ws, "counter", "death", "--resident", holder!.code, "--spool", notADir], {
      env: { ...process.env, JPKI_PASSPHRASE: "correct horse", ...(await storeEnv(ws)), JPKI_TEST_COUNTER_HALT: halt },
    });
    // its end once its stderr is read (child-output.ts): the error checked next may come after the exit
    const out = childOutput(child);
    const exited = out.ended.then(({ code }) => code);
    let done = false;
    void exited.then(() => (done = true));
    while (!existsSync(halt) && !done) await new Promise((r) => setTimeout(r, 20));
    expect(done, `the counter exited before it committed: ${out.stderr()}`).toBe(false);
    rmSync(notADir, { recursive: true });
    writeJsonl(notADir, []);
    writeFileSync(`${halt}.release`, "");
    const code = await exited;
    const stderr = out.stderr();
    expect(code, stderr).toBe(13);
    expect(stderr).toContain("ERR_NOTICES_UNDELIVERED");
    expect(stderr).toContain("jpki counter deliver");
    const s1 = await openWorkspace(ws);
    try {
      expect((await s1.store.getResident(holder!.code))?.status).toBe("deceased");
      expect((await s1.store.pendingOutbox(10)).map((p) => p.residentCode)).toEqual([holder!.code]);
    } finally {
      await s1.close();
    }
    // delivering again to the same non-directory: told so up front (no stack trace), the notice still pending
    const again = await cli([...w(), "counter", "deliver", "--spool", notADir], { cwd: dir });
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("ERR_FILE_UNUSABLE");
    expect(again.stderr).not.toMatch(/ERR_INTERNAL|\n\s+at /);
    const d = await cli([...w(), "counter", "deliver", "--ingest", "--no-crl", "--json"], { cwd: dir });
    expect(d.code, d.stderr).toBe(0);
    expect(d.json()).toMatchObject({ delivered: 1, ingest: { applied: 1, revocations: holder!.serials.length } });
  });

  it("a --spool that can take no notice is refused before the procedure runs (exit 2): the record and the outbox stay as they were", async () => {
    const s0 = await openWorkspace(ws);
    let holder: { code: string; address: string } | undefined;
    try {
      for (const r of residents) {
        const rec = await s0.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        if ((await s0.store.registeredIssuances(r.residentCode)).some((x) => x.type === "signature")) {
          holder = { code: r.residentCode, address: rec.fourItems.address };
          break;
        }
      }
      expect(await s0.store.pendingOutbox(10)).toEqual([]);
    } finally {
      await s0.close();
    }
    expect(holder).toBeDefined();
    const file = writeJsonl(join(dir, "spool-is-a-file"), []);
    // Was: the record changed, then the spooling failed (ERR_NOTICES_UNDELIVERED, exit 13) or, under /proc, hung.
    for (const spool of [file, join(file, "sub"), "/sys/jpki-test-spool"]) {
      const r = await cli([...w(), "counter", "relocate", "--resident", holder!.code, "--address", "東京都千代田区千代田９番９号", "--spool", spool], { cwd: dir });
      expect(r.stderr, spool).toContain("[ERR_FILE_UNUSABLE]");
      expect(r.stderr).toContain(`spool directory --spool ${spool}: `);
      expect(r.code).toBe(2);
      expect(r.stderr).not.toMatch(/ERR_INTERNAL|ERR_NOTICES_UNDELIVERED|\n\s+at /);
    }
    const s1 = await openWorkspace(ws);
    try {
      expect((await s1.store.getResident(holder!.code))?.fourItems.address).toBe(holder!.address);
      expect(await s1.store.pendingOutbox(10)).toEqual([]);
    } finally {
      await s1.close();
    }
  });

  it("two deliverers draining the outbox at once: each notice is applied once and nothing stays pending", async () => {
    const s0 = await openWorkspace(ws);
    const holders: Array<{ code: string; serials: string[] }> = [];
    try {
      for (const r of residents) {
        const rec = await s0.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        const reg = await s0.store.registeredIssuances(r.residentCode);
        if (reg.length && holders.length < 3) holders.push({ code: r.residentCode, serials: reg.map((x) => x.serial) });
      }
      expect(holders.length).toBe(3);
      // decided and enqueued, not delivered: what killed counters leave behind
      const r = await runProcedures(s0.store, holders.map((h) => ({ kind: "death" as const, residentCode: h.code })), { now: s0.clock.now() });
      expect(r.notices.length).toBe(holders.length);
      expect((await s0.store.pendingOutbox(10)).length).toBe(holders.length);
    } finally {
      await s0.close();
    }
    const both = await Promise.all([0, 1].map(() => cli([...w(), "counter", "deliver", "--ingest", "--no-crl", "--json"], { cwd: dir })));
    for (const d of both) expect(d.code, d.stderr).toBe(0);
    const outs = both.map((d) => d.json<{ delivered: number; ingest?: { applied: number; duplicates: number; rejected: number } }>());
    // each notice went out at least once; whatever went out twice was a duplicate for the CA side
    expect(outs.reduce((n, o) => n + o.delivered, 0)).toBeGreaterThanOrEqual(holders.length);
    expect(outs.reduce((n, o) => n + (o.ingest?.applied ?? 0), 0)).toBe(holders.length);
    expect(outs.reduce((n, o) => n + (o.ingest?.rejected ?? 0), 0)).toBe(0);
    const s = await openWorkspace(ws);
    try {
      expect(await s.store.pendingOutbox(10)).toEqual([]);
      for (const h of holders) {
        for (const serial of h.serials) {
          // the counter's notice id, which names no resident (registry/counter.ts counterNoticeId)
          expect((await s.store.getCertificate(serial))?.revocation, h.code).toMatchObject({ reason: 5, source: expect.stringMatching(/^notice:ctr:v2:[0-9a-f]{32}$/) });
        }
      }
    } finally {
      await s.close();
    }
  });

  it("a delivery whose CRL fails after its notices were applied sends them again: duplicates, no second revocation or audit record", async () => {
    const s = await openWorkspace(ws);
    try {
      const holders: Array<{ code: string; serials: string[] }> = [];
      for (const r of residents) {
        const rec = await s.store.getResident(r.residentCode);
        if (rec?.status !== "active" || rec.municipalityCode.slice(0, 2) !== "13") continue;
        const reg = await s.store.registeredIssuances(r.residentCode);
        if (reg.length && holders.length < 2) holders.push({ code: r.residentCode, serials: reg.map((x) => x.serial) });
      }
      expect(holders.length).toBe(2);
      const serials = holders.flatMap((h) => h.serials);
      const afterSeq = (await s.store.auditHead())?.seq ?? 0;
      await runProcedures(s.store, holders.map((h) => ({ kind: "death" as const, residentCode: h.code })), { now: s.clock.now() });
      // the CRL cannot be published (a full disk) once the notices are applied: the delivery fails before it acknowledges
      const failing = new CrlUpdater(s, "correct horse");
      failing.regenerateDirty = () => Promise.reject(Object.assign(new Error("no space left on device"), { code: "ENOSPC" }));
      await expect(deliverOutbox(s, { ingest: true, updater: failing })).rejects.toThrow("no space left on device");
      expect((await s.store.pendingOutbox(10)).length).toBe(2);
      const first = await Promise.all(serials.map(async (x) => (await s.store.getCertificate(x))?.revocation));
      expect(first.every((r) => r?.reason === 5)).toBe(true);
      // sent again (the next counter command, or 'jpki counter deliver'): the CA side holds those notice ids already
      const again = await deliverOutbox(s, { ingest: true, updater: new CrlUpdater(s, "correct horse") });
      expect(again.delivered).toBe(2);
      expect(again.ingested[0]).toMatchObject({ applied: 0, duplicates: 2, rejected: 0, rejectFile: null });
      // and no revocation is left unpublished (what the failed CRL would have listed is out, by one run or the other)
      expect(await s.store.dirtyCas()).toEqual([]);
      expect(await s.store.pendingOutbox(10)).toEqual([]);
      // each certificate revoked once, as the first delivery revoked it
      expect(await Promise.all(serials.map(async (x) => (await s.store.getCertificate(x))?.revocation))).toEqual(first);
      // one notice batch in the audit log, naming each revocation once; no other record names them
      const records = [];
      for await (const r of s.store.auditRecords({ afterSeq })) records.push(r);
      expect(records.filter((r) => r.action === "notice.batch")).toHaveLength(1);
      for (const serial of serials) expect(records.filter((r) => r.detail.includes(serial)).map((r) => r.action)).toEqual(["notice.batch"]);
    } finally {
      await s.close();
    }
  });

  it("refuses a procedure while the CA side has applied notices the registry has not (ERR_REGISTRY_BEHIND), changing nothing", async () => {
    const s0 = await openWorkspace(ws);
    let code = "";
    for (const r of residents.slice(100).reverse()) if ((await s0.store.getResident(r.residentCode))?.status === "active") (code ||= r.residentCode);
    const before = (await s0.store.getResident(code))!;
    await s0.close();
    // Another feed's notice reaches the CA side; the registry has not applied it yet.
    const corrected = { ...before.fourItems, birthDate: "1950-01-02" === before.fourItems.birthDate ? "1950-01-03" : "1950-01-02" };
    const ext = writeJsonl(join(dir, "behind.jsonl"), [{ noticeId: "BEHIND-1", residentCode: code, kind: "correction", effectiveDate: "2026-01-05", sequence: 1, municipalityCode: before.municipalityCode, after: corrected }]);
    const ing = await cli([...w(), "notices", "ingest", ext, "--no-crl", "--json"], { cwd: dir });
    expect(ing.json()).toMatchObject({ applied: 1, rejected: 0 });
    // Done now, the relocation would be overwritten by that older notice when the registry applies it (its sequence
    // is still ahead of the record's): the counter's change lost without a word.
    const address = `${before.fourItems.address}別館`;
    const r = await cli([...w(), "counter", "relocate", "--resident", code, "--address", address], { cwd: dir });
    expect(r.code).toBe(7);
    expect(r.stderr).toContain("ERR_REGISTRY_BEHIND");
    const s = await openWorkspace(ws);
    try {
      expect(await s.store.getResident(code)).toEqual(before);
    } finally {
      await s.close();
    }
    // Once the registry has caught up, the procedure goes through and stays.
    expect((await cli([...w(), "registry", "apply", ext], { cwd: dir })).code).toBe(0);
    const again = await cli([...w(), "counter", "relocate", "--resident", code, "--address", address], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
  });

  it("refuses a procedure that does not fit the record, changing nothing", async () => {
    const s0 = await openWorkspace(ws);
    let code = "";
    for (const r of residents.slice(100)) if ((await s0.store.getResident(r.residentCode))?.status === "active") (code ||= r.residentCode);
    const before = await s0.store.getResident(code);
    await s0.close();
    const bad = await cli([...w(), "counter", "move-in", "--resident", code, "--municipality", before!.municipalityCode, "--address", before!.fourItems.address], { cwd: dir });
    expect(bad.code).toBe(7);
    expect(bad.stderr).toContain("ERR_COUNTER_PROCEDURE_INVALID");
    const unknown = await cli([...w(), "counter", "death", "--resident", makeResidentCode("9999999999")], { cwd: dir });
    expect(unknown.stderr).toContain("ERR_RESIDENT_UNKNOWN");
    writeFileSync(join(dir, "bad.jsonl"), JSON.stringify({ kind: "rename", residentCode: code, address: "x" }) + "\n");
    const batch = await cli([...w(), "counter", "batch", join(dir, "bad.jsonl")], { cwd: dir });
    expect(batch.stderr).toContain("ERR_COUNTER_PROCEDURE_INVALID");
    const s = await openWorkspace(ws);
    try {
      expect(await s.store.getResident(code)).toEqual(before);
    } finally {
      await s.close();
    }
  });

  it("--ingest names each CRL it regenerated with its scope, as 'notices ingest' does (the partition is not a second full CRL)", async () => {
    const d = tempDir("jpki-counter-crls-");
    const wd = ["--workspace", join(d, "ws")];
    expect((await cli([...wd, "ca", "init", "-p", "13"], { cwd: d })).code).toBe(0);
    const A = makeResidentCode("5000000011");
    writeJsonl(join(d, "r.jsonl"), [{ residentCode: A, municipalityCode: "131016", name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-01-01", gender: "male" }]);
    expect((await cli([...wd, "registry", "import", join(d, "r.jsonl")], { cwd: d })).code).toBe(0);
    expect((await cli([...wd, "issue", "--resident", A, "--public-key", cardKey(d, "k1").pub, "-o", join(d, "c1.pem")], { cwd: d })).code).toBe(0);
    expect((await cli([...wd, "crl", "generate", "-p", "13", "--partitions"], { cwd: d })).code).toBe(0);
    const text = await cli([...wd, "counter", "relocate", "--resident", A, "--address", "東京都千代田区千代田２番１号", "--ingest"], { cwd: d });
    expect(text.code, text.stderr).toBe(0);
    const line = text.stdout.split("\n").find((l) => l.includes("CRLs regenerated"));
    expect(line).toMatch(/CRLs regenerated: 13-sig #\d+ \(1\), 13-sig\/131016 #\d+ \(1\)/);
    const renewed = await cli([...wd, "issue", "--resident", A, "--public-key", cardKey(d, "k2").pub, "-o", join(d, "c2.pem")], { cwd: d });
    expect(renewed.code, renewed.stderr).toBe(0);
    const moved = await cli([...wd, "counter", "relocate", "--resident", A, "--address", "東京都千代田区千代田３番１号", "--ingest", "--json"], { cwd: d });
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.json<{ ingest: { crls: unknown[] } }>().ingest.crls).toEqual([
      expect.objectContaining({ ca: "13-sig", scope: "full", entries: 2 }),
      expect.objectContaining({ ca: "13-sig", scope: "partition", municipality: "131016", entries: 2 }),
    ]);
  });

  it("a resident-code change of a resident whose certificates are all revoked still reaches the CA side: the new code's next notice revokes, not held", async () => {
    const d = tempDir("jpki-counter-code-");
    const wd = ["--workspace", join(d, "ws")];
    expect((await cli([...wd, "ca", "init", "-p", "13"], { cwd: d })).code).toBe(0);
    const A = makeResidentCode("5000000001");
    const B = makeResidentCode("5000000002");
    writeJsonl(join(d, "r.jsonl"), [{ residentCode: A, municipalityCode: "131016", name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-01-01", gender: "male" }]);
    expect((await cli([...wd, "registry", "import", join(d, "r.jsonl")], { cwd: d })).code).toBe(0);
    const [k1, k2] = [cardKey(d, "k1").pub, cardKey(d, "k2").pub];
    expect((await cli([...wd, "issue", "--resident", A, "--public-key", k1, "-o", join(d, "c1.pem")], { cwd: d })).code).toBe(0);
    // notice 1 revokes it: the CA side knows the resident at sequence 1; then nothing of theirs is valid
    const moved = await cli([...wd, "counter", "relocate", "--resident", A, "--address", "東京都千代田区千代田２番１号", "--ingest", "--json"], { cwd: d });
    expect(moved.code, moved.stderr).toBe(0);
    const change = await cli([...wd, "counter", "change-code", "--resident", A, "--new-code", B, "--ingest", "--json"], { cwd: d });
    expect(change.code, change.stderr).toBe(0);
    expect(change.json<{ done: Array<{ notice: string | null }> }>().done[0]!.notice).not.toBeNull();
    const c2 = await cli([...wd, "issue", "--resident", B, "--public-key", k2, "-o", join(d, "c2.pem"), "--json"], { cwd: d });
    expect(c2.code, c2.stderr).toBe(0);
    const serial = c2.json<{ serial: string }>().serial;
    // kept back, the change left the CA side without a sequence for B: this notice (2) was held waiting for 1
    const again = await cli([...wd, "counter", "relocate", "--resident", B, "--address", "東京都千代田区千代田３番１号", "--ingest", "--json"], { cwd: d });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json<{ ingest: { applied: number; held: number } }>().ingest).toMatchObject({ applied: 1, held: 0 });
    const s = await openWorkspace(join(d, "ws"));
    try {
      expect((await s.store.getCertificate(serial))?.revocation).toMatchObject({ reason: 3 });
    } finally {
      await s.close();
    }
  });
});
