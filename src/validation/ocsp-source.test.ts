/**
 * RFC 6960 §3.2 on hand-made responses (real RSA-2048 keys; signed with the responder's own response writer,
 * src/ocsp/response.ts): who may sign (the issuer itself; a delegated responder it certified with
 * id-kp-OCSPSigning, valid at the validation time — not one without the EKU, issued by someone else, or
 * expired), the CertID, the nonce, malformed bytes and refusals. And the engine's side: an answer counts only for
 * the certificate whose CertID it names, under the issuer key the path validated.
 */
import { generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { parseOcspRequest } from "../ocsp/request.js";
import { errorResponse, signedResponse, type CertStatus } from "../ocsp/response.js";
import { extension, oid, printable, seq, set } from "../pki/der.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, extKeyUsage, keyUsage } from "../profile/extensions.js";
import { EXT_OID, KP_OID } from "../profile/oids.js";
import { parseCertificate, type Certificate } from "./certificate.js";
import { OcspClient, buildOcspRequest, checkOcspResponse, ocspCertId, type OcspCertId } from "./ocsp-source.js";
import { validatePath } from "./validate.js";

const AT = new Date("2030-04-01T00:00:00Z");
const H = 3600_000;

function rsa(): KeyObject {
  return generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
}

const dn = (cn: string) => seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable(cn))));

let serialCounter = 1;
function issue(p: { subject: Buffer; key: KeyObject; issuer: Buffer; issuerKey: KeyObject; extensions: Buffer[]; notBefore?: Date; notAfter?: Date }): { der: Buffer; cert: Certificate; signer: SoftwareSigner } {
  const signer = new SoftwareSigner(p.key);
  const issuerSigner = new SoftwareSigner(p.issuerKey);
  const tbs = encodeTbs({
    serial: Buffer.from([0x10, serialCounter++]),
    signatureAlgorithm: issuerSigner.algorithmIdentifier,
    issuer: p.issuer,
    notBefore: p.notBefore ?? new Date(AT.getTime() - 24 * H),
    notAfter: p.notAfter ?? new Date(AT.getTime() + 24 * H),
    subject: p.subject,
    spki: signer.spki,
    extensions: p.extensions,
  });
  const der = assembleCertificate(tbs, issuerSigner.algorithmIdentifier, sign("sha256", tbs, p.issuerKey));
  return { der, cert: parseCertificate(der), signer };
}

const caKey = rsa();
const ca = issue({ subject: dn("Test CA"), key: caKey, issuer: dn("Test CA"), issuerKey: caKey, extensions: [extension(EXT_OID.basicConstraints, true, basicConstraints(true)), extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"]))] });
const otherKey = rsa();
const ee = issue({ subject: dn("End Entity"), key: rsa(), issuer: dn("Test CA"), issuerKey: caKey, extensions: [extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"]))] });
const responderExts = [extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"])), extension(EXT_OID.extKeyUsage, false, extKeyUsage([KP_OID.ocspSigning]))];
const delegated = issue({ subject: dn("Test CA OCSP"), key: rsa(), issuer: dn("Test CA"), issuerKey: caKey, extensions: responderExts });
const noEku = issue({ subject: dn("Test CA OCSP no EKU"), key: rsa(), issuer: dn("Test CA"), issuerKey: caKey, extensions: [extension(EXT_OID.keyUsage, true, keyUsage(["digitalSignature"]))] });
const foreign = issue({ subject: dn("Test CA OCSP foreign"), key: rsa(), issuer: dn("Test CA"), issuerKey: otherKey, extensions: responderExts });
const expired = issue({ subject: dn("Test CA OCSP old"), key: rsa(), issuer: dn("Test CA"), issuerKey: caKey, extensions: responderExts, notBefore: new Date(AT.getTime() - 48 * H), notAfter: new Date(AT.getTime() - H) });

const certId: OcspCertId = ocspCertId(ee.cert, ca.cert);
const NONCE = Buffer.alloc(32, 7);

async function respond(p: { by?: { der: Buffer; signer: SoftwareSigner }; status?: CertStatus; nonce?: Buffer | null; id?: OcspCertId; thisUpdate?: Date; nextUpdate?: Date; producedAt?: Date }): Promise<Buffer> {
  const by = p.by ?? delegated;
  // the responder echoes the request's CertID and nonce: build the request and take them from it
  const req = buildOcspRequest({ certId: p.id ?? certId, nonce: p.nonce === null ? undefined : (p.nonce ?? NONCE) });
  const parsed = parseOcspRequest(req);
  return signedResponse({
    responder: { certificateDer: by.der, signer: by.signer },
    producedAt: p.producedAt ?? AT,
    answers: [{ certIdDer: parsed.certIds[0]!.der, status: p.status ?? { kind: "good" }, thisUpdate: p.thisUpdate ?? AT, nextUpdate: p.nextUpdate ?? new Date(AT.getTime() + H) }],
    nonce: parsed.nonce,
  });
}

/** `nonce`: the one the request sent (null: none was sent) */
const check = (response: Buffer, at = AT, nonce: Buffer | null = NONCE) => checkOcspResponse({ response, issuer: ca.cert, certId, nonce: nonce ?? undefined, at, skewMs: 5 * 60_000, url: "http://ocsp.test/" });

describe("checkOcspResponse: who may sign (RFC 6960 §4.2.2.2)", () => {
  it("the issuer itself, or its delegated responder with id-kp-OCSPSigning", async () => {
    expect(check(await respond({ by: ca }))).toMatchObject({ status: "good", signedBy: "issuer" });
    expect(check(await respond({}))).toMatchObject({ status: "good", signedBy: "delegated-responder", thisUpdate: AT });
  });

  it("not a responder certificate without id-kp-OCSPSigning, nor one another key issued, nor an expired one", async () => {
    expect(check(await respond({ by: noEku }))).toMatchObject({ status: "no-answer", problem: "responder-not-authorised", detail: expect.stringMatching(/OCSPSigning/) });
    expect(check(await respond({ by: foreign }))).toMatchObject({ status: "no-answer", problem: "responder-not-authorised", detail: expect.stringMatching(/not issued/) });
    expect(check(await respond({ by: expired }))).toMatchObject({ status: "no-answer", problem: "responder-not-authorised", detail: expect.stringMatching(/not valid/) });
  });
});

describe("checkOcspResponse: the answer itself", () => {
  it("revoked carries its time and reason; unknown is unknown", async () => {
    const revokedAt = new Date("2030-03-01T00:00:00Z");
    expect(check(await respond({ status: { kind: "revoked", revokedAt, reason: 1 } }))).toMatchObject({ status: "revoked", revocation: { time: revokedAt, reason: "keyCompromise" } });
    expect(check(await respond({ status: { kind: "revoked", revokedAt, reason: 0 } }))).toMatchObject({ status: "revoked", revocation: { reason: "unspecified" } });
    expect(check(await respond({ status: { kind: "unknown" } }))).toMatchObject({ status: "unknown" });
  });

  it("an answer about another certificate: cert-id-mismatch", async () => {
    expect(check(await respond({ id: { ...certId, serial: "7f" } }))).toMatchObject({ status: "no-answer", problem: "cert-id-mismatch" });
  });

  it("the nonce: missing or different is nonce-mismatch; not asked for, not required", async () => {
    expect(check(await respond({ nonce: null }))).toMatchObject({ status: "no-answer", problem: "nonce-mismatch" });
    expect(check(await respond({ nonce: Buffer.alloc(32, 8) }))).toMatchObject({ status: "no-answer", problem: "nonce-mismatch" });
    expect(check(await respond({ nonce: null }), AT, null)).toMatchObject({ status: "good" });
  });

  it("times: thisUpdate beyond the skew after the validation time, nextUpdate before it", async () => {
    const r = await respond({});
    expect(check(r, new Date(AT.getTime() + 2 * H))).toMatchObject({ status: "no-answer", problem: "stale" });
    expect(check(r, new Date(AT.getTime() - 10 * 60_000))).toMatchObject({ status: "no-answer", problem: "not-yet-valid" });
    expect(check(r, new Date(AT.getTime() - 60_000))).toMatchObject({ status: "good" }); // within the skew
  });

  it("times: each refusal names the field, its value and how far it lies beyond the validation time", async () => {
    const at = new Date(AT.getTime() - 2 * H);
    expect(check(await respond({}), at)).toMatchObject({
      problem: "not-yet-valid",
      detail: expect.stringMatching(/thisUpdate 2030-04-01T00:00:00.000Z is 2 h after the validation time .*5 min of clock skew/),
      time: { field: "thisUpdate", value: AT, at, offsetMs: 2 * H, skewMs: 5 * 60_000 },
    });
    const later = new Date(AT.getTime() + 3 * H);
    expect(check(await respond({}), later)).toMatchObject({ problem: "stale", detail: expect.stringContaining("nextUpdate 2030-04-01T01:00:00.000Z is 2 h before the validation time"), time: { field: "nextUpdate", offsetMs: 2 * H } });
  });

  it("producedAt after the validation time beyond the skew: produced-in-future, though thisUpdate and nextUpdate hold", async () => {
    const r = await respond({ producedAt: new Date(AT.getTime() + H + 30 * 60_000) });
    expect(check(r)).toMatchObject({
      status: "no-answer",
      problem: "produced-in-future",
      detail: expect.stringContaining("producedAt 2030-04-01T01:30:00.000Z is 1 h 30 min after the validation time"),
      time: { field: "producedAt", offsetMs: H + 30 * 60_000 },
    });
    expect(check(await respond({ producedAt: new Date(AT.getTime() + 4 * 60_000) }))).toMatchObject({ status: "good" }); // within the skew
  });

  it("refusals and bytes that are no response: typed no-answers, never exceptions", async () => {
    expect(check(errorResponse("unauthorized"))).toMatchObject({ status: "no-answer", problem: "response-status", detail: expect.stringMatching(/unauthorized/) });
    expect(check(errorResponse("tryLater"))).toMatchObject({ status: "no-answer", problem: "response-status", detail: expect.stringMatching(/tryLater/) });
    for (const bad of [Buffer.alloc(0), Buffer.from("<html>no</html>"), (await respond({})).subarray(0, 200)]) {
      expect(check(bad)).toMatchObject({ status: "no-answer", problem: "malformed-response" });
    }
  });
});

describe("validatePath over OCSP answers", () => {
  const at = AT;
  const run = async (sources: Array<"crl" | "ocsp">, response: Buffer, issuerForCheck: Certificate = ca.cert, mode: "hard-fail" | "soft-fail" = "hard-fail") => {
    const answer = checkOcspResponse({ response, issuer: issuerForCheck, certId: ocspCertId(ee.cert, issuerForCheck), nonce: NONCE, at, skewMs: 300_000, url: "http://ocsp.test/" });
    return validatePath({ trustAnchors: [ca.der], chain: [ee.der], at, revocation: mode, revocationSources: sources, ocspResponses: [answer] });
  };

  it("good from OCSP: valid, the check names OCSP; revoked: revoked with OCSP as the source", async () => {
    expect(await run(["ocsp"], await respond({}))).toMatchObject({ status: "valid", revocationChecks: [{ index: 0, source: "ocsp", status: "good", url: "http://ocsp.test/" }] });
    const revokedAt = new Date("2030-03-01T00:00:00Z");
    expect(await run(["ocsp"], await respond({ status: { kind: "revoked", revokedAt, reason: 3 } }))).toMatchObject({
      status: "revoked",
      revocation: { time: revokedAt, reason: "affiliationChanged", source: "ocsp" },
    });
  });

  it("CRL only (the default) ignores OCSP answers; OCSP then CRL with neither answering: hard-fail, soft-fail warns", async () => {
    expect(await run(["crl"], await respond({}))).toMatchObject({ status: "revocation-unknown" });
    expect(validatePath({ trustAnchors: [ca.der], chain: [ee.der], at })).toMatchObject({ status: "revocation-unknown" });
    const soft = await run(["ocsp", "crl"], await respond({ status: { kind: "unknown" } }), ca.cert, "soft-fail");
    expect(soft).toMatchObject({ status: "valid", revocationChecks: [{ source: "none", status: "unknown", detail: expect.stringMatching(/OCSP.*unknown.*; no usable CRL/) }] });
  });

  it("an answer checked against another issuer key does not count for this path", async () => {
    // signed by the other key and "checked" against a certificate holding it: its CertID names that key
    const other = issue({ subject: dn("Test CA"), key: otherKey, issuer: dn("Test CA"), issuerKey: otherKey, extensions: [] });
    const byOther = await respond({ by: other, id: ocspCertId(ee.cert, other.cert) });
    expect(await run(["ocsp"], byOther, other.cert)).toMatchObject({ status: "revocation-unknown" });
  });

  it("an answer stale at the validation time is not used even when handed in", async () => {
    const answer = check(await respond({}));
    const later = new Date(AT.getTime() + 2 * H);
    expect(validatePath({ trustAnchors: [ca.der], chain: [ee.der], at: later, revocationSources: ["ocsp"], ocspResponses: [answer] })).toMatchObject({
      status: "revocation-unknown",
      message: expect.stringMatching(/not current/),
    });
  });

  it("revocationSources must name crl and/or ocsp, each once", () => {
    for (const bad of [[], ["ldap"], ["crl", "crl"]]) {
      expect(() => validatePath({ trustAnchors: [ca.der], chain: [ee.der], at, revocationSources: bad as never })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    }
  });
});

describe("OcspClient reading an answer", () => {
  it("stops reading a body past the size bound instead of taking it all into memory first", async () => {
    let pulled = 0;
    const chunk = new Uint8Array(16 * 1024);
    // 64 MiB offered lazily, chunk by chunk: how much of it the client pulls is what it would have held
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (pulled >= 64 * 1024 * 1024) return c.close();
        pulled += chunk.length;
        c.enqueue(chunk);
      },
    });
    const client = new OcspClient({ url: "http://ocsp.test/", fetch: async () => new Response(body, { status: 200 }) });
    const r = await client.check({ certificate: ee.der, issuer: ca.der }, AT);
    expect(r).toMatchObject({ status: "no-answer", problem: "malformed-response" });
    expect(pulled).toBeLessThan(1024 * 1024);
  });

  // On the old code (the timeout only a signal handed to the fetch) these hung: vitest's timeout ends that. Neither
  // has a bound on the time taken (a loaded host's turn of the loop can pass one): the fetch and the body never
  // settle, so an answer at all, saying the timeout, is the client's own timer's doing.
  it("holds an injected fetch that never answers, nor heeds its signal, to timeoutMs", async () => {
    let signal: AbortSignal | undefined;
    const client = new OcspClient({ url: "http://ocsp.test/", timeoutMs: 200, fetch: (_u, init) => ((signal = init?.signal ?? undefined), new Promise<Response>(() => undefined)) });
    const r = await client.check({ certificate: ee.der, issuer: ca.der }, AT);
    expect(r).toMatchObject({ status: "no-answer", problem: "timeout", detail: expect.stringContaining("no answer within 200 ms") });
    expect(signal?.aborted).toBe(true); // and a fetch that heeds it was told
  });

  it("holds an injected fetch whose answer's body never ends to timeoutMs, and lets the body go", async () => {
    let cancelled = false;
    const body = new ReadableStream<Uint8Array>({ pull: () => new Promise<void>(() => undefined), cancel: () => void (cancelled = true) });
    const client = new OcspClient({ url: "http://ocsp.test/", timeoutMs: 200, fetch: async () => new Response(body, { status: 200 }) });
    const r = await client.check({ certificate: ee.der, issuer: ca.der }, AT);
    expect(r).toMatchObject({ status: "no-answer", problem: "timeout", detail: expect.stringContaining("did not come in full within 200 ms") });
    expect(cancelled).toBe(true);
  });

  it("does not follow a redirect: the bearer token goes to the configured responder only", async () => {
    const { createServer } = await import("node:http");
    const seen: Array<{ url: string | undefined; auth: string | undefined }> = [];
    const other = createServer((req, res) => (seen.push({ url: req.url, auth: req.headers.authorization }), res.end()));
    const responder = createServer((req, res) => {
      req.resume();
      req.on("end", () => res.writeHead(req.url === "/see-other" ? 303 : 307, { location: `http://127.0.0.1:${(other.address() as { port: number }).port}/elsewhere` }).end());
    });
    await Promise.all([other, responder].map((s) => new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()))));
    try {
      const client = new OcspClient({ url: `http://127.0.0.1:${(responder.address() as { port: number }).port}/ocsp/13-sig`, bearerToken: "jpkiv_secret" });
      const r = await client.check({ certificate: ee.der, issuer: ca.der }, AT);
      expect(r).toMatchObject({ status: "no-answer", problem: "http-status" });
      expect((r as { detail: string }).detail).toContain("307");
      expect(seen).toEqual([]);
      // a fetch of the caller's that follows anyway (a 303, which it turns into a GET): its answer is not taken, and
      // the message says why
      const following = (async (input: string | URL | Request, init?: RequestInit) => globalThis.fetch(input, { ...init, redirect: "follow" })) as typeof globalThis.fetch;
      const c2 = new OcspClient({ url: `http://127.0.0.1:${(responder.address() as { port: number }).port}/see-other`, bearerToken: "jpkiv_secret", fetch: following });
      expect(await c2.check({ certificate: ee.der, issuer: ca.der }, AT)).toMatchObject({ status: "no-answer", problem: "http-status", detail: expect.stringContaining('redirect: "manual"') });
    } finally {
      for (const s of [other, responder]) s.close();
    }
  });
});
