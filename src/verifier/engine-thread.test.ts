/**
 * The validation engine's own thread (engine-thread.ts) gives exactly the answers validateJpki gives on the
 * calling thread, follows the trust it is sent (a CRL added by a later update is used; the bytes of a file it
 * holds are not sent again), passes the engine's errors on with their codes, and refuses work once closed. The
 * thread runs the compiled module (the global setup builds dist/); PKITS certificates
 * (test/vectors/pkits/README.md): a valid path, a revoked end entity, a broken signature.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { deserialize, serialize } from "node:v8";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PKITS_AT, pkitsCert, pkitsCrl } from "../../test/pkits.js";
import { CrlIndexCache } from "../validation/crl-index-cache.js";
import { validateJpki } from "../validation/jpki.js";
import { ANSWERS_PER_MESSAGE, decodeQuestions, encodeQuestions, EngineThread, engineThreadAvailable, putAnswer, sharedBytes, takeAnswers, type EngineResult, type EngineTrust } from "./engine-thread.js";
import { viewedPart } from "./views.js";

const MODULE = new URL("../../dist/src/verifier/engine-thread-main.js", import.meta.url);
const cert = pkitsCert;
const crl = pkitsCrl;
const AT = PKITS_AT;
const TA = cert("TrustAnchorRootCertificate.crt");
const GOOD_CA = cert("GoodCACert.crt");
const CASES = ["ValidCertificatePathTest1EE.crt", "InvalidRevokedEETest3EE.crt", "InvalidEESignatureTest3EE.crt"].map(cert);
const ROOT_CRL = { key: "root", der: crl("TrustAnchorRootCRL.crl") };
const GOOD_CRL = { key: "good", der: crl("GoodCACRL.crl") };

let thread: EngineThread;
beforeAll(async () => {
  expect(engineThreadAvailable(MODULE)).toBe(true);
  thread = await EngineThread.start(MODULE);
});
afterAll(() => thread.close());

const here = (trust: EngineTrust, certificate: Buffer) =>
  validateJpki({ certificate, purpose: "signature", trustAnchors: trust.anchors, intermediates: [GOOD_CA], crls: trust.crlFiles.map((f) => f.der), crlIndex: new CrlIndexCache(), at: AT });

describe("encodeQuestions / decodeQuestions", () => {
  it("carries each question whole: id, time, purpose, the certificate and its chain, in order", () => {
    const questions = [
      { id: 0xffffffff, certificate: CASES[0]!, chain: [GOOD_CA, TA], purpose: "signature" as const, at: AT.getTime() },
      { id: 7, certificate: CASES[1]!.subarray(0, 3), purpose: "authentication" as const, at: -1.5 },
      { id: 0, certificate: new Uint8Array(0), purpose: "signature" as const, at: 8.64e15 },
    ];
    const bytes = encodeQuestions(questions);
    const back = decodeQuestions(bytes);
    expect(back.map((q) => ({ ...q, certificate: Buffer.from(q.certificate), ...(q.chain ? { chain: q.chain.map((c) => Buffer.from(c)) } : {}) }))).toEqual(
      questions.map((q) => ({ ...q, certificate: Buffer.from(q.certificate) })),
    );
    // one ArrayBuffer of its own, so it can be transferred (a pooled Buffer's would carry node's other small buffers)
    expect(bytes.byteLength).toBe(3 * 14 + 4 * 5 + CASES[0]!.length + GOOD_CA.length + TA.length + 3);
  });
});

describe("putAnswer / takeAnswers", () => {
  it("carry each result as the structured clone of its objects did: every field, in order, nested too", () => {
    const ee = { subject: "C=JP, CN=高木 \ud800", issuer: "C=JP, O=JPKI", serial: "01a2" };
    const ca = { subject: "C=JP, O=JPKI", issuer: "C=JP, O=JPKI root", serial: "02" };
    const revocation = { time: new Date(Date.UTC(2026, 11, 7, 8, 45, 5, 123)), reason: "keyCompromise" as const, invalidityDate: new Date(NaN), source: "crl" as const };
    const results: EngineResult[] = [
      { id: 0, result: { purpose: "signature", chain: [ee], status: "valid" } },
      { id: 1, result: { purpose: "authentication", status: "valid" } },
      { id: 0xffffffff, result: { purpose: "signature", chain: [ee], status: "revoked", reason: "revoked", index: 0, message: "revoked", revocation } },
      { id: 3, result: { purpose: "signature", chain: [ee, ca], status: "untrusted", reason: "no-trust-anchor", index: 1, message: "no anchor" } },
      { id: 4, result: { purpose: "signature", chain: [], status: "profile-violation", reason: "not-jpki-issuer", index: -1, message: undefined as unknown as string } },
      { id: 5, result: { purpose: "signature", status: "expired", reason: "expired", index: 0, message: "expired" } },
    ];
    const list: unknown[] = [];
    for (const r of results) putAnswer(list, r.id, r.result);
    const [sent] = deserialize(serialize([list])) as [unknown[]];
    const back = takeAnswers(sent);
    const cloned = deserialize(serialize(results)) as EngineResult[];
    // the same keys in the same order (a JSON of the views follows the order its objects were built in), present even when undefined
    const keys = (x: unknown): unknown => (x instanceof Date ? ["Date", x.getTime()] : Array.isArray(x) ? x.map(keys) : x && typeof x === "object" ? Object.entries(x).map(([k, v]) => [k, keys(v)]) : x);
    expect(keys(back)).toEqual(keys(cloned));
    expect(back).toEqual(cloned);
    expect(takeAnswers([])).toEqual([]);
  });
});

describe("EngineThread", () => {
  it("answers as validateJpki does on the calling thread: a valid path, a revoked end entity, a broken signature", async () => {
    const trust: EngineTrust = { anchors: [TA], crlFiles: [ROOT_CRL, GOOD_CRL] };
    const answers = await Promise.all(CASES.map((c) => thread.validate(trust, { certificate: c, chain: [GOOD_CA], purpose: "signature", at: AT })));
    expect(answers.map((a) => a.status)).toEqual(CASES.map((c) => here(trust, c).status));
    // PKITS certificates are no JPKI certificates: the valid path ends at a foreign issuer
    expect(answers.map((a) => [a.status, "reason" in a ? a.reason : undefined])).toEqual([["untrusted", "not-jpki-issuer"], ["revoked", "revoked"], ["untrusted", expect.stringMatching(/signature/)]]);
    // what the views read of it, exactly; nothing else crosses back (no four items, policies or issuer facts)
    for (const [i, c] of CASES.entries()) expect(answers[i]).toEqual(viewedPart(here(trust, c)));
    for (const a of answers) expect(Object.keys(a).sort()).toEqual(a.status === "revoked" ? ["chain", "index", "message", "purpose", "reason", "revocation", "status"] : ["chain", "index", "message", "purpose", "reason", "status"]);
    expect(answers[1]).toMatchObject({ revocation: { reason: "keyCompromise", time: new Date("2010-01-01T08:30:01Z") } });
  });

  it("follows the trust it is sent: without the CA's CRL the revocation is not known, with it (a later update) revoked", async () => {
    const revoked = CASES[1]!;
    const q = { certificate: revoked, chain: [GOOD_CA], purpose: "signature" as const, at: AT };
    expect(await thread.validate({ anchors: [TA], crlFiles: [ROOT_CRL] }, q)).toMatchObject({ status: "untrusted", reason: "not-jpki-issuer" });
    // the root CRL's key again: its bytes are not sent twice, the thread keeps the ones it has
    expect((await thread.validate({ anchors: [TA], crlFiles: [ROOT_CRL, GOOD_CRL] }, q)).status).toBe("revoked");
    expect((await thread.validate({ anchors: [TA], crlFiles: [{ key: "root" } as never, GOOD_CRL] }, q)).status).toBe("revoked");
    // another anchor: nothing leads to it
    expect((await thread.validate({ anchors: [GOOD_CA.subarray(0, 0)], crlFiles: [] }, q)).status).toBe("untrusted");
  });

  it("takes CRLs in shared memory (sharedBytes, as the service reads them): the same answers", async () => {
    const shared = sharedBytes(GOOD_CRL.der);
    expect(shared.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(shared.equals(GOOD_CRL.der)).toBe(true);
    const q = { certificate: CASES[1]!, chain: [GOOD_CA], purpose: "signature" as const, at: AT };
    expect((await thread.validate({ anchors: [TA], crlFiles: [{ key: "root-shared", der: sharedBytes(ROOT_CRL.der) }, { key: "good-shared", der: shared }] }, q)).status).toBe("revoked");
  });

  it("answers a message of many questions in messages of ANSWERS_PER_MESSAGE as they are ready, not all at the end", async () => {
    const trust: EngineTrust = { anchors: [TA], crlFiles: [ROOT_CRL, GOOD_CRL] };
    const n = ANSWERS_PER_MESSAGE * 3 + 1;
    // The first goes at once (an idle thread starts at once), the second too (BATCHES_OUT); the rest wait and go as one message.
    const settled: boolean[] = [];
    const asked = Array.from({ length: n }, (_, i) => thread.validate(trust, { certificate: CASES[i % 3]!, chain: [GOOD_CA], purpose: "signature", at: AT }).then((r) => ((settled[i] = true), r)));
    // When the first answer of the big message arrives, its last is still being validated.
    await asked[2];
    expect(settled[n - 1]).toBeUndefined();
    const all = await Promise.all(asked);
    expect(all.map((r) => r.status)).toEqual(Array.from({ length: n }, (_, i) => here(trust, CASES[i % 3]!).status));
  });

  it("passes the engine's errors on with their codes", async () => {
    await expect(thread.validate({ anchors: [TA], crlFiles: [] }, { certificate: Buffer.from("3003020101", "hex"), purpose: "signature", at: AT })).rejects.toMatchObject({ code: "ERR_DER_MALFORMED" });
    await expect(thread.validate({ anchors: [TA], crlFiles: [] }, { certificate: CASES[0]!, purpose: "nonsense" as never, at: AT })).rejects.toMatchObject({ code: "ERR_USAGE" });
    // a chain too long for the message is refused alone; a question sent beside it is answered
    const beside = thread.validate({ anchors: [TA], crlFiles: [ROOT_CRL, GOOD_CRL] }, { certificate: CASES[1]!, chain: [GOOD_CA], purpose: "signature", at: AT });
    await expect(thread.validate({ anchors: [TA], crlFiles: [] }, { certificate: CASES[0]!, chain: Array.from({ length: 255 }, () => GOOD_CA), purpose: "signature", at: AT })).rejects.toMatchObject({ code: "ERR_USAGE" });
    expect((await beside).status).toBe("revoked");
  });

  it("once closed it refuses work with ERR_INTERNAL (the service then validates on its own thread)", async () => {
    const t = await EngineThread.start(MODULE);
    await t.close();
    expect(t.ended).toBeDefined();
    await expect(t.validate({ anchors: [TA], crlFiles: [] }, { certificate: CASES[0]!, purpose: "signature", at: AT })).rejects.toMatchObject({ code: "ERR_INTERNAL" });
  });

  it("tells onEnd once when the thread dies (not when closed), fails what was in flight, and names the error's code, not its message", async () => {
    // A stand-in thread that is ready, then dies of an uncaught error whose message quotes what it was sent.
    const module = join(mkdtempSync(join(tmpdir(), "jpki-engine-dies-")), "dies.mjs");
    writeFileSync(module, `import { parentPort } from "node:worker_threads";
parentPort.on("message", (m) => { if (m.type === "validate") { const e = new TypeError("cannot read 山田 " + Buffer.from(m.questions).toString("hex")); e.code = "ERR_SOMETHING"; throw e; } });
parentPort.postMessage({ ready: true });
`);
    const ends: Error[] = [];
    const t = await EngineThread.start(pathToFileURL(module), (e) => ends.push(e));
    const asked = t.validate({ anchors: [TA], crlFiles: [] }, { certificate: CASES[0]!, purpose: "signature", at: AT });
    await expect(asked).rejects.toMatchObject({ code: "ERR_INTERNAL", message: "the validation engine's thread ended (ERR_SOMETHING)" });

    const closed: Error[] = [];
    const c = await EngineThread.start(MODULE, (e) => closed.push(e));
    await c.close();
    expect(c.ended).toBeDefined();
    expect(closed).toEqual([]);

    // By now (a whole thread started and stopped since) the dead one's 'exit' has followed its 'error': told once.
    expect(ends).toHaveLength(1);
    expect(ends[0]!.message).not.toContain("山田");
    expect(t.ended).toBe(ends[0]);
  });
});
