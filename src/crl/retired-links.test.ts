/**
 * A retired generation whose certificates have all expired ("done": crl/generate.ts retiredAndDone) publishes its
 * ARL alone. When a link certificate its full CRL lists is revoked later (its predecessor's key declared
 * compromised: crl/arl.ts), its last full CRL — without the link — stayed valid until its nextUpdate, and a verifier
 * reading the link's status there (no IDP: complete for CA certificates too) accepted the stolen key meanwhile.
 * Now the link change makes one last full CRL go out, by the schedule's updater and by `crl generate`; then it is
 * done again (no refresh of that full CRL, nothing more per round). The due list as the schedule makes it
 * (crl/schedule.ts: crlStatus for the full CRLs, crlScopeStatus for the rest).
 */
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
import { Workspace } from "../workspace/workspace.js";
import { generateCrls } from "./generate.js";
import { dueCrls, refreshMarginMs } from "./schedule.js";
import { CrlUpdater } from "./updater.js";

const open: Workspace[] = [];
afterEach(async () => {
  for (const ws of open.splice(0)) await ws.close();
});

/** 13-sig -> 13-sig-g2 (its full CRL published) -> 13-sig-g3: 13-sig-g2 issued nothing, so it is retired and done. */
async function doneSuccessor() {
  const clock = new FixedClock("2026-05-01T00:00:00Z");
  const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-retired-links-")), "ws"), { clock });
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
  expect(listed("crl/13-sig-g2.crl")).toEqual([]);
  clock.advance(60_000);
  await ws.store.declareCaCompromised("13-sig", clock.now());
  clock.advance(60_000);
  return { ws, clock, newWithOld, oldWithNew, listed };
}

describe("a retired-and-done generation whose link certificate is revoked", () => {
  it("the schedule's updater publishes one last full CRL with the links beside its ARL, then its ARL alone again", async () => {
    const { ws, clock, newWithOld, oldWithNew, listed } = await doneSuccessor();
    const due = async () => dueCrls([...(await ws.store.crlStatus()), ...(await ws.store.crlScopeStatus())], clock.now(), { intervalMs: 0, marginMs: refreshMarginMs(ws.config) });
    const updater = new CrlUpdater(ws, "pw");
    const out = await updater.publishDue((await due()).filter((d) => d.caId === "13-sig-g2"));
    expect(out.map((c) => c.scope ?? "").sort()).toEqual(["", "arl"]);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    expect(listed("arl/13-sig-g2.crl")).toEqual([newWithOld]);
    // nothing new since: no full CRL of it due for news, and a refresh of it publishes nothing
    expect((await due()).filter((d) => d.caId === "13-sig-g2" && d.why !== "refresh")).toEqual([]);
    expect(await updater.publishDue([{ caId: "13-sig-g2", why: "refresh" }])).toEqual([]);
  });

  it("crl generate publishes the same last full CRL, once (then --partitions all gives its ARL alone)", async () => {
    const { ws, newWithOld, oldWithNew, listed } = await doneSuccessor();
    const out = await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" });
    expect(out.map((c) => c.scope ?? "").sort()).toEqual(["", "arl"]);
    expect(listed("crl/13-sig-g2.crl").sort()).toEqual([newWithOld, oldWithNew].sort());
    expect(await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw" })).toEqual([]);
    // --partitions all: its ARL, as ever, and no full CRL again
    expect((await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw", partitions: "all" })).map((c) => c.scope)).toEqual(["arl"]);
  });
});
