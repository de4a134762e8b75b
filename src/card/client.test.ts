/**
 * The host side over the CardTerminal interface only (issue 12 point 7's middleware role, in process): reading
 * certificates in chunks, PIN status, and a Signer whose signatures openssl verifies against the certificate.
 */
import { execFileSync } from "node:child_process";
import { createPublicKey, X509Certificate } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { certificateFor, rsaKey } from "../../test/card-fixtures.js";
import { memoryCardStorage, stateStoreOf, type CardState } from "./card-state.js";
import { EmulatedCard, newAdminKey } from "./card.js";
import { JpkiCardClient, openCardSigner } from "./client.js";
import type { CardTerminal } from "./terminal.js";

const ADMIN = newAdminKey();
let personalised: CardState;
let certs: Record<"signature" | "authentication" | "signatureCa", Buffer>;

beforeAll(async () => {
  const storage = memoryCardStorage();
  const card = EmulatedCard.create({ storage, cardId: "card-cl", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const ca = rsaKey();
  const caCert = await certificateFor({ spki: createPublicKey(ca).export({ type: "spki", format: "der" }), caKey: ca, subject: "CA", issuer: "CA", serial: 1 });
  const sig = await certificateFor({ spki: await card.generateKeyPair(ADMIN, "signature"), caKey: ca, subject: "署名用", issuer: "CA", serial: 2 });
  const auth = await certificateFor({ spki: await card.generateKeyPair(ADMIN, "authentication"), caKey: ca, subject: "利用者証明用", issuer: "CA", serial: 3 });
  card.writeCertificate(ADMIN, "signature", sig);
  card.writeCertificate(ADMIN, "authentication", auth);
  card.writeCertificate(ADMIN, "signatureCa", caCert);
  certs = { signature: sig, authentication: auth, signatureCa: caCert };
  personalised = stateStoreOf(storage).load();
});
const fresh = () => EmulatedCard.open(memoryCardStorage(personalised));

/** A terminal that records the commands, to check the client reads in ≤ 256-byte chunks as real ones do. */
function recording(t: CardTerminal): CardTerminal & { log: Uint8Array[] } {
  const log: Uint8Array[] = [];
  return { log, atr: () => t.atr(), powerOff: () => t.powerOff(), powerOn: () => t.powerOn(), reset: () => t.reset(), transmit: (c) => (log.push(c), t.transmit(c)) };
}

describe("JpkiCardClient", () => {
  it("reads certificates: 4 bytes first, then chunks of at most 256", async () => {
    const term = recording(fresh());
    const client = new JpkiCardClient(term);
    const auth = await client.readCertificate("authentication");
    expect(auth!.equals(certs.authentication)).toBe(true);
    const reads = term.log.filter((c) => c[1] === 0xb0);
    expect(reads[0]![4]).toBe(4);
    expect(reads.every((c) => c.length === 5)).toBe(true); // short Le only
    expect(await client.readCertificate("authenticationCa")).toBeUndefined(); // never written
    expect(await client.tokenLabel()).toBe("JPKIAPICCTOKEN");
  });

  it("needs the signature PIN for the signature certificate, and reports tries", async () => {
    const client = new JpkiCardClient(fresh());
    await expect(client.readCertificate("signature")).rejects.toMatchObject({ code: "ERR_CARD_STATUS" });
    expect(await client.triesLeft("signature")).toBe(5);
    await expect(client.verifyPin("signature", "WRONG999")).rejects.toMatchObject({ code: "ERR_CARD_PIN_WRONG", details: { triesLeft: 4 } });
    await client.verifyPin("signature", "SIGPIN2026");
    expect((await client.readCertificate("signature"))!.equals(certs.signature)).toBe(true);
    for (let i = 0; i < 2; i++) await client.verifyPin("authentication", "0000").catch(() => undefined);
    await expect(client.verifyPin("authentication", "0000")).rejects.toMatchObject({ code: "ERR_CARD_PIN_BLOCKED" });
    expect(await client.triesLeft("authentication")).toBe(0);
  });

  it("refuses a PIN that breaks its rule before the card sees it: a typo in lowercase costs no try", async () => {
    const client = new JpkiCardClient(fresh());
    await expect(client.verifyPin("signature", "sigpin2026")).rejects.toMatchObject({ code: "ERR_CARD_PIN_FORMAT" });
    await expect(client.verifyPin("authentication", "43210")).rejects.toMatchObject({ code: "ERR_CARD_PIN_FORMAT" });
    expect(await client.triesLeft("signature")).toBe(5);
    expect(await client.triesLeft("authentication")).toBe(3);
  });
});

describe("openCardSigner", () => {
  it("signs with the card's key; openssl verifies the signature with the certificate read from the card", async () => {
    const card = fresh();
    const signer = await openCardSigner({ terminal: card, key: "signature", pin: "SIGPIN2026" });
    expect(signer.spki.equals(new X509Certificate(certs.signature).publicKey.export({ type: "spki", format: "der" }))).toBe(true);
    const doc = Buffer.from("転入届 (application), signed with the card");
    const sig = await signer.sign(doc);
    expect(sig.length).toBe(256);
    // a power cycle loses the session: the signer verifies its PIN again
    card.powerOff();
    card.powerOn();
    const sig2 = await signer.sign([doc.subarray(0, 5), doc.subarray(5)]);
    expect(sig2.equals(sig)).toBe(true); // PKCS#1 v1.5 is deterministic
    const dir = mkdtempSync(join(tmpdir(), "jpki-card-sig-"));
    writeFileSync(join(dir, "doc"), doc);
    writeFileSync(join(dir, "sig"), sig);
    writeFileSync(join(dir, "cert.der"), signer.certificate);
    execFileSync("openssl", ["x509", "-inform", "DER", "-in", join(dir, "cert.der"), "-pubkey", "-noout", "-out", join(dir, "pub.pem")]);
    const out = execFileSync("openssl", ["dgst", "-sha256", "-verify", join(dir, "pub.pem"), "-signature", join(dir, "sig"), join(dir, "doc")]).toString();
    expect(out).toContain("Verified OK");
    writeFileSync(join(dir, "doc"), Buffer.concat([doc, Buffer.from("!")]));
    expect(() => execFileSync("openssl", ["dgst", "-sha256", "-verify", join(dir, "pub.pem"), "-signature", join(dir, "sig"), join(dir, "doc")], { stdio: "pipe" })).toThrow();
  });

  it("refuses a wrong PIN before anything is signed", async () => {
    await expect(openCardSigner({ terminal: fresh(), key: "authentication", pin: "9999" })).rejects.toMatchObject({ code: "ERR_CARD_PIN_WRONG" });
  });
});
