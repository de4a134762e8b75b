import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assertCaCertificate } from "./ca-check.js";

/** A self-signed certificate made by openssl (an independent encoder) with the given extensions. */
function opensslCert(...ext: string[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "jpki-cacheck-"));
  const out = join(dir, "c.der");
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "k.pem"), "-subj", "/CN=t", "-days", "1", "-outform", "DER", "-out", out, ...ext.flatMap((e) => ["-addext", e])], { stdio: "ignore" });
  return readFileSync(out);
}

describe("CA certificate profile check", () => {
  it("accepts a CA certificate with cA and keyCertSign + cRLSign", () => {
    expect(() => assertCaCertificate({ id: "13-sig", certificateDer: opensslCert("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign") })).not.toThrow();
    expect(() => assertCaCertificate({ id: "13-sig", certificateDer: opensslCert("basicConstraints=critical,CA:TRUE,pathlen:0", "keyUsage=critical,digitalSignature,keyCertSign,cRLSign") })).not.toThrow();
  });

  it("refuses a certificate that may not sign CRLs, is not a CA, or is not DER", () => {
    const code = (der: Buffer) => {
      try {
        assertCaCertificate({ id: "13-sig", certificateDer: der });
        return "ok";
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code(opensslCert("basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign"))).toBe("ERR_CA_INVALID");
    expect(code(opensslCert("basicConstraints=critical,CA:FALSE", "keyUsage=critical,keyCertSign,cRLSign"))).toBe("ERR_CA_INVALID");
    expect(code(opensslCert("basicConstraints=critical,CA:TRUE", "keyUsage=critical,digitalSignature"))).toBe("ERR_CA_INVALID");
    expect(code(Buffer.from([0x30, 0x03, 0x02, 0x01]))).toBe("ERR_WORKSPACE_CORRUPT");
  });
});
