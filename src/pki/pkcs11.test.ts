import { execFileSync } from "node:child_process";
import { createHash, createPublicKey, generateKeyPairSync, verify } from "node:crypto";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import type * as Graphene from "graphene-pk11";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { initToken, makeSoftHsm, type SoftHsm, type TestToken } from "../../test/softhsm.js";
import { isJpkiError } from "../errors.js";
import { Pkcs11Signer, Pkcs11Token, formatPkcs11Uri, generatePkcs11Key, openPkcs11Signer, parsePkcs11Uri, readPinFile, setPkcs11PinSource } from "./pkcs11.js";

let hsm: SoftHsm;
let token: TestToken;
let locked: TestToken;
let noPin: TestToken;
let envNewline: TestToken[];
let signer: Pkcs11Signer;

async function codeOf(f: () => unknown): Promise<string | undefined> {
  try {
    await f();
  } catch (e) {
    return isJpkiError(e) ? e.code : `not a JpkiError: ${String(e)}`;
  }
  return "accepted";
}

beforeAll(() => {
  hsm = makeSoftHsm();
  token = initToken(hsm, "jpki unit");
  locked = initToken(hsm, "jpki wrong pin");
  noPin = initToken(hsm, "jpki no pin");
  envNewline = [initToken(hsm, "jpki env lf"), initToken(hsm, "jpki env crlf")];
  setPkcs11PinSource(() => token.pin);
  signer = generatePkcs11Key({ modulePath: hsm.modulePath, token: token.label, object: "ca-13-sig" });
});

afterAll(() => setPkcs11PinSource(undefined));

describe("Pkcs11Signer (SoftHSM2)", () => {
  it("generates an RSA-2048 key that never leaves the token: sensitive, not extractable, never extractable", () => {
    expect(createPublicKey({ key: signer.spki, format: "der", type: "spki" }).asymmetricKeyDetails?.modulusLength).toBe(2048);
    const g = createRequire(import.meta.url)("graphene-pk11") as typeof Graphene;
    const t = Pkcs11Token.open(hsm.modulePath, token.label);
    return t.withSession((s) => {
      const key = t.privateKey(s, signer.ref);
      expect(key.getAttribute({ sensitive: null, extractable: null, neverExtractable: null, alwaysSensitive: null, token: null, private: null })).toEqual({
        sensitive: true,
        extractable: false,
        neverExtractable: true,
        alwaysSensitive: true,
        token: true,
        private: true,
      });
      // Asking for the private exponent is refused by the token (CKR_ATTRIBUTE_SENSITIVE).
      expect(() => key.getAttribute({ privateExponent: null })).toThrow(/SENSITIVE/);
      expect(s.find({ class: g.ObjectClass.PRIVATE_KEY, label: "ca-13-sig" }).length).toBe(1);
    });
  });

  it("signs what node crypto and openssl verify, whole or in chunks, several at once", async () => {
    const data = Buffer.from("TBSCertificate stand-in: signed by the token");
    const pub = createPublicKey({ key: signer.spki, format: "der", type: "spki" });
    const [whole, chunked, ...more] = await Promise.all([
      signer.sign(data),
      signer.sign([data.subarray(0, 7), data.subarray(7)]),
      ...Array.from({ length: 6 }, () => signer.signDigest(createHash("sha256").update(data).digest())),
    ]);
    for (const sig of [whole!, chunked!, ...more]) expect(verify("sha256", data, pub, sig)).toBe(true);
    writeFileSync(join(hsm.dir, "data"), data);
    writeFileSync(join(hsm.dir, "sig"), whole!);
    writeFileSync(join(hsm.dir, "pub.pem"), pub.export({ type: "spki", format: "pem" }));
    const out = execFileSync("openssl", ["dgst", "-sha256", "-verify", join(hsm.dir, "pub.pem"), "-signature", join(hsm.dir, "sig"), join(hsm.dir, "data")], { encoding: "utf8" });
    expect(out.trim()).toBe("Verified OK");
  });

  it("signs many at once over the session pool (more callers than sessions), every signature verifying", async () => {
    const pub = createPublicKey({ key: signer.spki, format: "der", type: "spki" });
    const data = Array.from({ length: 200 }, (_, i) => Buffer.from(`certificate ${i}`));
    const sigs = await Promise.all(data.map((d) => signer.sign(d)));
    expect(sigs.filter((sig, i) => verify("sha256", data[i]!, pub, sig)).length).toBe(200);
  });

  it("reopens a key from its RFC 7512 URI, and refuses a reference to a key the token does not hold", async () => {
    const uri = signer.uri;
    expect(uri).toMatch(/^pkcs11:token=jpki%20unit;object=ca-13-sig;id=(%[0-9A-F]{2}){16}\?module-path=\/usr\/lib\/softhsm\/libsofthsm2\.so$/);
    const again = openPkcs11Signer(uri, signer.spki, [hsm.modulePath]);
    const data = Buffer.from("again");
    expect(verify("sha256", data, createPublicKey({ key: signer.spki, format: "der", type: "spki" }), await again.sign(data))).toBe(true);
    const otherId = formatPkcs11Uri({ ...signer.ref, id: Buffer.alloc(16, 7) });
    expect(await codeOf(() => openPkcs11Signer(otherId, signer.spki, [hsm.modulePath]))).toBe("ERR_PKCS11_KEY_NOT_FOUND");
    // the token's public half is checked against the certificate's key
    const foreign = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    expect(await codeOf(() => openPkcs11Signer(uri, foreign, [hsm.modulePath]))).toBe("ERR_WORKSPACE_CORRUPT");
  });

  it("loads no module a key reference names unless this host allows it: a rewritten reference is refused before anything is loaded", async () => {
    const elsewhere = (modulePath: string) => formatPkcs11Uri({ ...signer.ref, modulePath });
    // A file that fails as soon as it is loaded (not a shared library): refused as not allowed, so never dlopen'ed.
    const bogus = join(hsm.dir, "bogus-module.so");
    writeFileSync(bogus, "not a shared library\n");
    for (const path of [bogus, "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/softhsm/../softhsm/libsofthsm2.so"]) {
      let err: unknown;
      try {
        openPkcs11Signer(elsewhere(path), signer.spki, [hsm.modulePath]);
      } catch (e) {
        err = e;
      }
      expect(isJpkiError(err) && err.code, String(err)).toBe("ERR_PKCS11_MODULE_NOT_ALLOWED");
      const message = (err as Error).message;
      expect(message).toContain(`names the PKCS#11 module ${JSON.stringify(path)}`);
      expect(message).toContain("nothing was loaded");
      expect(message).toContain(`add ${JSON.stringify(path)} there`);
      expect(message).toContain('"pkcs11Modules"');
    }
    // none allowed at all (a host that never chose a module): the stored module itself is refused too
    expect(await codeOf(() => openPkcs11Signer(signer.uri, signer.spki, []))).toBe("ERR_PKCS11_MODULE_NOT_ALLOWED");
    // the control: allowed, the bogus file is loaded, and fails as a load does
    expect(await codeOf(() => openPkcs11Signer(elsewhere(bogus), signer.spki, [hsm.modulePath, bogus]))).toBe("ERR_PKCS11_MODULE");
    // and the module this host allows still signs
    const data = Buffer.from("allowed");
    const s = openPkcs11Signer(signer.uri, signer.spki, [hsm.modulePath]);
    expect(verify("sha256", data, createPublicKey({ key: signer.spki, format: "der", type: "spki" }), await s.sign(data))).toBe(true);
  });

  it("never returns a signature that does not verify (a token answering with another key's signature)", async () => {
    const t = Pkcs11Token.open(hsm.modulePath, token.label);
    const foreign = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const liar = new Pkcs11Signer(t, signer.ref, foreign);
    expect(await codeOf(() => liar.sign(Buffer.from("x")))).toBe("ERR_PKCS11_SIGN_FAILED");
  });

  it("types the failures: module, token, PIN (tried once only)", async () => {
    expect(await codeOf(() => Pkcs11Token.open(join(hsm.dir, "no-such-module.so"), token.label))).toBe("ERR_PKCS11_MODULE");
    expect(await codeOf(() => Pkcs11Token.open(hsm.modulePath, "no such token"))).toBe("ERR_PKCS11_TOKEN_NOT_FOUND");
    let asked = 0;
    setPkcs11PinSource(() => {
      asked++;
      return "000000";
    });
    try {
      let err: unknown;
      try {
        Pkcs11Token.open(hsm.modulePath, locked.label);
      } catch (e) {
        err = e;
      }
      expect(isJpkiError(err, "ERR_PKCS11_PIN_WRONG")).toBe(true);
      expect(String((err as Error).message)).not.toContain("000000");
      expect(await codeOf(() => Pkcs11Token.open(hsm.modulePath, locked.label))).toBe("ERR_PKCS11_PIN_WRONG");
      expect(asked).toBe(1);
    } finally {
      setPkcs11PinSource(() => token.pin);
    }
    const saved = [process.env.JPKI_PKCS11_PIN, process.env.JPKI_PKCS11_PIN_FILE];
    delete process.env.JPKI_PKCS11_PIN;
    delete process.env.JPKI_PKCS11_PIN_FILE;
    setPkcs11PinSource(undefined);
    try {
      expect(await codeOf(() => Pkcs11Token.open(hsm.modulePath, noPin.label))).toBe("ERR_PKCS11_PIN_MISSING");
      process.env.JPKI_PKCS11_PIN_FILE = join(hsm.dir, "pin");
      writeFileSync(join(hsm.dir, "pin"), `${noPin.pin}\n`, { mode: 0o600 });
      expect(Pkcs11Token.open(hsm.modulePath, noPin.label).label).toBe(noPin.label);
      // JPKI_PKCS11_PIN set from a file with its newline: the token was sent "PIN\n" and refused it (a try burned)
      delete process.env.JPKI_PKCS11_PIN_FILE;
      for (const [i, nl] of ["\n", "\r\n"].entries()) {
        const t = envNewline[i]!;
        process.env.JPKI_PKCS11_PIN = `${t.pin}${nl}`;
        expect(Pkcs11Token.open(hsm.modulePath, t.label).label).toBe(t.label);
      }
      delete process.env.JPKI_PKCS11_PIN;
    } finally {
      if (saved[0] !== undefined) process.env.JPKI_PKCS11_PIN = saved[0];
      if (saved[1] !== undefined) process.env.JPKI_PKCS11_PIN_FILE = saved[1];
      else delete process.env.JPKI_PKCS11_PIN_FILE;
      setPkcs11PinSource(() => token.pin);
    }
  });

  it("round-trips RFC 7512 URIs, %-encoding what is not a pchar", () => {
    const ref = { modulePath: "/opt/hsm/lib p11.so", token: "CA;token?/ 100%", object: "鍵 13", id: Buffer.from([0, 1, 0xfe]) };
    const uri = formatPkcs11Uri(ref);
    expect(uri).toBe("pkcs11:token=CA%3Btoken%3F%2F%20100%25;object=%E9%8D%B5%2013;id=%00%01%FE?module-path=/opt/hsm/lib%20p11.so");
    expect(parsePkcs11Uri(uri)).toEqual(ref);
    expect(() => parsePkcs11Uri("pkcs11:token=a;object=b")).toThrow(/must name/);
    expect(() => parsePkcs11Uri("file:///x")).toThrow(/pkcs11/);
  });
});

describe("readPinFile", () => {
  it("reads the first line of an owner-only file, and refuses one other users may read (the PIN in no message)", async () => {
    const f = join(hsm.dir, "pin.txt");
    writeFileSync(f, "4321\nignored\n", { mode: 0o600 });
    chmodSync(f, 0o600);
    expect(readPinFile(f)).toBe("4321");
    chmodSync(f, 0o644);
    expect(await codeOf(() => readPinFile(f))).toBe("ERR_PKCS11_PIN_FILE_UNSAFE");
    try {
      readPinFile(f);
    } catch (e) {
      expect(String((e as Error).message)).not.toContain("4321");
    }
  });

  it("reads a PIN file a Windows editor saved (a leading byte order mark, CRLF) as the PIN typed", () => {
    const f = join(hsm.dir, "pin-bom.txt");
    writeFileSync(f, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("4321\r\n")]), { mode: 0o600 });
    chmodSync(f, 0o600);
    expect(readPinFile(f)).toBe("4321");
  });
});
