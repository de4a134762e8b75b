/**
 * Real middleware drives the emulated card (issue 12 point 7): a card personalised with keys generated on it and
 * certificates our CA issued is served by `jpki card serve --vpcd` (its own process) into a throwaway pcscd's
 * vsmartcard vpcd reader; OpenSC 0.23's JPKI driver (opensc-tool, pkcs15-tool, pkcs11-tool over
 * opensc-pkcs11.so) lists the JPKI objects and signs, and `openssl dgst -verify` checks the signatures against
 * the certificates read back from the card. What OpenSC sends is written down in notes/opensc-jpki-apdus.md.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EmulatedCard, newAdminKey } from "../../src/card/card.js";
import { fileCardStorage } from "../../src/card/card-state.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { cli, MAIN, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";
import { freePortPair, startPcscd, startReaderNetwork, type Pcscd, type ReaderNetwork } from "./pcscd.js";

const SIGNATURE_PIN = "JPKI2026";
const AUTHENTICATION_PIN = "4321";
const AUTH_TOKEN = "JPKI (User Authentication PIN)";
const SIGN_TOKEN = "JPKI (Digital Signature PIN)";
/** Debian's path of OpenSC's PKCS#11 module (multiarch), else the generic one. */
const PKCS11 = ["/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so", "/usr/lib/aarch64-linux-gnu/opensc-pkcs11.so", "/usr/lib/opensc-pkcs11.so"].find((p) => existsSync(p)) ?? "opensc-pkcs11.so";

let dir: string;
let pcscd: Pcscd;
let network: ReaderNetwork | undefined;
let serve: ChildProcess;
let serveLog = "";
let serveExit: Promise<number | null>;
const issued: Record<"signature" | "authentication", Buffer> = {} as never;

interface Run {
  code: number;
  out: string;
  err: string;
}

/** A PC/SC client run against the test's pcscd; never blocks the event loop. */
function tool(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env: { ...process.env, ...pcscd.env }, cwd: dir, encoding: "buffer", maxBuffer: 1 << 24 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === "number" ? e.code : -1) : 0, out: stdout.toString("latin1"), err: stderr.toString("latin1") });
    });
  });
}

const pkcs11 = (args: string[]) => tool("pkcs11-tool", ["--module", PKCS11, ...args]);

beforeAll(async () => {
  dir = tempDir("jpki-card-opensc-");
  const ws = join(dir, "ws");
  const chipKeyFile = join(dir, "chip.key");
  // The counter's side: a prefecture CA and a resident, then a card whose keys are generated on the card.
  await tokyoWorkspace(ws);
  const resident = makeResidentCode("0000000970");
  writeJsonl(join(dir, "residents.jsonl"), [
    { residentCode: resident, municipalityCode: "131016", name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male", status: "active" },
  ]);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const adminKey = newAdminKey();
  const cardFile = join(dir, "resident.card");
  const card = EmulatedCard.create({
    storage: fileCardStorage(cardFile, { chipKeyFile, createChipKey: true }),
    cardId: "opensc-1",
    adminKey,
    signaturePin: SIGNATURE_PIN,
    authenticationPin: AUTHENTICATION_PIN,
    tokenLabel: "JPKIAPICCTOKEN2",
  });
  for (const type of ["signature", "authentication"] as const) {
    const spki = await card.generateKeyPair(adminKey, type);
    const pub = join(dir, `${type}.pub.pem`);
    writeFileSync(pub, `-----BEGIN PUBLIC KEY-----\n${Buffer.from(spki).toString("base64").replace(/.{64}/g, "$&\n")}\n-----END PUBLIC KEY-----\n`);
    const out = join(dir, `${type}.pem`);
    const r = await cli(["--workspace", ws, "issue", "--resident", resident, "--type", type, "--public-key", pub, "-o", out], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    issued[type] = Buffer.from(new X509Certificate(readFileSync(out)).raw);
    card.writeCertificate(adminKey, type, issued[type]);
  }
  card.writeCertificate(adminKey, "signatureCa", Buffer.from(new X509Certificate(readFileSync(join(ws, "ca", "13-sig.pem"))).raw));
  card.writeCertificate(adminKey, "authenticationCa", Buffer.from(new X509Certificate(readFileSync(join(ws, "ca", "13-auth.pem"))).raw));

  // The card first, pcscd after: serve must wait for vpcd and come in when it is up.
  // In a network of their own when we may (fast loopback; pcscd.ts says why), else beside the test.
  network = await startReaderNetwork();
  const vpcdPort = await freePortPair();
  const serveArgs = [MAIN, "card", "serve", "--vpcd", `127.0.0.1:${vpcdPort}`, "--card", cardFile];
  serve = spawn(...(network ? network.wrap(process.execPath, serveArgs) : ([process.execPath, serveArgs] as const)), {
    env: { ...process.env, JPKI_CARD_CHIP_KEY_FILE: chipKeyFile },
  });
  serve.stdout!.on("data", (d: Buffer) => (serveLog += d.toString()));
  serve.stderr!.on("data", (d: Buffer) => (serveLog += d.toString()));
  serveExit = new Promise((resolve) => serve.once("exit", (code) => resolve(code)));
  while (!/not reachable/.test(serveLog) && serve.exitCode === null) await new Promise((r) => setTimeout(r, 20));
  pcscd = await startPcscd({ vpcdPort, network });
  await untilCardPresent();
});

/** Until pcscd's poll of the vpcd slot has found the card (until then opensc-tool sees no card). */
async function untilCardPresent(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await tool("opensc-tool", ["--atr"]);
    if (r.code === 0) break;
    expect(serve.exitCode, serveLog).toBeNull();
    await new Promise((r) => setTimeout(r, 100));
  }
}

afterAll(async () => {
  if (serve && serve.exitCode === null) serve.kill("SIGTERM");
  await pcscd?.stop();
  await network?.stop();
});

// Slow where the test may not make a network namespace (about half a minute): Debian's vpcd sends each message's
// length and payload in two send()s, so Nagle's algorithm on its side meets delayed ACKs on ours and every APDU
// costs ~40 ms (vsmartcard fixed this upstream in 2023); one OpenSC command is 50–100 APDUs. As root the reader
// network's quickack loopback (pcscd.ts) makes it a few seconds. Either way: few, combined commands.
describe("OpenSC drives the emulated card through pcscd's vpcd reader (slow interop)", () => {
  let authCertPem = "";

  it("serve says where it is and waits for vpcd; opensc-tool reads the JPKI ATR and picks the jpki driver", async () => {
    expect(serveLog).toContain(`card opensc-1 serving vpcd at 127.0.0.1:${pcscd.vpcdPort}`);
    expect(serveLog).toMatch(/not reachable[^]*connected to vpcd/);
    const r = await tool("opensc-tool", ["--atr", "--name"]);
    expect(r.code, r.err).toBe(0);
    expect(r.out.trim().split("\n")).toEqual(["3b:e0:00:ff:81:31:fe:45:14", "jpki"]);
  });

  it("pkcs15-tool lists the four certificates, both PINs with their tries, both keys; reads the authentication certificate", async () => {
    const r = await tool("pkcs15-tool", ["--dump", "--read-certificate", "01"]);
    expect(r.code, r.err).toBe(0);
    for (const label of [
      "X.509 Certificate [User Authentication Certificate]",
      "X.509 Certificate [Digital Signature Certificate]",
      "X.509 Certificate [User Authentication Certificate CA]",
      "X.509 Certificate [Digital Signature Certificate CA]",
      "Private RSA Key [User Authentication Key]",
      "Private RSA Key [Digital Signature Key]",
    ]) {
      expect(r.out).toContain(label);
    }
    // Tries left come from the card's empty VERIFY (63 Cx): 3 for the authentication PIN, 5 for the signature PIN.
    expect(r.out).toMatch(/PIN \[User Authentication PIN\][^]*?Tries left\s*: 3/);
    expect(r.out).toMatch(/PIN \[Digital Signature PIN\][^]*?Tries left\s*: 5/);
    // The authentication certificate is readable without a PIN, and it is the one our CA issued.
    authCertPem = r.out.slice(r.out.indexOf("-----BEGIN CERTIFICATE-----"));
    expect(Buffer.from(new X509Certificate(authCertPem).raw).equals(issued.authentication)).toBe(true);
  });

  it("signs through PKCS#11 with the authentication key; openssl verifies with the certificate read from the card", async () => {
    const data = join(dir, "challenge.bin");
    writeFileSync(data, "challenge from a relying party\n");
    const sig = join(dir, "auth.sig");
    const s = await pkcs11(["--token-label", AUTH_TOKEN, "--login", "--pin", AUTHENTICATION_PIN, "--sign", "--id", "01", "--mechanism", "SHA256-RSA-PKCS", "-i", data, "-o", sig]);
    expect(s.code, s.err).toBe(0);
    expect(readFileSync(sig)).toHaveLength(256);
    const cert = new X509Certificate(authCertPem);
    writeFileSync(join(dir, "auth.pub.pem"), cert.publicKey.export({ type: "spki", format: "pem" }));
    const v = await tool("openssl", ["dgst", "-sha256", "-verify", join(dir, "auth.pub.pem"), "-signature", sig, data]);
    expect(v.out.trim(), v.err).toBe("Verified OK");
    // A changed byte does not verify: the check above is a real one.
    writeFileSync(data, "challenge from a relying party!\n");
    expect((await tool("openssl", ["dgst", "-sha256", "-verify", join(dir, "auth.pub.pem"), "-signature", sig, data])).out).not.toContain("Verified OK");
  });

  it("signs with the signature key after its PIN; the signature certificate is read only after login", async () => {
    const data = join(dir, "application.xml");
    writeFileSync(data, '<?xml version="1.0" encoding="UTF-8"?>\n<申請 種別="転居届">東京都千代田区</申請>\n');
    const sig = join(dir, "sign.sig");
    const s = await pkcs11(["--token-label", SIGN_TOKEN, "--login", "--pin", SIGNATURE_PIN, "--sign", "--id", "02", "--mechanism", "SHA256-RSA-PKCS", "-i", data, "-o", sig]);
    expect(s.code, s.err).toBe(0);
    const der = join(dir, "sign-cert.der");
    const read = await pkcs11(["--token-label", SIGN_TOKEN, "--login", "--pin", SIGNATURE_PIN, "--read-object", "--type", "cert", "--id", "02", "-o", der]);
    expect(read.code, read.err).toBe(0);
    expect(readFileSync(der).equals(issued.signature)).toBe(true);
    writeFileSync(join(dir, "sign.pub.pem"), new X509Certificate(readFileSync(der)).publicKey.export({ type: "spki", format: "pem" }));
    const v = await tool("openssl", ["dgst", "-sha256", "-verify", join(dir, "sign.pub.pem"), "-signature", sig, data]);
    expect(v.out.trim(), v.err).toBe("Verified OK");
    // Made by the card's key, not by chance: the same data under the authentication key's certificate fails.
    expect((await tool("openssl", ["dgst", "-sha256", "-verify", join(dir, "auth.pub.pem"), "-signature", sig, data])).out).not.toContain("Verified OK");
  });

  it("a wrong PIN is refused and costs a try, which the next pkcs15-tool sees", async () => {
    const wrong = await pkcs11(["--token-label", AUTH_TOKEN, "--login", "--pin", "0000", "--list-objects"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.err).toContain("CKR_PIN_INCORRECT");
    expect((await tool("pkcs15-tool", ["--dump"])).out).toMatch(/PIN \[User Authentication PIN\][^]*?Tries left\s*: 2/);
  });

  it("pcscd restarts: the card is removed, reconnects by itself and is found again", async () => {
    const port = pcscd.vpcdPort;
    await pcscd.stop();
    pcscd = await startPcscd({ vpcdPort: port, network });
    await untilCardPresent();
    const r = await tool("opensc-tool", ["--atr"]);
    expect(r.out.trim(), r.err).toBe("3b:e0:00:ff:81:31:fe:45:14");
    expect(serveLog).toContain("card removed");
    expect(serveLog.match(/connected to vpcd/g)).toHaveLength(2);
  });

  it("SIGTERM stops the server cleanly", async () => {
    serve.kill("SIGTERM");
    expect(await serveExit, serveLog).toBe(0);
    expect(serveLog).toContain("card serve stopped");
    expect(serveLog).not.toContain(AUTHENTICATION_PIN);
    expect(serveLog).not.toContain(SIGNATURE_PIN);
  });
});
