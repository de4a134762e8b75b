/**
 * The day a CA key is suspected compromised (鍵危殆化; issue 13, docs/operations.md §8), through the CLI on one
 * prefecture's signature CA: `jpki ca rollover --compromised` makes the next generation without link certificates
 * (none written, none in `ca show`, the new root's fingerprint printed), issuance moves to it, and a later ordinary
 * rollover from it has its links again; `jpki revoke --ca 13-sig --all --reason ca-compromise` revokes everything the
 * old key issued (OpenSSL reads them off the next CRL as "CA Compromise"), a re-run revokes nothing, and the
 * usage errors are refused.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { chiyodaResidents, cli, issueWithCardKey, openWorkspace, sh, tempDir, tokyoSignatureWorkspace } from "./helpers.js";

let dir: string;
let ws: string;
const w = () => ["--workspace", ws];
const people = chiyodaResidents(4, "00000008", { name: "佐藤　花子", birthDate: "1985-01-31", gender: "female" });
const serial: Record<string, string> = {};
const caOf: Record<string, string> = {};
let rolled: any;

async function issue(name: string, person: number) {
  const r = await issueWithCardKey(ws, dir, name, people[person]!.residentCode);
  serial[name] = r.serial;
  caOf[name] = r.ca;
}

beforeAll(async () => {
  dir = tempDir("jpki-compromise-");
  ws = join(dir, "ws");
  await tokyoSignatureWorkspace(dir, ws, people);
  await issue("A", 0);
  await issue("B", 1);
  await issue("C", 2);
  const r = await cli([...w(), "ca", "rollover", "-p", "13", "--purpose", "sig", "--compromised", "--json"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  rolled = r.json();
  await issue("D", 3);
}, 120_000);

describe("jpki ca rollover --compromised", () => {
  it("makes 13-sig-g2 without link certificates; ca show says so; new issuance comes from 13-sig-g2", async () => {
    expect(rolled.rolled).toHaveLength(1);
    expect(rolled.rolled[0]).toMatchObject({ previous: "13-sig", generation: 2, compromised: true, links: [], current: { id: "13-sig-g2" } });
    const g2 = new X509Certificate(readFileSync(join(ws, "ca", "13-sig-g2.pem")));
    expect(rolled.rolled[0].current.sha256Fingerprint.replace(/:/g, "").toLowerCase()).toBe(g2.fingerprint256.replace(/:/g, "").toLowerCase());
    expect(readdirSync(join(ws, "ca")).filter((f) => f.includes(".by-"))).toEqual([]);
    const show = await cli([...w(), "ca", "show", "13-sig", "--json"], { cwd: dir });
    expect(show.code, show.stderr).toBe(0);
    expect(show.json().links).toEqual([]);
    expect(show.json().compromisedRollovers).toMatchObject([{ from: "13-sig", to: "13-sig-g2" }]);
    const text = await cli([...w(), "ca", "show", "13-sig-g2"], { cwd: dir });
    expect(text.stdout).toMatch(/compromised .*no link certificates/);
    const help = await cli(["ca", "rollover", "--help"], { cwd: dir });
    expect(help.stdout).toContain("--compromised");
    expect(caOf.A).toBe("13-sig");
    expect(caOf.D).toBe("13-sig-g2");
    expect(new X509Certificate(readFileSync(join(dir, "D.pem"))).verify(g2.publicKey)).toBe(true);
  });

  it("after it, an ordinary rollover from 13-sig-g2 makes links again", async () => {
    const again = await cli([...w(), "ca", "rollover", "-p", "13", "--purpose", "sig", "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    const r = again.json().rolled[0];
    expect(r).toMatchObject({ previous: "13-sig-g2", generation: 3, compromised: false });
    expect(r.links.map((l: any) => [l.issuerCaId, l.subjectCaId])).toEqual([
      ["13-sig-g2", "13-sig-g3"],
      ["13-sig-g3", "13-sig-g2"],
    ]);
    expect(existsSync(join(ws, "ca", "13-sig-g3.by-13-sig-g2.crt"))).toBe(true);
    expect(readdirSync(join(ws, "ca")).filter((f) => f.includes("by-13-sig.") || f.startsWith("13-sig.by"))).toEqual([]);
  });
});

describe("jpki revoke --ca --all", () => {
  it("refuses --all without --ca, --ca without --all, --serial with them, and no reason", async () => {
    for (const args of [["--all"], ["--ca", "13-sig"], ["--serial", serial.A!, "--ca", "13-sig", "--all"], ["--serial", serial.A!, "--all"]]) {
      const r = await cli([...w(), "revoke", ...args, "--reason", "ca-compromise"], { cwd: dir });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("ERR_USAGE");
    }
    expect((await cli([...w(), "revoke", "--ca", "13-sig", "--all"], { cwd: dir })).code).not.toBe(0);
    expect((await cli([...w(), "revoke", "--ca", "99-sig", "--all", "--reason", "ca-compromise"], { cwd: dir })).code).toBe(4);
  });

  it("revokes every certificate of 13-sig (not 13-sig-g2's), the CRL lists them as CA Compromise, a re-run revokes none", async () => {
    const r = await cli([...w(), "revoke", "--ca", "13-sig", "--all", "--reason", "ca-compromise", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ ca: "13-sig", revoked: 3, expired: 0 });
    const g = await cli([...w(), "crl", "generate", "--ca", "13-sig", "--json"], { cwd: dir });
    expect(g.code, g.stderr).toBe(0);
    const text = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"]).out;
    for (const n of ["A", "B", "C"]) expect(text.toUpperCase()).toContain(`SERIAL NUMBER: ${serial[n]!.toUpperCase()}`);
    // and 13-sig's own certificate, rolled over --compromised: its key says so itself (crl/arl.ts ownCertificateEntry)
    const own = new X509Certificate(readFileSync(join(ws, "ca", "13-sig.pem"))).serialNumber;
    expect(text.toUpperCase()).toMatch(new RegExp(`SERIAL NUMBER: ${own}\\s+REVOCATION DATE: [^\\n]+\\s+CRL ENTRY EXTENSIONS:\\s+X509V3 CRL REASON CODE:\\s+CA COMPROMISE`));
    expect(text.match(/CA Compromise/g)).toHaveLength(4);
    const d = await cli([...w(), "revoke", "--serial", serial.D!, "--reason", "loss", "--json"], { cwd: dir });
    expect(d.code, d.stderr).toBe(0); // D (13-sig-g2) was not revoked by the bulk run
    const again = await cli([...w(), "revoke", "--ca", "13-sig", "--all", "--reason", "ca-compromise", "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ ca: "13-sig", revoked: 0 });
  });
});

/**
 * Whoever stole 13-sig's key can sign an audit checkpoint over a log they rewrote. After the compromise the
 * default signer of 'audit checkpoint' (the first CA, 13-sig) still used that key, and 'audit verify' counted
 * what it signed as an anchor.
 */
describe("the audit log after a compromise", () => {
  it("is never checkpointed with the compromised key, and a checkpoint that key signs anchors nothing", async () => {
    const cp = await cli([...w(), "--json", "audit", "checkpoint", "--force"], { cwd: dir });
    expect(cp.code, cp.stderr).toBe(0);
    expect(cp.json().ca).not.toBe("13-sig");
    const refused = await cli([...w(), "audit", "checkpoint", "--ca", "13-sig", "--force"], { cwd: dir });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("suspected compromised");

    // the thief's checkpoint, signed with the stolen key at the head
    const { createAuditCheckpoint } = await import("../../src/audit/checkpoint.js");
    const { openCrlIssuer } = await import("../../src/crl/generate.js");
    const w1 = await openWorkspace(ws);
    let forged: number;
    try {
      const rec = (await w1.store.getCa("13-sig"))!;
      const signer = await openCrlIssuer(rec, "correct horse", w1.config.pkcs11Modules).signer;
      forged = (await createAuditCheckpoint(w1.store, { caId: "13-sig", certificateDer: rec.certificateDer, signer, now: w1.clock.now(), force: true }))!.seq;
    } finally {
      await w1.close();
    }
    const v = await cli([...w(), "--json", "audit", "verify"], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json().anchoredTo).toBe(cp.json().seq);
    expect(v.json().anchoredTo).toBeLessThan(forged);
  });
});

describe("jpki crl generate for a key generation with nothing left to publish", () => {
  it("says so, instead of printing a blank line", async () => {
    const init = await cli([...w(), "ca", "init", "--prefecture", "27", "--purpose", "signature"], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    // 27-sig issued nothing: rolled over, it has no certificate a CRL could list
    const r = await cli([...w(), "ca", "rollover", "-p", "27", "--purpose", "sig", "--compromised", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const g = await cli([...w(), "crl", "generate", "--ca", "27-sig"], { cwd: dir });
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/^no CRL published: /);
    const json = await cli([...w(), "crl", "generate", "--ca", "27-sig", "--json"], { cwd: dir });
    expect(json.json()).toEqual({ crls: [] });
  });
});
