/** The provider workspace's files are checked when read: damage and bad settings are typed errors, not surprises. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { extension } from "../pki/der.js";
import { generateRsaKey } from "../pki/keys.js";
import { randomSerial } from "../pki/serial.js";
import { SoftwareSigner } from "../pki/signer.js";
import { basicConstraints, crlDistributionPoints, keyUsage } from "../profile/extensions.js";
import { encodeName } from "../profile/names.js";
import { EXT_OID } from "../profile/oids.js";
import { FixedClock } from "../pki/clock.js";
import { parseCrl } from "../validation/crl.js";
import { runInProcess } from "../../test/cli-in-process.js";
import { toPem } from "../pki/pem.js";
import { initProvider, openProviderCa, providerPaths, publishProviderCrl, readProviderConfig, readProviderState, readTrustedCas, trustPublicCas, trustedCaOf, writeProviderState } from "./workspace.js";

const dir = () => mkdtempSync(join(tmpdir(), "jpki-provider-unit-"));
const link = (over: Record<string, unknown> = {}) => ({ serial: "0a", certificate: "", customerId: "c", notAfter: 2e12, public: { caId: "13-sig", serial: "0b", notAfter: 2e12 }, ...over });

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
    // configured (init writes the state first) but without a state: lost, not "no customers"
    writeFileSync(join(d, "config.json"), JSON.stringify({ version: 1, name: "Bank", endpoint: "https://jpki.example.jp/" }));
    expect(() => readProviderState(providerPaths(d))).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT", message: expect.stringMatching(/state\.json is missing/) }));
    expect(state("{")).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    const good = { version: 1, crlNumber: "3", links: [link()], publicCrls: {} };
    expect(state(good)()).toMatchObject({ crlNumber: "3" });
    expect(state({ ...good, links: [link({ serial: "../x" })] })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    // a hand-edited notAfter that is no number: listed as valid and never followed, were it read
    expect(state({ ...good, links: [link({ notAfter: "2030-01-01" })] })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(state({ ...good, links: [link({ public: { caId: "../../etc", serial: "0b" } })] })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    expect(state({ ...good, publicCrls: { "13-sig": { number: "x" } } })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    // a key generation after a rollover (ca/ids.ts), beside the first one's plain id; only as caId spells a signature CA
    const seen = { number: "4", sha256: "00" };
    expect(state({ ...good, links: [link(), link({ serial: "0c", public: { caId: "13-sig-g2", serial: "0d", notAfter: 2e12 } })], publicCrls: { "13-sig": seen, "13-sig-g2": seen } })()).toMatchObject({ links: [{}, { public: { caId: "13-sig-g2" } }] });
    for (const id of ["13-sig-g1", "13-auth", "13", "13-signature", "13-sig-g2/../x"]) {
      expect(state({ ...good, links: [link({ public: { caId: id, serial: "0b" } })] }), id).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
      expect(state({ ...good, publicCrls: { [id]: seen } }), id).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    }
    // a compromise record (follow.ts) is read whole: one that would fail when reported, or not say which CA, is damage
    const found = { successor: "13-sig-g2", linkSerial: "4c1a", crlNumber: "2", publicRevokedAt: 1.8e12, detectedAt: 1.8e12 };
    expect(state({ ...good, compromisedCas: { "13-sig": found } })()).toMatchObject({ compromisedCas: { "13-sig": found } });
    for (const bad of [{ ...found, publicRevokedAt: "yesterday" }, { ...found, crlNumber: 2 }, { ...found, successor: "../x" }, null]) {
      expect(state({ ...good, compromisedCas: { "13-sig": bad } }), JSON.stringify(bad)).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
    }
    expect(state({ ...good, compromisedCas: { "13-auth": found } })).toThrow(expect.objectContaining({ code: "ERR_WORKSPACE_CORRUPT" }));
  });

  it("trusts JPKI prefecture signature CAs only", async () => {
    const signer = new SoftwareSigner(await generateRsaKey(2048));
    const make = (rdns: Parameters<typeof encodeName>[0], arl?: string) => {
      const name = encodeName(rdns);
      const tbs = encodeTbs({
        serial: randomSerial(),
        signatureAlgorithm: signer.algorithmIdentifier,
        issuer: name,
        notBefore: new Date(),
        notAfter: new Date(Date.now() + 86_400_000),
        subject: name,
        spki: signer.spki,
        extensions: [
          extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])),
          extension(EXT_OID.basicConstraints, true, basicConstraints(true)),
          ...(arl ? [extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(name, [arl]))] : []),
        ],
      });
      return signer.sign(tbs).then((sig) => assembleCertificate(tbs, signer.algorithmIdentifier, sig));
    };
    const tokyoSig = await make([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]);
    expect(trustedCaOf(tokyoSig).caId).toBe("13-sig");
    // after a rollover the name stays; the generation is in the ARL URL the public side names (ca/authority.ts)
    const tokyoRdns: Parameters<typeof encodeName>[0] = [["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]];
    expect(trustedCaOf(await make(tokyoRdns, "https://jpki.example.jp/arl/13-sig-g2.crl")).caId).toBe("13-sig-g2");
    expect(trustedCaOf(await make(tokyoRdns, "https://jpki.example.jp/arl/13-sig.crl")).caId).toBe("13-sig");
    // an ARL of another prefecture's or purpose's CA says nothing of this one
    expect(trustedCaOf(await make(tokyoRdns, "https://jpki.example.jp/arl/27-sig-g2.crl")).caId).toBe("13-sig");
    // two certificates of one generation: which one trust/13-sig.pem should hold is the operator's call, not ours
    const twin = await make(tokyoRdns);
    await expect(initProvider({ dir: join(dir(), "p"), name: "Bank", endpoint: "http://127.0.0.1:1", trustAnchors: [tokyoSig, twin], passphrase: "pw", clock: new FixedClock(new Date()) })).rejects.toMatchObject({ code: "ERR_USAGE", message: expect.stringContaining("13-sig") });
    // Another init finishing between this one's check and its lock (here: while its passphrase is read, between the
    // two): its key and config were replaced by this one's, orphaning what it issued.
    const raced = join(dir(), "raced");
    const theirs = "the other init's key file\n";
    const racing = {
      dir: raced,
      name: "Bank",
      endpoint: "http://127.0.0.1:1",
      trustAnchors: [tokyoSig],
      clock: new FixedClock(new Date()),
      get passphrase() {
        if (!existsSync(join(raced, "provider.key"))) (mkdirSync(raced, { recursive: true }), writeFileSync(join(raced, "provider.key"), theirs), writeFileSync(join(raced, "config.json"), "{}"));
        return "pw";
      },
    };
    await expect(initProvider(racing)).rejects.toMatchObject({ code: "ERR_PROVIDER_EXISTS", message: expect.stringContaining("holds a provider workspace already") });
    // an init killed after writing its key, before config.json: the way out is said
    const killed = join(dir(), "killed");
    mkdirSync(killed);
    writeFileSync(join(killed, "provider.key"), "half an init\n");
    await expect(initProvider({ ...racing, dir: killed, passphrase: "pw" })).rejects.toMatchObject({ code: "ERR_PROVIDER_EXISTS", message: expect.stringContaining("an init was interrupted there") });
    expect(readFileSync(join(raced, "provider.key"), "utf8")).toBe(theirs);
    // After a rollover of the public CA, the new generation is trusted in the workspace that exists (init refuses it)
    const bank = join(dir(), "bank");
    await initProvider({ dir: bank, name: "Bank", endpoint: "http://127.0.0.1:1", trustAnchors: [tokyoSig], passphrase: "pw", clock: new FixedClock(new Date()) });
    const g2 = await make(tokyoRdns, "https://jpki.example.jp/arl/13-sig-g2.crl");
    const cli = (...files: string[]) => runInProcess(["--json", "provider", "trust", "--dir", bank, ...files], { env: {}, cwd: bank });
    writeFileSync(join(bank, "g2.pem"), toPem(g2, "CERTIFICATE"));
    writeFileSync(join(bank, "twin.pem"), toPem(twin, "CERTIFICATE"));
    const added = await cli("g2.pem");
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toEqual({ added: ["13-sig-g2"], already: [], trusted: ["13-sig", "13-sig-g2"] });
    expect(readTrustedCas(providerPaths(bank)).map((t) => t.caId).sort()).toEqual(["13-sig", "13-sig-g2"]);
    expect(readFileSync(join(bank, "trust", "13-sig-g2.pem"), "utf8")).toBe(toPem(g2, "CERTIFICATE"));
    expect(await trustPublicCas({ dir: bank, trustAnchors: [g2] })).toEqual({ added: [], already: ["13-sig-g2"], trusted: ["13-sig", "13-sig-g2"] });
    // another certificate of a generation trusted already: refused, nothing changed
    const before = readFileSync(join(bank, "trust", "13-sig.pem"));
    const refused = await cli("twin.pem");
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stderr).error).toMatchObject({ code: "ERR_USAGE", message: expect.stringContaining("another certificate of 13-sig") });
    expect(readFileSync(join(bank, "trust", "13-sig.pem"))).toEqual(before);
    await expect(trustPublicCas({ dir: join(dir(), "none"), trustAnchors: [g2] })).rejects.toMatchObject({ code: "ERR_PROVIDER_MISSING" });
    const tokyoAuth = await make([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for user authentication"], ["organizationalUnitName", "Tokyo-to"]]);
    expect(() => trustedCaOf(tokyoAuth)).toThrow(expect.objectContaining({ code: "ERR_CA_INVALID" }));
    const foreign = await make([["countryName", "JP"], ["organizationName", "Some CA"]]);
    expect(() => trustedCaOf(foreign)).toThrow(expect.objectContaining({ code: "ERR_CA_INVALID" }));
    expect(() => trustedCaOf(Buffer.from("not a certificate"))).toThrow(expect.objectContaining({ code: "ERR_DER_MALFORMED" }));
  });
});

describe("the provider's CRL", () => {
  it("keeps an expired certificate's entry until a CRL issued after its notAfter has listed it, however late that CRL comes (RFC 5280 §3.3)", async () => {
    const signer = new SoftwareSigner(await generateRsaKey(2048));
    const name = encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]);
    const tbs = encodeTbs({
      serial: randomSerial(), signatureAlgorithm: signer.algorithmIdentifier, issuer: name, subject: name, spki: signer.spki,
      notBefore: new Date("2026-01-01T00:00:00Z"), notAfter: new Date("2036-01-01T00:00:00Z"),
      extensions: [extension(EXT_OID.keyUsage, true, keyUsage(["keyCertSign", "cRLSign"])), extension(EXT_OID.basicConstraints, true, basicConstraints(true))],
    });
    const anchor = assembleCertificate(tbs, signer.algorithmIdentifier, await signer.sign(tbs));
    const d = join(dir(), "prov");
    const DAY = 86_400_000;
    const expiry = Date.parse("2027-06-01T00:00:00Z");
    await initProvider({ dir: d, name: "Example Bank", endpoint: "http://127.0.0.1:1/", trustAnchors: [anchor], passphrase: "pw", clock: new FixedClock(new Date(expiry - 30 * DAY)), crlLifetimeHours: 24 * 30 });
    const paths = providerPaths(d);
    const state = readProviderState(paths);
    // a certificate revoked before it expired (the CRL holds serial, revocation time and reason, the link its notAfter)
    writeProviderState(paths, { ...state, links: [link({ serial: "0c", issuedAt: expiry - 400 * DAY, notAfter: expiry, requestSha256: "x", keyGenerated: false, sameKey: true, revoked: { at: expiry - 2 * DAY, reason: 1 } })] as never });
    const ca = openProviderCa(paths, "pw");
    const config = readProviderConfig(paths);
    const listed = () => parseCrl(readFileSync(paths.crl)).entries.size;
    const publish = (at: number) => publishProviderCrl(paths, config, ca, new FixedClock(new Date(at)));
    await publish(expiry - DAY);
    expect(listed()).toBe(1);
    // the next CRL comes 20 days after notAfter (no pass for weeks): no CRL issued after notAfter has listed it yet
    await publish(expiry + 20 * DAY);
    expect(listed()).toBe(1);
    // now one has, and the grace has passed: the entry goes
    await publish(expiry + 21 * DAY);
    expect(listed()).toBe(0);
  });
});
