/**
 * POST /v1/verify-signature (issue 11 point 3: the status page's form takes a signed file) over real HTTP:
 * attached CMS SignedData made by `openssl cms -sign` with keys our CA certified. A government body reads the
 * signature and the signer's certificate with the reason and, under a legal basis, the four items; a private
 * provider reads revoked and nothing of why; a changed document is a digest mismatch for both; a file that is
 * no SignedData, a detached signature without its document, and malformed bodies get typed 400s.
 */
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildServer } from "../../src/server/app.js";
import { sh } from "./helpers.js";
import { makeVerifierWorkspace, type VerifierWorkspace } from "./verifier-workspace.js";

let w: VerifierWorkspace;
let app: FastifyInstance;
let base: string;

async function post(body: unknown, token: string | undefined) {
  const res = await fetch(`${base}/v1/verify-signature`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as any };
}

const b64 = (file: string) => readFileSync(file).toString("base64");

beforeAll(async () => {
  w = await makeVerifierWorkspace("jpki-verify-signature-");
  ({ app } = await buildServer(w.ws));
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await app?.close();
  await w?.ws.close();
});

describe("POST /v1/verify-signature", () => {
  it("refuses a caller without a credential (401), as every verifier route", async () => {
    expect((await post({ signedData: b64(w.signedByValid) }, undefined)).status).toBe(401);
  });

  it("a government body: a valid signature by a valid certificate; a revoked signer's with the reason and, under a legal basis, the items", async () => {
    const ok = await post({ signedData: b64(w.signedByValid) }, w.gov);
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({ view: "government", signature: { status: "valid" }, certificate: { view: "government", status: "valid", purpose: "signature", issuer: "13-sig" } });
    expect(Date.parse(ok.json.signature.signingTime)).not.toBeNaN();

    const bad = await post({ signedData: b64(w.signedByRevoked), legalBasis: "pension" }, w.gov);
    expect(bad.status).toBe(200);
    expect(bad.json.signature).toMatchObject({ status: "revoked", message: expect.stringMatching(/revoked/) });
    expect(bad.json.certificate).toMatchObject({ status: "revoked", failedCertificate: { index: 0 }, revocation: { reason: "affiliationChanged" }, currentItems: w.items });
  });

  it("a private provider: revoked, and nothing of why nor of whom", async () => {
    const r = await post({ signedData: b64(w.signedByRevoked) }, w.priv);
    expect(r.status).toBe(200);
    expect(r.json.view).toBe("private");
    expect(Object.keys(r.json.signature).sort()).toEqual(["signingTime", "status"]);
    expect(r.json.signature.status).toBe("revoked");
    expect(r.json.certificate).toEqual({ view: "private", status: "revoked", validationTime: expect.any(String) });
    expect((await post({ signedData: b64(w.signedByValid) }, w.priv)).json).toMatchObject({ signature: { status: "valid" }, certificate: { status: "valid" } });
  });

  // Answered before, and recorded in the signer's disclosure log under that legal basis: the Act's tables are for
  // government bodies only (as for POST /v1/validate).
  it("a private provider naming a legal basis is refused 400 legal-basis-not-allowed, and nothing is recorded for the signer", async () => {
    const signer = (await w.ws.store.findCertificates({ type: "signature", status: "all", limit: 10_000 })).map((c) => c.residentCode);
    const logged = async () => (await Promise.all([...new Set(signer)].map((residentCode) => w.ws.store.listDisclosures({ residentCode, limit: 10_000 })))).flat().length;
    const before = await logged();
    for (const signedData of [b64(w.signedByRevoked), b64(w.signedByValid)]) {
      const r = await post({ signedData, legalBasis: "pension" }, w.priv);
      expect([r.status, r.json.code], JSON.stringify(r.json)).toEqual([400, "legal-basis-not-allowed"]);
      expect(r.json.signature).toBeUndefined();
    }
    expect(await logged()).toBe(before);
    // a government body's is answered as before
    expect((await post({ signedData: b64(w.signedByValid), legalBasis: "pension" }, w.gov)).json.certificate).toMatchObject({ legalBasis: "pension" });
    expect(await logged()).toBe(before + 1);
  });

  it("a document changed after signing is a digest mismatch, for either kind, with why (it is about the file)", async () => {
    const der = readFileSync(w.signedByValid);
    const at = der.indexOf(Buffer.from("転出届"));
    expect(at).toBeGreaterThan(0);
    const changed = Buffer.from(der);
    changed.write("転入届", at); // same length: only the content differs
    for (const token of [w.gov, w.priv]) {
      const r = await post({ signedData: changed.toString("base64") }, token);
      expect(r.status).toBe(200);
      expect(r.json.signature).toMatchObject({ status: "digest-mismatch", message: expect.any(String) });
    }
  });

  it("answers typed 400s: not a SignedData, a detached signature without its document, malformed bodies", async () => {
    const code = async (body: unknown) => {
      const r = await post(body, w.gov);
      expect(r.status, JSON.stringify(r.json)).toBe(400);
      return r.json.code;
    };
    expect(await code({ signedData: b64(w.validPem) })).toBe("signed-data-malformed"); // a certificate, not a signed file
    expect(await code({ signedData: "not base64!" })).toBe("signed-data-malformed");
    expect(await code({})).toBe("signed-data-missing");
    expect(await code({ signedData: b64(w.signedByValid), certificate: "x" })).toBe("field-unknown");
    expect(await code({ signedData: b64(w.signedByValid), at: "yesterday" })).toBe("time-invalid");
    expect(await code({ signedData: b64(w.signedByValid), legalBasis: "curiosity" })).toBe("legal-basis-unknown");
    const detached = join(w.dir, "detached.p7s");
    expect(sh("openssl", ["cms", "-sign", "-binary", "-md", "sha256", "-in", w.document, "-signer", w.validPem, "-inkey", join(w.dir, "key0.pem"), "-outform", "DER", "-out", detached]).status).toBe(0);
    expect(await code({ signedData: b64(detached) })).toBe("content-missing");
    // openssl stamped this signature with the wall clock, seconds after the workspace's fixed clock was set: the
    // verification time moves past it (a signing time after it is not-yet-valid)
    w.clock.set(Math.max(w.clock.now().getTime(), Date.now()));
    const withDoc = await post({ signedData: b64(detached), content: b64(w.document) }, w.gov);
    expect(withDoc.json.signature.status).toBe("valid");
  });
});

describe("POST /v1/validate of a certificate re-encoded (BER lengths in its outer SEQUENCE)", () => {
  it("is still the resident's certificate: the answer is in their disclosure log, as for the DER", async () => {
    const der = readFileSync(w.revokedDer);
    expect(der.subarray(0, 2).toString("hex")).toBe("3082");
    // 30 82 LL LL → 30 83 00 LL LL: the same tbsCertificate and signature, another encoding of the length
    const ber = Buffer.concat([Buffer.from([0x30, 0x83, 0x00]), der.subarray(2)]);
    const row = (await w.ws.store.getCertificate((await w.ws.store.findCertificates({ status: "all", limit: 10 })).find((c) => c.der.equals(der))!.serial))!;
    const before = (await w.ws.store.listDisclosures({ residentCode: row.residentCode })).length;
    const res = await fetch(`${base}/v1/validate`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${w.priv}` },
      body: JSON.stringify({ certificate: ber.toString("base64"), purpose: "signature" }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).status).toBe("revoked");
    const log = await w.ws.store.listDisclosures({ residentCode: row.residentCode });
    expect(log.length).toBe(before + 1);
    expect(log.at(-1)).toMatchObject({ serial: row.serial, issuer: "13-sig", answer: "revoked" });
  });
});

describe("JSON bodies nested deep (app.ts jsonNestsDeeper)", () => {
  it("are refused before JSON.parse spends a second on them: 400 body-too-deep (JSON, nested past the bound)", async () => {
    const deep = `{"signedData":${"[".repeat(500_000)}${"]".repeat(500_000)}}`;
    const res = await fetch(`${base}/v1/verify-signature`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${w.priv}` }, body: deep });
    expect(res.status).toBe(400);
    expect(((await res.json()) as any).code).toBe("body-too-deep");
    // brackets inside strings are not nesting
    expect((await post({ signedData: "[[[[".repeat(1000) }, w.priv)).json.code).toBe("signed-data-malformed");
    // and the route's own body limit (2 MiB, above fastify's 1 MiB default) still holds with this parser
    expect((await post({ signedData: "A".repeat(1_500_000) + "!" }, w.priv)).json.code).toBe("signed-data-malformed");
  });
});
