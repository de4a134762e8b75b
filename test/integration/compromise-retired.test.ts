/**
 * A retired generation's key stolen AFTER an ordinary rollover (鍵危殆化 of a retired key; docs/operations.md §8):
 * the NewWithOld link certificate (13-sig's key under 13-sig-g2) vouched for the stolen key to every verifier
 * trusting 13-sig-g2's root — and to every one trusting the Bridge CA, through 13-sig-g2 — and nothing could revoke a
 * link (found by a review helper). `jpki ca compromised 13-sig` records it; the next `crl generate` lists NewWithOld
 * on 13-sig-g2's ARL (cACompromise). Checked as the helper found it: a certificate forged with the stolen key by
 * OpenSSL, verified by `openssl verify -crl_check_all` through NewWithOld, from 13-sig-g2 and from the Bridge; and
 * `jpki verify` in the workspace, which trusted 13-sig's root (and every link certificate) as anchors; Java's PKIX
 * validator agrees on the path through NewWithOld.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { decryptPrivateKey } from "../../src/pki/keys.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { FixedClock } from "../../src/pki/clock.js";
import { generateCrls } from "../../src/crl/generate.js";
import { CrlUpdater } from "../../src/crl/updater.js";
import { describeCrl } from "../../src/profile/describe.js";
import { chiyodaResidents, cli, issueWithCardKey, openWorkspace, sh, tempDir, tokyoSignatureWorkspace, workspaceStore } from "./helpers.js";

let dir: string;
let ws: string;
const w = () => ["--workspace", ws];
const people = chiyodaResidents(2, "00000031", { name: "高橋　一郎", birthDate: "1970-05-05", gender: "male" });
const caFile = (f: string) => join(ws, "ca", f);
let forged: string;
let forgedLong: string;
let old: string; // a genuine certificate of 13-sig
let young: string; // a genuine certificate of 13-sig-g2

/** openssl verify -crl_check_all of `leaf` from `anchor` through `chain`, with every CRL and ARL the path needs. */
function opensslVerify(anchor: string, chain: string[], leaf: string, crls: string[], at?: Date): { ok: boolean; out: string } {
  const untrusted = join(dir, "untrusted.pem");
  writeFileSync(untrusted, chain.map((f) => readFileSync(f, "utf8")).join(""));
  const pemCrls = crls.map((f, i) => {
    const out = join(dir, `crl-${i}.pem`);
    const r = sh("openssl", ["crl", "-inform", "DER", "-in", f, "-out", out]);
    expect(r.status, r.out).toBe(0);
    return out;
  });
  const r = sh("openssl", ["verify", "-crl_check_all", ...(at ? ["-attime", String(Math.floor(at.getTime() / 1000))] : []), "-CAfile", anchor, ...(chain.length ? ["-untrusted", untrusted] : []), ...pemCrls.flatMap((c) => ["-CRLfile", c]), leaf]);
  return { ok: r.status === 0, out: r.out };
}

let javaClasses: string;
/** Java's PKIX CertPathValidator (test/interop/PkixCheck.java) on leaf -> NewWithOld -> 13-sig-g2, with the CRL and ARL. */
function javaThroughNewWithOld(leaf: string): string {
  const r = spawnSync("java", ["-cp", javaClasses, "PkixCheck", caFile("13-sig-g2.pem"), leaf, caFile("13-sig.by-13-sig-g2.pem"), join(ws, "crl", "13-sig.crl"), join(ws, "arl", "13-sig-g2.crl")], { encoding: "utf8" });
  return `${r.stdout}${r.stderr}`.trim();
}

const throughNewWithOld = (leaf: string) =>
  opensslVerify(caFile("13-sig-g2.pem"), [caFile("13-sig.by-13-sig-g2.pem")], leaf, [join(ws, "crl", "13-sig.crl"), join(ws, "arl", "13-sig-g2.crl")]);
const throughBridge = (leaf: string) =>
  opensslVerify(
    join(ws, "bridge", "bridge.pem"),
    [join(ws, "bridge", "cross.pem"), caFile("13-sig.by-13-sig-g2.pem")],
    leaf,
    [join(ws, "crl", "13-sig.crl"), join(ws, "arl", "13-sig-g2.crl"), join(ws, "arl", "bridge.crl")],
  );

beforeAll(async () => {
  dir = tempDir("jpki-compromise-retired-");
  javaClasses = join(dir, "java");
  const javac = spawnSync("javac", ["-d", javaClasses, resolve(import.meta.dirname, "../interop/PkixCheck.java")], { encoding: "utf8" });
  expect(javac.status, javac.stderr).toBe(0);
  ws = join(dir, "ws");
  await tokyoSignatureWorkspace(dir, ws, people);
  old = (await issueWithCardKey(ws, dir, "old", people[0]!.residentCode)).path;
  const roll = await cli([...w(), "ca", "rollover", "-p", "13", "--purpose", "sig"], { cwd: dir });
  expect(roll.code, roll.stderr).toBe(0);
  young = (await issueWithCardKey(ws, dir, "young", people[1]!.residentCode)).path;
  const bridge = await cli([...w(), "ca", "bridge"], { cwd: dir });
  expect(bridge.code, bridge.stderr).toBe(0);
  const crl = await cli([...w(), "crl", "generate", "--prefecture", "13", "--partitions", "all"], { cwd: dir }); // ARLs too
  expect(crl.code, crl.stderr).toBe(0);
  // The theft, as an insider with the passphrase would do it: 13-sig's key, kept after the rollover, copied out.
  const store = await openWorkspace(ws);
  const stolen = join(dir, "stolen.pem");
  try {
    writeFileSync(stolen, decryptPrivateKey((await store.store.getCa("13-sig"))!.encryptedKeyPem, "correct horse").export({ type: "pkcs8", format: "pem" }) as string, { mode: 0o600 });
  } finally {
    await store.close();
  }
  // A certificate of the thief's making, in the profile's shape, signed by OpenSSL with the stolen key.
  writeFileSync(
    join(dir, "forge.cnf"),
    "[v]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\ncertificatePolicies=1.2.392.200149.8.5.1.1.20\nauthorityKeyIdentifier=keyid\n",
  );
  let r = sh("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=forged", "-keyout", join(dir, "forged.key"), "-out", join(dir, "forged.csr")]);
  expect(r.status, r.out).toBe(0);
  forged = join(dir, "forged.pem");
  r = sh("openssl", ["x509", "-req", "-in", join(dir, "forged.csr"), "-CA", caFile("13-sig.pem"), "-CAkey", stolen, "-set_serial", "0x7777", "-days", "30", "-extfile", join(dir, "forge.cnf"), "-extensions", "v", "-out", forged]);
  expect(r.status, r.out).toBe(0);
  // the same forgery valid for years: checked long after 13-sig's own certificates have expired (the last test)
  forgedLong = join(dir, "forged-long.pem");
  r = sh("openssl", ["x509", "-req", "-in", join(dir, "forged.csr"), "-CA", caFile("13-sig.pem"), "-CAkey", stolen, "-set_serial", "0x7778", "-days", "3650", "-extfile", join(dir, "forge.cnf"), "-extensions", "v", "-out", forgedLong]);
  expect(r.status, r.out).toBe(0);
}, 180_000);

describe("jpki ca compromised <retired generation>", () => {
  it("before it, the forgery verifies through NewWithOld from 13-sig-g2 and from the Bridge (the hole), as do the genuine certificates", () => {
    expect(throughNewWithOld(forged).ok).toBe(true);
    expect(throughBridge(forged).ok).toBe(true);
    expect(javaThroughNewWithOld(forged)).toBe("VALID");
    copyFileSync(join(ws, "crl", "13-sig.crl"), join(dir, "13-sig-before.crl")); // without the link (checked below)
    expect(throughNewWithOld(old).ok).toBe(true);
    expect(opensslVerify(caFile("13-sig-g2.pem"), [], young, [join(ws, "crl", "13-sig-g2.crl"), join(ws, "arl", "13-sig-g2.crl")]).ok).toBe(true);
  });

  it("refuses the active generation (ERR_CA_ACTIVE, exit 4) and an unknown CA; records the retired one, names the next steps", async () => {
    const active = await cli([...w(), "ca", "compromised", "13-sig-g2", "--json"], { cwd: dir });
    expect(active.code).toBe(4);
    expect(active.stderr).toContain("ERR_CA_ACTIVE");
    expect(active.stderr).toContain("jpki ca rollover --prefecture 13 --purpose sig --compromised");
    expect(active.stderr).toContain("ca rollover");
    const unknown = await cli([...w(), "ca", "compromised", "27-sig"], { cwd: dir });
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain("ERR_CA_UNKNOWN");
    // not an id at all: quoted, never a line of its own in the operator's log
    const odd = await cli([...w(), "ca", "compromised", "13-sig\n[ok] 13-sig-g2 recorded"], { cwd: dir });
    expect(odd.code).toBe(4);
    expect(odd.stderr).toContain('"13-sig\\n[ok] 13-sig-g2 recorded" is not a CA id');
    expect(odd.stderr.split("\n").filter((l) => l.startsWith("[ok]"))).toEqual([]);

    const r = await cli([...w(), "ca", "compromised", "13-sig", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ caId: "13-sig", successorCaId: "13-sig-g2", already: false });
    expect(r.json().next).toEqual(["jpki crl generate --prefecture 13", "jpki revoke --ca 13-sig --all --reason ca-compromise", "jpki ca bridge --revoke 13-sig"]);
    const again = await cli([...w(), "ca", "compromised", "13-sig"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain("already");
    const show = await cli([...w(), "ca", "show", "13-sig", "--json"], { cwd: dir });
    expect(show.json().compromisedAt).toBe(r.json().at);
    expect(show.json().links.map((l: any) => [l.direction, l.revokedAt])).toEqual([
      ["old-with-new", r.json().at],
      ["new-with-old", r.json().at],
    ]);
  });

  it("the next crl generate puts NewWithOld on 13-sig-g2's ARL and 13-sig's CRL, OldWithNew on 13-sig's ARL (OpenSSL, GnuTLS read CA Compromise): the forgery no longer verifies through NewWithOld (OpenSSL, Java)", async () => {
    const crl = await cli([...w(), "crl", "generate", "--prefecture", "13", "--json"], { cwd: dir });
    expect(crl.code, crl.stderr).toBe(0);
    const serialOf = (f: string) => new X509Certificate(readFileSync(f)).serialNumber.toUpperCase();
    const arl = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "arl", "13-sig-g2.crl"), "-noout", "-text"]);
    expect(arl.status, arl.out).toBe(0);
    expect(arl.out).toContain(`Serial Number: ${serialOf(caFile("13-sig.by-13-sig-g2.pem"))}`);
    expect(arl.out).toContain("CA Compromise");
    // GnuTLS reads the same entry (the interop check of an ARL that lists something)
    const gnutls = sh("certtool", ["--crl-info", "--inder", "--infile", join(ws, "arl", "13-sig-g2.crl")]);
    expect(gnutls.status, gnutls.out).toBe(0);
    expect(gnutls.out).toContain(`Serial Number (hex): ${serialOf(caFile("13-sig.by-13-sig-g2.pem")).toLowerCase()}`);
    // and 13-sig's own full CRL lists NewWithOld too: Java takes it for the self-issued link (crl/arl.ts)
    const oldCrl = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"]);
    expect(oldCrl.out).toContain(`Serial Number: ${serialOf(caFile("13-sig.by-13-sig-g2.pem"))}`);
    const oldArl = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "arl", "13-sig.crl"), "-noout", "-text"]);
    expect(oldArl.out).toContain(`Serial Number: ${serialOf(caFile("13-sig-g2.by-13-sig.pem"))}`);

    const a = throughNewWithOld(forged);
    expect(a.ok, a.out).toBe(false);
    expect(a.out).toContain("certificate revoked");
    expect(javaThroughNewWithOld(forged)).toMatch(/^INVALID REVOKED .*CA_COMPROMISE/);
    // jpki's own engine, as a verifier holding 13-sig-g2's root would run it (with the CRL files, and with the ARL alone)
    for (const crls of [[join(ws, "crl", "13-sig.crl"), join(ws, "arl", "13-sig-g2.crl")], [join(dir, "13-sig-before.crl"), join(ws, "arl", "13-sig-g2.crl")]]) {
      const v = await cli(["verify", forged, "--trust", caFile("13-sig-g2.pem"), "--chain", caFile("13-sig.by-13-sig-g2.pem"), ...crls.flatMap((c) => ["--crl", c]), "--json"], { cwd: dir });
      expect(v.code, `${crls}: ${v.stdout}${v.stderr}`).toBe(1);
      expect(v.json().status, crls.join(" ")).toBe("revoked");
    }
    // the new generation's own certificates are untouched
    const y = opensslVerify(caFile("13-sig-g2.pem"), [], young, [join(ws, "crl", "13-sig-g2.crl"), join(ws, "arl", "13-sig-g2.crl")]);
    expect(y.ok, y.out).toBe(true);
  });

  it("the successor's full CRL lists NewWithOld too: it has no issuingDistributionPoint, so it is complete for CA certificates, and a verifier reading the link's status from it (OpenSSL, given it first) rejected nothing", () => {
    const serialOf = (f: string) => new X509Certificate(readFileSync(f)).serialNumber.toUpperCase();
    const full = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig-g2.crl"), "-noout", "-text"]);
    expect(full.status, full.out).toBe(0);
    expect(full.out).toContain(`Serial Number: ${serialOf(caFile("13-sig.by-13-sig-g2.pem"))}`);
    // the full CRLs alone, as a verifier holding each CA's crl/<ca>.crl has them
    const a = opensslVerify(caFile("13-sig-g2.pem"), [caFile("13-sig.by-13-sig-g2.pem")], forged, [join(ws, "crl", "13-sig.crl"), join(ws, "crl", "13-sig-g2.crl")]);
    expect(a.ok, a.out).toBe(false);
    expect(a.out).toContain("certificate revoked");
    const y = opensslVerify(caFile("13-sig-g2.pem"), [], young, [join(ws, "crl", "13-sig-g2.crl")]);
    expect(y.ok, y.out).toBe(true);
  });

  it("jpki verify in the workspace no longer trusts 13-sig's root: the forgery (and 13-sig's own certificates) are untrusted, 13-sig-g2's valid", async () => {
    const f = await cli([...w(), "verify", forged, "--json"], { cwd: dir });
    expect(f.code).toBe(1);
    expect(f.json().status).toBe("untrusted");
    // a genuine certificate of 13-sig is untrusted too, and is told why: not "forged or damaged"
    const o = await cli([...w(), "verify", old], { cwd: dir });
    expect(o.code).toBe(1);
    expect(o.stdout).toContain("signed by the key of 13-sig, a CA key generation declared compromised");
    expect(o.stdout).not.toContain("forged or damaged");
    expect((await cli([...w(), "verify", old, "--json"], { cwd: dir })).json().compromisedIssuer).toBe("13-sig");
    const y = await cli([...w(), "verify", young, "--json"], { cwd: dir });
    expect(y.code, y.stdout + y.stderr).toBe(0);
    expect(y.json().status).toBe("valid");
  });

  it("ca bridge leaves 13-sig out and names its cross-certificate from before; once that is revoked, the forgery no longer verifies from the Bridge, by either path", async () => {
    const r = await cli([...w(), "ca", "bridge", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().compromised).toEqual(["13-sig"]);
    expect(r.json().stillVouched).toEqual(["13-sig"]);
    expect(throughBridge(forged).ok).toBe(true); // Bridge -> 13-sig, until withdrawn
    const revoke = await cli([...w(), "ca", "bridge", "--revoke", "13-sig", "--json"], { cwd: dir });
    expect(revoke.code, revoke.stderr).toBe(0);
    // Bridge -> 13-sig is on the Bridge's ARL, Bridge -> 13-sig-g2 -> NewWithOld on 13-sig-g2's: before, the second
    // path stayed open after '--revoke' (the helper's finding)
    const b = throughBridge(forged);
    expect(b.ok, b.out).toBe(false);
    expect(b.out).toContain("certificate revoked");
    const y = throughBridge(young);
    expect(y.out).not.toContain("certificate revoked");
  });
  it("once 13-sig's certificates have all expired, its full CRL listing the revoked links is kept current past its nextUpdate: the forgery stays revoked, not 'CRL has expired' (OpenSSL, the full CRLs alone)", async () => {
    // in-process on a clock years ahead: past the last certificate of 13-sig (and the grace), its links still in force
    const oldEnd = new Date(new X509Certificate(readFileSync(old)).validTo).getTime();
    const clock = new FixedClock(oldEnd + 86_400_000);
    const later = await Workspace.openAsync(ws, { storeUrl: await workspaceStore(ws), clock });
    try {
      await generateCrls(later, { prefecture: "13", passphrase: "correct horse" }); // within the grace: a CRL issued beyond notAfter
      clock.set(oldEnd + 8 * 86_400_000);
      await generateCrls(later, { prefecture: "13", passphrase: "correct horse" }); // done now: its full CRL with the links
      const numberOf = () => BigInt(describeCrl(readFileSync(join(ws, "crl", "13-sig.crl"))).crlNumber!);
      const before = numberOf();
      // past that CRL's nextUpdate: the schedule has published another, higher number, the links still on it
      clock.set(oldEnd + 11 * 86_400_000);
      const ticked = await new CrlUpdater(later, "correct horse").schedule(0).tick();
      expect(ticked.filter((c) => c.caId === "13-sig").map((c) => `${c.scope || "full"}:${c.why}`)).toContain("full:refresh");
      expect(numberOf() > before).toBe(true);
      const serialOf = (f: string) => new X509Certificate(readFileSync(f)).serialNumber.toUpperCase();
      const text = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"]).out;
      expect(text).toContain(`Serial Number: ${serialOf(caFile("13-sig.by-13-sig-g2.pem"))}`);
      // the full CRLs alone, as a verifier holding each CA's crl/<ca>.crl has them, at that time
      const a = opensslVerify(caFile("13-sig-g2.pem"), [caFile("13-sig.by-13-sig-g2.pem")], forgedLong, [join(ws, "crl", "13-sig.crl"), join(ws, "crl", "13-sig-g2.crl")], new Date(clock.now().getTime() + 3600_000));
      expect(a.ok, a.out).toBe(false);
      expect(a.out).toContain("certificate revoked");
      expect(a.out).not.toContain("CRL has expired");
    } finally {
      await later.close();
    }
  });
});
