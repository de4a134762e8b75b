/**
 * validateJpki on our own CA's certificates (the demo's): the purpose asked for against the certificate's
 * policy and key usage, the prefecture from the issuer, the four items from a signature certificate, and the
 * engine's verdicts kept (revoked, expired, not-yet-valid, untrusted).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { pemOrDer, validateJpki, type JpkiPurpose } from "../../src/index.js";
import { parseCertificate } from "../../src/validation/certificate.js";
import { parseCrl } from "../../src/validation/crl.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { cardKey, cli, runDemo, sh, tempDir, unrevoked, writeJsonl, type DemoRun } from "./helpers.js";

type DemoCert = DemoRun["certificates"][number];
let demo: DemoRun;

const der = (p: string) => pemOrDer(readFileSync(p), ["CERTIFICATE"], "certificate");
const caDer = (ca: string) => der(join(demo.workspace, "ca", `${ca}.pem`));
const crlOf = (ca: string) => readFileSync(join(demo.workspace, "crl", `${ca}.crl`));
const at = (ca: string) => new Date(parseCrl(crlOf(ca)).thisUpdate.getTime() + 1000);

function check(c: DemoCert, purpose: JpkiPurpose, opts: { anchors?: string[]; at?: Date } = {}) {
  const anchors = opts.anchors ?? ["13-sig", "13-auth", "01-sig", "01-auth", "27-sig", "27-auth"];
  return validateJpki({
    certificate: der(c.path),
    purpose,
    trustAnchors: anchors.map(caDer),
    crls: anchors.map(crlOf),
    at: opts.at ?? at(c.ca),
  });
}

const pick = (type: JpkiPurpose, ca: string) => unrevoked(demo).find((c) => c.type === type && c.ca === ca)!;

beforeAll(async () => {
  demo = await runDemo(tempDir("jpki-purpose-"));
}, 120_000);

describe("validateJpki", () => {
  it("a signature certificate for signature: valid, its prefecture, the four items", () => {
    const r = check(pick("signature", "13-sig"), "signature");
    expect(r).toMatchObject({ status: "valid", purpose: "signature", certificatePurpose: "signature", prefecture: { code: "13", kanji: "東京都", romaji: "Tokyo-to" }, issuer: { operator: "prefecture", purpose: "signature" } });
    expect(r.fourItems).toEqual({ name: expect.stringContaining("\u3000"), address: expect.any(String), birthDate: expect.stringMatching(/^\d{4}-\d\d-\d\d$/), gender: expect.stringMatching(/^(male|female|unknown)$/) });
  });

  it("an authentication certificate for authentication: valid, no four items", () => {
    const r = check(pick("authentication", "27-auth"), "authentication");
    expect(r).toMatchObject({ status: "valid", certificatePurpose: "authentication", prefecture: { code: "27" } });
    expect(r.fourItems).toBeUndefined();
  });

  it("the wrong purpose is a profile-violation (wrong-purpose) both ways, never valid", () => {
    expect(check(pick("signature", "13-sig"), "authentication")).toMatchObject({ status: "profile-violation", reason: "wrong-purpose", index: 0, certificatePurpose: "signature" });
    expect(check(pick("authentication", "13-auth"), "signature")).toMatchObject({ status: "profile-violation", reason: "wrong-purpose", certificatePurpose: "authentication" });
  });

  it("the wrong purpose's CA as the only anchor, or another prefecture's: untrusted", () => {
    const c = pick("authentication", "13-auth");
    expect(check(c, "authentication", { anchors: ["13-sig"] })).toMatchObject({ status: "untrusted", reason: "no-trust-anchor" });
    expect(check(pick("signature", "13-sig"), "signature", { anchors: ["27-sig"] })).toMatchObject({ status: "untrusted", reason: "no-trust-anchor" });
  });

  it("revoked with our CRL; expired and not-yet-valid by the validation time", () => {
    const revoked = demo.certificates.find((c) => c.serial === demo.revoked.serial)!;
    expect(check(revoked, "signature")).toMatchObject({ status: "revoked", reason: "revoked", revocation: { reason: "keyCompromise" } });
    const c = pick("signature", "13-sig");
    const cert = parseCertificate(der(c.path));
    expect(check(c, "signature", { at: new Date(cert.notAfter.getTime() + 86400_000) })).toMatchObject({ status: "expired", reason: "expired" });
    expect(check(c, "signature", { at: new Date(cert.notBefore.getTime() - 86400_000) })).toMatchObject({ status: "not-yet-valid" });
  });

  it("a certificate of a foreign CA configured as a trust anchor: untrusted, not-jpki-issuer", () => {
    const dir = tempDir("jpki-foreign-");
    const o = (args: string[]) => expect(sh("openssl", args, { cwd: dir }).status).toBe(0);
    o(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/C=JP/O=Example CA", "-days", "30", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
    o(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "ee.key", "-out", "ee.csr", "-subj", "/C=JP/CN=someone"]);
    const ext = join(dir, "ext.cnf");
    sh("sh", ["-c", `printf 'keyUsage=critical,digitalSignature,nonRepudiation\\ncertificatePolicies=1.2.392.200149.8.5.1.1.20\\n' > ${ext}`]);
    o(["x509", "-req", "-in", "ee.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "ee.pem", "-days", "10", "-extfile", ext]);
    const r = validateJpki({ certificate: der(join(dir, "ee.pem")), purpose: "signature", trustAnchors: [der(join(dir, "ca.pem"))], at: new Date(), revocation: "off" });
    expect(r).toMatchObject({ status: "untrusted", reason: "not-jpki-issuer", certificatePurpose: "signature" });
    expect(r.prefecture).toBeUndefined();
  });

  it("a signature certificate of a CA set to J-LIS's test policy (…8.5.1.0.20): untrusted, test-certificate", async () => {
    const dir = tempDir("jpki-testpolicy-");
    const w = ["--workspace", join(dir, "ws")];
    expect((await cli([...w, "ca", "init", "--prefecture", "13", "--policy", "test"], { cwd: dir })).code).toBe(0);
    const [resident] = [...generateResidents({ count: 1, seed: "test-policy", prefectures: ["13"] })] as unknown as Array<{ residentCode: string }>;
    writeJsonl(join(dir, "residents.jsonl"), [resident]);
    expect((await cli([...w, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
    const { pub } = cardKey(dir, "card");
    const out = join(dir, "test-sig.pem");
    const issued = await cli([...w, "issue", "--resident", resident!.residentCode, "--public-key", pub, "-o", out], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const ca = der(join(dir, "ws", "ca", "13-sig.pem"));
    const r = validateJpki({ certificate: der(out), purpose: "signature", trustAnchors: [ca], at: new Date(), revocation: "off" });
    expect(r).toMatchObject({ status: "untrusted", reason: "test-certificate", certificatePurpose: "signature", prefecture: { code: "13" } });
  });

  it("messages never carry the four items", () => {
    const c = pick("signature", "13-sig");
    const r = check(c, "authentication");
    const items = check(c, "signature").fourItems!;
    expect(r.status !== "valid" && r.message).toBeTruthy();
    for (const v of [items.name, items.address]) expect(r.status !== "valid" ? r.message : "").not.toContain(v);
  });
});
