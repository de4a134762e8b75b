/**
 * Expired entries leaving CRLs, RFC 5280 §3.3: "An entry MUST NOT be removed from the CRL until it appears on
 * one regularly scheduled CRL issued beyond the revoked certificate's validity period." The grace period
 * (config expiredGraceDays) is ours on top of that floor; it never lowers it — not with a grace of 0, not when
 * the next CRL comes later than the grace after notAfter (a long crlLifetimeHours, a `crl generate` by hand).
 * Full CRLs, municipality partitions and delta CRLs alike.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { revokeCertificate } from "../ca/revocation.js";
import { rolloverCas } from "../ca/rollover.js";
import { FixedClock } from "../pki/clock.js";
import { describeCrl } from "../profile/describe.js";
import { makeResidentCode } from "../registry/resident-code.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";
import { CrlUpdater } from "./updater.js";

const DAY = 86_400_000;
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });

const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

async function revokedOne(config: Partial<WorkspaceConfig>, opts: { revoke?: boolean } = {}) {
  const clock = new FixedClock("2026-05-01T00:00:00Z");
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-expiry-")), "ws"), { config, clock });
  open.push(ws);
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  const residentCode = makeResidentCode("0000000701");
  await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: items }]);
  const cert = await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: key });
  const revoke = () => revokeCertificate(ws.store, { serial: cert.serial, reason: "loss", at: clock.now() });
  if (opts.revoke !== false) await revoke();
  const serial = cert.serial.toLowerCase();
  const lists = (file: string) => describeCrl(readFileSync(join(ws.paths.root, "crl", file))).entries.some((e) => e.serialNumber.toLowerCase() === serial);
  return { ws, clock, notAfter: cert.notAfter, lists, revoke };
}

describe("an expired certificate's entry leaves a CRL only after one CRL issued beyond its validity listed it (RFC 5280 §3.3)", () => {
  it("with no grace period (expiredGraceDays 0): the first full CRL and partition after notAfter still list it, the next ones drop it", async () => {
    const { ws, clock, notAfter, lists } = await revokedOne({ expiredGraceDays: 0 });
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    expect(lists("13-sig.crl")).toBe(true);
    expect(lists("13-sig/131016.crl")).toBe(true);
    clock.set(notAfter.getTime() + DAY);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    expect(lists("13-sig.crl")).toBe(true); // the CRL issued beyond the validity period
    expect(lists("13-sig/131016.crl")).toBe(true);
    clock.advance(DAY);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    expect(lists("13-sig.crl")).toBe(false); // it appeared on one: now it may go
    expect(lists("13-sig/131016.crl")).toBe(false);
  });

  it("with the default grace but the next CRL later than the grace after notAfter: that CRL still lists it", async () => {
    const { ws, clock, notAfter, lists } = await revokedOne({ crlLifetimeHours: 24 * 31 });
    clock.set(notAfter.getTime() - DAY);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    clock.set(notAfter.getTime() + 20 * DAY); // within the CRL's 31-day lifetime, past the 7-day grace
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    expect(lists("13-sig.crl")).toBe(true);
    expect(lists("13-sig/131016.crl")).toBe(true);
    clock.advance(DAY);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    expect(lists("13-sig.crl")).toBe(false);
    expect(lists("13-sig/131016.crl")).toBe(false);
  });

  it("a delta published just after notAfter lists a revocation made just before it (no grace): never a revoked certificate on no CRL", async () => {
    const { ws, clock, notAfter, lists, revoke } = await revokedOne({ expiredGraceDays: 0, deltaCrlIntervalMinutes: 10 }, { revoke: false });
    clock.set(notAfter.getTime() - 2 * 3600_000);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }); // base and delta, before the revocation
    clock.set(notAfter.getTime() - 3600_000);
    await revoke();
    clock.set(notAfter.getTime() + 60_000);
    const [delta] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", delta: true });
    expect(delta!.entries).toBe(1);
    expect(lists("13-sig-delta.crl")).toBe(true);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw" }); // the next base lists it too
    expect(lists("13-sig.crl")).toBe(true);
  });

  it("a retired key generation goes on publishing its full CRL and partitions through the grace after its last certificate expired", async () => {
    const { ws, clock, notAfter, lists } = await revokedOne({});
    await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" }); // 13-sig retired
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    const scopes = async () => (await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" })).map((c) => c.scope).sort();
    // a day after the last certificate expired, within the 7-day grace: its revoked entry is still listed, on
    // a CRL issued beyond its validity (the last one before would expire with no successor)
    clock.set(notAfter.getTime() + DAY);
    expect(await scopes()).toEqual(["", "131016", "arl"]);
    expect(lists("13-sig.crl")).toBe(true);
    expect(await new CrlUpdater(ws, "pw").publishDue([{ caId: "13-sig", why: "dirty" }])).toHaveLength(1);
    // past the grace, and listed on a CRL issued after notAfter: no partition any more (nothing left in it), the
    // full CRL and the ARL while the rollover's link certificates are in force (crl/retired.ts) — without the entry
    clock.set(notAfter.getTime() + 8 * DAY);
    expect(await scopes()).toEqual(["", "arl"]);
    expect(lists("13-sig.crl")).toBe(false);
    expect(await new CrlUpdater(ws, "pw").publishDue([{ caId: "13-sig", why: "dirty" }, { caId: "13-sig", scope: "131016", why: "refresh" }])).toHaveLength(1);
  });
});
