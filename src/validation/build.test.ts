/**
 * Path building under a hostile pool (build.ts): certificates sharing names and one key — what a signed document
 * may carry along to make a verifier search — cost a bounded number of signature checks, however many there are,
 * and a genuine path is still found beside them.
 */
import { generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { extension } from "../pki/der.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, keyUsage } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { buildChains, type BuildStats } from "./build.js";
import { parseCertificate, type Certificate } from "./certificate.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const LATER = new Date("2030-06-01T00:00:00Z");
const signer = () => new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey);

async function cert(o: { subject: string; issuer: string; key: SoftwareSigner; by: SoftwareSigner; ca: boolean }): Promise<Certificate> {
  const tbs = encodeTbs({
    serial: randomSerial(),
    signatureAlgorithm: o.by.algorithmIdentifier,
    issuer: encodeName([["commonName", o.issuer]]),
    notBefore: NOW,
    notAfter: LATER,
    subject: encodeName([["commonName", o.subject]]),
    spki: o.key.spki,
    extensions: o.ca ? [extension(EXT_OID.basicConstraints, true, basicConstraints(true)), extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"]))] : [],
  });
  return parseCertificate(assembleCertificate(tbs, o.by.algorithmIdentifier, await o.by.sign(tbs)));
}

let z: SoftwareSigner;
let rootKey: SoftwareSigner;
let root: Certificate;
let ee: Certificate;
let mesh: Certificate[];

beforeAll(async () => {
  z = signer();
  rootKey = signer();
  root = await cert({ subject: "Root", issuer: "Root", key: rootKey, by: rootKey, ca: true });
  // 80 CA certificates named Z, each issued by Z under the one key: every one can stand above every other.
  mesh = await Promise.all(Array.from({ length: 80 }, () => cert({ subject: "Z", issuer: "Z", key: z, by: z, ca: true })));
  ee = await cert({ subject: "leaf", issuer: "Z", key: signer(), by: z, ca: false });
}, 60_000);

describe("path building: bounded work on a hostile pool", () => {
  it("80 certificates sharing a name and a key, no way to the anchor: no path, and at most the budget of signature checks", () => {
    const stats: BuildStats = { verifyWork: 0 };
    expect(buildChains(ee, mesh, [root], 8, stats)).toEqual([]);
    expect(stats.verifyWork).toBeGreaterThan(0);
    expect(stats.verifyWork).toBeLessThanOrEqual(128); // MAX_VERIFY_WORK: what an RSA-2048 verifier does in ~5 ms
  });

  it("the same pool beside a genuine path: the genuine path is still found first", async () => {
    const zByRoot = await cert({ subject: "Z", issuer: "Root", key: z, by: rootKey, ca: true });
    const stats: BuildStats = { verifyWork: 0 };
    const [first] = buildChains(ee, [...mesh.slice(0, 40), zByRoot, ...mesh.slice(40)], [root], 1, stats);
    expect(first?.chain.map((c) => c.der)).toEqual([ee.der, zByRoot.der]);
    expect(first?.anchor.der).toEqual(root.der);
    expect(stats.verifyWork).toBeLessThanOrEqual(128); // MAX_VERIFY_WORK: what an RSA-2048 verifier does in ~5 ms
  });
});
