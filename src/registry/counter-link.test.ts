/**
 * The counter's notices on their way to the CA side (registry/counter.ts, registry/counter-link.ts): their ids
 * keep resident codes out of the audit log (store/audit-ops.ts) and the revocations they cause, and delivery
 * stays idempotent under them, as under the ids issued before.
 */
import { generateKeyPairSync } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { FixedClock } from "../pki/clock.js";
import { Workspace } from "../workspace/workspace.js";
import { counterNoticeId, outboxEntry, recordDeath, relocate } from "./counter.js";
import { deliverOutbox, ingestNotices } from "./counter-link.js";
import { parseNotice } from "./notice.js";
import { makeResidentCode } from "./resident-code.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const spki = () => generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });

let clock: FixedClock;
let ws: Workspace;

beforeEach(async () => {
  clock = new FixedClock("2026-05-01T03:00:00Z");
  ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-counter-link-")), "ws"), { clock });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
});

/** A resident holding a signature certificate, registered with the registry side at issuance. */
async function holder(digits: string): Promise<{ code: string; serial: string }> {
  const code = makeResidentCode(digits);
  await ws.store.upsertResidents([{ residentCode: code, municipalityCode: "131016", status: "active", fourItems: items }]);
  const cert = await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode: code, type: "signature", publicKey: spki() });
  return { code, serial: cert.serial };
}

async function auditText(): Promise<string[]> {
  const out: string[] = [];
  for await (const r of ws.store.auditRecords()) out.push(`${r.action} ${r.subject} ${r.detail}`);
  return out;
}

describe("counter notice ids", () => {
  it("keep the resident code out of the audit log and the revocation's source", async () => {
    const h = await holder("0000000701");
    const done = await relocate(ws.store, h.code, "東京都千代田区千代田２番２号", { now: clock.now() });
    const id = done.notice!.noticeId;
    expect(id).toMatch(/^ctr:v2:[0-9a-f]{32}$/);
    const d = await deliverOutbox(ws, { ingest: true, updater: undefined });
    expect(d.ingested[0]).toMatchObject({ applied: 1, revocations: 1 });
    const revocation = (await ws.store.getCertificate(h.serial))?.revocation;
    expect(revocation).toMatchObject({ reason: 3, source: `notice:${id}` });
    expect(revocation!.source).not.toContain(h.code);
    const log = await auditText();
    // the records the procedure and its notice wrote: the registry change enqueuing it, the notice batch revoking
    expect(log.filter((l) => l.startsWith("registry.change ")).join("\n")).toContain(id);
    expect(log.filter((l) => l.startsWith("notice.batch ")).join("\n")).toContain(`notice:${id}`);
    for (const l of log) expect(l).not.toContain(h.code);
  });

  it("a rerun after a deliverer was killed between ingesting and acknowledging revokes once, under the same new id", async () => {
    const h = await holder("0000000702");
    const done = await recordDeath(ws.store, h.code, { now: clock.now() });
    const key = await ws.store.counterNoticeIdKey();
    expect(done.notice!.noticeId).toMatch(/^ctr:v2:[0-9a-f]{32}$/);
    // a function of the workspace's key and (code, sequence): decided again from the same state, the same id
    expect(done.notice!.noticeId).toBe(counterNoticeId(key, h.code, 1));
    expect((await ws.store.counterNoticeIdKey()).equals(key)).toBe(true);
    // killed after the CA side ingested the pending notice, before the outbox acknowledged it
    const pending = await ws.store.pendingOutbox(10);
    expect(pending.map((p) => p.noticeId)).toEqual([done.notice!.noticeId]);
    const first = await ingestNotices(ws, pending.map((p) => parseNotice(JSON.parse(p.body), { now: clock.now() })), undefined);
    expect(first).toMatchObject({ applied: 1, revocations: 1 });
    // the rerun delivers it again: a duplicate for the CA side, nothing more revoked, nothing left pending
    const again = await deliverOutbox(ws, { ingest: true, updater: undefined });
    expect(again.delivered).toBe(1);
    expect(again.ingested[0]).toMatchObject({ applied: 0, duplicates: 1, rejected: 0, revocations: 0 });
    expect(await ws.store.pendingOutbox(10)).toEqual([]);
    expect((await ws.store.getCertificate(h.serial))?.revocation).toMatchObject({ reason: 5, source: `notice:${done.notice!.noticeId}` });
    const revoking = (await auditText()).filter((l) => l.includes(`notice:${done.notice!.noticeId}`));
    expect(revoking).toHaveLength(1);
  });

  it("a notice enqueued under an old-scheme id (ctr:<code>:<sequence>) is still delivered, and a duplicate the second time", async () => {
    const h = await holder("0000000703");
    // what the counter enqueued before the keyed ids: the record changed and its notice pending, in one transaction
    const old = parseNotice({ noticeId: `ctr:${h.code}:1`, residentCode: h.code, kind: "death", effectiveDate: "2026-05-01", sequence: 1, municipalityCode: "131016", before: items }, { now: clock.now() });
    await ws.store.applyToRegistry((read) => {
      const r = read(h.code)!;
      return { put: [{ ...r, status: "deceased" as const, noticeSequence: 1 }], remove: [], enqueue: [outboxEntry(old, clock.now())], result: undefined };
    });
    const d = await deliverOutbox(ws, { ingest: true, updater: undefined });
    expect(d.ingested[0]).toMatchObject({ applied: 1, revocations: 1 });
    expect((await ws.store.getCertificate(h.serial))?.revocation).toMatchObject({ reason: 5, source: `notice:ctr:${h.code}:1` });
    const again = await ingestNotices(ws, [old], undefined);
    expect(again).toMatchObject({ applied: 0, duplicates: 1, revocations: 0 });
  });
});

describe("deliverOutbox to a spool", () => {
  it("that can take nothing is ERR_FILE_UNUSABLE whether or not a notice is pending, and the notice stays pending (was: nothing checked; a spool in /dev)", async () => {
    for (const spool of ["/proc/jpki-test-spool", "/dev/jpki-test-spool"]) {
      await expect(deliverOutbox(ws, { spool }), spool).rejects.toMatchObject({ code: "ERR_FILE_UNUSABLE" });
    }
    const h = await holder("0000000704");
    await relocate(ws.store, h.code, "東京都千代田区千代田２番２号", { now: clock.now() });
    const inDev = `/dev/jpki-test-spool-${process.pid}`;
    try {
      await expect(deliverOutbox(ws, { spool: inDev })).rejects.toMatchObject({ code: "ERR_FILE_UNUSABLE" });
      expect(existsSync(inDev)).toBe(false);
    } finally {
      rmSync(inDev, { recursive: true, force: true }); // what the old code wrote there
    }
    expect(await ws.store.pendingOutbox(10)).toHaveLength(1);
  });
});
