/**
 * The staged-CRL check (crl/verify.ts): a CRL as built passes; any byte changed on disk, a truncated file,
 * another issuer's key or another CRL number is refused with ERR_CRL_UNVERIFIED, so it is never published.
 */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash, generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createCaRecord, CertificationAuthority } from "../ca/authority.js";
import { certificateParts } from "../pki/der.js";
import { signatureShape } from "../pki/signer.js";
import { parseConfig } from "../workspace/config.js";
import { buildCrl, crlDer, crlExtensionsElement } from "./builder.js";
import { beginStagedCrlCheck, verifyStagedCrl, type ExpectedCrl } from "./verify.js";

let ca: CertificationAuthority;
let dir: string;
let der: Buffer;
let exp: ExpectedCrl;

beforeAll(async () => {
  const rec = await createCaRecord({ prefectureCode: "13", purpose: "signature", passphrase: "pw", config: parseConfig({}), now: new Date("2026-01-01T00:00:00Z") });
  ca = CertificationAuthority.open(rec, "pw", parseConfig({}));
  dir = mkdtempSync(join(tmpdir(), "jpki-verify-"));
  const entries = Array.from({ length: 3000 }, (_, i) => ({ serial: (0x5000000 + i * 7).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)), reason: i % 3 ? 1 : 0 }));
  const built = await buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.keyId, number: 42n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), entries: [entries], signer: ca.signer });
  der = crlDer(built);
  const spki = Buffer.from(certificateParts(rec.certificateDer).spki);
  exp = { issuerName: ca.subjectName, issuerKey: spki, algorithmIdentifier: signatureShape(spki).algorithmIdentifier, crlExtensions: crlExtensionsElement({ authorityKeyId: ca.keyId, number: 42n }), entries: 3000, byteLength: der.length };
});

const write = (name: string, bytes: Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
};

describe("verifyStagedCrl", () => {
  it("passes the CRL as built, and gives the SHA-256 of the file as read back (the publisher records it)", () => {
    expect(verifyStagedCrl(write("ok.crl", der), exp)).toBe(createHash("sha256").update(der).digest("hex"));
  });

  it("reads a small CRL through a window of its size, not 4 MiB (each such Buffer is external memory V8 collects for)", () => {
    const p = write("small.crl", der);
    const checks = [];
    const before = process.memoryUsage().arrayBuffers;
    // Ten checks held open at once, as a run publishing partitions of several CAs has: 40 MiB with the old window.
    for (let i = 0; i < 10; i++) checks.push(beginStagedCrlCheck(p, exp));
    const grown = process.memoryUsage().arrayBuffers - before;
    for (const c of checks) c.finish();
    expect(der.length).toBeLessThan(200_000);
    expect(grown).toBeLessThan(10 * (der.length + 65_536));
  });

  it("reads a large CRL through a window of at most 1 MiB, and still passes it and refuses a byte changed in its last windows", async () => {
    // 90,000 entries (≈ 3.2 MB): the window is refilled a few times. Why at most 1 MiB: a fresh window is fresh memory,
    // a page fault each 4 KB (≈ 13 µs on these virtual machines); the 4 MiB one cost a 1M-entry CRL's check ≈ 1,000
    // faults and ≈ 20 ms more than 1 MiB (crl generate on the bench workspace, faults counted in the check).
    const entries = Array.from({ length: 90_000 }, (_, i) => ({ serial: (0x7000000 + i * 3).toString(16), revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)), reason: 1 }));
    const big = crlDer(await buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.keyId, number: 42n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), entries: [entries], signer: ca.signer }));
    expect(big.length).toBeGreaterThan(3 << 20);
    const bigExp = { ...exp, entries: 90_000, byteLength: big.length };
    const p = write("big.crl", big);
    const before = process.memoryUsage().arrayBuffers;
    const check = beginStagedCrlCheck(p, bigExp);
    const grown = process.memoryUsage().arrayBuffers - before;
    expect(check.finish()).toBe(createHash("sha256").update(big).digest("hex"));
    expect(grown).toBeLessThan((1 << 20) + 65_536);
    const bad = Buffer.from(big);
    bad[Math.floor(big.length * 0.8)]! ^= 0x01;
    expect(() => verifyStagedCrl(write("big-bad.crl", bad), bigExp)).toThrow(expect.objectContaining({ code: "ERR_CRL_UNVERIFIED" }));
  });

  it("refuses a CRL with any one byte changed: in an entry, in the extensions, in the signature", () => {
    for (const at of [200, Math.floor(der.length / 2), der.length - 300, der.length - 1]) {
      const bad = Buffer.from(der);
      bad[at]! ^= 0x01;
      expect(() => verifyStagedCrl(write(`bad-${at}.crl`, bad), exp), `byte ${at}`).toThrow(expect.objectContaining({ code: "ERR_CRL_UNVERIFIED" }));
    }
  });

  it("refuses a truncated file, another issuer key, another number or entry count", () => {
    const p = write("trunc.crl", der.subarray(0, der.length - 10));
    expect(() => verifyStagedCrl(p, exp)).toThrow(expect.objectContaining({ code: "ERR_CRL_UNVERIFIED" }));
    const ok = write("ok2.crl", der);
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    expect(() => verifyStagedCrl(ok, { ...exp, issuerKey: other })).toThrow(/does not verify/);
    expect(() => verifyStagedCrl(ok, { ...exp, crlExtensions: crlExtensionsElement({ authorityKeyId: ca.keyId, number: 43n }) })).toThrow(/crlExtensions/);
    expect(() => verifyStagedCrl(ok, { ...exp, entries: 2999 })).toThrow(/entries/);
    expect(readFileSync(ok).equals(der)).toBe(true);
  });
});
