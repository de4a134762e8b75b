/** signApplication makes a CMS SignedData that our verifier and OpenSSL both accept. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { extension } from "../pki/der.js";
import { generateRsaKey } from "../pki/keys.js";
import { toPem } from "../pki/pem.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, keyUsage } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { verifySignedData } from "../validation/cms.js";
import { signApplication } from "./application.js";

describe("signApplication", () => {
  it("signs attached content with signing time and the signer's certificate", async () => {
    const signer = new SoftwareSigner(await generateRsaKey(2048));
    const name = encodeName([["countryName", "JP"], ["commonName", "applicant"]]);
    const now = new Date();
    const tbs = encodeTbs({
      serial: randomSerial(),
      signatureAlgorithm: signer.algorithmIdentifier,
      issuer: name,
      notBefore: new Date(now.getTime() - 60_000),
      notAfter: new Date(now.getTime() + 86_400_000),
      subject: name,
      spki: signer.spki,
      extensions: [extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature", "nonRepudiation"])), extension(EXT_OID.basicConstraints, true, basicConstraints(false))],
    });
    const cert = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
    const content = Buffer.from("-----BEGIN CERTIFICATE REQUEST-----\n申込書\n");
    const cms = await signApplication({ content, certificate: cert, signer, signingTime: now });
    const r = verifySignedData({ signature: cms, trustAnchors: [cert], at: now, revocation: "off", purpose: () => undefined });
    expect(r.status, r.message).toBe("valid");
    expect(r.content).toEqual(content);
    expect(r.signingTime?.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000);
    const dir = mkdtempSync(join(tmpdir(), "jpki-app-"));
    writeFileSync(join(dir, "a.p7s"), cms);
    writeFileSync(join(dir, "ca.pem"), toPem(cert, "CERTIFICATE"));
    const out = execFileSync("openssl", ["cms", "-verify", "-binary", "-inform", "DER", "-in", join(dir, "a.p7s"), "-CAfile", join(dir, "ca.pem"), "-purpose", "any"], { stdio: ["ignore", "pipe", "pipe"] });
    expect(out).toEqual(content);
  });
});
