/**
 * Our own engine on our own output: the demo's certificates validate under their prefecture CA with the CA's
 * CRL (RFC 5280 §6), the revoked ones are revoked with their reason, and a certificate under the other
 * purpose's CA is untrusted — the same verdicts as Java's PKIX in java-pkix.test.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { JpkiVerifier, pemOrDer, validatePath } from "../../src/index.js";
import { parseCrl } from "../../src/validation/crl.js";
import { runDemo, tempDir, unrevoked, type DemoRun } from "./helpers.js";

let demo: DemoRun;

function validate(ca: string, certPath: string) {
  const ws = demo.workspace;
  const crl = readFileSync(join(ws, "crl", `${ca}.crl`));
  return validatePath({
    trustAnchors: [pemOrDer(readFileSync(join(ws, "ca", `${ca}.pem`)), ["CERTIFICATE"], "the CA certificate")],
    chain: [pemOrDer(readFileSync(certPath), ["CERTIFICATE"], "the certificate")],
    crls: [crl],
    // the CRL's own time: the demo ran at the wall clock, the check does not need to
    at: new Date(parseCrl(crl).thisUpdate.getTime() + 1000),
  });
}

beforeAll(async () => {
  demo = await runDemo(tempDir("jpki-validate-demo-"));
}, 120_000);

describe("validatePath on the demo's certificates", () => {
  it("accepts the valid signature and authentication certificates", () => {
    const valid = unrevoked(demo);
    expect(valid.length).toBeGreaterThan(8);
    for (const c of valid) expect(validate(c.ca, c.path), `${c.type} ${c.serial}`).toMatchObject({ status: "valid" });
  });

  it("reports the revoked ones as revoked, with time and reason, and the wrong CA as untrusted", () => {
    for (const serial of [demo.revoked.serial, demo.notice.revokedByMove]) {
      const c = demo.certificates.find((x) => x.serial === serial)!;
      const r = validate(c.ca, c.path);
      expect(r).toMatchObject({ status: "revoked", reason: "revoked", index: 0 });
      expect(r.status === "revoked" && r.revocation?.time).toBeInstanceOf(Date);
    }
    const auth = demo.certificates.find((c) => c.type === "authentication")!;
    expect(validate(auth.ca.replace("-auth", "-sig"), auth.path)).toMatchObject({ status: "untrusted" });
  });
});

describe("JpkiVerifier: a relying party's set-up configured once, used per certificate", () => {
  it("validates by its configuration (trust, local CRLs, hard-fail), the same verdicts as per call", async () => {
    const ws = demo.workspace;
    const der = (p: string) => pemOrDer(readFileSync(p), ["CERTIFICATE"], "certificate");
    const crl = readFileSync(join(ws, "crl", "13-sig.crl"));
    const at = new Date(parseCrl(crl).thisUpdate.getTime() + 1000);
    const verifier = new JpkiVerifier({ trustAnchors: [der(join(ws, "ca", "13-sig.pem"))], crls: [crl], clock: { now: () => at } });
    const good = unrevoked(demo).find((c) => c.ca === "13-sig" && c.type === "signature")!;
    expect(await verifier.verify(der(good.path), { purpose: "signature" })).toMatchObject({ status: "valid", prefecture: { code: "13" } });
    const revoked = demo.certificates.find((c) => c.serial === demo.revoked.serial)!;
    expect(revoked.ca).toBe("13-sig");
    expect(await verifier.verify(der(revoked.path), { purpose: "signature" })).toMatchObject({ status: "revoked", index: 0 });
    // without the CRL, hard-fail by configuration: revocation unknown; soft-fail: valid with a warning
    const bare = new JpkiVerifier({ trustAnchors: [der(join(ws, "ca", "13-sig.pem"))], clock: { now: () => at } });
    expect(await bare.verify(der(good.path), { purpose: "signature" })).toMatchObject({ status: "revocation-unknown" });
    const soft = new JpkiVerifier({ trustAnchors: [der(join(ws, "ca", "13-sig.pem"))], revocation: "soft-fail", clock: { now: () => at } });
    const r = await soft.verify(der(good.path), { purpose: "signature" });
    expect(r.status === "valid" && r.revocationWarnings.length).toBe(1);
  });

  it("refuses a configuration it cannot honour: no trust anchor, OCSP without a client, unknown sources", () => {
    const anchor = pemOrDer(readFileSync(join(demo.workspace, "ca", "13-sig.pem")), ["CERTIFICATE"], "certificate");
    expect(() => new JpkiVerifier({ trustAnchors: [] })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    expect(() => new JpkiVerifier({ trustAnchors: [anchor], revocationSources: ["ocsp"] })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    expect(() => new JpkiVerifier({ trustAnchors: [anchor], revocationSources: ["crl", "crl"] })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    expect(() => new JpkiVerifier({ trustAnchors: [anchor], revocationSources: ["ldap" as never] })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
  });
});
