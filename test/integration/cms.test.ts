/**
 * Signed documents (CMS SignedData, RFC 5652) made by `openssl cms -sign` with card keys our CA certified, checked
 * by verifySignedData and cross-checked with `openssl cms -verify -crl_check` on the valid and revoked cases.
 * Tampered copies are made by patching bytes in place (same lengths), re-signing where the test needs a signature
 * that verifies over changed attributes.
 */
import { createHash, createPrivateKey, sign } from "node:crypto";
import { readFileSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CMS_OID, pemOrDer, verifySignedData } from "../../src/index.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { oid, time } from "../../src/pki/der.js";
import { parseCrl } from "../../src/validation/crl.js";
import { cardKey, cli, sh, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
const w = () => ["--workspace", ws];
const keys: Record<string, { key: string; pub: string }> = {};
const certs: Record<string, string> = {};
const doc = () => join(dir, "application.xml");
const caPem = () => join(ws, "ca", "13-sig.pem");
const crlPath = () => join(ws, "crl", "13-sig.crl");
let at: Date;

function cmsSign(name: string, attached: boolean, extra: string[] = [], md = "sha256"): Buffer {
  const out = join(dir, `${name}-${attached ? "att" : "det"}${extra.join("")}.p7s`);
  const r = sh("openssl", ["cms", "-sign", "-binary", "-md", md, "-in", doc(), "-signer", certs[name]!, "-inkey", keys[name]!.key, "-outform", "DER", "-out", out, ...(attached ? ["-nodetach"] : []), ...extra]);
  expect(r.status, r.out).toBe(0);
  return readFileSync(out);
}

function verify(signature: Uint8Array, extra: Partial<Parameters<typeof verifySignedData>[0]> = {}) {
  return verifySignedData({
    signature,
    trustAnchors: [pemOrDer(readFileSync(caPem()), ["CERTIFICATE"], "CA")],
    crls: [readFileSync(crlPath())],
    at,
    ...extra,
  });
}

function opensslVerify(sigFile: string, detached: boolean): { status: number; out: string } {
  return sh("openssl", ["cms", "-verify", "-binary", "-inform", "DER", "-in", sigFile, ...(detached ? ["-content", doc()] : []), "-CAfile", caWithCrl(), "-crl_check", "-purpose", "any", "-out", "/dev/null"]);
}

/** openssl cms has no -CRLfile: the CA certificate and the CRL (PEM) go in one -CAfile. */
function caWithCrl(): string {
  const p = join(dir, "13-sig.crl.pem");
  const r = sh("openssl", ["crl", "-inform", "DER", "-in", crlPath(), "-out", p]);
  expect(r.status, r.out).toBe(0);
  const both = join(dir, "13-sig-ca-crl.pem");
  writeFileSync(both, readFileSync(caPem(), "utf8") + readFileSync(p, "utf8"));
  return both;
}

/** Offset of the first occurrence of `needle` in `hay` (which must contain it exactly once). */
function indexOnce(hay: Buffer, needle: Buffer): number {
  const i = hay.indexOf(needle);
  expect(i).toBeGreaterThanOrEqual(0);
  expect(hay.indexOf(needle, i + 1)).toBe(-1);
  return i;
}

/** The signing-time attribute's UTCTime TLV inside the DER CMS: where it starts. */
function signingTimeOffset(cms: Buffer): number {
  const at = indexOnce(cms, oid(CMS_OID.signingTime));
  // SEQUENCE { OID, SET { UTCTime } }: after the OID come the SET header (2 bytes), then the time.
  return at + oid(CMS_OID.signingTime).length + 2;
}

/** A copy of `cms` whose signing time is `t`, its signed attributes re-signed with the signer's key (RSA-2048). */
function withSigningTime(cms: Buffer, name: string, t: Date): Buffer {
  const out = Buffer.from(cms);
  const off = signingTimeOffset(out);
  const enc = time(t);
  expect(enc.length).toBe(15);
  expect(out[off]).toBe(0x17);
  enc.copy(out, off);
  // the signed attributes: the [0] (0xA0) TLV holding the signing time; re-sign its SET OF form
  const attrsStart = out.lastIndexOf(Buffer.from([0xa0, 0x81]), off) >= 0 ? out.lastIndexOf(Buffer.from([0xa0, 0x81]), off) : -1;
  expect(attrsStart).toBeGreaterThan(0);
  const len = out[attrsStart + 2]!;
  const attrs = Buffer.from(out.subarray(attrsStart, attrsStart + 3 + len));
  attrs[0] = 0x31;
  const sig = sign("sha256", attrs, createPrivateKey(readFileSync(keys[name]!.key)));
  const sigHeader = Buffer.from([0x04, 0x82, 0x01, 0x00]);
  const sigAt = out.indexOf(sigHeader, attrsStart + 3 + len);
  expect(sigAt).toBeGreaterThan(0);
  sig.copy(out, sigAt + 4);
  return out;
}

beforeAll(async () => {
  dir = tempDir("jpki-cms-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  const people = ["0000000960", "0000000961"].map((c, i) => ({
    residentCode: makeResidentCode(c), municipalityCode: "131016", name: ["山田　太郎", "山田　花子"][i], address: "東京都千代田区千代田１番１号",
    birthDate: "1980-12-31", gender: "male", status: "active",
  }));
  writeJsonl(join(dir, "residents.jsonl"), people);
  expect((await cli([...w(), "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const issue = async (name: string, resident: string, type: string) => {
    keys[name] = cardKey(dir, name);
    certs[name] = join(dir, `${name}.pem`);
    const r = await cli([...w(), "issue", "--resident", resident, "--type", type, "--public-key", keys[name]!.pub, "-o", certs[name]!, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return r.json().serial as string;
  };
  await issue("good", people[0]!.residentCode, "signature");
  await issue("auth", people[0]!.residentCode, "authentication");
  const lost = await issue("lost", people[1]!.residentCode, "signature");
  writeFileSync(doc(), '<?xml version="1.0" encoding="UTF-8"?>\n<申請 種別="転居届">東京都千代田区</申請>\n');
  cmsSign("lost", true);
  expect((await cli([...w(), "revoke", "--serial", lost, "--reason", "loss"], { cwd: dir })).code).toBe(0);
  const g = await cli([...w(), "crl", "generate", "--ca", "13-sig", "--json"], { cwd: dir });
  expect(g.code, g.stderr).toBe(0);
  // The verification time: the CRL's last second, after every signature the tests make now (a signing time past
  // the verification time is not-yet-valid) and while the CRL is current.
  at = new Date(parseCrl(readFileSync(crlPath())).nextUpdate!.getTime() - 1000);
}, 120_000);

describe("verifySignedData on openssl cms -sign output", () => {
  it("attached and detached signatures by a signature certificate are valid, as openssl cms -verify -crl_check says", () => {
    for (const attached of [true, false]) {
      const cms = cmsSign("good", attached);
      const r = verify(cms, attached ? {} : { content: readFileSync(doc()) });
      expect(r, r.message).toMatchObject({ status: "valid" });
      expect(r.signer!.equals(pemOrDer(readFileSync(certs.good!), ["CERTIFICATE"], "cert"))).toBe(true);
      expect(r.signingTime).toBeInstanceOf(Date);
      expect(r.validatedAt).toEqual(r.signingTime);
      if (attached) expect(r.content!.equals(readFileSync(doc()))).toBe(true);
      const o = opensslVerify(join(dir, `good-${attached ? "att" : "det"}.p7s`), !attached);
      expect(o.status, o.out).toBe(0);
    }
    // with purpose "signature": a 署名用電子証明書 fits
    expect(verify(cmsSign("good", true), { purpose: "signature" }).status).toBe("valid");
  });

  it("a detached signature without its document is content-missing; with another document digest-mismatch", () => {
    const cms = cmsSign("good", false);
    expect(verify(cms)).toMatchObject({ status: "content-missing" });
    expect(verify(cms, { content: Buffer.from("<申請>別の文書</申請>") })).toMatchObject({ status: "digest-mismatch", reason: "message-digest-mismatch" });
  });

  it("tampered attached content is digest-mismatch", () => {
    const cms = cmsSign("good", true);
    const bad = Buffer.from(cms);
    const i = indexOnce(bad, Buffer.from("転居届"));
    bad[i + 2]! ^= 0x01;
    expect(verify(bad)).toMatchObject({ status: "digest-mismatch", reason: "message-digest-mismatch" });
    // an attached signature checked against another document
    expect(verify(cms, { content: Buffer.from("<申請>別の文書</申請>") })).toMatchObject({ status: "digest-mismatch", reason: "content-differs" });
    expect(verify(cms, { content: readFileSync(doc()) }).status).toBe("valid");
  });

  it("tampered signed attributes are bad-signature", () => {
    const cms = cmsSign("good", true);
    const bad = Buffer.from(cms);
    const off = signingTimeOffset(bad);
    bad[off + 3] = bad[off + 3] === 0x30 ? 0x31 : 0x30; // one digit of the year
    expect(verify(bad)).toMatchObject({ status: "bad-signature", reason: "signature-invalid" });
  });

  it("a signer whose certificate is revoked (our CRL) is revoked, as openssl cms -verify -crl_check says", () => {
    const r = verify(readFileSync(join(dir, "lost-att.p7s")));
    expect(r, r.message).toMatchObject({ status: "revoked", reason: "revoked" });
    const o = opensslVerify(join(dir, "lost-att.p7s"), false);
    expect(o.status).not.toBe(0);
    expect(o.out).toMatch(/certificate revoked/);
  });

  it("an authentication certificate used to sign, with purpose signature, is wrong-purpose", () => {
    const cms = cmsSign("auth", true);
    expect(verify(cms, { purpose: "signature" })).toMatchObject({ status: "wrong-purpose", reason: "wrong-purpose" });
    // a caller's own purpose check sees the signer certificate
    let seen: string | undefined;
    const r = verify(cmsSign("good", true), { purpose: (s) => ((seen = s.serialHex), "not this one") });
    expect(r).toMatchObject({ status: "wrong-purpose", message: "not this one" });
    expect(seen).toMatch(/^[0-9a-f]+$/);
  });

  it("a signing time outside the certificate's validity is expired or not-yet-valid", () => {
    const cms = cmsSign("good", true);
    const cert = pemOrDer(readFileSync(certs.good!), ["CERTIFICATE"], "cert");
    const { notBefore, notAfter } = (() => {
      const o = sh("openssl", ["x509", "-in", certs.good!, "-noout", "-startdate", "-enddate"]).out;
      return { notBefore: new Date(/notBefore=(.*)/.exec(o)![1]!), notAfter: new Date(/notAfter=(.*)/.exec(o)![1]!) };
    })();
    expect(cert.length).toBeGreaterThan(0);
    const before = withSigningTime(cms, "good", new Date(notBefore.getTime() - 86_400_000));
    expect(verify(before), verify(before).message).toMatchObject({ status: "not-yet-valid" });
    const after = withSigningTime(cms, "good", new Date(notAfter.getTime() + 86_400_000));
    expect(verify(after, { at: new Date(notAfter.getTime() + 2 * 86_400_000), revocation: "off" })).toMatchObject({ status: "expired" });
    // the same re-signing with a time inside the validity is valid: the patch itself is sound
    expect(verify(withSigningTime(cms, "good", new Date(notBefore.getTime() + 60_000))).status).toBe("valid");
  });

  it("a signing time later than the verification time is not-yet-valid (signing-time-in-future), never valid; at it or before, valid", () => {
    const cms = cmsSign("good", true);
    const future = withSigningTime(cms, "good", new Date(at.getTime() + 60_000));
    for (const revocation of ["hard-fail", "off"] as const) {
      const r = verify(future, { revocation });
      expect(r, r.message).toMatchObject({ status: "not-yet-valid", reason: "signing-time-in-future", signingTime: new Date(at.getTime() + 60_000) });
      expect(r.message).toContain(at.toISOString());
    }
    // within a caller's allowance for the signer's clock running ahead (provider enrol's skew), accepted
    expect(verify(future, { signingTimeSkewMs: 60_000 }).status).toBe("valid");
    expect(verify(future, { signingTimeSkewMs: 59_000 }).reason).toBe("signing-time-in-future");
    // the verification time itself (second precision) is not the future
    expect(verify(withSigningTime(cms, "good", new Date(Math.floor(at.getTime() / 1000) * 1000)), { at: new Date(Math.floor(at.getTime() / 1000) * 1000) }).status).toBe("valid");
  });

  it("the signer by subjectKeyIdentifier (-keyid), PEM input, and a CMS without certificates (-nocerts) given the signer as an intermediate", () => {
    expect(verify(cmsSign("good", true, ["-keyid"])), "keyid").toMatchObject({ status: "valid" });
    const pem = sh("openssl", ["cms", "-sign", "-binary", "-md", "sha256", "-nodetach", "-in", doc(), "-signer", certs.good!, "-inkey", keys.good!.key, "-outform", "PEM"]);
    expect(pem.out).toMatch(/-----BEGIN CMS-----/);
    expect(verify(Buffer.from(pem.out)).status).toBe("valid");
    const bare = cmsSign("good", true, ["-nocerts"]);
    expect(verify(bare)).toMatchObject({ status: "signer-not-found" });
    expect(verify(bare, { intermediates: [pemOrDer(readFileSync(certs.good!), ["CERTIFICATE"], "cert")] }).status).toBe("valid");
  });

  it("SHA-1 is unsupported-algorithm; a certificate under another CA is untrusted", () => {
    expect(verify(cmsSign("good", true, [], "sha1"))).toMatchObject({ status: "unsupported-algorithm", reason: "digest-algorithm" });
    expect(verify(cmsSign("auth", true), { trustAnchors: [pemOrDer(readFileSync(caPem()), ["CERTIFICATE"], "CA")] })).toMatchObject({ status: "untrusted" });
  });

  it("garbage is malformed, never an exception", () => {
    for (const g of [Buffer.from("not a signature"), Buffer.from([0x30, 0x03, 0x02, 0x01]), createHash("sha256").update("x").digest(), Buffer.from("-----BEGIN CMS-----\n!!\n-----END CMS-----\n")]) {
      const r = verify(g);
      expect(r.status).toBe("malformed");
      expect(r.reason).toBe("cms-malformed");
    }
  });
});

describe("jpki verify-signature", () => {
  const common = () => ["--trust", caPem(), "--crl", crlPath(), "--at", at.toISOString(), "--json"];

  it("exit 0 for valid detached and attached signatures (DOC, '-' and --attached), with the signer and signing time", async () => {
    cmsSign("good", false);
    cmsSign("good", true);
    const det = await cli(["verify-signature", doc(), join(dir, "good-det.p7s"), ...common()], { cwd: dir });
    expect(det.code, det.stderr).toBe(0);
    expect(det.json()).toMatchObject({ status: "valid", attached: false, signer: { serial: expect.stringMatching(/^[0-9a-f]+$/) } });
    expect(Date.parse(det.json().signingTime)).not.toBeNaN();
    const dash = await cli(["verify-signature", "-", join(dir, "good-att.p7s"), ...common(), "--purpose", "signature"], { cwd: dir });
    expect(dash.code, dash.stderr).toBe(0);
    expect(dash.json()).toMatchObject({ status: "valid", attached: true });
    const att = await cli(["verify-signature", "--attached", join(dir, "good-att.p7s"), ...common()], { cwd: dir });
    expect(att.code, att.stderr).toBe(0);
    const text = await cli(["verify-signature", doc(), join(dir, "good-det.p7s"), "--trust", caPem(), "--crl", crlPath(), "--at", at.toISOString()], { cwd: dir });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^valid: /);
  });

  it("exit 1 for revoked, wrong purpose and a changed document; 15 without a CRL (could not decide)", async () => {
    const revoked = await cli(["verify-signature", "--attached", join(dir, "lost-att.p7s"), ...common()], { cwd: dir });
    expect(revoked.code).toBe(1);
    expect(revoked.json()).toMatchObject({ status: "revoked", reason: "revoked" });
    cmsSign("auth", true);
    const purpose = await cli(["verify-signature", "--attached", join(dir, "auth-att.p7s"), ...common(), "--purpose", "signature"], { cwd: dir });
    expect(purpose.code).toBe(1);
    expect(purpose.json()).toMatchObject({ status: "wrong-purpose" });
    writeFileSync(join(dir, "other.xml"), "<申請>別の文書</申請>");
    const changed = await cli(["verify-signature", join(dir, "other.xml"), join(dir, "good-det.p7s"), ...common()], { cwd: dir });
    expect(changed.code).toBe(1);
    expect(changed.json()).toMatchObject({ status: "digest-mismatch" });
    const undecided = await cli(["verify-signature", doc(), join(dir, "good-det.p7s"), "--trust", caPem(), "--at", at.toISOString(), "--json"], { cwd: dir });
    expect(undecided.code).toBe(15);
    expect(undecided.json()).toMatchObject({ status: "revocation-unknown" });
  });

  it("a signing time after --at is exit 1, not-yet-valid (signing-time-in-future) in --json and in text, where it was valid", async () => {
    const future = join(dir, "future-att.p7s");
    writeFileSync(future, withSigningTime(cmsSign("good", true), "good", new Date(at.getTime() + 3_600_000)));
    const r = await cli(["verify-signature", "--attached", future, ...common()], { cwd: dir });
    expect(r.code, r.stdout).toBe(1);
    expect(r.json()).toMatchObject({ status: "not-yet-valid", reason: "signing-time-in-future", message: expect.stringMatching(/later than the verification time/), validatedAt: null });
    expect(r.stderr).not.toMatch(/\n\s+at /);
    const text = await cli(["verify-signature", "--attached", future, "--trust", caPem(), "--crl", crlPath(), "--at", at.toISOString()], { cwd: dir });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/^not-yet-valid \(signing-time-in-future\): the signing time /);
  });

  it("a DER --chain certificate whose name holds '-----BEGIN ' is read as DER (was 'holds no PEM CERTIFICATE')", async () => {
    const odd = join(dir, "begin-in-name.der");
    expect(sh("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "begin-in-name.key"), "-subj", "/C=JP/O=-----BEGIN X/CN=odd", "-days", "10", "-outform", "DER", "-out", odd]).status).toBe(0);
    const r = await cli(["verify-signature", doc(), join(dir, "good-det.p7s"), ...common(), "--chain", odd], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().status).toBe("valid");
  });

  it("garbage is ERR_CMS_MALFORMED (exit 10) without a stack trace; a detached signature without DOC is a usage error", async () => {
    writeFileSync(join(dir, "garbage.p7s"), "this is not a signature\n");
    const g = await cli(["verify-signature", "--attached", join(dir, "garbage.p7s"), ...common()], { cwd: dir });
    expect(g.code).toBe(10);
    expect(JSON.parse(g.stderr).error.code).toBe("ERR_CMS_MALFORMED");
    expect(g.stderr).not.toMatch(/\n\s+at /);
    const noDoc = await cli(["verify-signature", "-", join(dir, "good-det.p7s"), ...common()], { cwd: dir });
    expect(noDoc.code).toBe(2);
    expect(noDoc.stderr).toMatch(/ERR_USAGE/);
    const noTrust = await cli(["verify-signature", "--attached", join(dir, "good-att.p7s")], { cwd: dir });
    expect(noTrust.code).toBe(2);
    for (const at of ["2026-04-01 junk", "2026-02-30T00:00:00Z", "2026-04-01T09:00"]) {
      const r = await cli(["verify-signature", doc(), join(dir, "good-det.p7s"), "--trust", caPem(), "--at", at, "--json"], { cwd: dir });
      expect(r.code, `--at ${at}: ${r.stdout}`).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toBe("ERR_USAGE");
    }
    // A 3 GiB file (sparse) as the document, the signature, --trust, --chain or --crl: refused by its size,
    // typed, where readFileSync's RangeError past 2 GiB reached the user as ERR_INTERNAL and a stack trace.
    const huge = join(dir, "huge.bin");
    writeFileSync(huge, "");
    truncateSync(huge, 3 * 2 ** 30);
    const sig = join(dir, "good-det.p7s");
    for (const args of [[huge, sig, ...common()], ["--attached", huge, ...common()], [doc(), sig, ...common(), "--trust", huge], [doc(), sig, ...common(), "--chain", huge], [doc(), sig, ...common(), "--crl", huge]]) {
      const r = await cli(["verify-signature", ...args], { cwd: dir });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringMatching(/huge\.bin: is 3221225472 bytes, more than the \d+ accepted/) });
    }
  });
});
