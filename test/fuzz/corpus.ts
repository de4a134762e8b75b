/**
 * The seeds the DER mutators start from, made once per run by the library itself: a workspace with a
 * prefecture CA pair (real RSA-2048), four residents of the sample registry, a certificate of each kind for
 * them issued from PKCS#10 requests, two revoked, and the CRLs published then (full, municipality partition,
 * ARL); OCSP requests for those certificates as openssl builds them; SubjectPublicKeyInfos of the keys a
 * hostile client would send (RSA-2048, RSA-1024, e = 3, P-256). Mutating real objects reaches the deep code
 * (extensions, entries, four-items SANs) that random bytes never get past the first tag for.
 */
import { execFileSync } from "node:child_process";
import { createHash, generateKeyPairSync, sign, type KeyObject } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IssuanceService } from "../../src/ca/issuance.js";
import { initCas } from "../../src/ca/manage.js";
import { prefecture } from "../../src/ca/prefectures.js";
import { generateCrls } from "../../src/crl/generate.js";
import { FixedClock } from "../../src/pki/clock.js";
import { bitString, certificateParts, children, explicit, integer, nul, octetString, oid, printable, seq, set } from "../../src/pki/der.js";
import { toPem } from "../../src/pki/pem.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { parseResidentRecord } from "../../src/registry/resident.js";
import { Workspace } from "../../src/workspace/workspace.js";

export interface Corpus {
  readonly ws: Workspace;
  /** the passphrase of the CA and OCSP keys */
  readonly passphrase: string;
  readonly certificates: readonly Buffer[];
  readonly crls: readonly Buffer[];
  readonly csrs: readonly Buffer[];
  readonly spkis: readonly Buffer[];
  readonly ocspRequests: readonly Buffer[];
  /** CMS SignedData (RFC 5652) by the first resident's signature key, made by `openssl cms -sign` (attached, detached) */
  readonly signedData: readonly Buffer[];
  /** the content the detached one signs */
  readonly signedContent: Buffer;
  /** the CA ids, for paths of the server */
  readonly caIds: readonly string[];
}

export const CLOCK_START = "2026-06-01T00:00:00Z";
const PASSPHRASE = "fuzz-pw";

function csrFor(key: ReturnType<typeof generateKeyPairSync>["privateKey"], spki: Buffer): Buffer {
  const info = seq(integer(0), seq(set(seq(oid("2.5.4.3"), printable("card")))), spki, explicit(0, Buffer.alloc(0)));
  return seq(info, seq(oid("1.2.840.113549.1.1.11"), nul()), bitString(sign("sha256", info, key)));
}

/** An OCSP request for `cert` issued by `issuer`, with a nonce, as `openssl ocsp` sends it (RFC 6960 §4.1.1). */
function ocspRequest(cert: Buffer, issuer: Buffer, hash: "sha1" | "sha256"): Buffer {
  const { serial } = certificateParts(cert);
  const { subject, spki } = certificateParts(issuer);
  const keyBits = children(spki)[1]!;
  const h = (b: Buffer) => createHash(hash).update(b).digest();
  const alg = hash === "sha1" ? seq(oid("1.3.14.3.2.26"), nul()) : seq(oid("2.16.840.1.101.3.4.2.1"), nul());
  const certId = seq(alg, octetString(h(subject)), octetString(h(keyBits.subarray(3))), serial);
  const nonce = seq(oid("1.3.6.1.5.5.7.48.1.2"), octetString(octetString(Buffer.alloc(16, 0x5a))));
  return seq(seq(seq(seq(certId)), explicit(2, seq(nonce))));
}

let made: Promise<Corpus> | undefined;

/** The corpus of this process (made on first use, ~2 s: two CA keys and four card keys). */
export function corpus(): Promise<Corpus> {
  return (made ??= makeCorpus());
}

async function makeCorpus(): Promise<Corpus> {
  const clock = new FixedClock(CLOCK_START);
  const dir = mkdtempSync(join(tmpdir(), "jpki-fuzz-"));
  const ws = Workspace.create(dir, { clock, config: { verifierRateLimit: { perSecond: 1_000_000, burst: 10_000_000 }, openRoutes: ["/healthz", "/metrics", "/crl/index.json", "/crl/*", "/arl/*", "/ca/*", "/ocsp/*", "/openapi.json"] } });
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: PASSPHRASE });
  const residents = [...generateResidents({ count: 4, seed: "fuzz", prefectures: ["13"] })].map((r) => parseResidentRecord(r, { now: clock.now() }));
  await ws.store.upsertResidents(residents);
  const issuer = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: PASSPHRASE });
  const certificates: Buffer[] = [];
  const serials: string[] = [];
  const csrs: Buffer[] = [];
  const spkis: Buffer[] = [];
  let signerKey: KeyObject | undefined;
  for (const [i, r] of residents.entries()) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const spki = publicKey.export({ type: "spki", format: "der" });
    const csr = csrFor(privateKey, spki);
    csrs.push(csr);
    if (i === 0) {
      spkis.push(spki);
      signerKey = privateKey;
    }
    const issued = await issuer.issue({ residentCode: r.residentCode, type: i % 2 ? "authentication" : "signature", csr });
    certificates.push(issued.der);
    serials.push(issued.serial);
  }
  csrs.push(Buffer.from(toPem(csrs[0]!, "CERTIFICATE REQUEST")));
  spkis.push(generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" }));
  spkis.push(generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 }).publicKey.export({ type: "spki", format: "der" }));
  spkis.push(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({ type: "spki", format: "der" }));
  await ws.store.revoke({ serial: serials[0]!, revokedAt: clock.now(), reason: 1, source: "manual" });
  await ws.store.revoke({ serial: serials[1]!, revokedAt: clock.now(), reason: 4, source: "manual" });
  const published = await generateCrls(ws, { prefecture: "13", passphrase: PASSPHRASE, partitions: "all" });
  const crls = published.map((p) => readFileSync(p.derPath));
  const cas = await Promise.all(["13-sig", "13-auth"].map((id) => ws.store.getCa(id)));
  const caDers = cas.map((c) => c!.certificateDer);
  certificates.push(...caDers);
  const ocspRequests = certificates.slice(0, 4).flatMap((c, i) => [ocspRequest(c, caDers[i % 2]!, "sha1"), ocspRequest(c, caDers[i % 2]!, "sha256")]);
  const signedContent = Buffer.from("申請書 (fuzz corpus)\n");
  const f = (name: string, data: string | Buffer) => (writeFileSync(join(dir, name), data, { mode: 0o600 }), join(dir, name));
  const cmsArgs = ["cms", "-sign", "-binary", "-md", "sha256", "-in", f("doc.txt", signedContent), "-signer", f("signer.pem", toPem(certificates[0]!, "CERTIFICATE")), "-inkey", f("signer.key", signerKey!.export({ type: "pkcs8", format: "pem" })), "-outform", "DER"];
  const signedData = [execFileSync("openssl", [...cmsArgs, "-nodetach"]), execFileSync("openssl", cmsArgs)];
  return { ws, passphrase: PASSPHRASE, certificates, crls, csrs, spkis, ocspRequests, signedData, signedContent, caIds: ["13-sig", "13-auth"] };
}
