/**
 * The validation service around the engine (validation-service.ts): once closed it starts nothing and answers
 * nothing. `jpki serve` closes it while keep-alive connections may still send requests during the stop's grace;
 * a request then used to start a new engine thread that nobody stopped, and the process never exited after
 * SIGTERM (seen under load: its one live handle was that thread's port). Runs the compiled thread module (the
 * global setup builds dist/).
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cardKeyVariant } from "../../test/card-fixtures.js";
import { IssuanceService } from "../ca/issuance.js";
import { initCas } from "../ca/manage.js";
import { rolloverCas } from "../ca/rollover.js";
import { prefecture } from "../ca/prefectures.js";
import { generateCrls } from "../crl/generate.js";
import { FixedClock } from "../pki/clock.js";
import { makeResidentCode } from "../registry/resident-code.js";
import type { VerifierRecord } from "../store/types.js";
import { Workspace } from "../workspace/workspace.js";
import { ENGINE_CRL_CACHE, engineThreadAvailable } from "./engine-thread.js";
import { registerVerifier } from "./registration.js";
import { publishedCrlPaths, VerifierValidationService } from "./validation-service.js";
import { readFileSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { revokeCertificate } from "../ca/revocation.js";
import { CrlIndexCache } from "../validation/crl-index-cache.js";
import { parseCrl } from "../validation/crl.js";
import { validateJpki } from "../validation/jpki.js";

const MODULE = new URL("../../dist/src/verifier/engine-thread-main.js", import.meta.url);
const clock = new FixedClock(new Date());
let ws: Workspace;
let verifier: VerifierRecord;
let certificate: Buffer;

/** Live worker threads' ports and the like: a thread left running shows here and keeps the process alive. */
const ports = () => process.getActiveResourcesInfo().filter((r) => r === "MessagePort").length;

beforeAll(async () => {
  expect(engineThreadAvailable(MODULE)).toBe(true);
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-vs-")), { clock });
  verifier = (await registerVerifier(ws, { name: "closing test", kind: "government" })).record;
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  const residentCode = makeResidentCode("0000000888");
  await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "female" } }]);
  const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
  certificate = (await new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: spki })).der;
  await generateCrls(ws, { prefecture: "13", passphrase: "pw" });
});

afterAll(async () => {
  await ws?.close();
});

describe("VerifierValidationService.close", () => {
  it("stops the engine's thread, and a validation asked afterwards is refused (ERR_STORE) without starting another", async () => {
    const before = ports();
    const service = new VerifierValidationService(ws, { engineThread: MODULE });
    const answer = await service.validate(verifier, { certificate, purpose: "signature" });
    expect(answer).toMatchObject({ view: "government", status: "valid" });
    expect(ports()).toBeGreaterThan(before); // the thread runs
    await service.close();
    expect(ports()).toBe(before);
    // The store is still open here: only the service's own state can refuse.
    await expect(service.validate(verifier, { certificate, purpose: "signature" })).rejects.toMatchObject({ code: "ERR_STORE", message: expect.stringMatching(/closed/) });
    expect(ports()).toBe(before);
    expect(await ws.store.listDisclosures({ residentCode: makeResidentCode("0000000888") })).toHaveLength(1);
  });

  it("a validation that was waiting for the thread to start when the service closed gets no new thread either", async () => {
    const before = ports();
    const service = new VerifierValidationService(ws, { engineThread: MODULE });
    const asked = service.validate(verifier, { certificate, purpose: "signature" }).then(
      () => "answered",
      (e: { code?: string }) => e.code,
    );
    await service.close();
    // Either outcome is fine for the request in flight; what matters is that no thread outlives close().
    expect(["answered", "ERR_STORE"]).toContain(await asked);
    await new Promise((r) => setTimeout(r, 200));
    expect(ports()).toBe(before);
  });
});

describe("VerifierValidationService and legal bases", () => {
  // The Act's tables are for government bodies: a private provider's "pension" was answered and logged under it.
  it("refuses a legal basis from a private provider (ERR_LEGAL_BASIS_NOT_ALLOWED) before validating, and records nothing", async () => {
    const residentCode = makeResidentCode("0000000888");
    const priv = (await registerVerifier(ws, { name: "Example Bank", kind: "private" })).record;
    const service = new VerifierValidationService(ws, { engineThread: MODULE });
    try {
      const before = (await ws.store.listDisclosures({ residentCode })).length;
      await expect(service.validate(priv, { certificate, purpose: "signature", legalBasis: "pension" })).rejects.toMatchObject({ code: "ERR_LEGAL_BASIS_NOT_ALLOWED", message: expect.stringMatching(/government/) });
      await expect(service.verifySignature(priv, { signedData: Buffer.from("MAA=", "base64"), legalBasis: "passport" })).rejects.toMatchObject({ code: "ERR_LEGAL_BASIS_NOT_ALLOWED" });
      expect(await ws.store.listDisclosures({ residentCode })).toHaveLength(before);
      // without one it is answered and recorded, with no legal basis
      expect(await service.validate(priv, { certificate, purpose: "signature" })).toMatchObject({ view: "private", status: "valid" });
      expect((await ws.store.listDisclosures({ residentCode })).slice(before)).toMatchObject([{ verifierId: priv.id, legalBasis: undefined }]);
      // a government body's is answered as before
      expect(await service.validate(verifier, { certificate, purpose: "signature", legalBasis: "pension" })).toMatchObject({ legalBasis: "pension", currentItems: { name: "山田　花子" } });
    } finally {
      await service.close();
    }
  });
});

/** Tokyo's signature CA, and a certificate each for two residents of two municipalities (131016, 131024). */
async function twoInTwoMunicipalities(w: Workspace) {
  await initCas(w, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  const items = (name: string) => ({ name, address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "female" as const });
  const [a, b] = [makeResidentCode("0000000101"), makeResidentCode("0000000202")];
  await w.store.upsertResidents([
    { residentCode: a, municipalityCode: "131016", status: "active", fourItems: items("山田　花子") },
    { residentCode: b, municipalityCode: "131024", status: "active", fourItems: items("山田　太郎") },
  ]);
  const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
  const issuance = new IssuanceService({ store: w.store, config: w.config, clock, passphrase: "pw" });
  return [await issuance.issue({ residentCode: a, type: "signature", publicKey: spki }), await issuance.issue({ residentCode: b, type: "signature", publicKey: cardKeyVariant(spki, 1) })] as const;
}

describe("the published set, as the engine holds it (frozen, one CrlIndexCache)", () => {
  it("reads a certificate's municipality partition: the full CRL beside it is parsed but its entries never indexed", async () => {
    const w = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-vs-set-")), { clock });
    try {
      const [valid, revoked] = await twoInTwoMunicipalities(w);
      await revokeCertificate(w.store, { serial: revoked.serial, reason: "keyCompromise", at: clock.now() });
      await generateCrls(w, { prefecture: "13", passphrase: "pw", partitions: "all" });
      const paths = await publishedCrlPaths(w);
      const full = paths.find((p) => p.endsWith("/13-sig.crl"))!;
      const partition = paths.find((p) => p.endsWith("/131024.crl"))!;
      expect(paths.length).toBeGreaterThanOrEqual(4); // the full CRL, two partitions, the ARL
      const set = Object.freeze(paths.map((p) => readFileSync(p)));
      const anchors = Object.freeze((await w.store.listCas()).map((c) => c.certificateDer));
      const cache = new CrlIndexCache(ENGINE_CRL_CACHE);
      const check = (der: Buffer) => validateJpki({ certificate: der, purpose: "signature", trustAnchors: anchors, crls: set, crlIndex: cache, at: clock.now() });
      expect(check(valid.der).status).toBe("valid");
      expect(check(revoked.der)).toMatchObject({ status: "revoked", revocation: { reason: "keyCompromise" } });
      // What the cache counts is the index of what was read (the files' bytes are the caller's, read in place):
      // the revoked resident's partition alone (the other partition lists nothing). The full CRL lists the same
      // entry: indexed, it would have counted as much again.
      const partitionIndex = parseCrl(readFileSync(partition)).entries as unknown as { byteLength: number };
      const fullIndex = parseCrl(readFileSync(full)).entries as unknown as { byteLength: number };
      expect(fullIndex.byteLength).toBeGreaterThan(0);
      expect(cache.stats.bytes).toBe(partitionIndex.byteLength);
    } finally {
      await w.close();
    }
  });
});

describe("the published set, looked at again", () => {
  it("sees a publication at the next look, and a file rewritten in place (its directory unchanged) at the full sweep (10 s)", async () => {
    const w = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-vs-look-")), { clock });
    let t = 0;
    const service = new VerifierValidationService(w, { now: () => t, recheckMs: 1000 });
    try {
      const v = (await registerVerifier(w, { name: "look", kind: "government" })).record;
      const [ca, cb] = await twoInTwoMunicipalities(w);
      // The published files as they are with nothing revoked (P1), and with b revoked (P2, published as usual).
      await generateCrls(w, { prefecture: "13", passphrase: "pw", partitions: "all" });
      const paths = await publishedCrlPaths(w);
      const p1 = paths.map((p) => readFileSync(p));
      await revokeCertificate(w.store, { serial: cb.serial, reason: "keyCompromise", at: clock.now() });
      await generateCrls(w, { prefecture: "13", passphrase: "pw", partitions: "all" });
      expect(await publishedCrlPaths(w)).toEqual(paths);
      const p2 = paths.map((p) => readFileSync(p));
      // P1's bytes written back into the same files (in place: their directories do not change), then the
      // directories left to settle (their last change more than 2 s old), so a look that finds them unchanged
      // stats none of their files.
      paths.forEach((p, i) => writeFileSync(p, p1[i]!));
      // (their mtimes set to a whole second an hour ago, which can be set again exactly further down)
      const dirs = [w.paths.crlDir, join(w.paths.crlDir, "13-sig"), join(w.paths.root, "arl")];
      const hourAgo = Math.floor(Date.now() / 1000) - 3600;
      const setBack = () => dirs.forEach((d) => utimesSync(d, hourAgo, hourAgo));
      setBack();
      await new Promise((r) => setTimeout(r, 2_100));
      const status = async (cert: Buffer) => ((await service.validate(v, { certificate: cert, purpose: "signature" })) as { status: string }).status;
      expect(await status(cb.der)).toBe("valid");
      // P2 written in place: the directories look as they were.
      paths.forEach((p, i) => writeFileSync(p, p2[i]!));
      t += 1_001; // the next look finds the directories unchanged and reads none of their files
      expect(await status(cb.der)).toBe("valid");
      t += 9_000; // the full sweep reads every file whatever its directory says
      expect(await status(cb.der)).toBe("revoked");
      // a revoked and republished as usual: the directories changed, and the next look (1 s on) reads them — even
      // with their mtimes set back as they were (rsync -a, tar and cp -a restore them): their ctimes moved.
      await revokeCertificate(w.store, { serial: ca.serial, reason: "keyCompromise", at: clock.now() });
      await generateCrls(w, { prefecture: "13", passphrase: "pw", partitions: "all" });
      setBack();
      expect(dirs.map((d) => statSync(d).mtimeMs)).toEqual(dirs.map(() => hourAgo * 1000));
      t += 1_001;
      expect(await status(ca.der)).toBe("revoked");
      // and with nothing published meanwhile, the next looks keep what they have
      t += 1_001;
      expect(await status(ca.der)).toBe("revoked");
      expect(await status(cb.der)).toBe("revoked");
    } finally {
      await service.close();
      await w.close();
    }
  });
});


describe("VerifierValidationService after a rollover for a compromised key", () => {
  // Found by a helper: the service anchored at every CA of the store, the compromised generation too, so a
  // certificate its thief signed (any serial, no CRL entry) was answered "valid".
  it("no longer takes the compromised generation as a trust anchor; the new generation's and other CAs' certificates stay valid", async () => {
    const w = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-vs-compromised-")), { clock });
    const service = () => new VerifierValidationService(w, { engineThread: MODULE });
    try {
      const gov = (await registerVerifier(w, { name: "compromise test", kind: "government" })).record;
      const [old] = await twoInTwoMunicipalities(w);
      // one whose key is kept: it signs a document (CMS) for /v1/verify-signature
      const signerKey = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const signerCode = makeResidentCode("0000000404");
      await w.store.upsertResidents([{ residentCode: signerCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　三郎", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-03", gender: "male" } }]);
      const signer = await new IssuanceService({ store: w.store, config: w.config, clock, passphrase: "pw" }).issue({ residentCode: signerCode, type: "signature", publicKey: signerKey.publicKey.export({ type: "spki", format: "der" }) });
      await generateCrls(w, { prefecture: "13", passphrase: "pw" });
      const before = service();
      try {
        expect(await before.validate(gov, { certificate: old.der, purpose: "signature" })).toMatchObject({ status: "valid" });
      } finally {
        await before.close();
      }
      await rolloverCas(w, { prefectureCode: "13", purposes: ["signature"], passphrase: "pw", compromised: true });
      const residentCode = makeResidentCode("0000000303");
      await w.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　次郎", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "male" } }]);
      const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
      const fresh = await new IssuanceService({ store: w.store, config: w.config, clock, passphrase: "pw" }).issue({ residentCode, type: "signature", publicKey: spki });
      expect(fresh.caId).toBe("13-sig-g2");
      await generateCrls(w, { prefecture: "13", passphrase: "pw" });
      const after = service();
      try {
        expect(await after.validate(gov, { certificate: old.der, purpose: "signature" })).toMatchObject({ status: "untrusted" });
        expect(await after.validate(gov, { certificate: fresh.der, purpose: "signature" })).toMatchObject({ status: "valid" });
        // A government body is told why (it was a bare untrusted, "no-trust-anchor"); a private provider, as ever, only unknown.
        const told = await after.validate(gov, { certificate: old.der, purpose: "signature" });
        expect(told).toMatchObject({ status: "untrusted", reason: "issuer-compromised", failedCertificate: { index: 0 } });
        expect((told as { message?: string }).message).toContain("CA 13-sig");
        const priv = (await registerVerifier(w, { name: "Example Bank", kind: "private" })).record;
        expect(await after.validate(priv, { certificate: old.der, purpose: "signature" })).toEqual({ view: "private", status: "unknown", validationTime: expect.any(String) });
        // a certificate no CA of ours signed keeps the engine's reason
        // a document signed with it: the signature's path is told issuer-compromised too (a government body), unknown (a private provider)
        // (-noattr: no signingTime, which could lie a moment before the certificate's notBefore, set by the test's fixed clock)
        const d = mkdtempSync(join(tmpdir(), "jpki-vs-foreign-"));
        writeFileSync(join(d, "doc.txt"), "申請書");
        writeFileSync(join(d, "signer.der"), signer.der);
        execFileSync("openssl", ["x509", "-inform", "DER", "-in", join(d, "signer.der"), "-out", join(d, "signer.pem")]);
        writeFileSync(join(d, "signer.key"), signerKey.privateKey.export({ type: "pkcs8", format: "pem" }) as string);
        execFileSync("openssl", ["cms", "-sign", "-binary", "-md", "sha256", "-nodetach", "-noattr", "-in", join(d, "doc.txt"), "-signer", join(d, "signer.pem"), "-inkey", join(d, "signer.key"), "-outform", "DER", "-out", join(d, "doc.p7s")], { stdio: "ignore" });
        const signed = await after.verifySignature(gov, { signedData: readFileSync(join(d, "doc.p7s")) });
        expect(signed.signature).toMatchObject({ status: "untrusted", reason: "issuer-compromised" });
        expect(signed.certificate).toMatchObject({ status: "untrusted", reason: "issuer-compromised" });
        expect((await after.verifySignature(priv, { signedData: readFileSync(join(d, "doc.p7s")) })).signature).toEqual({ status: "unknown" });
        execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=foreign", "-keyout", join(d, "k.pem"), "-outform", "DER", "-out", join(d, "c.der")], { stdio: "ignore" });
        const foreign = await after.validate(gov, { certificate: readFileSync(join(d, "c.der")), purpose: "signature" });
        expect(foreign.status).not.toBe("valid");
        expect((foreign as { reason?: string }).reason).not.toBe("issuer-compromised");
      } finally {
        await after.close();
      }
    } finally {
      await w.close();
    }
  });
});
