/**
 * The main side of the check trailing the writer (crl/verify-trailing.ts) when its thread does not give a verdict:
 * a thread that cannot be made (ERR_WORKER_INIT_FAILED, thrown by the Worker constructor at a thread limit) or one
 * that fails on its own account (a plain error: a file it could not open) leaves the check to the publishing
 * thread — the CRL is still checked and its digest given — while the thread's verdict (ERR_CRL_UNVERIFIED) stands.
 * The Worker is a stand-in here: the thread itself runs from dist/ (test/integration/crl-trailing-check.test.ts).
 */
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it, vi } from "vitest";

const thread = vi.hoisted(() => ({ made: 0, behave: "throw" as "throw" | "plain-error" | "verdict" }));
vi.mock("node:worker_threads", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:worker_threads")>();
  const { EventEmitter } = await import("node:events"); // the factory runs before this file's imports
  class StandIn extends EventEmitter {
    constructor() {
      super();
      thread.made++;
      if (thread.behave === "throw") throw Object.assign(new Error("Worker initialization failure: EAGAIN"), { code: "ERR_WORKER_INIT_FAILED" });
      const answer = thread.behave === "verdict" ? { error: { code: "ERR_CRL_UNVERIFIED", message: "the CRL staged as x failed its check before publication (issuer)" } } : { error: { message: "EMFILE: too many open files, open 'x'" } };
      setImmediate(() => (this.emit("message", answer), this.emit("exit", 0)));
    }
    terminate() {
      return Promise.resolve(0);
    }
  }
  return { ...real, Worker: StandIn };
});

const { createCaRecord, CertificationAuthority } = await import("../ca/authority.js");
const { certificateParts } = await import("../pki/der.js");
const { signatureShape } = await import("../pki/signer.js");
const { parseConfig } = await import("../workspace/config.js");
const { buildCrl, crlDer, crlExtensionsElement } = await import("./builder.js");
const { beginTrailingCrlCheck } = await import("./verify-trailing.js");
type ExpectedCrl = import("./verify.js").ExpectedCrl;

let dir: string;
let der: Buffer;
let exp: ExpectedCrl;

beforeAll(async () => {
  const rec = await createCaRecord({ prefectureCode: "13", purpose: "signature", passphrase: "pw", config: parseConfig({}), now: new Date("2026-01-01T00:00:00Z") });
  const ca = CertificationAuthority.open(rec, "pw", parseConfig({}));
  dir = mkdtempSync(join(tmpdir(), "jpki-verify-trailing-"));
  const entries = Array.from({ length: 500 }, (_, i) => ({ serial: (0x5000000 + i * 7).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)), reason: 1 }));
  der = crlDer(await buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.keyId, number: 42n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), entries: [entries], signer: ca.signer }));
  const spki = Buffer.from(certificateParts(rec.certificateDer).spki);
  exp = { issuerName: ca.subjectName, issuerKey: spki, algorithmIdentifier: signatureShape(spki).algorithmIdentifier, crlExtensions: crlExtensionsElement({ authorityKeyId: ca.keyId, number: 42n }), entries: 500, byteLength: der.length };
});

/** A publication's use of the check: begun on the empty staged file, told of each write, finished after the last. */
async function publishThrough(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(0));
  const check = beginTrailingCrlCheck(path, exp);
  writeFileSync(path, bytes);
  check.wrote(bytes.length);
  return check.finish();
}

describe("the trailing check without its thread's verdict", () => {
  it("checks on the publishing thread when the thread cannot be made (ERR_WORKER_INIT_FAILED), with the file's digest", async () => {
    thread.behave = "throw";
    const made = thread.made;
    await expect(publishThrough("no-thread.crl", der)).resolves.toBe(createHash("sha256").update(der).digest("hex"));
    expect(thread.made).toBe(made + 1);
    const bad = Buffer.from(der);
    bad[bad.length - 1]! ^= 1;
    await expect(publishThrough("no-thread-bad.crl", bad)).rejects.toMatchObject({ code: "ERR_CRL_UNVERIFIED" });
  });

  it("checks on the publishing thread when the thread failed on its own account (a plain error, no code of ours)", async () => {
    thread.behave = "plain-error";
    await expect(publishThrough("plain-error.crl", der)).resolves.toBe(createHash("sha256").update(der).digest("hex"));
  });

  it("raises the thread's refusal at the next write once it is known, not after the last byte", async () => {
    thread.behave = "verdict";
    const path = join(dir, "refused-early.crl");
    writeFileSync(path, der.subarray(0, 100));
    const check = beginTrailingCrlCheck(path, exp);
    check.wrote(100);
    await new Promise((r) => setImmediate(r)); // the thread's answer arrives
    await new Promise((r) => setImmediate(r));
    expect(() => check.wrote(200)).toThrow(expect.objectContaining({ code: "ERR_CRL_UNVERIFIED" }));
    check.close();
  });

  it("keeps the thread's verdict", async () => {
    thread.behave = "verdict";
    await expect(publishThrough("verdict.crl", der)).rejects.toMatchObject({ code: "ERR_CRL_UNVERIFIED", message: expect.stringContaining("(issuer)") });
  });
});
