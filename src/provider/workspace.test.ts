/** The provider workspace's files are checked when read: damage and bad settings are typed errors, not surprises. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { extension } from "../pki/der.js";
import { generateRsaKey } from "../pki/keys.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, keyUsage } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { providerPaths, readProviderConfig, readProviderState, trustedCaOf } from "./workspace.js";

const dir = () => mkdtempSync(join(tmpdir(), "jpki-provider-unit-"));
const link = (over: Record<string, unknown> = {}) => ({ serial: "0a", certificate: "", customerId: "c", public: { caId: "13-sig", serial: "0b" }, ...over });

describe("provider workspace files", () => {
  it("reads no config as ERR_PROVIDER_MISSING and a bad one as ERR_CONFIG_INVALID", () => {
    const d = dir();
    expect(() => readProviderConfig(providerPaths(d))).toThrow(expect.objectContaining({ code: "ERR_PROVIDER_MISSING" }));
    writeFileSync(join(d, "config.json"), JSON.stringify({ version: 1, name: "Bank", endpoint: "ftp://example" }));
    expect(() => readProviderConfig(providerPaths(d))).toThrow(expect.objectContaining({ code: "ERR_CONFIG_INVALID" }));
    writeFileSync(join(d, "config.json"), JSON.stringify({ version: 1, name: "Bank", endpoint: "https://jpki.example.jp/", certificateDays: 0 }));
    expect(() => readProviderConfig(providerPaths(d))).toThrow(/certificateDays/);
    writeFileSync(join(d, "config.json"), JSON.stringify({ version: 1, name: "Bank", endpoint: "https://jpki.example.jp/" }));
    expect(readProviderConfig(providerPaths(d))).toMatchObject({ endpoint: "https://jpki.example.jp", certificateDays: 365, crlLifetimeHours: 48, maxRequestAgeMinutes: 60 });
  });

  it("refuses a damaged state: not JSON, a malformed link, a public CA id that is no CA id", () => {
    const d = dir();
    const state = (s: unknown) => (writeFileSync(join(d, "state.json"), typeof s === "string" ? s : JSON.stringify(s)), () => readProviderState(providerPaths(d)));
    expect(readProviderState(providerPaths(d))).toMatchObject({ crlNumber: "0", links: [] });
    expect(state("{")).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    const good = { version: 1, crlNumber: "3", links: [link()], publicCrls: {} };
    expect(state(good)()).toMatchObject({ crlNumber: "3" });
    expect(state({ ...good, links: [link({ serial: "../x" })] })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(state({ ...good, links: [link({ public: { caId: "../../etc", serial: "0b" } })] })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(state({ ...good, publicCrls: { "13-sig": { number: "x" } } })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
  });

  it("trusts JPKI prefecture signature CAs only", async () => {
    const signer = new SoftwareSigner(await generateRsaKey(2048));
    const make = (rdns: Parameters<typeof encodeName>[0]) => {
      const name = encodeName(rdns);
      const tbs = encodeTbs({
        serial: randomSerial(),
        signatureAlgorithm: signer.algorithmIdentifier,
        issuer: name,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        subject: name,
        spki: signer.spki,
        extensions: [extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])), extension(EXT_OID.basicConstraints, true, basicConstraints(true))],
      });
      return signer.sign(tbs).then((sig) => assembleCertificate(tbs, signer.algorithmIdentifier, sig));
    };
    const tokyoSig = await make([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]);
    expect(trustedCaOf(tokyoSig).caId).toBe("13-sig");
    const tokyoAuth = await make([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for user authentication"], ["organizationalUnitName", "Tokyo-to"]]);
    expect(() => trustedCaOf(tokyoAuth)).toThrow(expect.objectContaining({ code: "ERR_CA_INVALID" }));
    const foreign = await make([["countryName", "JP"], ["organizationName", "Some CA"]]);
    expect(() => trustedCaOf(foreign)).toThrow(expect.objectContaining({ code: "ERR_CA_INVALID" }));
    expect(() => trustedCaOf(Buffer.from("not a certificate"))).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});
