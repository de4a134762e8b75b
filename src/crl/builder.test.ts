import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it, beforeAll } from "vitest";
import { createCaRecord, CertificationAuthority } from "../ca/authority.js";
import { pemChunks, toPem } from "../pki/pem.js";
import { SoftwareSigner, type Signer } from "../pki/signer.js";
import { parseConfig } from "../workspace/config.js";
import { buildCrl, crlDer, streamCrl, type CrlEntryInput, type EncodedEntries, type EntriesTotal } from "./builder.js";
import { encodeEntry } from "../profile/crl-entry.js";
import { isJpkiError } from "../errors.js";
import { describeCrl } from "../profile/describe.js";
import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificateList } from "@peculiar/asn1-x509";

const config = parseConfig({});
let ca: CertificationAuthority;
let dir: string;

beforeAll(async () => {
  const rec = await createCaRecord({ prefectureCode: "13", purpose: "signature", passphrase: "pw", config, now: new Date("2026-01-01T00:00:00Z") });
  ca = CertificationAuthority.open(rec, "pw", config);
  dir = mkdtempSync(join(tmpdir(), "jpki-crl-"));
  writeFileSync(join(dir, "ca.pem"), toPem(rec.certificateDer, "CERTIFICATE"));
});

function entries(n: number): CrlEntryInput[] {
  return Array.from({ length: n }, (_, i) => ({
    serial: (0x40000000n + BigInt(i) * 7919n).toString(16).padStart(32, "0").replace(/^0/, "1"),
    revokedAt: new Date(Date.UTC(2026, 0, 2, 0, 0, i % 60)),
    reason: [0, 1, 3, 4, 5][i % 5]!,
  }));
}

describe("buildCrl (RFC 5280 §5.1)", () => {
  it("produces a CRL openssl parses and verifies against the CA, with number, AKI and reasons", async () => {
    const list = entries(5000);
    const built = await buildCrl({
      issuerName: ca.subjectName,
      authorityKeyId: ca.record.keyId,
      number: 7n,
      thisUpdate: new Date("2026-01-03T00:00:00Z"),
      nextUpdate: new Date("2026-01-05T00:00:00Z"),
      entries: [list.slice(0, 1234), list.slice(1234)],
      signer: ca.signer,
    });
    const der = crlDer(built);
    expect(der.length).toBe(built.byteLength);
    // the streamed PEM is byte-identical to the PEM of the joined DER
    expect(Buffer.concat([...pemChunks(built.chunks, "X509 CRL")]).toString()).toBe(toPem(der, "X509 CRL"));
    writeFileSync(join(dir, "a.crl"), der);
    const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(dir, "a.crl"), "-CAfile", join(dir, "ca.pem"), "-noout", "-text"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*7/);
    expect(text).toContain("X509v3 Authority Key Identifier");
    expect(text).toContain("Key Compromise");
    expect(text).toContain("Affiliation Changed");
    expect((text.match(/Serial Number:/g) ?? []).length).toBe(5000);
    const verify = execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(dir, "a.crl"), "-CAfile", join(dir, "ca.pem"), "-noout"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(verify).toBe("");
    // the entry without a reason (unspecified) carries no reason extension (RFC 5280 §5.3.1)
    const small = await buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 8n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), entries: [list.slice(0, 2)], signer: ca.signer });
    const parsed = AsnConvert.parse(crlDer(small), CertificateList);
    expect(parsed.tbsCertList.revokedCertificates).toHaveLength(2);
    expect(parsed.tbsCertList.revokedCertificates![0]!.crlEntryExtensions).toBeUndefined();
    expect(parsed.tbsCertList.revokedCertificates![1]!.crlEntryExtensions).toHaveLength(1);
  });

  it("produces CRLs that our own decoder reads at any size (beyond asn1-schema's node budget)", async () => {
    const built = await buildCrl({
      issuerName: ca.subjectName,
      authorityKeyId: ca.record.keyId,
      number: 9n,
      thisUpdate: new Date("2026-01-03T00:00:00Z"),
      nextUpdate: new Date("2026-01-05T00:00:00Z"),
      entries: [entries(12_000)],
      signer: ca.signer,
    });
    const d = describeCrl(crlDer(built), { maxEntries: 3 });
    expect(d.entryCount).toBe(12_000);
    expect(d.entries).toHaveLength(3);
    expect(d.entries[1]).toMatchObject({ reason: "keyCompromise", revocationDate: "2026-01-02T00:00:01.000Z" });
    expect(d.profile.violations).toEqual([]);
  });

  it("omits revokedCertificates when there is nothing revoked", async () => {
    const built = await buildCrl({
      issuerName: ca.subjectName,
      authorityKeyId: ca.record.keyId,
      number: 1n,
      thisUpdate: new Date("2026-01-03T00:00:00Z"),
      nextUpdate: new Date("2026-01-05T00:00:00Z"),
      entries: [],
      signer: ca.signer,
    });
    const parsed = AsnConvert.parse(crlDer(built), CertificateList);
    expect(parsed.tbsCertList.revokedCertificates).toBeUndefined();
    expect(built.entries).toBe(0);
  });

  it("with the issuer's key, lays out, hashes and writes everything but the signature before the signer settles", async () => {
    let release!: (s: Signer) => void;
    const pending = new Promise<Signer>((r) => (release = r));
    const sunk: Buffer[] = [];
    const building = buildCrl({
      issuerName: ca.subjectName,
      authorityKeyId: ca.record.keyId,
      number: 10n,
      thisUpdate: new Date("2026-01-03T00:00:00Z"),
      nextUpdate: new Date("2026-01-05T00:00:00Z"),
      entries: [entries(3000)],
      signer: pending,
      issuerKey: ca.signer.spki,
      sink: (c) => sunk.push(c),
    });
    await new Promise((r) => setTimeout(r, 20));
    const before = Buffer.concat(sunk);
    release(ca.signer);
    const built = await building;
    const der = crlDer(built);
    // all but the signature (its BIT STRING contents: the 256 bytes of an RSA-2048 signature) was written
    expect(before.length).toBe(der.length - 256);
    expect(Buffer.concat(sunk).equals(der)).toBe(true);
    expect(built.sha256).toBe(createHash("sha256").update(der).digest("hex"));
    writeFileSync(join(dir, "early.crl"), der);
    expect(execFileSync("openssl", ["crl", "-inform", "DER", "-in", join(dir, "early.crl"), "-CAfile", join(dir, "ca.pem"), "-noout"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] })).toBe("");
  });

  it("refuses a signer whose key is not the issuer's key it was laid out for", async () => {
    const other = new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);
    await expect(
      buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 1n, thisUpdate: new Date(0), nextUpdate: new Date(1000), entries: [], signer: other, issuerKey: ca.signer.spki }),
    ).rejects.toMatchObject({ code: "ERR_INTERNAL" });
  });

  it("checks the signature of a signer that does not verify its own (a token returning a wrong one)", async () => {
    const real = ca.signer;
    const faulty: Signer = {
      algorithmIdentifier: real.algorithmIdentifier,
      spki: real.spki,
      selfVerifying: false,
      sign: async (data) => {
        const sig = await real.sign(data);
        sig[100]! ^= 1;
        return sig;
      },
      signDigest: async (d) => {
        const sig = await real.signDigest(d);
        sig[100]! ^= 1;
        return sig;
      },
    };
    const params = { issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 1n, thisUpdate: new Date(0), nextUpdate: new Date(1000), entries: [entries(10)] };
    await expect(buildCrl({ ...params, signer: faulty })).rejects.toMatchObject({ code: "ERR_PROFILE_VIOLATION" });
    await expect(buildCrl({ ...params, signer: { ...faulty, sign: (d) => real.sign(d), signDigest: (d: Uint8Array) => real.signDigest(d) } })).resolves.toMatchObject({ entries: 10 });
  });

  it("hands a small TBS to the signer whole (a software key signs it on the thread pool), a large one by its digest", async () => {
    const calls: string[] = [];
    const real = ca.signer;
    const watched: Signer = {
      algorithmIdentifier: real.algorithmIdentifier,
      spki: real.spki,
      selfVerifying: real.selfVerifying,
      sign: (data) => (calls.push(`sign ${(data as Uint8Array).length}`), real.sign(data)),
      signDigest: (d) => (calls.push("signDigest"), real.signDigest(d)),
    };
    const params = { issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 1n, thisUpdate: new Date(0), nextUpdate: new Date(1000), signer: watched };
    const small = crlDer(await buildCrl({ ...params, entries: [entries(100)] }));
    // the TBS is the first element inside the outer SEQUENCE: its length is what sign() was given
    const tbsLength = (() => {
      const at = small[1]! & 0x80 ? 2 + (small[1]! & 0x7f) : 2;
      const len = small[at + 1]! & 0x80 ? [...small.subarray(at + 2, at + 2 + (small[at + 1]! & 0x7f))].reduce((n, b) => n * 256 + b, 0) : small[at + 1]!;
      return len + (small[at + 1]! & 0x80 ? 2 + (small[at + 1]! & 0x7f) : 2);
    })();
    expect(calls).toEqual([`sign ${tbsLength}`]);
    calls.length = 0;
    await buildCrl({ ...params, entries: [entries(40_000)] }); // ≈ 1.3 MB of TBS
    expect(calls).toEqual(["signDigest"]);
    // streamed (nothing kept for the caller) alike, with the entries held or announced with their total
    calls.length = 0;
    const list = entries(100);
    const totalBytes = list.reduce((n, e) => n + encodeEntry(e).length, 0);
    for (const source of [[list], [{ totalBytes, totalCount: 100 }, list]]) await streamCrl({ ...params, entries: source, sink: () => undefined });
    expect(calls).toEqual([`sign ${tbsLength}`, `sign ${tbsLength}`]);
    calls.length = 0;
    await streamCrl({ ...params, entries: [entries(40_000)], sink: () => undefined });
    expect(calls).toEqual(["signDigest"]);
  });

  describe("streamCrl: entries announced with their total", () => {
    const encoded = (list: readonly CrlEntryInput[]): EncodedEntries => ({ der: Buffer.concat(list.map(encodeEntry)), count: list.length });
    const list = entries(9000);
    // A big encoded block (≥ 64 KiB: goes on as it is), small ones (packed), entries to encode.
    const chunks = [encoded(list.slice(0, 3000)), encoded(list.slice(3000, 3010)), list.slice(3010, 3500), encoded(list.slice(3500, 3501)), encoded(list.slice(3501))];
    const bytes = (c: EncodedEntries | readonly CrlEntryInput[]) => ("der" in c ? c.der.length : c.reduce((n, e) => n + encodeEntry(e).length, 0));
    const total: EntriesTotal = { totalBytes: chunks.reduce((n, c) => n + bytes(c), 0), totalCount: list.length };
    const params = () => ({ issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 5n, thisUpdate: new Date("2026-01-03T00:00:00Z"), nextUpdate: new Date("2026-01-05T00:00:00Z"), signer: ca.signer });

    it("writes each chunk to the sink before the next is read, none kept, the same DER as a CRL built from the held entries", async () => {
      const held = crlDer(await buildCrl({ ...params(), entries: chunks }));
      const sunk: Buffer[] = [];
      const sunkAt: number[] = [];
      let returned = false;
      async function* source() {
        try {
          yield total;
          for (const c of chunks) {
            sunkAt.push(sunk.reduce((n, b) => n + b.length, 0));
            yield c;
          }
        } finally {
          returned = true;
        }
      }
      const built = await streamCrl({ ...params(), issuerKey: ca.signer.spki, entries: source(), sink: (c) => sunk.push(c) });
      expect("chunks" in built).toBe(false);
      const der = Buffer.concat(sunk);
      expect(der.equals(held)).toBe(true);
      expect(built).toMatchObject({ byteLength: held.length, entries: list.length, sha256: createHash("sha256").update(held).digest("hex") });
      // the header went out before the first entry was asked for, the big block before the second chunk was
      expect(sunkAt[0]).toBeGreaterThan(0);
      expect(sunkAt[1]! - sunkAt[0]!).toBeGreaterThanOrEqual((chunks[0] as EncodedEntries).der.length);
      expect(returned).toBe(true);
      // without a total it holds them and still gives the same DER
      const again: Buffer[] = [];
      await streamCrl({ ...params(), entries: chunks, sink: (c) => again.push(c) });
      expect(Buffer.concat(again).equals(held)).toBe(true);
    });

    it("refuses entries that do not add up to the total announced (fewer, more, or announced twice), and closes the store's read", async () => {
      const cases: Array<Array<EntriesTotal | EncodedEntries | readonly CrlEntryInput[]>> = [
        [total, ...chunks.slice(0, -1)],
        [{ ...total, totalCount: total.totalCount - 1 }, ...chunks],
        [{ ...total, totalBytes: total.totalBytes - 10 }, ...chunks],
        [total, ...chunks, encoded(entries(1))],
        [total, total, ...chunks],
      ];
      for (const items of cases) {
        let returned = false;
        async function* source() {
          try {
            yield* items;
          } finally {
            returned = true;
          }
        }
        await expect(streamCrl({ ...params(), entries: source(), sink: () => undefined })).rejects.toSatisfy((e: unknown) => isJpkiError(e, "ERR_INTERNAL"));
        expect(returned).toBe(true);
      }
    });
  });

  it("refuses nextUpdate not after thisUpdate", async () => {
    await expect(
      buildCrl({ issuerName: ca.subjectName, authorityKeyId: ca.record.keyId, number: 1n, thisUpdate: new Date(0), nextUpdate: new Date(0), entries: [], signer: ca.signer }),
    ).rejects.toThrow(/nextUpdate/);
  });
});
