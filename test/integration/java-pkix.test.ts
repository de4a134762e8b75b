/**
 * Interop (slow: compiles and runs Java): Java's PKIX CertPathValidator, an implementation independent of
 * OpenSSL and GnuTLS, accepts our certificates with our CRLs and rejects the revoked ones.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runDemo, tempDir, unrevoked, type DemoRun } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");
let classes: string;
let demo: DemoRun;

function pkix(ca: string, cert: string): { status: number; out: string } {
  const ws = demo.workspace;
  const r = spawnSync("java", ["-cp", classes, "PkixCheck", join(ws, "ca", `${ca}.pem`), cert, join(ws, "crl", `${ca}.crl`)], { encoding: "utf8" });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

beforeAll(async () => {
  classes = tempDir("jpki-java-");
  execFileSync("javac", ["-d", classes, join(ROOT, "test/interop/PkixCheck.java")], { stdio: "inherit" });
  demo = await runDemo(tempDir("jpki-java-demo-"));
}, 120_000);

describe("Java PKIX CertPathValidator (slow interop)", () => {
  it("accepts valid signature and authentication certificates under their own CA with our CRL", () => {
    const valid = unrevoked(demo);
    expect(valid.length).toBeGreaterThan(8);
    for (const c of valid) {
      const r = pkix(c.ca, c.path);
      expect(r.out.trim(), `${c.type} ${c.serial}`).toBe("VALID");
    }
  });

  it("rejects the revoked ones as REVOKED, and a certificate under the other purpose's CA", () => {
    for (const serial of [demo.revoked.serial, demo.notice.revokedByMove]) {
      const c = demo.certificates.find((x) => x.serial === serial)!;
      const r = pkix(c.ca, c.path);
      expect(r.status).toBe(1);
      expect(r.out).toContain("INVALID REVOKED");
    }
    const auth = demo.certificates.find((c) => c.type === "authentication")!;
    const wrongCa = auth.ca.replace("-auth", "-sig");
    expect(pkix(wrongCa, auth.path).status).toBe(1);
  });
});
