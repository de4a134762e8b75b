/**
 * A retired key generation whose certificates have all expired publishes no partition or delta any more, and its
 * full CRL and ARL only while a link certificate is in force (crl/retired.ts). Those CRLs expire by design:
 * `/crl/index.json` says `ended` for them, and `/healthz` does not count them stale — it answered 503 for good once
 * such a generation's partitions passed their nextUpdate — nor has /metrics a CRL gauge for them (crl/finished.ts).
 * `/v1/overview` still says `stale` on them (a verifier must not rely on them) and `ended` too.
 */
import { generateKeyPairSync, X509Certificate } from "node:crypto";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { rolloverCas } from "../ca/rollover.js";
import { retiredCrlStates } from "../crl/finished.js";
import { generateCrls } from "../crl/generate.js";
import { summariseCa } from "../ca/manage.js";
import { runInProcess } from "../../test/cli-in-process.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { registerVerifier } from "../verifier/registration.js";
import { Workspace } from "../workspace/workspace.js";
import { buildServer } from "./app.js";

const DAY = 86_400_000;
const open: Array<{ close(): Promise<unknown> }> = [];
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});

describe("the CRLs a finished retired generation no longer replaces", () => {
  it("are marked ended in /crl/index.json and are not stale in /healthz: its partitions once it is done, its full CRL and ARL once its links have ended", async () => {
    const clock = new FixedClock("2026-05-01T00:00:00Z");
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-retired-crls-")), "ws"), { clock, config: { openRoutes: ["/healthz", "/crl/index.json", "/metrics"] } });
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    const residentCode = makeResidentCode("0000000702");
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" } }]);
    const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const cert = await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: spki });
    await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" }); // 13-sig retired
    await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });
    const auth = { authorization: `Bearer ${(await registerVerifier(ws, { name: "retired-crls test", kind: "government" })).token!}` };
    const { app } = await buildServer(ws, { overviewCacheMs: 0 });
    open.push(app);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const index = async () => ((await app.inject({ method: "GET", url: "/crl/index.json" })).json().crls as Array<{ caId: string; scope: string; ended?: boolean }>).map((c) => `${c.caId}/${c.scope}${c.ended ? ":ended" : ""}`).sort();
    // the overview's CRLs, with stale and ended
    const overview = async () => {
      // over a socket: the credential is checked on node:http's request (access.admit), which inject does not pass
      const r = await fetch(`${base}/v1/overview`, { headers: auth });
      expect(r.status).toBe(200);
      const cas = ((await r.json()) as { cas: unknown }).cas as Array<{ id: string; crls: Array<{ kind: string; stale: boolean; ended?: boolean }> }>;
      return cas.flatMap((ca) => ca.crls.map((c) => `${ca.id}/${c.kind}${c.stale ? ":stale" : ""}${c.ended ? ":ended" : ""}`)).sort();
    };
    const health = async () => (await app.inject({ method: "GET", url: "/healthz" })).json() as { stale: string[] };
    // the CAs and scopes jpki_crl_seconds_to_next_update has a series for
    const gauged = async () =>
      [...(await app.inject({ method: "GET", url: "/metrics" })).body.matchAll(/^jpki_crl_seconds_to_next_update\{ca="([^"]+)",scope="([^"]+)"\}/gm)].map((m) => `${m[1]}/${m[2]}`).sort();
    // every CRL current: nothing is looked at (finding a generation done scans its certificates)
    const scan = vi.spyOn(ws.store, "lastCertificateExpiry");
    expect((await health()).stale).toEqual([]);
    expect(await index()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl", "13-sig/full", "13-sig/partition"]);
    expect(await gauged()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/131016", "13-sig/arl", "13-sig/full"]);
    expect(await overview()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl", "13-sig/full", "13-sig/partition"]);
    expect(scan).not.toHaveBeenCalled();
    scan.mockRestore();
    // what ca list / ca show say of the retired generation (crls), and of the active one (nothing)
    const states = async () => {
      const all = await ws.store.listCas();
      const st = await retiredCrlStates(ws, all);
      return all.map((r) => summariseCa(ws, r, all, st)).map((c) => `${c.id}:${c.status}${c.crls ? `:${c.crls}` : ""}`).sort();
    };
    expect(await states()).toEqual(["13-sig-g2:active", "13-sig:retired:current"]);

    // a CRL issued beyond the certificate's validity, then past the grace: 13-sig is done
    clock.set(cert.notAfter.getTime() + DAY);
    await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });
    clock.set(cert.notAfter.getTime() + 8 * DAY);
    // 13-sig's partition, last published at +1 day, is past its nextUpdate; the rest is published now
    await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });

    expect(await index()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl", "13-sig/full", "13-sig/partition:ended"]);
    expect(await overview()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl", "13-sig/full", "13-sig/partition:stale:ended"]);
    expect(await states()).toEqual(["13-sig-g2:active", "13-sig:retired:current"]); // its full CRL is kept current for the links
    expect((await health()).stale).toEqual([]);
    expect(await gauged()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl", "13-sig/full"]);

    // past the end of the links (13-sig's certificate): its full CRL and ARL are ended too, nothing is stale
    const end = new X509Certificate((await ws.store.getCa("13-sig"))!.certificateDer).validTo;
    clock.set(new Date(end).getTime() + 3 * DAY);
    expect(await generateCrls(ws, { ca: "13-sig", passphrase: "pw", partitions: "all" })).toEqual([]);
    await generateCrls(ws, { ca: "13-sig-g2", passphrase: "pw", partitions: "all" });
    expect(await index()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl:ended", "13-sig/full:ended", "13-sig/partition:ended"]);
    expect(await overview()).toEqual(["13-sig-g2/arl", "13-sig-g2/full", "13-sig/arl:stale:ended", "13-sig/full:stale:ended", "13-sig/partition:stale:ended"]);
    expect(await states()).toEqual(["13-sig-g2:active", "13-sig:retired:ended"]);
    expect([...(await retiredCrlStates(ws, await ws.store.listCas(), ["13-sig-g2"]))]).toEqual([]);
    expect((await health()).stale).toEqual([]);
    expect(await gauged()).toEqual(["13-sig-g2/arl", "13-sig-g2/full"]);
  });

  it("jpki ca list and ca show say whether a retired generation's CRLs are current (text and --json)", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-retired-crls-cli-")), "ws"), {});
    open.push(ws);
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    await rolloverCas(ws, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw" });
    await generateCrls(ws, { prefecture: "13", passphrase: "pw" });
    const cli = (...args: string[]) => runInProcess(["--workspace", ws.paths.root, ...args], { env: {}, cwd: tmpdir() });
    const list = await cli("--json", "ca", "list");
    expect(list.code).toBe(0);
    expect((JSON.parse(list.stdout).cas as Array<{ id: string; status: string; crls?: string }>).map((c) => [c.id, c.status, c.crls])).toEqual([
      ["13-sig", "retired", "current"],
      ["13-sig-g2", "active", undefined],
    ]);
    expect((await cli("ca", "list")).stdout).toMatch(/^13-sig .*\(generation 1, retired, CRLs current\)$/m);
    expect(JSON.parse((await cli("--json", "ca", "show", "13-sig")).stdout)).toMatchObject({ status: "retired", crls: "current" });
    expect((await cli("ca", "show", "13-sig")).stdout).toContain("generation 1 (retired, CRLs current)");
  });
});
