/**
 * Issue 7, point 1: every revocation reaches a published CRL without an operator, and a quiet workspace never
 * has an expired CRL. The clock is injected: a month of a watch daemon runs in a few seconds, and its idle
 * loop's sleep moves that clock instead of waiting. Issue 8: the same schedules (watch's and serve's) sweep the
 * registry side's issuance information daily, and nothing of the CRLs waits for it.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { revokeCertificate } from "../ca/revocation.js";
import { watchSpool, type WatchOptions } from "../ca/spool.js";
import Database from "better-sqlite3";
import { relocate } from "../registry/counter.js";
import { deliverOutbox } from "../registry/counter-link.js";
import type { IssuanceSweepEvent } from "../registry/issuance-sweep.js";
import { FixedClock } from "../pki/clock.js";
import { describeCrl } from "../profile/describe.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { FUTURE_CRL_TOLERANCE_MS, dueCrls } from "./schedule.js";
import { JpkiError } from "../errors.js";
import { openCrlSchedule } from "../server/serve.js";
import { CrlUpdater } from "./updater.js";
import { copyOfTemplate, tokyoCasTemplate } from "../../test/ca-template.js";

const HOUR = 3600_000;
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const spki = () => generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });

function onDisk(ws: Workspace, caId: string, file = `${caId}.crl`) {
  const d = describeCrl(readFileSync(join(ws.paths.crlDir, file)));
  return { number: BigInt(d.crlNumber!), nextUpdate: new Date(d.nextUpdate!), serials: d.entries.map((e) => e.serialNumber.toLowerCase()) };
}

describe("dueCrls (pure)", () => {
  const at = (h: number) => new Date(Date.UTC(2026, 0, 1) + h * HOUR);
  const latest = (thisH: number, nextH: number) => ({ caId: "13-sig", scope: "", state: "published" as const, number: 1n, thisUpdate: at(thisH), nextUpdate: at(nextH), entries: 0, path: "p", sha256: "s" });
  const opts = { intervalMs: 30_000, marginMs: 24 * HOUR };
  it("is due when missing, when dirty past the interval, and when nextUpdate is within the margin", () => {
    expect(dueCrls([{ caId: "13-sig", latest: undefined, dirty: false }], at(0), opts)).toEqual([{ caId: "13-sig", why: "missing" }]);
    expect(dueCrls([{ caId: "13-sig", latest: latest(0, 48), dirty: false }], at(23), opts)).toEqual([]);
    expect(dueCrls([{ caId: "13-sig", latest: latest(0, 48), dirty: false }], at(24), opts)).toEqual([{ caId: "13-sig", why: "refresh" }]);
    expect(dueCrls([{ caId: "13-sig", latest: latest(0, 48), dirty: true }], new Date(at(0).getTime() + 29_999), opts)).toEqual([]);
    expect(dueCrls([{ caId: "13-sig", latest: latest(0, 48), dirty: true }], new Date(at(0).getTime() + 30_000), opts)).toEqual([{ caId: "13-sig", why: "dirty" }]);
  });

  it("a clock stepped back behind the latest CRL's thisUpdate holds no revocation back until it catches up", () => {
    // published at 10:00 by a clock an hour fast; corrected, it reads 09:00 when a revocation comes
    const dirty = [{ caId: "13-sig", latest: latest(10, 58), dirty: true }, { caId: "13-sig", scope: "131016", latest: { ...latest(10, 58), scope: "131016" }, dirty: true }];
    // (due as a refresh: a CRL an hour ahead of the clock is republished with or without revocations, below)
    expect(dueCrls(dirty, at(9), opts)).toEqual([{ caId: "13-sig", why: "refresh" }, { caId: "13-sig", scope: "131016", why: "refresh" }]);
    // within the tolerance, the revocation is what makes it due
    const near = dirty.map((d) => ({ ...d, latest: { ...d.latest, thisUpdate: new Date(at(9).getTime() + 60_000) } }));
    expect(dueCrls(near, at(9), opts)).toEqual([{ caId: "13-sig", why: "dirty" }, { caId: "13-sig", scope: "131016", why: "dirty" }]);
    // nothing pending: republished all the same, since no verifier takes a CRL that is not yet valid (openssl:
    // "CRL is not yet valid"); without this it stayed up until its refresh margin, 25 hours here
    expect(dueCrls([{ caId: "13-sig", latest: latest(10, 58), dirty: false }, { caId: "13-sig", scope: "arl", latest: { ...latest(10, 58), scope: "arl" }, dirty: false }], at(9), opts)).toEqual([
      { caId: "13-sig", why: "refresh" },
      { caId: "13-sig", scope: "arl", why: "refresh" },
    ]);
    // a clock a little behind the host that published it (hosts sharing a store) does not republish every tick
    const ahead = (ms: number) => ({ caId: "13-sig", latest: { ...latest(0, 48), thisUpdate: new Date(at(0).getTime() + ms) }, dirty: false });
    expect(dueCrls([ahead(FUTURE_CRL_TOLERANCE_MS)], at(0), opts)).toEqual([]);
    expect(dueCrls([ahead(FUTURE_CRL_TOLERANCE_MS + 1)], at(0), opts)).toEqual([{ caId: "13-sig", why: "refresh" }]);
  });
});

describe("watch keeps CRLs fresh with no operator (injected clock)", () => {
  const START = "2026-05-01T00:00:00Z";
  let clock: FixedClock;
  let ws: Workspace;
  let spool: string;
  /** Tokyo's two CAs made once at START (test/ca-template.ts); each test opens a copy: what the daemon publishes is its own. */
  let template: string;
  beforeAll(async () => {
    template = await tokyoCasTemplate("schedule", START);
  });
  beforeEach(() => {
    clock = new FixedClock(START);
    const root = copyOfTemplate(template, "schedule");
    ws = Workspace.open(root, { clock });
    spool = join(dirname(root), "spool"); // beside the workspace, as before
    mkdirSync(spool);
  });

  /** Runs the daemon loop; each idle sleep moves the clock by `stepMs` and `onIdle` may act; stops after `steps`. */
  async function runDaemon(steps: number, stepMs: number, onIdle: (step: number) => Promise<void> = async () => undefined, more: Partial<WatchOptions> = {}) {
    const updater = new CrlUpdater(ws, "pw");
    await updater.preflight();
    const controller = new AbortController();
    let step = 0;
    const r = await watchSpool(ws, updater, {
      dir: spool,
      pollMs: 1000,
      once: false,
      batchSize: 100,
      signal: controller.signal,
      crlIntervalMs: 30_000,
      sleep: async () => {
        // the invariant, checked at every wake-up of the daemon: no CA's CRL is expired or missing
        for (const id of ["13-sig", "13-auth"]) expect(onDisk(ws, id).nextUpdate.getTime()).toBeGreaterThan(clock.now().getTime());
        for (const id of ["13-sig", "13-auth"]) expect(onDisk(ws, id, `../arl/${id}.crl`).nextUpdate.getTime()).toBeGreaterThan(clock.now().getTime());
        clock.advance(stepMs);
        await onIdle(step);
        if (++step >= steps) controller.abort();
      },
      ...more,
    });
    return r;
  }

  it("republishes, once the clock is corrected, the CRLs it published while the clock ran 9 hours fast", async () => {
    clock.advance(9 * HOUR); // an RTC kept in JST, read as UTC
    await runDaemon(1, 1000);
    clock.advance(-9 * HOUR); // NTP steps it back
    const thisUpdate = (file: string) => new Date(describeCrl(readFileSync(join(ws.paths.root, file))).thisUpdate).getTime();
    const files = ["crl/13-sig.crl", "crl/13-auth.crl", "arl/13-sig.crl", "arl/13-auth.crl"];
    for (const f of files) expect(thisUpdate(f), f).toBeGreaterThan(clock.now().getTime());
    await runDaemon(1, 1000);
    for (const f of files) expect(thisUpdate(f), f).toBeLessThanOrEqual(clock.now().getTime());
  });

  it("republishes every CRL before its nextUpdate through a quiet month: never expired, about daily", async () => {
    const r = await runDaemon(30 * 24, HOUR); // a month in one-hour wake-ups, nothing happening
    // 48-hour CRLs refreshed 24 hours before nextUpdate: one full CRL and one ARL per CA per day, plus the first
    expect(r.crls).toBeGreaterThanOrEqual(2 * 2 * 30);
    expect(r.crls).toBeLessThanOrEqual(2 * 2 * 32);
    expect(onDisk(ws, "13-sig").number).toBeGreaterThanOrEqual(30n);
  });

  it("a manual revocation reaches the CRL with no other command, within the interval", async () => {
    const residentCode = makeResidentCode("0000000777");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: items }]);
    const cert = await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: spki() });
    let revokedAtStep = -1;
    let seenAtStep = -1;
    await runDaemon(20, 10_000, async (step) => {
      if (step === 3) {
        await revokeCertificate(ws.store, { serial: cert.serial, reason: "loss", at: clock.now() });
        revokedAtStep = step;
      }
      if (seenAtStep < 0 && onDisk(ws, "13-sig").serials.includes(cert.serial)) seenAtStep = step;
    });
    expect(revokedAtStep).toBe(3);
    // wake-ups are 10 s apart and the interval is 30 s: published at most 3 wake-ups later
    expect(seenAtStep).toBeGreaterThan(revokedAtStep);
    expect(seenAtStep - revokedAtStep).toBeLessThanOrEqual(4);
    expect(await ws.store.dirtyCas()).toEqual([]);
  });

  it("sweeps the registry side's issuance information ten minutes after start, then daily: the row a notice's revocation left goes", async () => {
    const residentCode = makeResidentCode("0000000779");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: items }]);
    const cert = await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: spki() });
    // a relocation at the counter; its notice reaches the watch through the spool and revokes the certificate
    expect((await relocate(ws.store, residentCode, "東京都千代田区千代田２番２号", { now: clock.now() })).notice).toBeDefined();
    await deliverOutbox(ws, { spool });
    const rows = () => {
      const db = new Database(ws.paths.db, { readonly: true });
      try {
        return db.prepare("SELECT serial FROM registry_issuances").pluck().all();
      } finally {
        db.close();
      }
    };
    const start = clock.now().getTime();
    const events: IssuanceSweepEvent[] = [];
    const before: unknown[][] = [];
    // wake-ups an hour apart for 50 hours: sweeps at the rounds of hours 1, 25 and 49
    await runDaemon(50, HOUR, async (step) => void (step === 0 && before.push(rows())), { onSweep: (e) => events.push(e) });
    expect((await ws.store.getCertificate(cert.serial))?.revocation?.source).toMatch(/^notice:/);
    expect(before).toEqual([[cert.serial]]); // ingested and revoked, its row left by the notice batch (SQLite)
    expect(rows()).toEqual([]);
    expect(events.map((e) => [e.kind, e.kind === "swept" ? e.expiredBefore.getTime() - start : undefined])).toEqual(
      [1, 25, 49].map((h) => ["swept", h * HOUR - 24 * HOUR]),
    );
  });

  it("serve's schedule loop sweeps on the same cadence; a sweep that hangs, then fails, holds no CRL back and is tried again a day later", async () => {
    const start = clock.now().getTime();
    const real = ws.store.sweepRegisteredIssuances.bind(ws.store);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let calls = 0;
    ws.store.sweepRegisteredIssuances = async (before, opts) => {
      if (calls++ > 0) return real(before, opts);
      await held;
      throw new JpkiError("ERR_STORE", "sweeping expired issuance information: disk I/O error");
    };
    const events: IssuanceSweepEvent[] = [];
    const crlHours: number[] = [];
    const controller = new AbortController();
    const loop = await openCrlSchedule(ws, {
      passphrase: "pw",
      signal: controller.signal,
      onCrl: () => crlHours.push((clock.now().getTime() - start) / HOUR),
      onSweep: (e) => events.push(e),
      sleep: async () => {
        clock.advance(HOUR);
        const h = (clock.now().getTime() - start) / HOUR;
        if (h === 26) {
          release(); // the first sweep, running since hour 1, fails now
          await new Promise((resolve) => setImmediate(resolve));
        }
        if (h === 30) controller.abort();
      },
    });
    await loop();
    // the daily refresh went out at hour 24 while the first sweep was still running
    expect(crlHours).toContain(24);
    expect(events).toEqual([
      { kind: "failed", error: expect.objectContaining({ code: "ERR_STORE" }), nextAt: new Date(start + 25 * HOUR) },
      // due since hour 25, started at the first round after the failure
      { kind: "swept", removed: 0, expiredBefore: new Date(start + 26 * HOUR - 24 * HOUR), stopped: false, nextAt: new Date(start + 50 * HOUR) },
    ]);
  });

  it("serve's schedule loop says a lasting failure once, again every five minutes with how often it came, and when it stops", async () => {
    const real = ws.store.crlStatus.bind(ws.store);
    let failing = true;
    ws.store.crlStatus = async () => {
      if (failing) throw new JpkiError("ERR_STORE", "reading CRL status: disk I/O error");
      return real();
    };
    const said: string[] = [];
    const recovered: Array<{ code: string; times: number }> = [];
    const controller = new AbortController();
    let rounds = 0;
    const loop = await openCrlSchedule(ws, {
      passphrase: "pw",
      signal: controller.signal,
      onError: (e) => said.push(`${(e as JpkiError).code}: ${(e as Error).message}`),
      onRecovered: (r) => recovered.push({ code: r.code, times: r.times }),
      sleep: async () => {
        clock.advance(60_000); // a round a minute: twelve failing rounds, then two good ones
        if (++rounds === 12) failing = false;
        if (rounds === 14) controller.abort();
      },
    });
    await loop();
    expect(said).toEqual([
      "ERR_STORE: reading CRL status: disk I/O error",
      expect.stringMatching(/^ERR_STORE: reading CRL status: disk I\/O error \(failing since .+: 5 more times since it was last said\)$/),
      expect.stringMatching(/^ERR_STORE: reading CRL status: disk I\/O error \(failing since .+: 5 more times since it was last said\)$/),
    ]);
    expect(recovered).toEqual([{ code: "ERR_STORE", times: 12 }]);
  });

  it("supersession at issuance marks the CA and the superseded certificate reaches the CRL", async () => {
    const residentCode = makeResidentCode("0000000778");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: items }]);
    const service = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" });
    const first = await service.issue({ residentCode, type: "signature", publicKey: spki() });
    await runDaemon(2, 10_000);
    expect(onDisk(ws, "13-sig").serials).not.toContain(first.serial);
    const second = await service.issue({ residentCode, type: "signature", publicKey: spki() });
    expect(second.superseded).toEqual([first.serial]);
    expect(await ws.store.dirtyCas()).toEqual(["13-sig"]);
    await runDaemon(5, 10_000);
    expect(onDisk(ws, "13-sig").serials).toContain(first.serial);
  });
});
