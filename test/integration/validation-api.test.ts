/**
 * The validation API (issue 11 point 1) over real HTTP against a real `jpki serve` on the demo's workspace:
 * a government body (行政機関) and a private certification provider (民間認証事業者) ask about a valid and a
 * revoked demo certificate and each gets its own view; a legal basis brings the resident's CURRENT four items to
 * a government body only (the mover's new address, not the certified one); no credential, a wrong token or a
 * revoked verifier is refused; malformed bodies get typed 400s; every answer is in `jpki disclosure --resident`
 * for the right resident and no other; /openapi.json describes the route.
 */
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FourItems } from "../../src/profile/types.js";
import { cli, openWorkspace, runDemo, startServe, tempDir, unrevoked, type DemoRun, type RunningServe } from "./helpers.js";
import { until } from "../until.js";

let demo: DemoRun;
let serve: RunningServe;
let gov: { id: string; token: string };
let priv: { id: string; token: string };
let gone: { id: string; token: string };
/** the certificates as PEM, and the residents they were issued to */
let validCert: string;
let validResident: string;
let movedCert: string;
let movedResident: string;
let movedCertifiedItems: FourItems;
let movedCurrentItems: FourItems;
let revokedCert: string;
let revokedResident: string;

async function post(body: unknown, token: string | undefined, o: { raw?: string; contentType?: string; path?: string } = {}) {
  const res = await fetch(`${serve.url}${o.path ?? "/v1/validate"}`, {
    method: "POST",
    headers: { "content-type": o.contentType ?? "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: o.raw ?? JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function disclosures(resident: string) {
  const r = await cli(["--workspace", demo.workspace, "--json", "disclosure", "--resident", resident], { cwd: demo.workspace });
  expect(r.code, r.stderr).toBe(0);
  return r.json().disclosures as Array<{ verifier: { id: string; name: string; kind: string }; certificate: { serial: string }; purpose: string; legalBasis: string | null; answer: string; itemsDisclosed: boolean; at: string }>;
}

beforeAll(async () => {
  const dir = tempDir("jpki-validation-api-");
  demo = await runDemo(dir);
  const ws = demo.workspace;
  const add = async (name: string, kind: string) => {
    const r = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", name, "--kind", kind], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    return { id: r.json().id as string, token: r.json().token as string };
  };
  gov = await add("デジタル庁", "government");
  priv = await add("Example Trust K.K.", "private");
  gone = await add("Revoked Body", "government");
  expect((await cli(["--workspace", ws, "verifier", "revoke", gone.id], { cwd: dir })).code).toBe(0);

  const w = await openWorkspace(ws);
  try {
    const sig = unrevoked(demo).find((c) => c.type === "signature")!;
    const row = async (serial: string) => (await w.store.getCertificate(serial))!;
    const valid = await row(sig.serial);
    validCert = readFileSync(resolve(ws, sig.path), "utf8");
    validResident = valid.residentCode;
    const moved = await row(demo.notice.revokedByMove);
    movedCert = readFileSync(resolve(ws, demo.certificates.find((c) => c.serial === moved.serial)!.path), "utf8");
    movedResident = moved.residentCode;
    movedCertifiedItems = moved.fourItems;
    movedCurrentItems = (await w.store.getResident(moved.residentCode))!.fourItems;
    const revoked = await row(demo.revoked.serial);
    revokedCert = readFileSync(resolve(ws, demo.certificates.find((c) => c.serial === revoked.serial)!.path), "utf8");
    revokedResident = revoked.residentCode;
  } finally {
    await w.close();
  }
  // the move changed the address: the current items are not the certified ones
  expect(movedCurrentItems.address).not.toBe(movedCertifiedItems.address);
  expect(new Set([validResident, movedResident, revokedResident]).size).toBe(3);
  const passphrase = readFileSync(join(ws, "passphrase.txt"), "utf8").trim();
  serve = await startServe(ws, ["--access-log", "off", "--crl-interval", "2"], { JPKI_PASSPHRASE: passphrase });
  expect(serve.stderr()).toMatch(/listening/);
}, 180_000);

afterAll(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill("SIGTERM");
    await serve.exited;
  }
});

describe("POST /v1/validate: each verifier kind in its view", () => {
  it("a valid certificate: the government body sees status and serial; the private provider only 'valid'", async () => {
    const g = await post({ certificate: validCert, purpose: "signature" }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ view: "government", status: "valid", purpose: "signature" });
    expect(g.json().currentItems).toBeUndefined();
    const p = await post({ certificate: validCert, purpose: "signature" }, priv.token);
    expect(p.status, p.text).toBe(200);
    expect(Object.keys(p.json()).sort()).toEqual(["status", "validationTime", "view"]);
    expect(p.json()).toMatchObject({ view: "private", status: "valid" });
  });

  it("a revoked certificate: the government body sees the reason and revocation; the private provider only 'revoked'", async () => {
    const g = await post({ certificate: movedCert, purpose: "signature" }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ view: "government", status: "revoked", reason: "revoked", failedCertificate: { index: 0 }, revocation: { reason: "affiliationChanged" } });
    const p = await post({ certificate: movedCert, purpose: "signature" }, priv.token);
    expect(p.status, p.text).toBe(200);
    expect(p.json()).toEqual({ view: "private", status: "revoked", validationTime: expect.any(String) });
    expect(p.text).not.toMatch(/affiliationChanged|revocation|reason/);
  });

  it("the wrong purpose: the government body sees profile-violation, the private provider 'unknown'", async () => {
    expect((await post({ certificate: validCert, purpose: "authentication" }, gov.token)).json()).toMatchObject({ status: "profile-violation" });
    expect((await post({ certificate: validCert, purpose: "authentication" }, priv.token)).json()).toMatchObject({ status: "unknown" });
  });

  it("a legal basis brings a government body the resident's CURRENT four items (the new address); never a private provider; never without one", async () => {
    const g = await post({ certificate: movedCert, purpose: "signature", legalBasis: "pension" }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ status: "revoked", legalBasis: "pension", currentItems: movedCurrentItems });
    const p = await post({ certificate: movedCert, purpose: "signature" }, priv.token);
    expect(p.status, p.text).toBe(200);
    expect(p.json()).toEqual({ view: "private", status: "revoked", validationTime: expect.any(String) });
    expect(p.text).not.toContain(movedCurrentItems.address);
    expect(p.text).not.toContain(movedCurrentItems.name);
    const none = await post({ certificate: movedCert, purpose: "signature" }, gov.token);
    expect(none.json().currentItems).toBeUndefined();
    expect(none.text).not.toContain(movedCurrentItems.address);
  });

  it("the government body is told our CA id as issuer; another certificate under the same serial is not ours", async () => {
    const g = await post({ certificate: validCert, purpose: "signature" }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ status: "valid", issuer: expect.stringMatching(/^\d{2}-sig/) });
    const before = await disclosures(validResident);
    // its tbsCertificate altered (so not what our CA signed), the serial kept
    const altered = Buffer.from(validCert.replace(/-----[^-]+-----|\s/g, ""), "base64");
    altered[altered.indexOf(Buffer.from([0x02, 0x82, 0x01, 0x01, 0x00])) + 10]! ^= 1; // a bit of the RSA modulus
    const x = await post({ certificate: altered.toString("base64"), purpose: "signature" }, gov.token);
    expect(x.status, x.text).toBe(200);
    expect(x.json()).toMatchObject({ serial: g.json().serial });
    expect(x.json().status).not.toBe("valid");
    expect(x.json().issuer).not.toMatch(/^\d{2}-sig/);
    expect((await disclosures(validResident)).length).toBe(before.length);
  });

  it("a certificate that is not ours (here a CA certificate) brings no items, whatever the legal basis, and is listed for no resident", async () => {
    const caPem = readFileSync(join(demo.workspace, "ca", `${demo.revoked.ca}.pem`), "utf8");
    const r = await post({ certificate: caPem, purpose: "signature", legalBasis: "passport" }, gov.token);
    expect(r.status, r.text).toBe(200);
    expect(r.json()).toMatchObject({ view: "government", legalBasis: "passport", itemsWithheld: "certificate-not-ours" });
    expect(r.json().status).not.toBe("valid");
    expect(r.json().currentItems).toBeUndefined();
  });

  it("accepts base64 DER and a validation time: past notAfter the government body sees expired, the private provider 'unknown'", async () => {
    const der = Buffer.from(movedCert.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("base64");
    const at = "2100-01-01T00:00:00.000Z";
    const g = await post({ certificate: der, purpose: "signature", at }, gov.token);
    expect(g.status, g.text).toBe(200);
    expect(g.json()).toMatchObject({ status: "expired", validationTime: at, failedCertificate: { index: 0 } });
    const p = await post({ certificate: der, purpose: "signature", at }, priv.token);
    expect(p.json()).toEqual({ view: "private", status: "unknown", validationTime: at });
  });
});

describe("POST /v1/validate: who may ask, and what it refuses", () => {
  it("no credential, an unknown token, a revoked verifier: 401", async () => {
    expect((await post({ certificate: validCert, purpose: "signature" }, undefined)).status).toBe(401);
    expect((await post({ certificate: validCert, purpose: "signature" }, "not-a-registered-token")).status).toBe(401);
    const r = await post({ certificate: validCert, purpose: "signature" }, gone.token);
    expect(r.status).toBe(401);
    expect(r.text).toBe('{"error":"unauthorized","code":"unauthorized"}');
  });

  it("malformed bodies: typed 400s (413, 415), no stack trace", async () => {
    const cases: Array<[unknown, { raw?: string; contentType?: string } | undefined, number, string]> = [
      [undefined, { raw: "{not json" }, 400, "body-not-json"],
      [[1, 2], undefined, 400, "body-invalid"],
      [{ purpose: "signature" }, undefined, 400, "certificate-missing"],
      [{ certificate: "AAAA", purpose: "signature" }, undefined, 400, "certificate-malformed"],
      [{ certificate: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", purpose: "signature" }, undefined, 400, "certificate-malformed"],
      // a well-formed DER SEQUENCE that is no certificate: past the route's shape check, refused by the engine's reader
      [{ certificate: Buffer.from([0x30, 0x0e, 0x02, 0x01, 0x01, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x02, 0x78, 0x78]).toString("base64"), purpose: "signature" }, undefined, 400, "certificate-malformed"],
      [{ certificate: validCert, purpose: "signing" }, undefined, 400, "purpose-invalid"],
      [{ certificate: validCert, purpose: "signature", at: "yesterday" }, undefined, 400, "time-invalid"],
      [{ certificate: validCert, purpose: "signature", legalBasis: "curiosity" }, undefined, 400, "legal-basis-unknown"],
      [{ certificate: validCert, purpose: "signature", chain: ["nope"] }, undefined, 400, "chain-malformed"],
      [{ certificate: validCert, purpose: "signature", extra: 1 }, undefined, 400, "field-unknown"],
      [undefined, { raw: JSON.stringify({ certificate: "A".repeat(70_000), purpose: "signature" }) }, 413, "body-too-large"],
      [undefined, { raw: "certificate=x", contentType: "application/x-www-form-urlencoded" }, 415, "unsupported-media-type"],
    ];
    for (const [body, o, status, code] of cases) {
      const r = await post(body, gov.token, o);
      expect([r.status, r.json().code], r.text).toEqual([status, code]);
      expect(r.text).not.toMatch(/\bat .*\.[jt]s:\d+|stack/i);
    }
  });
});

describe("POST /v1/validate: a legal basis from a private provider", () => {
  // Accepted before: answered, and recorded in the disclosure log under "pension", so `jpki disclosure --resident`
  // showed a bank as having asked under the Basic Resident Registration Act's tables, which are for government bodies.
  it("is refused 400 legal-basis-not-allowed on both paths (bare node:http and fastify), and nothing is recorded for the resident", async () => {
    const before = await disclosures(validResident);
    for (const path of ["/v1/validate", "/v1/validate?via=fastify"]) {
      for (const legalBasis of ["pension", "passport"]) {
        const r = await post({ certificate: validCert, purpose: "signature", legalBasis }, priv.token, { path });
        expect([r.status, r.json().code], `${path} ${r.text}`).toEqual([400, "legal-basis-not-allowed"]);
        expect(r.json().message, path).toMatch(/government bodies/);
        expect(r.text).not.toMatch(/"status"|valid|revoked/);
      }
    }
    // the same request without it is answered, as a private provider's always was
    const ok = await post({ certificate: validCert, purpose: "signature" }, priv.token);
    expect(ok.json()).toEqual({ view: "private", status: "valid", validationTime: expect.any(String) });
    const after = await disclosures(validResident);
    expect(after.length).toBe(before.length + 1);
    expect(after.filter((d) => d.verifier.kind === "private").map((d) => d.legalBasis)).toEqual(after.filter((d) => d.verifier.kind === "private").map(() => null));
    const text = await cli(["--workspace", demo.workspace, "disclosure", "--resident", validResident], { cwd: demo.workspace });
    expect(text.stdout).not.toMatch(/\(private\).*legal basis/);
    // the OpenAPI document lists the code, as every code the route sends
    const doc = (await (await fetch(`${serve.url}/openapi.json`, { headers: { authorization: `Bearer ${priv.token}` } })).json()) as any;
    expect(doc.components.schemas.Error.properties.code.enum).toContain("legal-basis-not-allowed");
    expect(doc.components.schemas.ValidateRequest.properties.legalBasis.description).toContain("legal-basis-not-allowed");
  });
});

describe("the disclosure log: jpki disclosure --resident", () => {
  it("lists every answer for the resident's certificates, with the verifier, purpose, legal basis and answer; nothing of other residents", async () => {
    // A fresh query for the manually revoked certificate's resident, by each kind
    await post({ certificate: revokedCert, purpose: "signature", legalBasis: "passport" }, gov.token);
    await post({ certificate: revokedCert, purpose: "signature" }, priv.token);
    const revokedLog = await disclosures(revokedResident);
    expect(revokedLog.map((d) => [d.verifier.name, d.verifier.kind, d.legalBasis, d.answer, d.itemsDisclosed])).toEqual([
      ["デジタル庁", "government", "passport", "revoked", true],
      ["Example Trust K.K.", "private", null, "revoked", false],
    ]);
    const movedLog = await disclosures(movedResident);
    // every query about the moved certificate above (revoked, legal basis, base64, validation time)
    expect(movedLog.length).toBe(7);
    expect(movedLog.filter((d) => d.itemsDisclosed).map((d) => [d.verifier.kind, d.legalBasis])).toEqual([["government", "pension"]]);
    // a private provider's answers carry no legal basis (one naming it is refused, never recorded)
    expect(movedLog.filter((d) => d.verifier.kind === "private").every((d) => d.legalBasis === null && !d.itemsDisclosed)).toBe(true);
    expect(new Set(movedLog.map((d) => d.certificate.serial))).toEqual(new Set([demo.notice.revokedByMove]));
    const validLog = await disclosures(validResident);
    expect(validLog.length).toBe(6); // with the private provider's answer of the test below and the issuer's test (refused ones are not here)
    expect(validLog.every((d) => !d.itemsDisclosed)).toBe(true);
    // refused requests (401, 400) are not answers: nothing recorded for them
    expect(validLog.map((d) => d.verifier.id).filter((id) => id === gone.id)).toEqual([]);
    // the text form names the verifier and never the items
    const text = await cli(["--workspace", demo.workspace, "disclosure", "--resident", movedResident], { cwd: demo.workspace });
    expect(text.stdout).toContain("デジタル庁");
    expect(text.stdout).toContain("four items disclosed");
    expect(text.stdout).not.toContain(movedCurrentItems.address);
  });

  it("a resident nobody asked about has an empty log; an invalid code is refused", async () => {
    const w = await openWorkspace(demo.workspace);
    let other: string | undefined;
    try {
      const asked = new Set([validResident, movedResident, revokedResident]);
      for (const c of demo.certificates) {
        const code = (await w.store.getCertificate(c.serial))!.residentCode;
        if (!asked.has(code)) other = code;
      }
    } finally {
      await w.close();
    }
    expect(other).toBeDefined();
    expect(await disclosures(other!)).toEqual([]);
    const bad = await cli(["--workspace", demo.workspace, "disclosure", "--resident", "12345"], { cwd: demo.workspace });
    expect(bad.code).toBe(7);
  });
});

describe("GET /openapi.json", () => {
  it("is an OpenAPI 3.1 document naming POST /v1/validate, both views, the errors and bearer auth; registered verifiers only", async () => {
    const res = await fetch(`${serve.url}/openapi.json`, { headers: { authorization: `Bearer ${priv.token}` } });
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths).sort()).toEqual(["/v1/overview", "/v1/status", "/v1/status/history", "/v1/validate", "/v1/verify-signature"]);
    expect(doc.paths["/v1/validate"].post.requestBody.content["application/json"].schema.$ref).toBe("#/components/schemas/ValidateRequest");
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(["GovernmentView", "PrivateView", "Error"]));
    expect(doc.components.schemas.PrivateView.properties.status.enum).toEqual(["valid", "revoked", "unknown"]);
    expect(doc.components.schemas.ValidateRequest.properties.legalBasis.enum).toEqual(["pension", "child-allowance", "passport", "real-estate-registration", "construction-licence", "national-exam"]);
    expect(doc.components.securitySchemes.bearer).toMatchObject({ type: "http", scheme: "bearer" });
    expect((await fetch(`${serve.url}/openapi.json`)).status).toBe(401);
  });
});

describe("CRLs republished while it runs", () => {
  it("a certificate revoked while the server runs is answered revoked once its CRL is republished (the file re-read)", async () => {
    const sig = unrevoked(demo).filter((c) => c.type === "signature");
    const target = sig[sig.length - 1]!;
    expect(target.path).not.toBe(undefined);
    const pem = readFileSync(resolve(demo.workspace, target.path), "utf8");
    expect((await post({ certificate: pem, purpose: "signature" }, gov.token)).json().status).toBe("valid");
    const passphrase = readFileSync(join(demo.workspace, "passphrase.txt"), "utf8").trim();
    const r = await cli(["--workspace", demo.workspace, "revoke", "--serial", target.serial, "--reason", "loss"], { cwd: demo.workspace, env: { JPKI_PASSPHRASE: passphrase } });
    expect(r.code, r.stderr).toBe(0);
    // the schedule in jpki serve republishes within --crl-interval (2 s here); the service looks again within 1 s
    // (100 × 100 ms was the bound: 10 s, for a 2 s schedule and a CLI process beside it on a loaded host)
    let status = "";
    await until(async () => (status = (await post({ certificate: pem, purpose: "signature" }, priv.token)).json().status) === "revoked", "the service to say revoked", { everyMs: 100 }).catch(() => undefined);
    expect(status).toBe("revoked");
    const g = await post({ certificate: pem, purpose: "signature" }, gov.token);
    expect(g.json()).toMatchObject({ status: "revoked", revocation: { reason: "keyCompromise" } });
  });
});
