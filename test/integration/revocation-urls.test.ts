/**
 * The URLs a certificate names (CRL distribution points, freshestCRL, its AIA OCSP responder) are asked with the
 * registered verifier's bearer token only when the certificate is signed from a trust anchor. A certificate copied
 * from a genuine one with its URLs changed to an attacker's (signature left broken) got the token sent there by
 * `jpki verify --crl-url auto --token-file`, before the engine found the signature bad.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { pemOrDer } from "../../src/pki/pem.js";
import { validateJpkiAsync } from "../../src/validation/jpki.js";
import { OcspClient } from "../../src/validation/ocsp-source.js";
import { CrlCache } from "../../src/validation/revocation-sources.js";
import { runDemo, tempDir, type DemoRun } from "./helpers.js";

let demo: DemoRun;
let genuine: Buffer;
let forged: Buffer;
let anchor: Buffer;

beforeAll(async () => {
  demo = await runDemo(tempDir("jpki-revurls-"));
  const c = demo.certificates.find((x) => x.type === "signature" && x.serial !== demo.revoked.serial && x.serial !== demo.notice.revokedByMove)!;
  genuine = pemOrDer(readFileSync(c.path), ["CERTIFICATE"], "certificate");
  anchor = pemOrDer(readFileSync(join(demo.workspace, "ca", `${c.ca}.pem`)), ["CERTIFICATE"], "certificate");
  // the same certificate naming the attacker's host (as many bytes: the DER stays well formed), its signature now wrong
  const from = Buffer.from("localhost:8080");
  const to = Buffer.from("evil.example:1");
  expect(genuine.includes(from)).toBe(true);
  forged = Buffer.from(genuine.toString("latin1").replaceAll(from.toString("latin1"), to.toString("latin1")), "latin1");
  expect(forged.includes(to)).toBe(true);
});

/** Validates `certificate` with CRLs and OCSP from the URLs it names; the URLs asked, and the verdict. */
async function asked(certificate: Buffer): Promise<{ urls: string[]; status: string }> {
  const urls: string[] = [];
  const fetch = (async (input: string | URL | Request) => {
    urls.push(String(input));
    return new Response(null, { status: 404 });
  }) as typeof globalThis.fetch;
  const r = await validateJpkiAsync({
    certificate,
    purpose: "signature",
    at: new Date(),
    trustAnchors: [anchor],
    crlSource: new CrlCache({ bearerToken: "jpkiv_secret", tokenOrigins: ["http://localhost:8080"], fetch }),
    ocspSource: new OcspClient({ bearerToken: "jpkiv_secret", tokenOrigins: ["http://localhost:8080"], fetch }),
    revocationSources: ["ocsp", "crl"],
  });
  return { urls, status: r.status };
}

describe("revocation URLs and the verifier's token", () => {
  it("a genuine certificate's CRL and OCSP URLs are asked", async () => {
    const g = await asked(genuine);
    expect(g.urls.some((u) => u.startsWith("http://localhost:8080/crl/"))).toBe(true);
    expect(g.urls.some((u) => u.startsWith("http://localhost:8080/ocsp/"))).toBe(true);
  });

  it("a certificate whose signature does not verify sends nothing anywhere, and is refused for its signature", async () => {
    const f = await asked(forged);
    expect(f.urls).toEqual([]);
    expect(f.status).not.toBe("valid");
  });
});
