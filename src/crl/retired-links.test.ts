/**
 * A retired generation whose certificates have all expired ("done": crl/generate.ts retiredAndDone) publishes its
 * ARL alone. When a link certificate its full CRL lists is revoked later (its predecessor's key declared
 * compromised: crl/arl.ts), its last full CRL — without the link — stayed valid until its nextUpdate, and a verifier
 * reading the link's status there (no IDP: complete for CA certificates too) accepted the stolen key meanwhile.
 * Now the link change makes a full CRL go out at once, by the schedule's updater and by `crl generate`. And that
 * full CRL (and the ARL) is kept current while a link certificate it covers is in force (crl/retired.ts): it was
 * never refreshed, so at its nextUpdate every verifier still checking the links against it failed closed. Once the
 * links have ended, nothing more. The due list as the schedule makes it (crl/schedule.ts: crlStatus for the full
 * CRLs, crlScopeStatus for the rest); the schedule itself run on the test clock.
 */
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { rolloverCas } from "../ca/rollover.js";
import { FixedClock } from "../pki/clock.js";
import { describeCrl } from "../profile/describe.js";
import { EXT_OID } from "../profile/oids.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";
import { dueCrls, refreshMarginMs } from "./schedule.js";
import { CrlUpdater } from "./updater.js";

const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

/** 13-sig -> 13-sig-g2 (its full CRL published) -> 13-sig-g3: 13-sig-g2 issued nothing, so it is retired and done. */
async function doneSuccessor(config: Partial<WorkspaceConfig> = {}) {
  const clock = new FixedClock("2026-05-01T00:00:00Z");
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-retired-links-")), "ws"), { clock, config });
  open.push(ws);
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
  await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });
  await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
  clock.advance(60_000);
  await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });
  const link = (await ws.store.listCaLinks()).find((l) => l.oldCaId === "13-sig")!;
  const newWithOld = new X509Certificate(link.newWithOld!).serialNumber.toLowerCase();
  const oldWithNew = new X509Certificate(link.oldWithNew!).serialNumber.toLowerCase();
  const listed = (file: string) => describeCrl(readFileSync(join(ws.paths.root, file))).entries.map((e) => e.serialNumber.toLowerCase());
  const crl = (file: string) => {
    const d = describeCrl(readFileSync(join(ws.paths.root, file)));
    return { number: BigInt(d.crlNumber!), nextUpdate: new Date(d.nextUpdate!) };
  };
  expect(listed("crl/13-sig-g2.crl")).toEqual([]);
  clock.advance(60_000);
  await ws.store.declareCaCompromised("13-sig", clock.now());
  clock.advance(60_000);
    // the links of 13-sig-g2 end with 13-sig-g2's own certificate (13-sig's, made the same day, ends with it)
  const end = new Date(new X509Certificate((await ws.store.getCa("13-sig-g2"))!.certificateDer).validTo);
  return { ws, clock, newWithOld, oldWithNew, listed, crl, end };
}

describe("a retired-and-done generation whose link certificate is revoked", () => {
  it("the schedule's updater publishes its full CRL with the links beside its ARL, then nothing until a refresh is due", async () => {
    const { ws, clock, newWithOld, oldWithNew, listed } = await doneSuccessor();
    const due = async () => dueCrls([...(await ws.store.crlStatus()), ...(await ws.store.crlScopeStatus())], clock.now(), { intervalMs: 0, marginMs: refreshMarginMs(ws.config) });
    const updater = new CrlUpdater(ws, "pw");
    const out = await updater.publishDue((await due()).filter((d) => d.caId === "13-sig-g2"));
    expect(out.map((c) => c.scope ?? "").sort()).toEqual(["", "arl"]);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    expect(listed("arl/13-sig-g2.crl")).toEqual([newWithOld]);
    // nothing new since: nothing of it due, and what the schedule lists for it each round (its partitions' and
    // delta's refresh: a done generation has none of those) publishes nothing
    expect((await due()).filter((d) => d.caId === "13-sig-g2" && (d.scope === undefined || d.scope === "arl"))).toEqual([]);
    expect(await updater.publishDue((await due()).filter((d) => d.caId === "13-sig-g2"))).toEqual([]);
  });

  it("the schedule keeps that full CRL and the ARL current past their nextUpdate: higher numbers, the links still listed", async () => {
    const { ws, clock, newWithOld, oldWithNew, listed, crl } = await doneSuccessor();
    const schedule = new CrlUpdater(ws, "pw").schedule(0);
    const mine = async () => (await schedule.tick()).filter((c) => c.caId === "13-sig-g2").map((c) => `${c.scope || "full"}:${c.why}`).sort();
    expect(await mine()).toEqual(["arl:dirty", "full:dirty"]);
    const first = crl("crl/13-sig-g2.crl");
    const firstArl = crl("arl/13-sig-g2.crl");
    // past the full CRL's nextUpdate (it used to expire there, never replaced)
    clock.set(first.nextUpdate.getTime() + 3600_000);
    expect(await mine()).toEqual(["arl:refresh", "full:refresh"]);
    const next = crl("crl/13-sig-g2.crl");
    expect(next.number > first.number).toBe(true);
    expect(next.nextUpdate.getTime()).toBeGreaterThan(clock.now().getTime());
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    expect(crl("arl/13-sig-g2.crl").number > firstArl.number).toBe(true);
    expect(listed("arl/13-sig-g2.crl")).toEqual([newWithOld]);
    // and again a month on: every round it is due, never a number twice
    clock.advance(30 * 86_400_000);
    expect(await mine()).toEqual(["arl:refresh", "full:refresh"]);
    expect(crl("crl/13-sig-g2.crl").number > next.number).toBe(true);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    expect(await mine()).toEqual([]);
  });

  it("stops once its link certificates have ended: the last CRL reaches their end, then nothing is published", async () => {
    const { ws, clock, crl, end } = await doneSuccessor();
    const schedule = new CrlUpdater(ws, "pw").schedule(0);
    const mine = async () => (await schedule.tick()).filter((c) => c.caId === "13-sig-g2").map((c) => c.scope || "full").sort();
    await schedule.tick();
    // a day before the links end: refreshed, and this CRL's nextUpdate reaches past their end
    clock.set(end.getTime() - 86_400_000);
    expect(await mine()).toEqual(["arl", "full"]);
    expect(crl("crl/13-sig-g2.crl").nextUpdate.getTime()).toBeGreaterThan(end.getTime());
    // due for its refresh again, but the one in place covers all that is left: nothing
    clock.set(end.getTime() - 3600_000);
    expect(await mine()).toEqual([]);
    // past the end, also past that CRL's nextUpdate: nothing, by the schedule or by crl generate
    clock.set(end.getTime() + 7 * 86_400_000);
    expect(await mine()).toEqual([]);
    expect(await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw", partitions: "all" })).toEqual([]);
  });

  it("crl generate publishes its full CRL on every run while the links are in force (--partitions all: and the ARL), never a partition or delta", async () => {
    const { ws, clock, newWithOld, oldWithNew, listed } = await doneSuccessor();
    const out = await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" });
    expect(out.map((c) => c.scope ?? "").sort()).toEqual(["", "arl"]); // the ARL too: it lists a link revoked since
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    clock.advance(60_000);
    const again = await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" });
    expect(again.map((c) => c.scope)).toEqual([""]);
    expect(again[0]!.number > out.find((c) => c.scope === "")!.number).toBe(true);
    clock.advance(60_000);
    expect((await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw", partitions: "all" })).map((c) => c.scope)).toEqual(["", "arl"]);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
  });
  it("with delta CRLs on: the full CRL goes out for the links and is kept current, never a delta of a done generation", async () => {
    const { ws, clock, newWithOld, oldWithNew, listed, crl } = await doneSuccessor({ deltaCrlIntervalMinutes: 10 });
    const schedule = new CrlUpdater(ws, "pw").schedule(0);
    const mine = async () => (await schedule.tick()).filter((c) => c.caId === "13-sig-g2").map((c) => c.scope || "full").sort();
    expect(await mine()).toEqual(["arl", "full"]); // the links' news, due as a delta, goes out on its full CRL
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    const first = crl("crl/13-sig-g2.crl");
    clock.advance(20 * 60_000); // a delta interval and more: nothing of it (the delta due each round is left)
    expect(await mine()).toEqual([]);
    clock.set(first.nextUpdate.getTime() + 3600_000);
    expect(await mine()).toEqual(["arl", "full"]);
    expect(crl("crl/13-sig-g2.crl").number > first.number).toBe(true);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
  });

  it("with delta CRLs on: its full CRLs name no delta (freshestCRL), none follows them; they still verify; a live CA's still do", async () => {
    const { ws, clock, crl } = await doneSuccessor({ deltaCrlIntervalMinutes: 10 });
    const exts = (file: string) => describeCrl(readFileSync(join(ws.paths.root, file))).extensions.map((e) => e.oid);
    const verifies = (file: string, ca: string) =>
      execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws.paths.root, file), "-CAfile", join(ws.paths.caDir, `${ca}.pem`), "-noout"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    const schedule = new CrlUpdater(ws, "pw").schedule(0);
    expect((await schedule.tick()).filter((c) => c.caId === "13-sig-g2").map((c) => c.scope || "full").sort()).toEqual(["arl", "full"]);
    expect(exts("crl/13-sig-g2.crl")).not.toContain(EXT_OID.freshestCRL);
    expect(verifies("crl/13-sig-g2.crl", "13-sig-g2")).toBe("");
    // and its refresh past nextUpdate, by the schedule and by crl generate
    clock.set(crl("crl/13-sig-g2.crl").nextUpdate.getTime() + 3600_000);
    expect((await schedule.tick()).some((c) => c.caId === "13-sig-g2" && !c.scope)).toBe(true);
    expect(exts("crl/13-sig-g2.crl")).not.toContain(EXT_OID.freshestCRL);
    clock.advance(60_000);
    expect((await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" })).map((c) => c.scope)).toEqual([""]);
    expect(exts("crl/13-sig-g2.crl")).not.toContain(EXT_OID.freshestCRL);
    expect(verifies("crl/13-sig-g2.crl", "13-sig-g2")).toBe("");
    // the live generation's full CRL keeps pointing at its delta
    clock.advance(60_000);
    await generateCrls(ws, { ca: "13-sig-g3", passphrase: "pw" });
    expect(exts("crl/13-sig-g3.crl")).toContain(EXT_OID.freshestCRL);
  });
});
