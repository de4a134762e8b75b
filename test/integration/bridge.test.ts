/**
 * The prefectures' Bridge CA (issue 10 point 7; ca/bridge.ts): `jpki ca bridge` creates it and cross-certifies
 * the demo's CAs both ways; a verifier trusting only the Bridge validates any prefecture's certificate through
 * the cross-certificate (ours, OpenSSL with -crl_check_all, GnuTLS), one trusting only Osaka's CA does not
 * validate Tokyo's even with every cross-certificate at hand, and path building picks the valid path among
 * several (a not-yet-valid cross-certificate offered first). Plus the operator's side: idempotent re-runs, ARL
 * numbers never reused, two runs at once, a lock left by a killed run, `ca rewrap` re-encrypting the Bridge key.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { validateJpki, type JpkiPurpose } from "../../src/index.js";
import { parseCertificate } from "../../src/validation/certificate.js";
import { describeCrl } from "../../src/profile/describe.js";
import { parsePemBlocks, toPem } from "../../src/pki/pem.js";
import { assembleCertificate, encodeTbs } from "../../src/ca/certificate.js";
import { certificateParts, children } from "../../src/pki/der.js";
import { decryptPrivateKey } from "../../src/pki/keys.js";
import { randomSerial } from "../../src/pki/serial.js";
import { SoftwareSigner } from "../../src/pki/signer.js";
import { CrlUpdater } from "../../src/crl/updater.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { withCaKeysLock } from "../../src/ca/manage.js";
import { MAIN, cli, runDemo, sh, storeEnv, tempDir, unrevoked, workspaceStore, type DemoRun } from "./helpers.js";
import { until } from "../until.js";

let demo: DemoRun;
let dir: string;
let ws: string;
let pass: string;
let first: any;

const pems = (file: string) => parsePemBlocks(readFileSync(file, "utf8")).map((b) => b.der);
const pick = (caName: string) => unrevoked(demo).find((c) => c.ca === caName)!;
const bridgePem = () => join(ws, "bridge", "bridge.pem");
const crossPem = () => join(ws, "bridge", "cross.pem");
const crlOf = (id: string) => join(ws, "crl", `${id}.crl`);
const arl = () => join(ws, "arl", "bridge.crl");
const bridge = (args: string[] = []) => cli(["ca", "bridge", "-w", ws, "--passphrase-file", pass, "--json", ...args], { cwd: dir });

function ours(certPath: string, trust: Buffer[], opts: { purpose?: JpkiPurpose; chain?: Buffer[]; crls?: string[]; at?: Date } = {}) {
  return validateJpki({
    certificate: pems(certPath)[0]!,
    purpose: opts.purpose ?? "signature",
    trustAnchors: trust,
    intermediates: opts.chain ?? pems(crossPem()),
    crls: (opts.crls ?? []).map((f) => readFileSync(f)),
    at: opts.at ?? new Date(),
  });
}

beforeAll(async () => {
  dir = tempDir("jpki-bridge-");
  demo = await runDemo(dir);
  ws = demo.workspace;
  pass = join(ws, "passphrase.txt");
  const r = await bridge();
  expect(r.code, r.stderr).toBe(0);
  first = r.json();
}, 180_000);

describe("jpki ca bridge: the Bridge CA and its cross-certificates", () => {
  it("creates the Bridge CA in the spec's shape and cross-certifies every CA both ways", async () => {
    expect(first.bridge).toMatchObject({ created: true, subject: "C=JP, O=JPKI, OU=Prefectural Association For JPKI, OU=BridgeCA" });
    const cas = JSON.parse((await cli(["ca", "list", "-w", ws, "--json"], { cwd: dir })).stdout).cas.map((c: { id: string }) => c.id).sort();
    expect(cas.length).toBeGreaterThanOrEqual(2);
    const issued = first.crossCertificates as Array<{ caId: string; direction: string }>;
    expect(issued.length).toBe(cas.length * 2);
    for (const id of cas) expect(issued.filter((c) => c.caId === id).map((c) => c.direction).sort()).toEqual(["bridge-to-ca", "ca-to-bridge"]);

    const b = parseCertificate(pems(bridgePem())[0]!);
    expect(b.selfIssued).toBe(true);
    expect(b.basicConstraints).toEqual({ cA: true, pathLen: undefined });
    expect(pems(bridgePem())[0]!.includes(Buffer.from("ブリッジ認証局", "utf8"))).toBe(true); // the Japanese SAN
    const text = sh("openssl", ["x509", "-in", bridgePem(), "-noout", "-text"]).out;
    expect(text).toMatch(/Certificate Sign, CRL Sign/);
    expect(text).toContain("URI:http");

    // Every cross-certificate: a CA certificate with pathLenConstraint 0, the issuer's ARL as distribution point;
    // Bridge -> CA also carries the CA's purpose policy.
    for (const der of pems(crossPem())) {
      const c = parseCertificate(der);
      expect(c.basicConstraints).toEqual({ cA: true, pathLen: 0 });
      const toCa = c.issuer.rdns.some((r) => r.some((a) => a.text === "BridgeCA"));
      if (toCa) expect((c.policies ?? []).map((p) => p.policy)[0]).toMatch(/^1\.2\.392\.200149\.8\.5\.1\.(1\.20|3\.30)$/);
      else expect(c.policies).toBeUndefined();
    }
    // The ARL: empty, signed by the Bridge, what openssl reads as a CRL with IDP onlyContainsCACerts.
    const crlText = sh("openssl", ["crl", "-inform", "DER", "-in", arl(), "-noout", "-text", "-CAfile", bridgePem()]).out;
    expect(crlText).toContain("verify OK");
    expect(crlText).toContain("Only CA Certificates");
    expect(crlText).toContain("No Revoked Certificates");
  });

  it("a verifier trusting only the Bridge validates every prefecture's certificates through the cross-certificate; OpenSSL and GnuTLS agree", () => {
    const anchor = pems(bridgePem());
    for (const id of ["13-sig", "27-sig", "13-auth"]) {
      const c = pick(id);
      const purpose: JpkiPurpose = id.endsWith("auth") ? "authentication" : "signature";
      const r = ours(c.path, anchor, { purpose, crls: [crlOf(id), arl()] });
      expect(r.status, `${id}: ${JSON.stringify(r)}`).toBe("valid");
      expect(r.chain!.map((x) => x.issuer)).toEqual([expect.stringContaining(id.startsWith("13") ? "Tokyo-to" : "Osaka-fu"), expect.stringContaining("BridgeCA")]);
      expect(r.prefecture?.code).toBe(id.slice(0, 2));
      const ossl = sh("openssl", ["verify", "-crl_check_all", "-CAfile", bridgePem(), "-untrusted", crossPem(), "-CRLfile", `${crlOf(id)}.pem`, "-CRLfile", arl(), c.path]);
      expect(ossl.out, ossl.out).toContain(": OK");
      expect(gnutls(c.path, [bridgePem()], crossPem()).status).toBe(0);
    }
    // Without the cross-certificates there is no path: untrusted, and OpenSSL agrees.
    const c = pick("13-sig");
    expect(ours(c.path, anchor, { chain: [], crls: [crlOf("13-sig"), arl()] })).toMatchObject({ status: "untrusted", reason: "no-trust-anchor" });
    expect(sh("openssl", ["verify", "-CAfile", bridgePem(), c.path]).status).not.toBe(0);
    // The purpose still holds through the Bridge: a signature certificate is no authentication certificate.
    expect(ours(c.path, anchor, { purpose: "authentication", crls: [crlOf("13-sig"), arl()] })).toMatchObject({ status: "profile-violation", reason: "wrong-purpose" });
    // Hard-fail: the cross-certificate's revocation needs the Bridge's ARL.
    expect(ours(c.path, anchor, { crls: [crlOf("13-sig")] })).toMatchObject({ status: "revocation-unknown", index: 1 });
  });

  it("a verifier trusting only Osaka's CA does not validate Tokyo's certificates, even with every cross-certificate; OpenSSL and GnuTLS agree", async () => {
    const osaka = pems(join(ws, "ca", "27-sig.pem"));
    const tokyo = pick("13-sig");
    const r = ours(tokyo.path, osaka, { crls: [crlOf("13-sig"), arl()] });
    expect(r).toMatchObject({ status: "untrusted", reason: "path-length-exceeded" });
    expect(sh("openssl", ["verify", "-CAfile", join(ws, "ca", "27-sig.pem"), "-untrusted", crossPem(), tokyo.path]).status).not.toBe(0);
    expect(gnutls(tokyo.path, [join(ws, "ca", "27-sig.pem")], crossPem()).status).not.toBe(0);
    // Osaka's own certificates stay valid for it, the cross-certificates at hand or not.
    expect(ours(pick("27-sig").path, osaka, { crls: [crlOf("27-sig")] }).status).toBe("valid");
    // The CLI says it in a clerk's words, exit 1.
    const v = await cli(["verify", tokyo.path, "--trust", join(ws, "ca", "27-sig.pem"), "--chain", crossPem(), "--crl", crlOf("13-sig"), "--crl", arl()], { cwd: dir });
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/^NOT VALID: not trusted/);
    expect(v.stdout).toContain("Bridge CA");
  });

  it("path building picks the valid path among several: a not-yet-valid cross-certificate offered first is passed over", async () => {
    const tokyo = pick("13-sig");
    const current = pems(join(ws, "bridge", "cross", "13-sig.by-bridge.pem"))[0]!;
    // A second cross-certificate for Tokyo's CA, valid only from 30 days on: the same one re-signed by the
    // Bridge's key with another validity.
    const future = await resigned(current, new Date(Date.now() + 30 * 86_400_000));
    expect(parseCertificate(future).notBefore.getTime()).toBeGreaterThan(Date.now());
    const anchor = pems(bridgePem());
    const crls = [crlOf("13-sig"), arl()];
    expect(ours(tokyo.path, anchor, { chain: [future], crls })).toMatchObject({ status: "not-yet-valid", index: 1 });
    const both = ours(tokyo.path, anchor, { chain: [future, current], crls });
    expect(both.status).toBe("valid");
    expect(both.chain![1]!.serial).toBe(parseCertificate(current).serialHex);
    // 31 days on, both are current and both paths valid.
    expect(ours(tokyo.path, anchor, { chain: [future, current], crls: [], at: new Date(Date.now() + 31 * 86_400_000) }).status).not.toBe("not-yet-valid");
  });
});

describe("jpki ca bridge: the operator's side", () => {
  it("a re-run cross-certifies nothing new, and every run publishes a higher ARL number", async () => {
    const before = Number(first.arl.number);
    const r = await bridge();
    expect(r.code, r.stderr).toBe(0);
    const j = r.json();
    expect(j.bridge.created).toBe(false);
    expect(j.bridge.sha256Fingerprint).toBe(first.bridge.sha256Fingerprint);
    expect(j.crossCertificates.filter((c: { caId: string }) => c.caId !== "13-sig")).toEqual([]);
    expect(Number(j.arl.number)).toBeGreaterThan(before);
    const number = sh("openssl", ["crl", "-inform", "DER", "-in", arl(), "-noout", "-crlnumber"]).out;
    expect(BigInt(number.trim().split("=")[1]!)).toBe(BigInt(j.arl.number));
  });

  it("bad input: an unknown prefecture, a wrong passphrase — typed errors, nothing changed", async () => {
    const state = readFileSync(join(ws, "bridge", "state.json"), "utf8");
    const none = await bridge(["--prefecture", "46"]);
    expect(none.code).toBe(4);
    expect(none.stderr).toContain("ERR_CA_UNKNOWN");
    const wrongPass = join(dir, "wrong.txt");
    writeFileSync(wrongPass, "not the passphrase\n", { mode: 0o600 });
    const wrong = await cli(["ca", "bridge", "-w", ws, "--passphrase-file", wrongPass], { cwd: dir });
    expect(wrong.code).toBe(5);
    expect(wrong.stderr).toContain("ERR_PASSPHRASE_WRONG");
    expect(wrong.stderr).not.toMatch(/\n\s+at /); // no stack trace
    // removeFromCRL un-revokes (delta CRLs only): an ARL entry with it revokes nothing to OpenSSL, yet the CA
    // would have left the bundle for good. It was accepted.
    const unrevoke = await bridge(["--revoke", "27-sig", "--reason", "removeFromCRL"]);
    expect(unrevoke.code, unrevoke.stderr).toBe(2);
    expect(JSON.parse(unrevoke.stderr).error.code).toBe("ERR_USAGE");
    expect(readFileSync(join(ws, "bridge", "state.json"), "utf8")).toBe(state);
  });

  it("two runs at once: each finishes or says the Bridge is busy; ARL numbers are never reused; a lock left by a killed run is taken over", async () => {
    const env = { ...process.env, ...(await storeEnv(ws)), JPKI_PASSPHRASE: undefined };
    const run = () =>
      new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        const p = spawn(process.execPath, [MAIN, "ca", "bridge", "-w", ws, "--passphrase-file", pass, "--json"], { env: env as NodeJS.ProcessEnv });
        let out = "", err = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (err += d));
        p.on("close", (code) => resolve({ code, out, err }));
      });
    const results = await Promise.all([run(), run(), run()]);
    const numbers: number[] = [];
    for (const r of results) {
      if (r.code === 0) numbers.push(Number(JSON.parse(r.out).arl.number));
      else {
        expect(r.code, r.err).toBe(3);
        expect(r.err).toContain("ERR_WORKSPACE_LOCKED");
      }
    }
    expect(numbers.length).toBeGreaterThan(0);
    expect(new Set(numbers).size).toBe(numbers.length);

    // A lock whose process is gone (kill -9 mid-run) does not block the next run.
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout;
    writeFileSync(join(ws, "bridge", ".lock"), dead);
    const r = await bridge();
    expect(r.code, r.stderr).toBe(0);
    expect(Number(r.json().arl.number)).toBeGreaterThan(Math.max(...numbers));
    expect(existsSync(join(ws, "bridge", ".lock"))).toBe(false);
  }, 60_000);

  // The Bridge key shares the CA keys' passphrase: a `ca bridge` creating it beside a `ca rewrap
  // --new-passphrase-file` (which found no Bridge to lock or re-encrypt) wrapped it under the old passphrase
  // while every CA key moved to the new one. It now runs under the CA-keys lock, as ca init, rewrap and rollover.
  it("is refused (ERR_WORKSPACE_LOCKED, exit 3) while another command changes the CA keys, changing nothing", async () => {
    const state = readFileSync(join(ws, "bridge", "state.json"), "utf8");
    const wsp = await Workspace.openAsync(ws, { storeUrl: await workspaceStore(ws) });
    try {
      const r = await withCaKeysLock(wsp, () => bridge());
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain("ERR_WORKSPACE_LOCKED");
    } finally {
      await wsp.close();
    }
    expect(readFileSync(join(ws, "bridge", "state.json"), "utf8")).toBe(state);
  });

  it("the Bridge's ARL is kept fresh: the CRL schedule republishes it within the refresh margin, crl generate --partitions all with the others", async () => {
    const arlNumber = () => BigInt(sh("openssl", ["crl", "-inform", "DER", "-in", arl(), "-noout", "-crlnumber"]).out.trim().split("=")[1]!);
    const before = arlNumber();
    const passphrase = readFileSync(pass, "utf8").trim();
    // The schedule's tick (what `jpki serve` and `watch` run), or the Bridge part of it alone.
    const tick = async (at: Date, whole = false) => {
      const w = await Workspace.openAsync(ws, { storeUrl: await workspaceStore(ws), clock: { now: () => at } });
      try {
        const u = new CrlUpdater(w, passphrase);
        const out = whole ? await u.schedule().tick() : await u.refreshBridgeArl();
        return out.filter((p) => p.caId === "bridge").map((p) => ({ caId: p.caId, number: p.number }));
      } finally {
        await w.close();
      }
    };
    // Fresh: nothing to do. Near its nextUpdate (crlLifetimeHours 48, margin 12 by default): a new ARL.
    expect(await tick(new Date(), true)).toEqual([]);
    expect(arlNumber()).toBe(before);
    const published = await tick(new Date(Date.now() + 40 * 3600_000), true);
    expect(published).toEqual([{ caId: "bridge", number: before + 1n }]);
    expect(arlNumber()).toBe(before + 1n);
    // A `jpki ca bridge` holding the lock (a live process) makes the Bridge part fail with ERR_WORKSPACE_LOCKED,
    // which the schedule reports without holding back the CAs' own CRLs; a lock whose process is gone is taken over.
    // (an hour, not 30 s: a loaded host that took longer than its sleep to reach the tick found its lock's process
    // gone by itself, and the tick took the lock over where the test asks for ERR_WORKSPACE_LOCKED)
    const holder = spawn("sleep", ["3600"]);
    const due = new Date(Date.now() + 70 * 3600_000); // the +40 h ARL is within the margin again
    try {
      writeFileSync(join(ws, "bridge", ".lock"), String(holder.pid));
      await expect(tick(due)).rejects.toMatchObject({ code: "ERR_WORKSPACE_LOCKED" });
    } finally {
      holder.kill("SIGKILL"); // a zombie until reaped: dead all the same for the lock
    }
    // SIGKILL takes effect when the process next runs: right after kill() its state is still "sleeping" (199 of 200
    // times here), and on a loaded machine it could still be so when the lock is checked. Dead means a zombie or gone.
    const dead = () => {
      const state = existsSync(`/proc/${holder.pid}/stat`) ? readFileSync(`/proc/${holder.pid}/stat`, "utf8").replace(/^.*\) /s, "")[0] : undefined;
      return state === undefined || state === "Z" || state === "X";
    };
    await until(dead, `the lock holder ${holder.pid}'s death`, { everyMs: 5 });
    expect(await tick(due)).toEqual([{ caId: "bridge", number: before + 2n }]);
    expect(existsSync(join(ws, "bridge", ".lock"))).toBe(false);

    const g = await cli(["crl", "generate", "-w", ws, "--prefecture", "all", "--partitions", "all", "--passphrase-file", pass, "--json"], { cwd: dir });
    expect(g.code, g.stderr).toBe(0);
    expect(g.json().crls.filter((c: { ca: string; caId?: string }) => (c.caId ?? c.ca) === "bridge")).toHaveLength(1);
    expect(arlNumber()).toBeGreaterThan(before + 2n);
  }, 60_000);

  it("a damaged Bridge never holds back the prefecture CAs' CRLs: the schedule publishes them, then reports the Bridge's failure", async () => {
    const statePath = join(ws, "bridge", "state.json");
    const saved = readFileSync(statePath, "utf8");
    writeFileSync(statePath, '{"version":1');
    const errors: unknown[] = [];
    // an hour before Tokyo's CRL runs out: it is due, and so is everything published with it
    const later = new Date(Date.parse(describeCrl(readFileSync(crlOf("13-sig")), { maxEntries: 0 }).nextUpdate!) - 3600_000);
    const w = await Workspace.openAsync(ws, { storeUrl: await workspaceStore(ws), clock: { now: () => later } });
    try {
      const out = await new CrlUpdater(w, readFileSync(pass, "utf8").trim()).schedule(undefined, { onOtherError: (e) => errors.push(e) }).tick();
      expect(out.filter((p) => p.caId === "13-sig").length).toBeGreaterThan(0);
      expect(out.some((p) => p.caId === "bridge")).toBe(false);
      expect(errors).toEqual([expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" })]);
    } finally {
      await w.close();
      writeFileSync(statePath, saved);
    }
    // and the CLI: a typed error, no stack trace, for state entries that are damage or a path
    const state = JSON.parse(saved);
    for (const bad of [{ ...state, cross: [null] }, { ...state, cross: [{ ...state.cross[0], caId: "../../../PWNED" }] }, { ...state, cross: [{ ...state.cross[0], der: "bm90IGEgY2VydA==" }] }]) {
      writeFileSync(statePath, JSON.stringify(bad));
      const r = await bridge();
      expect(r.code, r.stderr).toBe(3);
      expect(r.stderr).toContain("ERR_WORKSPACE_CORRUPT");
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    writeFileSync(statePath, saved);
    expect(existsSync(join(dir, "PWNED.by-bridge.pem"))).toBe(false);
    expect((await bridge()).code).toBe(0);
  }, 60_000);

  it("the Bridge's key and numbers are never silently replaced or reused: a lost key is refused, a lost state continues the ARL numbers", async () => {
    const keyPath = join(ws, "bridge", "bridge.key");
    const key = readFileSync(keyPath);
    rmSync(keyPath);
    try {
      const r = await bridge();
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("ERR_WORKSPACE_CORRUPT");
      expect(r.stderr).toContain("restore bridge/bridge.key");
    } finally {
      writeFileSync(keyPath, key, { mode: 0o600 });
    }

    const statePath = join(ws, "bridge", "state.json");
    const saved = readFileSync(statePath, "utf8");
    const published = BigInt(sh("openssl", ["crl", "-inform", "DER", "-in", arl(), "-noout", "-crlnumber"]).out.trim().split("=")[1]!);
    writeFileSync(statePath, JSON.stringify({ ...JSON.parse(saved), arlNumber: "0" })); // an old backup
    const again = await bridge();
    expect(again.code, again.stderr).toBe(0);
    expect(BigInt(again.json().arl.number)).toBe(published + 1n);
  });

  it("ca rewrap stopped between the CA keys and the Bridge key is finished by the next command with the new passphrase", async () => {
    const fresh = join(dir, "rewrap-new.txt");
    writeFileSync(fresh, "another passphrase\n", { mode: 0o600 });
    const keyPath = join(ws, "bridge", "bridge.key");
    const old = readFileSync(keyPath);
    const r = await cli(["ca", "rewrap", "-w", ws, "--passphrase-file", pass, "--new-passphrase-file", fresh], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    // the Bridge's key said apart from the CA keys it counts
    const said = /^re-encrypted (\d+) CA key\(s\), the Bridge CA's key(?: and \d+ OCSP signing key\(s\))? under the new passphrase: (.*)$/m.exec(r.stdout);
    expect(said, r.stdout).not.toBeNull();
    expect(Number(said![1])).toBe(said![2]!.split(", ").filter((k) => k !== "bridge" && !k.startsWith("ocsp:")).length);
    // the crash: the re-encrypted key left as bridge.key.next, the old one still in place
    writeFileSync(join(ws, "bridge", "bridge.key.next"), readFileSync(keyPath), { mode: 0o600 });
    writeFileSync(keyPath, old, { mode: 0o600 });
    const b = await cli(["ca", "bridge", "-w", ws, "--passphrase-file", fresh, "--json"], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    expect(existsSync(join(ws, "bridge", "bridge.key.next"))).toBe(false);
    expect((await cli(["ca", "rewrap", "-w", ws, "--passphrase-file", fresh, "--new-passphrase-file", pass], { cwd: dir })).code).toBe(0);
  }, 60_000);

  it("ca rewrap re-encrypts the Bridge key with the CA keys", async () => {
    const fresh = join(dir, "new-pass.txt");
    writeFileSync(fresh, "a new passphrase\n", { mode: 0o600 });
    const r = await cli(["ca", "rewrap", "-w", ws, "--passphrase-file", pass, "--new-passphrase-file", fresh, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().rewrapped).toContain("bridge");
    expect((await cli(["ca", "bridge", "-w", ws, "--passphrase-file", pass], { cwd: dir })).code).toBe(5);
    const again = await cli(["ca", "bridge", "-w", ws, "--passphrase-file", fresh, "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    // put it back for any later test
    expect((await cli(["ca", "rewrap", "-w", ws, "--passphrase-file", fresh, "--new-passphrase-file", pass], { cwd: dir })).code).toBe(0);
  }, 60_000);

  it("--revoke: the Bridge stops vouching for a CA — its cross-certificate on the ARL, verifiers reject through the Bridge, re-runs leave it out", async () => {
    // CRLs current at the wall clock again (the schedule tests above published some dated ahead)
    expect((await cli(["crl", "generate", "-w", ws, "--prefecture", "13,27", "--passphrase-file", pass], { cwd: dir })).code).toBe(0);
    const osaka = pick("27-sig");
    const crossSerial = parseCertificate(pems(join(ws, "bridge", "cross", "27-sig.by-bridge.pem"))[0]!).serialHex;
    const oldCross = join(dir, "27-sig.by-bridge.old.pem");
    writeFileSync(oldCross, readFileSync(join(ws, "bridge", "cross", "27-sig.by-bridge.pem")));
    const r = await bridge(["--revoke", "27-sig"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().revoked).toEqual([{ serial: expect.any(String), reason: "cACompromise" }]);
    expect(existsSync(join(ws, "bridge", "cross", "27-sig.by-bridge.pem"))).toBe(false);
    const listed = sh("openssl", ["crl", "-inform", "DER", "-in", arl(), "-noout", "-text"]).out;
    expect(listed.toLowerCase()).toContain(crossSerial.replace(/^0+/, "").toLowerCase());
    expect(listed).toContain("CA Compromise");
    // a verifier still holding the old cross-certificate, with the new ARL: revoked at index 1; OpenSSL agrees
    const v = ours(osaka.path, pems(bridgePem()), { chain: pems(oldCross), crls: [crlOf("27-sig"), arl()] });
    expect(v).toMatchObject({ status: "revoked", index: 1 });
    expect(sh("openssl", ["verify", "-crl_check_all", "-CAfile", bridgePem(), "-untrusted", oldCross, "-CRLfile", `${crlOf("27-sig")}.pem`, "-CRLfile", arl(), osaka.path]).out).toContain("certificate revoked");
    // Tokyo is untouched, and a re-run does not cross-certify Osaka again
    expect(ours(pick("13-sig").path, pems(bridgePem()), { crls: [crlOf("13-sig"), arl()] }).status).toBe("valid");
    const again = await bridge();
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().withdrawn).toEqual(["27-sig"]);
    expect(existsSync(join(ws, "bridge", "cross", "27-sig.by-bridge.pem"))).toBe(false);
    expect((await bridge(["--revoke", "27-sig"])).code).toBe(4);
  }, 60_000);

  it("after a CA key rollover the Bridge cross-certifies the new generation and goes on: its id (13-auth-g2) was 'malformed' in state.json, every later run ERR_WORKSPACE_CORRUPT", async () => {
    const roll = await cli(["ca", "rollover", "-w", ws, "--prefecture", "13", "--purpose", "authentication", "--passphrase-file", pass], { cwd: dir });
    expect(roll.code, roll.stderr).toBe(0);
    // the rollover says the Bridge needs a run (it said nothing: the new generation was reached through OldWithNew only)
    expect(roll.stdout).toContain("next: 'jpki ca bridge' cross-certifies the new generation");
    const r = await bridge();
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().crossCertificates.map((c: { caId: string }) => c.caId)).toEqual(["13-auth-g2", "13-auth-g2"]);
    const again = await bridge();
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().unchanged).toContain("13-auth-g2");
    expect(again.json().unchanged).toContain("13-auth");
    expect(existsSync(join(ws, "bridge", "cross", "13-auth-g2.by-bridge.pem"))).toBe(true);
    const revoke = await bridge(["--revoke", "13-auth-g2", "--reason", "cessationOfOperation"]);
    expect(revoke.code, revoke.stderr).toBe(0);
  }, 60_000);

  it("ca rollover --compromised in a workspace with a Bridge names 'ca bridge --revoke' for the old key (--json: bridge)", async () => {
    const roll = await cli(["ca", "rollover", "-w", ws, "--prefecture", "01", "--purpose", "sig", "--compromised", "--passphrase-file", pass, "--json"], { cwd: dir });
    expect(roll.code, roll.stderr).toBe(0);
    expect(roll.json().bridge).toEqual(["jpki ca bridge --revoke 01-sig", "jpki ca bridge"]);
    const r = await bridge();
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().compromised).toEqual(["01-sig"]);
    expect(r.json().stillVouched).toEqual(["01-sig"]);
  }, 60_000);

  it("a directory named *.pem in bridge/cross/ is left alone: the export tried to rm it, ERR_INTERNAL (EISDIR) with a stack trace after the ARL was published", async () => {
    const stray = join(ws, "bridge", "cross", "stray.pem");
    mkdirSync(stray);
    const r = await bridge();
    expect(r.code, r.stderr).toBe(0);
    expect(statSync(stray).isDirectory()).toBe(true);
    rmSync(stray, { recursive: true });
  }, 60_000);
});

/** `der` with a new serial and notBefore, signed again by the Bridge's key (read with the workspace passphrase). */
async function resigned(der: Buffer, notBefore: Date): Promise<Buffer> {
  const blocks = parsePemBlocks(readFileSync(join(ws, "bridge", "bridge.key"), "utf8"));
  const key = decryptPrivateKey(toPem(blocks.find((b) => b.label === "ENCRYPTED PRIVATE KEY")!.der, "ENCRYPTED PRIVATE KEY"), readFileSync(pass, "utf8").trim());
  const signer = new SoftwareSigner(key);
  const parts = certificateParts(der);
  const fields = children(parts.tbs);
  const extensions = children(children(fields[fields.length - 1]!)[0]!);
  const tbs = encodeTbs({ serial: randomSerial(), signatureAlgorithm: signer.algorithmIdentifier, issuer: parts.issuer, notBefore, notAfter: parseCertificate(der).notAfter, subject: parts.subject, spki: parts.spki, extensions });
  return assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
}

/** GnuTLS's verdict: the certificate and its untrusted chain in one file, the anchors given (certtool --verify). */
function gnutls(cert: string, anchors: string[], chain: string): { status: number; out: string } {
  const bundle = join(dir, `chain-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(bundle, readFileSync(cert, "utf8") + readFileSync(chain, "utf8"));
  const cas = join(dir, `cas-${Math.random().toString(36).slice(2)}.pem`);
  writeFileSync(cas, anchors.map((a) => readFileSync(a, "utf8")).join(""));
  return sh("certtool", ["--verify", "--load-ca-certificate", cas, "--infile", bundle]);
}
