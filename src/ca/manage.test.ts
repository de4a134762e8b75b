/**
 * CA keys at rest across a workspace: one shared PBKDF2 salt, `ca init` refusing a passphrase that does not
 * open the existing CAs, and rewrapping older keys (OpenSSL's default 2048 iterations) all or nothing, the
 * OCSP signing keys (wrapped under the same passphrase) with them.
 */
import { createHash, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { certificateParts, children, nul, octetString, oid, readHeader, seq, tlv } from "../pki/der.js";
import { decryptPrivateKey, strongKeyWrapParams } from "../pki/keys.js";
import { OcspResponder } from "../ocsp/responder.js";
import { Workspace } from "../workspace/workspace.js";
import { CertificationAuthority } from "./authority.js";
import { caFiles, initCas, rewrapCaKeys } from "./manage.js";
import { renewOcspSigners } from "./ocsp-signer.js";
import { prefecture } from "./prefectures.js";

const clock = new FixedClock("2026-04-01T00:00:00Z");
const newWorkspace = () => Workspace.create(mkdtempSync(join(tmpdir(), "jpki-manage-")), { clock });
const saltOf = (pem: string) => Buffer.from(strongKeyWrapParams(pem)!.salt).toString("hex");
const code = async (p: Promise<unknown>) => p.then(() => "accepted", (e) => (e as { code?: string }).code);

/** Replaces every CA key by the same key exported as Node/OpenSSL did before (PBES2, 2048 iterations). */
async function makeOldStyle(ws: Workspace, passphrase: string): Promise<void> {
  const keys = (await ws.store.listCas()).map((r) => ({
    id: r.id,
    encryptedKeyPem: decryptPrivateKey(r.encryptedKeyPem, passphrase).export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase }) as string,
  }));
  await ws.store.replaceCaKeys(keys);
}

/** The CA opens and its signatures verify with the key in its certificate. */
async function signs(ws: Workspace, id: string, passphrase: string): Promise<boolean> {
  const rec = (await ws.store.getCa(id))!;
  const ca = CertificationAuthority.open(rec, passphrase, ws.config);
  const data = Buffer.from("tbs");
  const pub = createPublicKey({ key: certificateParts(rec.certificateDer).spki, format: "der", type: "spki" });
  return verify("sha256", data, pub, await ca.signer.sign(data));
}

/** Every CA's OCSP signing certificate, issued as the CRL schedule's renewal does, its key under `responderPassphrase`. */
async function issueOcspSigners(ws: Workspace, passphrase: string, responderPassphrase = passphrase): Promise<void> {
  const cas = (await ws.store.listCas()).map((r) => CertificationAuthority.open(r, passphrase, ws.config));
  await renewOcspSigners(ws.store, cas, { now: clock.now(), passphrase: responderPassphrase });
}

/** What a responder built with `passphrase` answers about serial 0a01 of CA `id`: its status, and whether the signature verifies. */
async function ocspAnswer(ws: Workspace, id: string, passphrase: string): Promise<{ responseStatus: string; statuses?: readonly string[]; verified?: boolean }> {
  const p = certificateParts((await ws.store.getCa(id))!.certificateDer);
  const bits = children(p.spki)[1]!;
  const keyHash = createHash("sha1").update(bits.subarray(readHeader(bits).headerLength + 1)).digest();
  const certId = seq(seq(oid("1.3.14.3.2.26"), nul()), octetString(createHash("sha1").update(p.subject).digest()), octetString(keyHash), tlv(0x02, Buffer.from("0a01", "hex")));
  const responder = new OcspResponder({ store: ws.store, clock, passphrase });
  try {
    await responder.refresh();
    const a = await responder.answer(id, seq(seq(seq(seq(certId)))));
    if (a.responseStatus !== "successful") return { responseStatus: a.responseStatus };
    const signer = (await ws.store.ocspResponders()).find((r) => r.caId === id)!;
    const basicOctets = children(children(children(a.der)[1]!)[0]!)[1]!;
    const [tbs, , sig] = children(basicOctets.subarray(readHeader(basicOctets).headerLength));
    const pub = createPublicKey({ key: certificateParts(signer.certificateDer).spki, format: "der", type: "spki" });
    return { responseStatus: a.responseStatus, statuses: a.statuses, verified: verify("sha256", tbs!, pub, sig!.subarray(readHeader(sig!).headerLength + 1)) };
  } finally {
    responder.stop();
  }
}

describe("initCas", () => {
  it("gives every CA key of a workspace one salt, also for CAs added later", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      await initCas(ws, { prefectures: [prefecture("27")], purposes: ["signature"], passphrase: "pw" });
      const salts = new Set((await ws.store.listCas()).map((r) => saltOf(r.encryptedKeyPem)));
      expect(salts.size).toBe(1);
      expect(await signs(ws, "27-sig", "pw")).toBe(true);
    } finally {
      await ws.close();
    }
  });

  it("refuses a passphrase that does not open the existing CAs, before generating anything", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const files = readdirSync(ws.paths.caDir).sort();
      expect(await code(initCas(ws, { prefectures: [prefecture("27")], purposes: ["signature"], passphrase: "other" }))).toBe("ERR_PASSPHRASE_WRONG");
      expect((await ws.store.listCas()).map((r) => r.id)).toEqual(["13-sig"]);
      expect(readdirSync(ws.paths.caDir).sort()).toEqual(files);
    } finally {
      await ws.close();
    }
  });
});

describe("initCas and the certificate files in ca/", () => {
  // A directory at ca/27-sig.pem made the rename of the new file fail after the CA was committed: ERR_INTERNAL with
  // a stack trace, and a CA whose files were never written (a retry: ERR_CA_EXISTS).
  it("refuses a directory where a new CA's certificate file goes, before any key is generated", async () => {
    const ws = newWorkspace();
    try {
      mkdirSync(caFiles(ws, "27-sig").pem);
      expect(await code(initCas(ws, { prefectures: [prefecture("27")], purposes: ["signature"], passphrase: "pw" }))).toBe("ERR_FILE_UNUSABLE");
      expect(await ws.store.listCas()).toEqual([]);
    } finally {
      await ws.close();
    }
  });

  // `ca init` killed between a CA's commit and its files left the CA unpublished: a retry said ERR_CA_EXISTS, and
  // with --skip-existing skipped it, files still missing.
  it("with skipExisting writes the files of existing CAs that are missing or not regular files (a symlink is replaced, not written through)", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const f = caFiles(ws, "13-sig");
      const want = { pem: readFileSync(f.pem), der: readFileSync(f.der) };
      rmSync(f.der);
      const elsewhere = join(ws.paths.root, "elsewhere.txt");
      writeFileSync(elsewhere, "not a certificate");
      rmSync(f.pem);
      symlinkSync(elsewhere, f.pem);
      const r = await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw", skipExisting: true });
      expect(r.skipped).toEqual(["13-sig"]);
      for (const p of [f.pem, f.der]) expect(lstatSync(p).isFile()).toBe(true);
      expect(readFileSync(f.pem)).toEqual(want.pem);
      expect(readFileSync(f.der)).toEqual(want.der);
      expect(readFileSync(elsewhere, "utf8")).toBe("not a certificate");
    } finally {
      await ws.close();
    }
  });
});

describe("rewrapCaKeys", () => {
  it("re-encrypts older keys with the strong KDF under one fresh salt, and the CAs still sign", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      await makeOldStyle(ws, "pw");
      const old = await ws.store.listCas();
      expect(old.every((r) => strongKeyWrapParams(r.encryptedKeyPem) === undefined)).toBe(true);
      expect(await signs(ws, "13-sig", "pw")).toBe(true); // older keys still open before the rewrap

      expect(await rewrapCaKeys(ws, { passphrase: "pw" })).toEqual({ rewrapped: ["13-sig", "13-auth"] });
      const now = await ws.store.listCas();
      expect(new Set(now.map((r) => saltOf(r.encryptedKeyPem))).size).toBe(1);
      expect(await signs(ws, "13-sig", "pw")).toBe(true);
      expect(await signs(ws, "13-auth", "pw")).toBe(true);
    } finally {
      await ws.close();
    }
  });

  it("moves the keys to a new passphrase; with a wrong passphrase it changes nothing", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      const before = (await ws.store.listCas()).map((r) => r.encryptedKeyPem);
      expect(await code(rewrapCaKeys(ws, { passphrase: "nope", newPassphrase: "new" }))).toBe("ERR_PASSPHRASE_WRONG");
      expect((await ws.store.listCas()).map((r) => r.encryptedKeyPem)).toEqual(before);

      await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" });
      expect(await signs(ws, "13-sig", "new")).toBe(true);
      expect(await code(signs(ws, "13-sig", "pw"))).toBe("ERR_PASSPHRASE_WRONG");
      expect(await code(rewrapCaKeys(ws, { passphrase: "new", newPassphrase: "" }))).toBe("ERR_PASSPHRASE_MISSING");
    } finally {
      await ws.close();
    }
  });

  it("refuses a key that does not belong to its certificate, changing nothing", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
      const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
      await ws.store.replaceCaKeys([{ id: "13-auth", encryptedKeyPem: stranger.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }) as string }]);
      const before = (await ws.store.listCas()).map((r) => r.encryptedKeyPem);
      expect(await code(rewrapCaKeys(ws, { passphrase: "pw" }))).toBe("ERR_WORKSPACE_CORRUPT");
      expect((await ws.store.listCas()).map((r) => r.encryptedKeyPem)).toEqual(before);
    } finally {
      await ws.close();
    }
  });
});

describe("rewrapCaKeys and the OCSP signing keys", () => {
  const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
  /** Two CAs, each with its OCSP signing certificate (key under "pw"), and one certificate 0a01 issued by 13-sig. */
  async function withSigners(responderPassphrase = "pw"): Promise<Workspace> {
    const ws = newWorkspace();
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
    await issueOcspSigners(ws, "pw", responderPassphrase);
    await ws.store.upsertResidents([{ residentCode: "r1", municipalityCode: "131016", fourItems: items, status: "active" }]);
    await ws.store.commitIssuances([{
      serial: "0a01", caId: "13-sig", type: "signature", residentCode: "r1", municipalityCode: "131016", fourItems: items,
      notBefore: clock.now(), notAfter: new Date("2029-01-01T00:00:00Z"), issuedAt: clock.now(), der: Buffer.from([0x30, 0]),
    }]);
    return ws;
  }
  const keysOf = async (ws: Workspace) => ({ cas: (await ws.store.listCas()).map((r) => r.encryptedKeyPem), ocsp: (await ws.store.ocspResponders()).map((r) => r.encryptedKeyPem) });

  it("moves the OCSP signing keys to the new passphrase with the CA keys: a responder with the new one answers, the old one opens nothing", async () => {
    const ws = await withSigners();
    try {
      expect(await ocspAnswer(ws, "13-sig", "pw")).toEqual({ responseStatus: "successful", statuses: ["good"], verified: true });
      const before = await ws.store.ocspResponders();
      const res = await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" });
      expect(await ocspAnswer(ws, "13-sig", "new")).toEqual({ responseStatus: "successful", statuses: ["good"], verified: true });
      expect(await ocspAnswer(ws, "13-sig", "pw")).toEqual({ responseStatus: "tryLater" });
      expect(res.rewrapped).toEqual(["13-sig", "13-auth", "ocsp:13-sig", "ocsp:13-auth"]);
      const after = await ws.store.ocspResponders();
      for (const r of after) {
        expect(await code(Promise.resolve().then(() => decryptPrivateKey(r.encryptedKeyPem, "pw")))).toBe("ERR_PASSPHRASE_WRONG");
        // the same certificate, serial and key; only its wrapping changed, under the CA keys' fresh salt
        const was = before.find((b) => b.caId === r.caId)!;
        expect({ ...r, encryptedKeyPem: "" }).toEqual({ ...was, encryptedKeyPem: "" });
        expect(saltOf(r.encryptedKeyPem)).toBe(saltOf((await ws.store.getCa(r.caId))!.encryptedKeyPem));
      }
      // one audit record for the rewrap, naming the OCSP signing keys with the CA keys
      const audit = [];
      for await (const r of ws.store.auditRecords()) audit.push(r);
      const rewrap = audit.filter((r) => r.action === "ca.rewrap");
      expect(rewrap).toHaveLength(1);
      expect(JSON.parse(rewrap[0]!.detail)).toEqual({ cas: ["13-sig", "13-auth"], ocspSigners: ["13-sig", "13-auth"].map((ca) => ({ ca, serial: after.find((r) => r.caId === ca)!.serial })) });
    } finally {
      await ws.close();
    }
  });

  it("a wrong passphrase, or an OCSP key that does not match its certificate, changes no key at all", async () => {
    const ws = await withSigners();
    try {
      const before = await keysOf(ws);
      expect(await code(rewrapCaKeys(ws, { passphrase: "nope", newPassphrase: "new" }))).toBe("ERR_PASSPHRASE_WRONG");
      expect(await keysOf(ws)).toEqual(before);

      // 13-auth's OCSP signing key replaced by a stranger under the right passphrase
      const rec = (await ws.store.ocspResponders()).find((r) => r.caId === "13-auth")!;
      const stranger = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "pw" }) as string;
      await ws.store.putOcspResponder({ ...rec, encryptedKeyPem: stranger });
      const damaged = await keysOf(ws);
      expect(await code(rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" }))).toBe("ERR_WORKSPACE_CORRUPT");
      expect(await keysOf(ws)).toEqual(damaged);
      expect(await signs(ws, "13-sig", "pw")).toBe(true);
    } finally {
      await ws.close();
    }
  });

  it("keys under their own passphrase (JPKI_OCSP_PASSPHRASE) stay under it: refused without it, re-encrypted under it with it", async () => {
    const ws = await withSigners("ocsp-pw");
    try {
      const before = await keysOf(ws);
      expect(await code(rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new" }))).toBe("ERR_PASSPHRASE_WRONG");
      expect(await keysOf(ws)).toEqual(before);
      expect((await rewrapCaKeys(ws, { passphrase: "pw", newPassphrase: "new", ocspPassphrase: "ocsp-pw" })).rewrapped).toEqual(["13-sig", "13-auth", "ocsp:13-sig", "ocsp:13-auth"]);
      expect(await signs(ws, "13-sig", "new")).toBe(true);
      expect(await ocspAnswer(ws, "13-sig", "ocsp-pw")).toEqual({ responseStatus: "successful", statuses: ["good"], verified: true });
      expect((await keysOf(ws)).ocsp).not.toEqual(before.ocsp); // the strong KDF, the CA keys' new salt
    } finally {
      await ws.close();
    }
  });
});

describe("Store.replaceCaKeys", () => {
  it("replaces all keys in one transaction: an unknown id leaves every key as it was", async () => {
    const ws = newWorkspace();
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
      const before = (await ws.store.getCa("13-sig"))!.encryptedKeyPem;
      expect(await code(ws.store.replaceCaKeys([{ id: "13-sig", encryptedKeyPem: "x" }, { id: "99-sig", encryptedKeyPem: "y" }]))).toBe("ERR_CA_UNKNOWN");
      expect((await ws.store.getCa("13-sig"))!.encryptedKeyPem).toBe(before);
    } finally {
      await ws.close();
    }
  });
});
