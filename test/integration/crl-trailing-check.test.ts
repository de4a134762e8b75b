/**
 * The staged CRL check on a thread trailing the writer (crl/verify-trailing.ts): it passes a CRL written piece by
 * piece and gives the digest of the file as read back, refuses a byte changed on disk, ends when the publication
 * is abandoned, and a publication through it installs the same kind of CRL openssl verifies. The thread runs the
 * compiled module, so this suite imports the library from dist/ (built by test/global-setup.ts).
 */
import { createHash } from "node:crypto";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { sh, tempDir } from "./helpers.js";

type Trailing = typeof import("../../src/crl/verify-trailing.js");
type Builder = typeof import("../../src/crl/builder.js");
type Authority = typeof import("../../src/ca/authority.js");
type Config = typeof import("../../src/workspace/config.js");
type Der = typeof import("../../src/pki/der.js");
type SignerMod = typeof import("../../src/pki/signer.js");
type WsClass = typeof import("../../src/workspace/workspace.js").Workspace;
type Manage = typeof import("../../src/ca/manage.js");
type Prefectures = typeof import("../../src/ca/prefectures.js");
type Publisher = typeof import("../../src/crl/publisher.js");
type Generate = typeof import("../../src/crl/generate.js");
type ExpectedCrl = import("../../src/crl/verify.js").ExpectedCrl;

const DIST = join(import.meta.dirname, "../../dist/src");
const load = <T>(m: string): Promise<T> => import(pathToFileURL(join(DIST, m)).href) as Promise<T>;

let trailing: Trailing;
let dir: string;
let der: Buffer;
let exp: ExpectedCrl;

beforeAll(async () => {
  trailing = await load<Trailing>("crl/verify-trailing.js");
  const { buildCrl, crlDer, crlExtensionsElement } = await load<Builder>("crl/builder.js");
  const { createCaRecord, CertificationAuthority } = await load<Authority>("ca/authority.js");
  const { parseConfig } = await load<Config>("workspace/config.js");
  const { certificateParts } = await load<Der>("pki/der.js");
  const { signatureShape } = await load<SignerMod>("pki/signer.js");
  const rec = await createCaRecord({ prefectureCode: "13", purpose: "signature", passphrase: "pw", config: parseConfig({}), now: new Date("2026-01-01T00:00:00Z") });
  const ca = CertificationAuthority.open(rec, "pw", parseConfig({}));
  dir = tempDir("jpki-trailing-");
  const entries = Array.from({ length: 20_000 }, (_, i) => ({ serial: (0x5000000 + i * 7).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)), reason: i % 3 ? 1 : 0 }));
  der = crlDer(await buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.keyId, number: 42n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), entries: [entries], signer: ca.signer }));
  const spki = Buffer.from(certificateParts(rec.certificateDer).spki);
  exp = { issuerName: ca.subjectName, issuerKey: spki, algorithmIdentifier: signatureShape(spki).algorithmIdentifier, crlExtensions: crlExtensionsElement({ authorityKeyId: ca.keyId, number: 42n }), entries: 20_000, byteLength: der.length };
});

/** Writes `bytes` to a new staged file in pieces, telling the check after each and yielding to the event loop. */
async function writeTrailed(name: string, bytes: Buffer, piece = 64 * 1024, stopAt = Infinity) {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(0));
  const check = trailing.beginTrailingCrlCheck(path, exp);
  for (let at = 0; at < Math.min(bytes.length, stopAt); at += piece) {
    appendFileSync(path, bytes.subarray(at, at + piece));
    check.wrote(Math.min(bytes.length, at + piece));
    await new Promise((r) => setTimeout(r, 1));
  }
  return check;
}

describe("the staged CRL check on a thread trailing the writer", () => {
  it("runs where the compiled module exists, for CRLs of the size asked", () => {
    expect(trailing.trailingCheckFits(der.length, 0)).toBe(true);
    expect(trailing.trailingCheckFits(der.length)).toBe(false); // under the default size: checked on the publishing thread
  });

  it("passes a CRL written piece by piece, with the digest of the file as read back", async () => {
    const check = await writeTrailed("ok.crl", der);
    await expect(check.finish()).resolves.toBe(createHash("sha256").update(der).digest("hex"));
  });

  it("refuses a byte changed on disk (an entry, the signature)", async () => {
    for (const at of [Math.floor(der.length / 2), der.length - 1]) {
      const bad = Buffer.from(der);
      bad[at]! ^= 0x01;
      const check = await writeTrailed(`bad-${at}.crl`, bad);
      await expect(check.finish(), `byte ${at}`).rejects.toMatchObject({ code: "ERR_CRL_UNVERIFIED" });
    }
  });

  it("raises its refusal at the writer's next write once it has one, not after the last byte", async () => {
    const bad = Buffer.from(der);
    bad[100]! ^= 0x01; // in the issuer's Name
    const path = join(dir, "refused-early.crl");
    writeFileSync(path, bad.subarray(0, 4096));
    const check = trailing.beginTrailingCrlCheck(path, exp);
    // Only the first 4 KiB are ever written: the refusal can come only from what the thread read of them.
    let refused: unknown;
    for (let i = 0; i < 500 && !refused; i++) {
      try {
        check.wrote(4096);
      } catch (e) {
        refused = e;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    check.close();
    expect(refused).toMatchObject({ code: "ERR_CRL_UNVERIFIED", message: expect.stringContaining("issuer") });
  });

  it("is abandoned with the publication (closed part-way, it answers no more)", async () => {
    const check = await writeTrailed("abandoned.crl", der, 64 * 1024, der.length / 2);
    check.close();
    await expect(check.finish()).rejects.toMatchObject({ code: "ERR_INTERNAL" });
  });
});

describe("a CRL published through the trailing check", () => {
  it("is installed, recorded with the digest of its file, and verifies with openssl against the CA", async () => {
    const { Workspace } = await load<{ Workspace: WsClass }>("workspace/workspace.js");
    const { initCas } = await load<Manage>("ca/manage.js");
    const { prefectureList } = await load<Prefectures>("ca/prefectures.js");
    const { CrlPublisher } = await load<Publisher>("crl/publisher.js");
    const { openCrlIssuer } = await load<Generate>("crl/generate.js");
    const ws = Workspace.create(join(dir, "ws"));
    try {
      await initCas(ws, { prefectures: prefectureList("13"), purposes: ["signature"], passphrase: "pw" });
      const notAfter = new Date(Date.now() + 365 * 86_400_000);
      await ws.store.carryRevocations(Array.from({ length: 30_000 }, (_, i) => ({ caId: "13-sig", serial: (0x7000000 + i).toString(16), revokedAt: new Date(Date.now() - 86_400_000), reason: i % 2, notAfter })));
      const publisher = new CrlPublisher({ store: ws.store, config: ws.config, clock: ws.clock, crlDir: ws.paths.crlDir, workspaceRoot: ws.paths.root, trailingCheckMinBytes: 0 });
      const rec = (await ws.store.getCa("13-sig"))!;
      const crl = await publisher.publish(openCrlIssuer(rec, "pw", []));
      const file = readFileSync(crl.derPath);
      expect(crl.entries).toBe(30_000);
      expect(crl.sha256).toBe(createHash("sha256").update(file).digest("hex"));
      expect(await ws.store.latestCrl("13-sig")).toMatchObject({ state: "published", number: crl.number, sha256: crl.sha256, entries: 30_000 });
      const caPem = join(dir, "ca.pem");
      writeFileSync(caPem, `-----BEGIN CERTIFICATE-----\n${rec.certificateDer.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`);
      const out = sh("openssl", ["crl", "-inform", "DER", "-in", crl.derPath, "-CAfile", caPem, "-noout"]);
      expect(out.out).toMatch(/verify OK/);
    } finally {
      await ws.close();
    }
  });
});
