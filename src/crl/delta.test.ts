/**
 * Delta CRLs (RFC 5280 §5.2.4, §5.2.6): the extensions byte for byte, numbering from the CA's one sequence,
 * content (only what the base may miss), nextUpdate capped by the base's, freshestCRL in full CRLs and
 * certificates, and the cadence (schedule and updater) with an injected clock.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cardKeyVariant } from "../../test/card-fixtures.js";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { revokeCertificate } from "../ca/revocation.js";
import { isJpkiError } from "../errors.js";
import { FixedClock } from "../pki/clock.js";
import { checkCrl } from "../profile/check.js";
import { describeCrl } from "../profile/describe.js";
import { EXT_OID } from "../profile/oids.js";
import { makeResidentCode } from "../registry/resident-code.js";
import type { CrlRecord, DeltaCrlStatus } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { Workspace } from "../workspace/workspace.js";
import { deltaCadence, deltaCrlIndicator, freshestCrl } from "./delta.js";
import { generateCrls } from "./generate.js";
import { certificateExtension } from "./scope.js";
import { dueCrls } from "./schedule.js";
import { CrlUpdater } from "./updater.js";

const MIN = 60_000;
const HOUR = 60 * MIN;
const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
/** A new subject key each call: a variant of one RSA-2048 key (cardKeyVariant) instead of a key pair made each time; no test here holds a subject's private key. */
const subjectBase = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
let subjects = 0;
const spki = () => cardKeyVariant(subjectBase, ++subjects);

describe("delta CRL extensions (DER)", () => {
  it("deltaCRLIndicator is critical and carries the base CRL number as an INTEGER", () => {
    // SEQUENCE { OID 2.5.29.27, BOOLEAN TRUE, OCTET STRING { INTEGER 5 } }
    expect(deltaCrlIndicator(5n).toString("hex")).toBe("300d0603551d1b0101ff0403020105");
    expect(deltaCrlIndicator(200n).toString("hex")).toBe("300e0603551d1b0101ff0404020200c8");
    expect(() => deltaCrlIndicator(0n)).toThrow(RangeError);
  });

  it("freshestCRL is non-critical, a CRLDistributionPoints with the delta's URI as fullName", () => {
    const url = "http://x/crl/13-sig-delta.crl";
    const uri = Buffer.concat([Buffer.from([0x86, url.length]), Buffer.from(url)]);
    const dps = Buffer.concat([Buffer.from([0x30, uri.length + 6, 0x30, uri.length + 4, 0xa0, uri.length + 2, 0xa0, uri.length]), uri]);
    const expected = Buffer.concat([Buffer.from([0x30, dps.length + 7, 0x06, 0x03, 0x55, 0x1d, 0x2e, 0x04, dps.length]), dps]);
    expect(freshestCrl(url).toString("hex")).toBe(expected.toString("hex"));
  });
});

const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

async function workspace(config: Partial<WorkspaceConfig>, clock = new FixedClock("2026-05-01T00:00:00Z")) {
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-delta-")), "ws"), { config, clock });
  open.push(ws);
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  const service = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" });
  let n = 0;
  const issue = async () => {
    const residentCode = makeResidentCode(String(700 + n++).padStart(10, "0"));
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: items }]);
    return service.issue({ residentCode, type: "signature", publicKey: spki() });
  };
  const revoke = (serial: string) => revokeCertificate(ws.store, { serial, reason: "loss", at: clock.now() });
  return { ws, clock, issue, revoke };
}

const read = (ws: Workspace, file: string) => describeCrl(readFileSync(join(ws.paths.crlDir, file)));
const ext = (d: ReturnType<typeof describeCrl>, oid: string) => d.extensions.find((e) => e.oid === oid);
const serials = (d: ReturnType<typeof describeCrl>) => d.entries.map((e) => e.serialNumber.toLowerCase()).sort();

describe("publishing delta CRLs", () => {
  it("a full CRL names its delta in freshestCRL; the delta names its base, numbers from the same sequence, lists only what came after", async () => {
    const { ws, issue, revoke } = await workspace({ deltaCrlIntervalMinutes: 10, baseUrl: "http://pki.example" });
    const [a, b, c] = [await issue(), await issue(), await issue()];
    // certificates issued while deltas are on say where the delta is (RFC 5280 §4.2.1.15)
    const fresh = certificateExtension(a.der, EXT_OID.freshestCRL);
    expect(fresh?.toString("latin1")).toContain("http://pki.example/crl/13-sig-delta.crl");
    await revoke(a.serial);
    const first = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    // the base, then at once a delta on it (empty: nothing came after)
    expect(first.map((p) => [p.scope, p.number, p.entries, p.baseNumber])).toEqual([["", 1n, 1, undefined], ["delta", 2n, 0, 1n]]);
    expect(first[1]!.derPath).toBe(join(ws.paths.crlDir, "13-sig-delta.crl"));
    const base = read(ws, "13-sig.crl");
    expect(ext(base, EXT_OID.freshestCRL)).toMatchObject({ critical: false });
    expect(readFileSync(join(ws.paths.crlDir, "13-sig.crl")).includes(freshestCrl("http://pki.example/crl/13-sig-delta.crl"))).toBe(true);
    expect(base.deltaCrlIndicator).toBeUndefined();

    await revoke(b.serial);
    await revoke(c.serial);
    const [delta] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", delta: true });
    expect([delta!.scope, delta!.number, delta!.baseNumber, delta!.entries]).toEqual(["delta", 3n, 1n, 2]);
    const d = read(ws, "13-sig-delta.crl");
    expect(d.crlNumber).toBe("3");
    expect(d.deltaCrlIndicator).toBe("1");
    expect(ext(d, EXT_OID.deltaCRLIndicator)).toMatchObject({ critical: true });
    expect(ext(d, EXT_OID.freshestCRL)).toBeUndefined(); // never in a delta (§5.2.6)
    expect(ext(d, EXT_OID.issuingDistributionPoint)).toBeUndefined(); // the base's scope: no IDP
    expect(serials(d)).toEqual([b.serial, c.serial].sort());
    expect(d.entries.every((e) => e.reason !== "removeFromCRL")).toBe(true);
    // ten-minute deltas live twenty minutes; the profile check knows it for a delta, and finds nothing wrong
    expect(new Date(d.nextUpdate!).getTime() - new Date(d.thisUpdate).getTime()).toBe(20 * MIN);
    const report = checkCrl(readFileSync(join(ws.paths.crlDir, "13-sig-delta.crl")));
    expect(report.kind).toBe("delta-crl");
    expect(report.violations.filter((v) => v.severity === "error")).toEqual([]);
    // the same issuer and AKI as the base
    expect(d.issuer).toEqual(base.issuer);
    expect(d.authorityKeyIdentifier).toBe(base.authorityKeyIdentifier);
    // history is kept per file, the delta's beside the base's
    expect(readdirSync(ws.paths.crlDir).sort()).toEqual(["13-sig-delta.crl", "13-sig-delta.crl.2", "13-sig-delta.crl.3", "13-sig.crl", "13-sig.crl.1"]);
    // the CA stays due for its next base: a delta covers nothing for good
    expect(await ws.store.dirtyCas()).toEqual(["13-sig"]);
    // a new base; its delta lists nothing of the old one's
    const again = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(again.map((p) => [p.scope, p.number, p.entries, p.baseNumber])).toEqual([["", 4n, 3, undefined], ["delta", 5n, 0, 4n]]);
  });

  it("--delta republishes the partitions holding what the delta lists: a verifier reads a certificate's partition, which a delta cannot complete", async () => {
    const { ws, issue, revoke } = await workspace({ deltaCrlIntervalMinutes: 10 });
    const [a, b] = [await issue(), await issue()];
    await revoke(a.serial);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    const partition = () => describeCrl(readFileSync(join(ws.paths.crlDir, "13-sig", "131016.crl")));
    expect(serials(partition())).toEqual([a.serial]);
    await revoke(b.serial);
    const landed = await generateCrls(ws, { ca: "13-sig", passphrase: "pw", delta: true });
    expect(landed.map((p) => p.scope)).toEqual(["delta", "131016"]);
    expect(serials(read(ws, "13-sig-delta.crl"))).toEqual([b.serial]);
    // the partition lists b too, with a number above the delta's (one sequence per CA)
    expect(serials(partition())).toEqual([a.serial, b.serial].sort());
    expect(BigInt(partition().crlNumber!)).toBeGreaterThan(landed[0]!.number);
    // nothing left stale: another --delta publishes the delta alone
    expect((await generateCrls(ws, { ca: "13-sig", passphrase: "pw", delta: true })).map((p) => p.scope)).toEqual(["delta"]);
  });

  it("a full CRL republishes the published partitions holding what it lists: a verifier reads a certificate's partition", async () => {
    const { ws, issue, revoke } = await workspace({});
    const [a, b] = [await issue(), await issue()];
    await revoke(a.serial);
    await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" });
    const partition = () => describeCrl(readFileSync(join(ws.paths.crlDir, "13-sig", "131016.crl")));
    await revoke(b.serial);
    const landed = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(landed.map((p) => p.scope)).toEqual(["", "131016"]);
    expect(serials(partition())).toEqual([a.serial, b.serial].sort());
    // nothing left stale: the next run publishes the full CRL alone
    expect((await generateCrls(ws, { ca: "13-sig", passphrase: "pw" })).map((p) => p.scope)).toEqual([""]);
  });

  it("a delta's nextUpdate is never later than its base's", async () => {
    const { ws } = await workspace({ deltaCrlIntervalMinutes: 50, crlLifetimeHours: 1, crlRefreshMarginHours: 1 });
    const [base, delta] = await generateCrls(ws, { ca: "13-sig", passphrase: "pw" });
    expect(delta!.nextUpdate).toEqual(base!.nextUpdate); // 100 minutes asked for, the base's hour given
    expect(read(ws, "13-sig-delta.crl").nextUpdate).toBe(read(ws, "13-sig.crl").nextUpdate);
  });

  it("without deltas configured: no freshestCRL anywhere, and --delta is refused; with them, a delta needs a base", async () => {
    const off = await workspace({});
    const cert = await off.issue();
    expect(certificateExtension(cert.der, EXT_OID.freshestCRL)).toBeUndefined();
    await generateCrls(off.ws, { ca: "13-sig", passphrase: "pw" });
    expect(ext(read(off.ws, "13-sig.crl"), EXT_OID.freshestCRL)).toBeUndefined();
    expect(readdirSync(off.ws.paths.crlDir).sort()).toEqual(["13-sig.crl", "13-sig.crl.1"]);
    await expect(generateCrls(off.ws, { ca: "13-sig", passphrase: "pw", delta: true })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_USAGE"));
    const on = await workspace({ deltaCrlIntervalMinutes: 5 });
    await expect(generateCrls(on.ws, { ca: "13-sig", passphrase: "pw", delta: true })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_CRL_NO_BASE"));
  });
});

describe("the delta cadence", () => {
  const at = (m: number) => new Date(Date.UTC(2026, 0, 1) + m * MIN);
  const crl = (scope: string, number: bigint, thisM: number, nextM: number, extra: Partial<CrlRecord> = {}): CrlRecord => ({
    caId: "13-sig", scope, state: "published", number, thisUpdate: at(thisM), nextUpdate: at(nextM), entries: 0, path: "p", sha256: "s", ...extra,
  });
  const cadence = deltaCadence({ deltaCrlIntervalMinutes: 5, crlBaseIntervalHours: 24, deltaCrlMaxEntries: 100 })!;
  const opts = { intervalMs: 30_000, marginMs: 24 * HOUR };
  const due = (dirty: boolean, base: CrlRecord, delta: CrlRecord | undefined, now: number, more: Partial<DeltaCrlStatus> = {}) =>
    dueCrls([{ caId: "13-sig", latest: base, dirty }], at(now), { ...opts, deltas: { cadence, status: [{ caId: "13-sig", base, deltaReady: true, delta, pending: dirty, ...more }] } });
  const base = crl("", 1n, 0, 48 * 60);

  it("pending revocations go into deltas while the base is young; the base on its own cadence", () => {
    // no delta on this base yet: one at once; the base is not due for the revocations
    expect(due(true, base, undefined, 1)).toEqual([{ caId: "13-sig", scope: "delta", why: "missing" }]);
    expect(due(true, base, crl("delta", 2n, 0, 10, { baseNumber: 1n }), 4)).toEqual([]);
    expect(due(true, base, crl("delta", 2n, 0, 10, { baseNumber: 1n }), 5)).toEqual([{ caId: "13-sig", scope: "delta", why: "dirty" }]);
    // nothing pending: deltas still come on their cadence, so none a verifier holds expires
    expect(due(false, base, crl("delta", 2n, 0, 10, { baseNumber: 1n }), 5)).toEqual([{ caId: "13-sig", scope: "delta", why: "refresh" }]);
    // a delta on an older base counts for nothing
    expect(due(false, base, crl("delta", 2n, 4, 14, { baseNumber: 0n }), 5)).toEqual([{ caId: "13-sig", scope: "delta", why: "missing" }]);
    // a day-old base with revocations pending: a new base (its delta follows it), no delta on the old one
    const longLived = crl("", 1n, 0, 72 * 60);
    expect(due(true, longLived, crl("delta", 2n, 0, 10, { baseNumber: 1n }), 24 * 60 - 1)).toEqual([{ caId: "13-sig", scope: "delta", why: "dirty" }]);
    expect(due(true, longLived, crl("delta", 2n, 0, 10, { baseNumber: 1n }), 24 * 60)).toEqual([{ caId: "13-sig", why: "dirty" }]);
    // the last delta grew to deltaCrlMaxEntries: a base
    expect(due(true, base, crl("delta", 2n, 0, 10, { baseNumber: 1n, entries: 100 }), 6)).toEqual([{ caId: "13-sig", why: "dirty" }]);
    // a base no delta can be built on (published before the store kept what it covers): a base
    expect(due(true, base, undefined, 1, { deltaReady: false })).toEqual([{ caId: "13-sig", why: "dirty" }]);
    expect(due(false, base, undefined, 1, { deltaReady: false })).toEqual([]);
  });

  it("a clock stepped back behind the latest delta's thisUpdate: pending revocations go out in a delta at once", () => {
    const late = crl("delta", 2n, 60, 70, { baseNumber: 1n }); // published at 01:00 by a clock an hour fast
    expect(due(true, base, late, 1)).toEqual([{ caId: "13-sig", scope: "delta", why: "dirty" }]);
  });

  it("jpki watch with ten-minute deltas and a daily base: a revocation reaches a delta within the interval, the base within the day, nothing expires", async () => {
    const { ws, clock, issue, revoke } = await workspace({ deltaCrlIntervalMinutes: 10, crlBaseIntervalHours: 24 });
    const cert = await issue();
    const updater = new CrlUpdater(ws, "pw");
    const schedule = updater.schedule(30_000);
    await schedule.tick();
    expect(read(ws, "13-sig-delta.crl").deltaCrlIndicator).toBe(read(ws, "13-sig.crl").crlNumber);
    await revoke(cert.serial);
    const baseNumber = read(ws, "13-sig.crl").crlNumber;
    let inDelta = -1;
    let inBase = -1;
    // Each file changes every few simulated minutes at most: each version is described once, and every minute's
    // checks run on it (describing both files at each of the 1,560 minutes was more of this test's time than the
    // schedule's ticks).
    const described = new Map<string, { der: Buffer; crl: ReturnType<typeof describeCrl> }>();
    const readOnce = (file: string) => {
      const der = readFileSync(join(ws.paths.crlDir, file));
      const last = described.get(file);
      if (last?.der.equals(der)) return last.crl;
      const crl = describeCrl(der);
      described.set(file, { der, crl });
      return crl;
    };
    for (let minute = 1; minute <= 26 * 60; minute++) {
      clock.advance(MIN);
      await schedule.tick();
      const now = clock.now().getTime();
      const b = readOnce("13-sig.crl");
      const d = readOnce("13-sig-delta.crl");
      expect(new Date(b.nextUpdate!).getTime()).toBeGreaterThan(now);
      expect(new Date(d.nextUpdate!).getTime()).toBeGreaterThan(now);
      expect(BigInt(d.crlNumber!)).toBeGreaterThan(BigInt(b.crlNumber!));
      expect(d.deltaCrlIndicator).toBe(b.crlNumber);
      if (inDelta < 0 && serials(d).includes(cert.serial)) inDelta = minute;
      if (inBase < 0 && serials(b).includes(cert.serial)) inBase = minute;
    }
    expect(inDelta).toBeGreaterThan(0);
    expect(inDelta).toBeLessThanOrEqual(10);
    // the base kept its number until it was a day old, then took the revocation
    expect(inBase).toBe(24 * 60);
    expect(read(ws, "13-sig.crl").crlNumber).not.toBe(baseNumber);
    expect(await ws.store.dirtyCas()).toEqual([]);
  });

  it("after a batch of notices (regenerate): a delta while the base is young, a base (and its delta) once it is old", async () => {
    const { ws, clock, issue, revoke } = await workspace({ deltaCrlIntervalMinutes: 5, crlBaseIntervalHours: 6 });
    const [a, b] = [await issue(), await issue()];
    const updater = new CrlUpdater(ws, "pw");
    await updater.regenerate(["13-sig"]); // never published: a base and its delta
    expect(updater.published.map((p) => p.scope)).toEqual(["", "delta", "131016", "arl"]);
    await revoke(a.serial);
    clock.advance(HOUR);
    const young = await updater.regenerate(["13-sig"]);
    // and the partition, as always (partitions have no deltas)
    expect(young.map((p) => [p.scope, p.entries])).toEqual([["delta", 1], ["131016", 1]]);
    // nothing revoked since: no delta repeating the last one (a notices ingest that changed nothing published two)
    clock.advance(MIN);
    expect(await updater.regenerate(["13-sig"])).toEqual([]);
    expect(await updater.regenerateDirty()).toEqual([]);
    await revoke(b.serial);
    clock.advance(6 * HOUR);
    const old = await updater.regenerate(["13-sig"]);
    expect(old.map((p) => [p.scope, p.entries])).toEqual([["", 2], ["delta", 0], ["131016", 2]]);
  });
});
