/**
 * The issuing side end to end through the CLI, checked by independent implementations:
 * openssl verify -crl_check, openssl x509/crl/asn1parse, GnuTLS certtool --verify.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, CertificatePolicies } from "@peculiar/asn1-x509";
import { oid } from "../../src/pki/der.js";
import { pemOrDer } from "../../src/pki/pem.js";
import { EXT_OID, POLICY_OID } from "../../src/profile/oids.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import pg from "pg";
import { binDir } from "../postgres-server.js";
import { cardKey, cardPubs, cli, csrFor, expectedStore, listFiles, onPostgres, openWorkspace, sh, storeKindOf, tempDir, workspaceStore, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let residents: Array<Record<string, string>>;
const w = () => ["--workspace", ws];

function verify(caId: string, cert: string, crl = true) {
  const args = ["verify", "-CAfile", join(ws, "ca", `${caId}.pem`)];
  // the DER CRL as published: OpenSSL 3 reads DER for -CRLfile
  if (crl) args.push("-crl_check", "-CRLfile", join(ws, "crl", `${caId}.crl`));
  return sh("openssl", [...args, cert]);
}

beforeAll(async () => {
  dir = tempDir();
  ws = join(dir, "ws");
  const init = await cli([...w(), "ca", "init", "--prefecture", "13", "--json"], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  expect(storeKindOf(ws)).toBe(expectedStore);
  residents = [...generateResidents({ count: 6, seed: "integration", prefectures: ["13"] })] as unknown as Array<Record<string, string>>;
  writeJsonl(join(dir, "residents.jsonl"), residents);
  const imp = await cli([...w(), "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
  expect(imp.json().imported).toBe(6);
});

describe("jpki ca", () => {
  it("creates Tokyo's two CAs in the CA profile, accepted by openssl as self-signed roots", async () => {
    const list = await cli([...w(), "ca", "list", "--json"], { cwd: dir });
    expect(list.json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig", "13-auth"]);
    const text = execFileSync("openssl", ["x509", "-in", join(ws, "ca", "13-sig.pem"), "-noout", "-text"], { encoding: "utf8" });
    expect(text).toContain("Subject: C = JP, O = JPKI, OU = JPKI for digital signature, OU = Tokyo-to");
    expect(text).toMatch(/X509v3 Key Usage: critical\s*\n\s*Certificate Sign, CRL Sign/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\s*\n\s*CA:TRUE/);
    expect(text).toContain("Public-Key: (2048 bit)");
    expect(text).toContain("sha256WithRSAEncryption");
    expect(text).toMatch(/Not After : .* 14:59:59 2036 GMT/);
    expect(verify("13-sig", join(ws, "ca", "13-sig.pem"), false).out).toContain("OK");
  });

  it("keeps the CA key encrypted at rest (encrypted PKCS#8)", async () => {
    // everything the store holds, as bytes: the SQLite file, or the whole database as pg_dump writes it
    const db = onPostgres ? execFileSync(join(binDir(), "pg_dump"), ["--dbname", (await workspaceStore(ws))!]) : readFileSync(join(ws, "jpki.db"));
    expect(db.includes("BEGIN ENCRYPTED PRIVATE KEY")).toBe(true);
    expect(db.includes("BEGIN PRIVATE KEY")).toBe(false);
    const wsp = await openWorkspace(ws);
    try {
      for (const ca of await wsp.store.listCas()) expect(ca.encryptedKeyPem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    } finally {
      await wsp.close();
    }
  });

  it("shows one CA, and refuses an unknown prefecture with a stable code", async () => {
    const show = await cli([...w(), "ca", "show", "13-auth", "--json"], { cwd: dir });
    expect(show.json()).toMatchObject({ id: "13-auth", prefecture: "東京都", purpose: "authentication" });
    const bad = await cli([...w(), "ca", "init", "--prefecture", "48"], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("ERR_PREFECTURE_UNKNOWN");
    const dup = await cli([...w(), "ca", "init", "--prefecture", "13"], { cwd: dir });
    expect(dup.stderr).toContain("ERR_CA_EXISTS");
  });
});

describe("jpki issue → revoke → crl generate", () => {
  let goodCert: string;
  let revokedCert: string;
  let revokedSerial: string;

  beforeAll(async () => {
    const k1 = cardKey(dir, "card1");
    const k2 = cardKey(dir, "card2");
    goodCert = join(dir, "good.pem");
    revokedCert = join(dir, "revoked.pem");
    const a = await cli([...w(), "issue", "--resident", residents[0]!.residentCode!, "--public-key", k1.pub, "-o", goodCert], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    // in words, -o names the file and does not print the certificate again
    expect(a.stdout).not.toContain("BEGIN CERTIFICATE");
    expect(a.stdout).toContain(`written to ${goodCert}`);
    const b = await cli([...w(), "issue", "--resident", residents[1]!.residentCode!, "--csr", csrFor(dir, k2.key, "card2"), "-o", revokedCert, "--json"], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    revokedSerial = b.json().serial;

    const r = await cli([...w(), "revoke", "--serial", revokedSerial, "--reason", "loss", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ reason: "keyCompromise", reasonCode: 1 });
    const g = await cli([...w(), "crl", "generate", "--prefecture", "13", "--json"], { cwd: dir });
    expect(g.code, g.stderr).toBe(0);
  });

  it("openssl verify -crl_check accepts the valid certificate and rejects the revoked one", () => {
    const ok = verify("13-sig", goodCert);
    expect(ok.status, ok.out).toBe(0);
    expect(ok.out).toContain(": OK");
    const bad = verify("13-sig", revokedCert);
    expect(bad.status).not.toBe(0);
    expect(bad.out).toContain("certificate revoked");
  });

  it("GnuTLS certtool --verify agrees", () => {
    // certtool reads the CRL in the CA certificate's format (PEM here): converted from the published DER
    const crlPem = join(dir, "13-sig.crl.pem");
    writeFileSync(crlPem, sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl")]).out);
    const args = (cert: string) => ["--verify", "--load-ca-certificate", join(ws, "ca", "13-sig.pem"), "--load-crl", crlPem, "--infile", cert];
    const ok = sh("certtool", args(goodCert));
    expect(ok.status, ok.out).toBe(0);
    expect(ok.out).toContain("Chain verification output: Verified");
    const bad = sh("certtool", args(revokedCert));
    expect(bad.status).not.toBe(0);
    expect(bad.out).toMatch(/revoked/i);
  });

  it("openssl shows the JPKI profile and the four items (UTF-8 otherName values)", () => {
    const text = execFileSync("openssl", ["x509", "-in", goodCert, "-noout", "-text"], { encoding: "utf8" });
    expect(text).toMatch(/X509v3 Key Usage: critical\s*\n\s*Digital Signature, Non Repudiation/);
    // openssl's own parser finds the signature policy, alone, in the Certificate Policies extension
    const block = /X509v3 Certificate Policies:.*\n((?: {16,}.*\n)*)/.exec(text)?.[1] ?? "";
    expect([...block.matchAll(/Policy: (\S+)/g)].map((m) => m[1])).toEqual([POLICY_OID.signature]);
    expect(text).toMatch(/Subject: C = JP, L = Tokyo-to, L = [A-Za-z-]+, CN = \d{19}/);
    // OpenSSL prints UTF8String otherName values as text: the four items read back in Japanese
    const res = residents[0]!;
    const name = res.name ?? `${res.familyName}　${res.givenName}`;
    expect(text).toContain(`othername: 1.2.392.200149.8.5.5.1::${name}`);
    expect(text).toMatch(/othername: 1\.2\.392\.200149\.8\.5\.5\.4::[0-5]\d{8}/);
    expect(text).toMatch(/othername: 1\.2\.392\.200149\.8\.5\.5\.3::[123]/);
    expect(text).toContain("othername: 1.2.392.200149.8.5.5.5::東京都");
    expect(text).toMatch(/othername: 1\.2\.392\.200149\.8\.5\.5\.2::[01]+/);
    expect(text).toMatch(/othername: 1\.2\.392\.200149\.8\.5\.5\.6::[01]+/);
    // the name's UTF-8 bytes are in the DER as the registry holds them (no substitutes needed here)
    const der = execFileSync("openssl", ["x509", "-in", goodCert, "-outform", "DER"]);
    expect(der.includes(Buffer.from(name, "utf8"))).toBe(true);
  });

  it("the signature policy is the one policy of the certificatePolicies extension, and only there", () => {
    const cert = AsnConvert.parse(pemOrDer(readFileSync(goodCert), ["CERTIFICATE"], "certificate"), Certificate);
    const exts = cert.tbsCertificate.extensions ?? [];
    const policies = exts.filter((e) => e.extnID === EXT_OID.certificatePolicies);
    expect(policies).toHaveLength(1);
    const parsed = AsnConvert.parse(policies[0]!.extnValue.buffer, CertificatePolicies);
    expect(parsed.map((p) => p.policyIdentifier)).toEqual([POLICY_OID.signature]);
    // not also smuggled into another extension (e.g. a policy OID written into the wrong one)
    const encoded = oid(POLICY_OID.signature);
    for (const e of exts.filter((x) => x.extnID !== EXT_OID.certificatePolicies)) {
      expect(Buffer.from(e.extnValue.buffer).includes(encoded), e.extnID).toBe(false);
    }
  });

  it("the CRL carries the entry with its reason, a CRL number and the AKI", () => {
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"], { encoding: "utf8" });
    expect(text).toContain(revokedSerial.toUpperCase());
    expect(text).toContain("Key Compromise");
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*1\b/);
    expect(text).toContain("X509v3 Authority Key Identifier");
  });

  it("CRL numbers increase with every generation", async () => {
    const g = await cli([...w(), "crl", "generate", "--ca", "13-sig", "--json"], { cwd: dir });
    expect(g.json().crls[0].number).toBe("2");
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"], { encoding: "utf8" });
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*2\b/);
  });

  it("jpki inspect reads back the four items we wrote and finds no profile deviation", async () => {
    const r = await cli(["inspect", goodCert, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const d = r.json();
    const res = residents[0]!;
    expect(JSON.stringify(d)).toContain(res.address!.slice(0, 3));
    expect(d.profile.kind).toBe("signature");
    expect(d.profile.violations.filter((v: { severity: string }) => v.severity === "error")).toEqual([]);
    const text = await cli(["inspect", join(ws, "crl", "13-sig.crl")], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(revokedSerial);
  });

  it("a second certificate of the same type supersedes the first (reason superseded on the next CRL)", async () => {
    const k = cardKey(dir, "card3");
    const first = await cli([...w(), "issue", "--resident", residents[2]!.residentCode!, "--public-key", k.pub, "--json"], { cwd: dir });
    const second = await cli([...w(), "issue", "--resident", residents[2]!.residentCode!, "--public-key", k.pub, "--json"], { cwd: dir });
    expect(second.json().superseded).toEqual([first.json().serial]);
    // the authentication certificate of the same resident is another type (the card's other key): untouched
    const auth = await cli([...w(), "issue", "--resident", residents[2]!.residentCode!, "--type", "authentication", "--public-key", cardKey(dir, "card3-auth").pub, "--json"], { cwd: dir });
    expect(auth.json().superseded).toEqual([]);
    await cli([...w(), "crl", "generate", "--ca", "13-sig"], { cwd: dir });
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-noout", "-text"], { encoding: "utf8" });
    expect(text).toContain(first.json().serial.toUpperCase());
    expect(text).toContain("Superseded");
    // the authentication certificate validates against the authentication CA and not the signature CA
    const authPath = join(dir, "auth.pem");
    writeFileSync(authPath, auth.json().pem);
    await cli([...w(), "crl", "generate", "--ca", "13-auth"], { cwd: dir });
    expect(verify("13-auth", authPath).status).toBe(0);
    expect(verify("13-sig", authPath).status).not.toBe(0);
  });
});

describe("errors: typed, stable codes, nothing half-written", () => {
  async function certCount() {
    const r = await cli([...w(), "registry", "show", residents[3]!.residentCode!, "--json"], { cwd: dir });
    return r.json().certificates.length as number;
  }

  it("unknown resident; a mistyped code (its check digit) is said to be one", async () => {
    const k = cardKey(dir, "card4");
    const unknown = await cli([...w(), "issue", "--resident", "12345678903", "--public-key", k.pub], { cwd: dir });
    expect(unknown.code).toBe(7);
    expect(unknown.stderr).toContain("ERR_RESIDENT_UNKNOWN");
    const mistyped = await cli([...w(), "issue", "--resident", "12345678906", "--public-key", k.pub], { cwd: dir });
    expect(mistyped.code).toBe(7);
    expect(mistyped.stderr).toContain("ERR_RESIDENT_CODE_INVALID");
    expect(mistyped.stderr).not.toContain("12345678906");
  });

  it("a key that is not RSA-2048 (RSA-1024, EC P-256)", async () => {
    const before = await certCount();
    const rsa1024 = cardKey(dir, "weak", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024"]);
    const ec = cardKey(dir, "ec", ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    for (const k of [rsa1024, ec]) {
      const r = await cli([...w(), "issue", "--resident", residents[3]!.residentCode!, "--public-key", k.pub, "-o", join(dir, "never.pem")], { cwd: dir });
      expect(r.code).toBe(6);
      expect(r.stderr).toContain("ERR_KEY_UNSUPPORTED");
    }
    expect(existsSync(join(dir, "never.pem"))).toBe(false);
    expect(await certCount()).toBe(before);
  });

  it("malformed and wrongly signed CSRs", async () => {
    const k = cardKey(dir, "card5");
    const csr = readFileSync(csrFor(dir, k.key, "card5"), "utf8");
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ""), "base64");
    // flip one bit inside the signature: still DER, no longer verifies
    der[der.length - 5]! ^= 0x01;
    writeFileSync(join(dir, "tampered.csr"), der);
    writeFileSync(join(dir, "garbage.csr"), "not a request at all");
    const t = await cli([...w(), "issue", "--resident", residents[3]!.residentCode!, "--csr", join(dir, "tampered.csr")], { cwd: dir });
    expect(t.stderr).toContain("ERR_CSR_SIGNATURE");
    expect(t.code).toBe(6);
    const g = await cli([...w(), "issue", "--resident", residents[3]!.residentCode!, "--csr", join(dir, "garbage.csr")], { cwd: dir });
    expect(g.stderr).toContain("ERR_CSR_MALFORMED");
  });

  it("wrong or missing passphrase", async () => {
    const k = cardKey(dir, "card6");
    const before = await certCount();
    const r = await cli([...w(), "issue", "--resident", residents[3]!.residentCode!, "--public-key", k.pub], { cwd: dir, env: { JPKI_PASSPHRASE: "wrong" } });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("ERR_PASSPHRASE_WRONG");
    const m = await cli([...w(), "crl", "generate", "--prefecture", "13"], { cwd: dir, env: { JPKI_PASSPHRASE: undefined } });
    expect(m.stderr).toContain("ERR_PASSPHRASE_MISSING");
    expect(await certCount()).toBe(before);
    // crl generate finds a wrong passphrase while the entries stream (the key unlocks on the thread pool
    // meanwhile): nothing is published, the files on disk stay as they were, and the next run publishes
    // with a higher number.
    const crlFile = join(ws, "crl", "13-sig.crl");
    const published = await cli([...w(), "crl", "generate", "--ca", "13-sig", "--json"], { cwd: dir });
    expect(published.code, published.stderr).toBe(0);
    const onDisk = readFileSync(crlFile);
    const bad = await cli([...w(), "crl", "generate", "--ca", "13-sig"], { cwd: dir, env: { JPKI_PASSPHRASE: "wrong" } });
    expect(bad.code).toBe(5);
    expect(bad.stderr).toContain("ERR_PASSPHRASE_WRONG");
    expect(readFileSync(crlFile).equals(onDisk)).toBe(true);
    expect(existsSync(join(ws, "crl", "13-sig.crl.pem")), "a PEM copy only with config crlPem").toBe(false);
    const again = await cli([...w(), "crl", "generate", "--ca", "13-sig", "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(BigInt(again.json().crls[0].number)).toBeGreaterThan(BigInt(published.json().crls[0].number));
  });

  it("a wrong passphrase on a batch is the batch's failure (exit 5, audited), not one 'partial' failure per line", async () => {
    const pub = readFileSync(cardKey(dir, "batch-wrong-pass").pub, "utf8");
    const file = writeJsonl(join(dir, "wrong-pass.jsonl"), residents.slice(0, 3).map((r) => ({ residentCode: r.residentCode, publicKey: pub })));
    const before = await certCount();
    const authFailures = async () => {
      const wsp = await openWorkspace(ws);
      try {
        let n = 0;
        for await (const rec of wsp.store.auditRecords({ action: "auth.failure" })) if ((JSON.parse(rec.detail) as { code?: string }).code === "ERR_PASSPHRASE_WRONG") n++;
        return n;
      } finally {
        await wsp.close();
      }
    };
    const failures = await authFailures();
    const r = await cli([...w(), "issue", "--batch", file], { cwd: dir, env: { JPKI_PASSPHRASE: "wrong" } });
    expect(r.stderr).toContain("[ERR_PASSPHRASE_WRONG]");
    expect(r.stderr).not.toContain("ERR_PARTIAL");
    expect(r.code).toBe(5);
    expect(await certCount()).toBe(before);
    expect(await authFailures()).toBe(failures + 1);
  });

  it("a corrupt workspace is refused, not repaired or overwritten", async () => {
    const bad = join(dir, "corrupt");
    const init = await cli(["--workspace", bad, "ca", "init", "--prefecture", "47", "--purpose", "signature"], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    if (onPostgres) {
      // the database no longer says it is a jpki store: refused, and left as it is
      const c = new pg.Client({ connectionString: await workspaceStore(bad) });
      await c.connect();
      try {
        await c.query("UPDATE meta SET value = 'something else' WHERE key = 'application'");
        const r = await cli(["--workspace", bad, "ca", "list"], { cwd: dir });
        expect(r.code).toBe(3);
        expect(r.stderr).toContain("ERR_WORKSPACE_CORRUPT");
        expect((await c.query("SELECT value FROM meta WHERE key = 'application'")).rows).toEqual([{ value: "something else" }]);
        expect((await c.query("SELECT count(*)::int AS n FROM cas")).rows).toEqual([{ n: 1 }]);
      } finally {
        await c.end();
      }
    } else {
      writeFileSync(join(bad, "jpki.db"), Buffer.alloc(8192, 0x41));
      const r = await cli(["--workspace", bad, "ca", "list"], { cwd: dir });
      expect(r.code).toBe(3);
      expect(r.stderr).toContain("ERR_WORKSPACE_CORRUPT");
      expect(readFileSync(join(bad, "jpki.db")).equals(Buffer.alloc(8192, 0x41))).toBe(true);
    }
    writeFileSync(join(bad, "config.json"), "{ not json");
    const c = await cli(["--workspace", bad, "ca", "list"], { cwd: dir });
    expect(c.stderr).toContain("ERR_WORKSPACE_CORRUPT");
    const missing = await cli(["--workspace", join(dir, "nothing-here"), "ca", "list"], { cwd: dir });
    expect(missing.stderr).toContain("ERR_WORKSPACE_MISSING");
  });

  it("revoking twice, or an unknown serial", async () => {
    const k = cardKey(dir, "card7");
    const a = await cli([...w(), "issue", "--resident", residents[4]!.residentCode!, "--public-key", k.pub, "--json"], { cwd: dir });
    const serial = a.json().serial;
    expect((await cli([...w(), "revoke", "-s", serial, "-R", "resident-request"], { cwd: dir })).code).toBe(0);
    const again = await cli([...w(), "revoke", "-s", serial, "-R", "loss"], { cwd: dir });
    expect(again.stderr).toContain("ERR_CERT_ALREADY_REVOKED");
    const unknown = await cli([...w(), "revoke", "-s", "0badc0de", "-R", "loss"], { cwd: dir });
    expect(unknown.stderr).toContain("ERR_CERT_UNKNOWN");
    const reason = await cli([...w(), "revoke", "-s", serial, "-R", "because"], { cwd: dir });
    expect(reason.stderr).toContain("ERR_REASON_UNKNOWN");
  });

  it("leaves no temporary files behind in the published directories", () => {
    for (const d of ["ca", "crl", "certs"]) expect(listFiles(join(ws, d)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});

describe("jpki issue --batch", () => {
  it("issues the good lines, reports each bad one by line number, exit code 13", async () => {
    const pub = cardPubs(dir, "batch", 6);
    const file = writeJsonl(join(dir, "apps.jsonl"), [
      { residentCode: residents[0]!.residentCode, type: "authentication", publicKey: pub[0] },
      "{ this is not json",
      { residentCode: "00000000000", publicKey: pub[2] },
      { residentCode: residents[1]!.residentCode, type: "signature", publicKey: pub[3], extra: 1 },
      { residentCode: residents[5]!.residentCode, type: "signature", publicKey: pub[4] },
      { residentCode: residents[5]!.residentCode, type: "authentication", publicKey: pub[5] },
    ]);
    const out = join(dir, "batch-out");
    const r = await cli([...w(), "issue", "--batch", file, "--out-dir", out, "--json"], { cwd: dir });
    expect(r.code).toBe(13);
    const s = r.json();
    expect(s).toMatchObject({ read: 6, issued: 3, failed: 3 });
    expect(s.errors.map((e: { line: number }) => e.line)).toEqual([2, 3, 4]);
    expect(s.errors[1].code).toMatch(/ERR_RESIDENT/);
    expect(s.errors[2].code).toBe("ERR_APPLICATION_INVALID");
    expect(listFiles(out)).toHaveLength(3);
  });
});

describe("jpki issue --batch: ambiguous or mistyped lines are refused, never guessed at", () => {
  it("a repeated key (ERR_IMPORT_FORMAT), a null type, a non-string prefecture or resident code (ERR_APPLICATION_INVALID): nothing issued for them", async () => {
    const pub = readFileSync(cardKey(dir, "ambiguous").pub, "utf8");
    const [a, b] = [residents[2]!.residentCode!, residents[3]!.residentCode!];
    const before = async () => {
      const r = await cli([...w(), "registry", "show", b, "--json"], { cwd: dir });
      return r.json().certificates.length as number;
    };
    const bCerts = await before();
    const file = join(dir, "ambiguous.jsonl");
    writeFileSync(
      file,
      [
        // JSON.parse keeps the last of repeated keys; the counter's own tools may keep the first: which resident?
        `{"residentCode":"${a}","publicKey":${JSON.stringify(pub)},"residentCode":"${b}"}`,
        // the same, spelt with an escape
        `{"residentCode":"${a}","publicKey":${JSON.stringify(pub)},"resident\u0043ode":"${b}"}`,
        JSON.stringify({ residentCode: b, type: null, publicKey: pub }),
        JSON.stringify({ residentCode: b, publicKey: pub, prefecture: { code: "13" } }),
        JSON.stringify({ residentCode: Number(b), publicKey: pub }),
        // a good line among them: issued
        JSON.stringify({ residentCode: b, publicKey: pub, applicationId: "amb-1" }),
      ].join("\n") + "\n",
    );
    const r = await cli([...w(), "issue", "--batch", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(13);
    const s = r.json();
    expect(s.errors.map((e: { line: number; code: string }) => [e.line, e.code])).toEqual([
      [1, "ERR_IMPORT_FORMAT"],
      [2, "ERR_IMPORT_FORMAT"],
      [3, "ERR_APPLICATION_INVALID"],
      [4, "ERR_APPLICATION_INVALID"],
      [5, "ERR_APPLICATION_INVALID"],
    ]);
    expect(s.errors[0].message).toContain('field "residentCode" is given more than once');
    expect(s.errors[4].message).toContain("residentCode must be a string");
    expect(s.issued).toBe(1);
    expect(await before()).toBe(bCerts + 1);
  });
});

describe("jpki issue --batch with application ids", () => {
  it("a re-run returns the certificates already issued instead of issuing them again", async () => {
    const pub = cardPubs(dir, "rerun", 3);
    const rows = residents.slice(0, 3).map((r, i) => ({ applicationId: `counter-131016-2026-${i}`, residentCode: r.residentCode, type: "authentication", publicKey: pub[i] }));
    const file = writeJsonl(join(dir, "rerun.jsonl"), rows);
    const first = await cli([...w(), "issue", "--batch", file, "--json", "--out-dir", join(dir, "rerun-1")], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    expect(first.json()).toMatchObject({ issued: 3, alreadyIssued: 0 });
    const second = await cli([...w(), "issue", "--batch", file, "--json", "--out-dir", join(dir, "rerun-2")], { cwd: dir });
    expect(second.json()).toMatchObject({ issued: 0, alreadyIssued: 3, failed: 0 });
    expect(listFiles(join(dir, "rerun-2"))).toEqual(listFiles(join(dir, "rerun-1")));
    // the same id for another resident is refused, not silently answered with someone else's certificate
    const clash = writeJsonl(join(dir, "clash.jsonl"), [{ ...rows[0], residentCode: residents[4]!.residentCode }, rows[1], rows[1]]);
    const c = await cli([...w(), "issue", "--batch", clash, "--json"], { cwd: dir });
    expect(c.code).toBe(13);
    expect(c.json().errors.map((e: { line: number; code: string }) => [e.line, e.code])).toEqual([[1, "ERR_APPLICATION_INVALID"], [3, "ERR_APPLICATION_INVALID"]]);
    expect(c.json().alreadyIssued).toBe(1);
    // the error says what became of the others: none was issued now, one had been before
    const text = await cli([...w(), "issue", "--batch", clash], { cwd: dir });
    expect(text.stderr).toContain("2 of 3 applications failed; 1 already issued before");
  });
});

describe("jpki issue: an application id already issued for another card key", () => {
  it("is refused, not answered with a certificate that certifies the earlier key", async () => {
    const first = cardKey(dir, "appid-key-1");
    const second = cardKey(dir, "appid-key-2");
    const resident = residents[4]!.residentCode!;
    const a = await cli([...w(), "issue", "--resident", resident, "--public-key", first.pub, "--application-id", "appid-key-check", "--json"], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    // the same application re-sent with the same key: the same certificate, as for a re-run
    const same = await cli([...w(), "issue", "--resident", resident, "--public-key", first.pub, "--application-id", "appid-key-check", "--json"], { cwd: dir });
    expect(same.code, same.stderr).toBe(0);
    expect(same.json()).toMatchObject({ serial: a.json().serial, alreadyIssued: true });
    // the id again with a different key (a new card, a mix-up at the counter): that certificate would not fit the card
    const b = await cli([...w(), "issue", "--resident", resident, "--public-key", second.pub, "--application-id", "appid-key-check"], { cwd: dir });
    expect(b.stderr).toContain("[ERR_APPLICATION_INVALID]");
    expect(b.stderr).toContain("another public key");
    expect(b.code).toBe(8);
    const batch = writeJsonl(join(dir, "appid-key.jsonl"), [{ applicationId: "appid-key-check", residentCode: resident, publicKey: readFileSync(second.pub, "utf8") }]);
    const c = await cli([...w(), "issue", "--batch", batch, "--json"], { cwd: dir });
    expect(c.code).toBe(8);
    expect(c.json()).toMatchObject({ issued: 0, alreadyIssued: 0, failed: 1 });
    expect(c.json().errors[0].code).toBe("ERR_APPLICATION_INVALID");
  });
});

describe("jpki issue: one card key, one resident and one type", () => {
  it("refuses a key certified to another resident or for the other type (ERR_KEY_IN_USE, exit 6), naming the certificate, not its holder; a renewal with it is issued", async () => {
    const k = cardKey(dir, "one-key");
    const [holder, other] = [residents[5]!.residentCode!, residents[1]!.residentCode!];
    const a = await cli([...w(), "issue", "--resident", holder, "--public-key", k.pub, "--json"], { cwd: dir });
    expect(a.code, a.stderr).toBe(0);
    const out = join(dir, "one-key-other.pem");
    const b = await cli([...w(), "issue", "--resident", other, "--public-key", k.pub, "-o", out], { cwd: dir });
    expect(b.code).toBe(6);
    expect(b.stderr).toContain("[ERR_KEY_IN_USE]");
    expect(b.stderr).toContain(`certificate ${a.json().serial}`);
    expect(b.stderr).not.toContain(holder);
    expect(existsSync(out)).toBe(false);
    const auth = await cli([...w(), "issue", "--resident", holder, "--type", "authentication", "--public-key", k.pub, "--json"], { cwd: dir });
    expect(auth.code).toBe(6);
    expect(JSON.parse(auth.stderr)).toMatchObject({ error: { code: "ERR_KEY_IN_USE", details: { serial: a.json().serial, why: "other-type" } } });
    // the same resident's signature certificate again with its key: a renewal, the first superseded
    const renewed = await cli([...w(), "issue", "--resident", holder, "--public-key", k.pub, "--json"], { cwd: dir });
    expect(renewed.code, renewed.stderr).toBe(0);
    expect(renewed.json().superseded).toEqual([a.json().serial]);
    // one batch giving two residents one new key: the first line is issued, the second refused
    const k2 = cardKey(dir, "one-key-batch");
    const pem = readFileSync(k2.pub, "utf8");
    const batch = writeJsonl(join(dir, "one-key.jsonl"), [{ residentCode: other, type: "authentication", publicKey: pem }, { residentCode: residents[2]!.residentCode!, type: "authentication", publicKey: pem }]);
    const c = await cli([...w(), "issue", "--batch", batch, "--json"], { cwd: dir });
    expect(c.code).toBe(13);
    expect(c.json()).toMatchObject({ issued: 1, failed: 1, errors: [{ line: 2, code: "ERR_KEY_IN_USE" }] });
  });
});

describe("configurable base URL", () => {
  it("puts the CRL distribution point and AIA URLs under --base-url, and refuses a bad one", async () => {
    const other = join(dir, "ws-url");
    const init = await cli(["--workspace", other, "ca", "init", "-p", "13", "--purpose", "signature", "--base-url", "https://crl.example.jp/jpki/"], { cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    await cli(["--workspace", other, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir });
    const k = cardKey(dir, "url");
    const issued = await cli(["--workspace", other, "issue", "--resident", residents[0]!.residentCode!, "--public-key", k.pub, "--json"], { cwd: dir });
    const text = execFileSync("openssl", ["x509", "-noout", "-text"], { input: issued.json().pem, encoding: "utf8" });
    expect(text).toContain(`URI:https://crl.example.jp/jpki/crl/13-sig/${residents[0]!.municipalityCode}.crl`);
    expect(text).toContain("CA Issuers - URI:https://crl.example.jp/jpki/ca/13-sig.crt");
    const caText = execFileSync("openssl", ["x509", "-noout", "-text", "-in", join(other, "ca", "13-sig.pem")], { encoding: "utf8" });
    expect(caText).toContain("URI:https://crl.example.jp/jpki/arl/13-sig.crl");
    const bad = await cli(["--workspace", join(dir, "ws-bad-url"), "ca", "init", "-p", "13", "--base-url", "ftp://nope"], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("ERR_CONFIG_INVALID");
    expect(existsSync(join(dir, "ws-bad-url"))).toBe(false);
  });
});

describe("jpki issue --batch from CSV", () => {
  it("issues from a CSV file with a header row (publicKey as base64 DER), and refuses a header naming a column twice", async () => {
    // a card key each: one key is certified to one resident (ERR_KEY_IN_USE)
    const der = (name: string) => execFileSync("openssl", ["pkey", "-pubin", "-in", cardKey(dir, name).pub, "-outform", "DER"]).toString("base64");
    const [a, b] = [residents[2]!.residentCode!, residents[3]!.residentCode!];
    const derA = der("csv-batch-a");
    const file = join(dir, "apps.csv");
    writeFileSync(file, `residentCode,type,publicKey,applicationId\r\n${a},authentication,${derA},csv-1\r\n${b},authentication,${der("csv-batch-b")},csv-2\r\n`);
    const r = await cli([...w(), "issue", "--batch", file, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ read: 2, issued: 2, failed: 0 });
    // the same rows again, by application id: the certificates already issued, none new
    const again = await cli([...w(), "issue", "--batch", file, "--format", "csv", "--json"], { cwd: dir });
    expect(again.json()).toMatchObject({ read: 2, issued: 0, alreadyIssued: 2 });
    // which resident does the row name? Never a guess: the whole file is refused before anything is issued.
    const twice = join(dir, "twice.csv");
    writeFileSync(twice, `residentCode,publicKey,residentCode\n${a},${derA},${b}\n`);
    const bad = await cli([...w(), "issue", "--batch", twice, "--json"], { cwd: dir });
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/ERR_IMPORT_FORMAT/);
    expect(bad.stderr).toMatch(/repeats the name of column 1/);
  });
});
