/**
 * The early KEK: the launcher starts the CA keys' PBKDF2 from the workspace's hint while the program loads
 * (bin/early-kek.cjs); the key-wrap module uses that derivation only for exactly the salt, count and passphrase it
 * was made from; the workspace writes the hint when a run had to derive a KEK itself.
 */
import { execFileSync } from "node:child_process";
import { createHmac, generateKeyPairSync } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { encryptPrivateKey, unlockPrivateKey } from "./keys.js";
import { forgetKeks, KEY_WRAP_HINT_FILE, MIN_ITERATIONS, PBKDF2_ITERATIONS, newKeyWrapParams, takeDerivedKeyWrap, type KeyWrapParams } from "./key-wrap.js";
import { Workspace } from "../workspace/workspace.js";

const launcher = createRequire(import.meta.url)("../../bin/early-kek.cjs") as {
  startEarlyKek(args: string[], env: Record<string, string | undefined>, cwd?: string): boolean;
  HINT_FILE: string;
  HINT_MAX_BYTES: number;
  MIN_ITERATIONS: number;
  PBKDF2_ITERATIONS: number;
};
const EARLY = Symbol.for("jpki.early-kek");
type Early = { salt: Buffer; iterations: number; nonce: Buffer; check: Buffer; kek: Promise<Buffer | undefined> };
const early = () => (globalThis as { [EARLY]?: Early })[EARLY];
const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;

function hintIn(dir: string, p: KeyWrapParams): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, KEY_WRAP_HINT_FILE), JSON.stringify({ salt: Buffer.from(p.salt).toString("base64"), iterations: p.iterations }));
  return dir;
}

afterEach(() => {
  delete (globalThis as { [EARLY]?: Early })[EARLY];
});

describe("the launcher's early KEK (bin/early-kek.cjs)", () => {
  it("names the same hint file and iteration bounds as the key-wrap module", () => {
    expect(launcher.HINT_FILE).toBe(KEY_WRAP_HINT_FILE);
    expect([launcher.MIN_ITERATIONS, launcher.PBKDF2_ITERATIONS]).toEqual([MIN_ITERATIONS, PBKDF2_ITERATIONS]);
  });

  it("starts for a key command with JPKI_PASSPHRASE and the workspace's hint, found as the CLI finds the workspace", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-early-"));
    const p = newKeyWrapParams();
    hintIn(join(root, "ws"), p);
    hintIn(join(root, ".jpki"), p);
    const env = { JPKI_PASSPHRASE: "pw" };
    expect(launcher.startEarlyKek(["--workspace", join(root, "ws"), "crl", "generate", "--ca", "13-sig"], env)).toBe(true);
    expect(early()!.salt.equals(Buffer.from(p.salt))).toBe(true);
    expect(await early()!.kek).toHaveLength(32);
    expect(launcher.startEarlyKek(["-w", "ws", "issue"], env, root)).toBe(true);
    expect(launcher.startEarlyKek([`--workspace=${join(root, "ws")}`, "revoke"], env)).toBe(true);
    expect(launcher.startEarlyKek(["serve"], { ...env, JPKI_HOME: join(root, "ws") })).toBe(true);
    expect(launcher.startEarlyKek(["notices", "ingest"], env, root)).toBe(true); // ./.jpki
    // a passphrase file as the CLI reads it (one BOM and one final line break are not the passphrase), over JPKI_PASSPHRASE
    writeFileSync(join(root, "pp"), "\uFEFFpw\r\n", { mode: 0o600 });
    expect(launcher.startEarlyKek(["-w", "ws", "--passphrase-file", "pp", "crl", "generate"], { JPKI_PASSPHRASE: "other" }, root)).toBe(true);
    expect(early()!.check.equals(createHmac("sha256", early()!.nonce).update("pw").digest())).toBe(true);
    expect(launcher.startEarlyKek(["-w", "ws", `--passphrase-file=${join(root, "pp")}`, "crl", "generate"], {}, root)).toBe(true);
    expect(launcher.startEarlyKek(["-wws", "crl", "generate"], env, root)).toBe(true); // commander's attached value
    // an empty --passphrase-file= is no file: the CLI takes JPKI_PASSPHRASE then, and so does the launcher
    expect(launcher.startEarlyKek(["-w", "ws", "--passphrase-file=", "crl", "generate"], env, root)).toBe(true);
    // a global option's value is not the command
    expect(launcher.startEarlyKek(["-w", "crl", "inspect", "x.crl"], env, root)).toBe(false);
  });

  it("does nothing for other commands, help, a passphrase file, no passphrase, or a hint that is missing or not its own", () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-early-"));
    const ws = hintIn(join(root, "ws"), newKeyWrapParams());
    const env = { JPKI_PASSPHRASE: "pw" };
    const none = (args: string[], e: Record<string, string | undefined> = env) => {
      expect(launcher.startEarlyKek(args, e, root)).toBe(false);
      expect(early()).toBeUndefined();
    };
    none(["-w", ws, "inspect", "cert.pem"]);
    // a worker of serve --workers N beside JPKI_OCSP_PASSPHRASE: the CA passphrase is the primary's alone
    writeFileSync(join(root, "pp"), "pw\n", { mode: 0o600 });
    none(["-w", ws, "--passphrase-file", "pp", "serve", "--workers", "2"], { NODE_UNIQUE_ID: "1", JPKI_OCSP_PASSPHRASE: "ocsp" });
    none(["-w", ws, "serve", "--workers", "2"], { ...env, NODE_UNIQUE_ID: "1", JPKI_OCSP_PASSPHRASE: "ocsp" });
    none(["-w", ws, "serve", "--no-schedule"], { ...env, JPKI_OCSP_PASSPHRASE: "ocsp" }); // serves only: no CA key
    none(["-w", ws, "verify", "cert.pem"]);
    none(["-w", ws, "crl", "generate", "--help"]);
    none(["-w", ws, "crl", "help", "generate"]);
    none(["-w", ws, "--", "crl", "generate"]); // nothing after -- is an option or the command
    none(["-w", ws, "--passphrase-file", "missing", "crl", "generate"]);
    writeFileSync(join(root, "shared"), "pw\n", { mode: 0o640 });
    none(["-w", ws, "--passphrase-file", "shared", "crl", "generate"]); // the command refuses it: nothing early either
    execFileSync("mkfifo", [join(root, "fifo")]);
    none(["-w", ws, "--passphrase-file", join(root, "fifo"), "crl", "generate"]); // and no hang on a FIFO
    none(["-w", ws, "crl", "generate"], {});
    none(["-w", ws, "crl", "generate"], { JPKI_PASSPHRASE: "" });
    none(["-w", join(root, "none"), "crl", "generate"]);
    // not what the workspace writes: a count jpki never writes (10,000,000 would hold the process for seconds), a short
    // salt, a file too large to be a hint
    const salt = Buffer.alloc(16, 1).toString("base64");
    for (const bad of ["not json", "{}", '{"salt":"AAAA","iterations":600000}', `{"salt":"${salt}","iterations":10000000}`, `{"salt":"${salt}","iterations":600001}`, `{"salt":"${salt}","iterations":1}`, `{"salt":"${salt}","iterations":600000}${" ".repeat(launcher.HINT_MAX_BYTES)}`]) {
      writeFileSync(join(ws, KEY_WRAP_HINT_FILE), bad);
      none(["-w", ws, "crl", "generate"]);
    }
    writeFileSync(join(ws, KEY_WRAP_HINT_FILE), `{"salt":"${salt}","iterations":600000}`);
    expect(launcher.startEarlyKek(["-w", ws, "crl", "generate"], env, root)).toBe(true);
    delete (globalThis as { [EARLY]?: Early })[EARLY];
    // neither a FIFO (no hang) nor a link to an endless device (no reading it whole)
    rmSync(join(ws, KEY_WRAP_HINT_FILE));
    execFileSync("mkfifo", [join(ws, KEY_WRAP_HINT_FILE)]);
    none(["-w", ws, "crl", "generate"]);
    rmSync(join(ws, KEY_WRAP_HINT_FILE));
    symlinkSync("/dev/zero", join(ws, KEY_WRAP_HINT_FILE));
    none(["-w", ws, "crl", "generate"]);
  });
});

describe("the key-wrap module takes the early KEK", () => {
  const root = mkdtempSync(join(tmpdir(), "jpki-early-"));
  const p = newKeyWrapParams();
  const pem = encryptPrivateKey(key, "pw", p);
  /** An early derivation as the launcher starts it, for `passphrase` and `salt`; `kek` replaces its result. */
  const start = (passphrase: string, salt: Uint8Array, ...kek: [Buffer | undefined] | []) => {
    forgetKeks(); // else the KEK encryptPrivateKey derived is found cached and nothing early is asked for
    takeDerivedKeyWrap();
    expect(launcher.startEarlyKek(["-w", hintIn(join(root, "ws"), { ...p, salt }), "crl", "generate"], { JPKI_PASSPHRASE: passphrase })).toBe(true);
    if (kek.length) early()!.kek = Promise.resolve(kek[0]);
  };
  // An early KEK made wrong on purpose shows whether it was used: the unwrap then fails.
  const wrong = Buffer.alloc(32, 0x5a);

  it("uses one for exactly its salt, count and passphrase, instead of deriving its own", async () => {
    start("pw", p.salt);
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
    expect(takeDerivedKeyWrap()).toBeUndefined(); // nothing derived here
    start("pw", p.salt, wrong);
    await expect(unlockPrivateKey(pem, "pw")).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
  });

  it("takes it once: after forgetKeks (which zero-fills the cache) the next unlock derives again", async () => {
    start("pw", p.salt);
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
    expect(early()).toBeUndefined();
    forgetKeks();
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
  });

  it("does not use one made for another passphrase or salt, and derives its own when the early one failed", async () => {
    start("another passphrase", p.salt, wrong);
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
    expect(takeDerivedKeyWrap()?.iterations).toBe(p.iterations);
    start("pw", newKeyWrapParams().salt, wrong);
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
    start("pw", p.salt, undefined);
    await expect(unlockPrivateKey(pem, "pw")).resolves.toBeDefined();
    expect(Buffer.from(takeDerivedKeyWrap()!.salt).equals(Buffer.from(p.salt))).toBe(true);
  });
});

describe("the workspace's hint", () => {
  it("is written owner-only when the workspace closes after a run that derived a KEK, and names that run's parameters", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-early-ws-"));
    const ws = Workspace.create(dir);
    takeDerivedKeyWrap();
    const p = newKeyWrapParams();
    encryptPrivateKey(key, "pw", p); // derives the KEK
    await ws.close();
    const file = join(dir, KEY_WRAP_HINT_FILE);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual({ salt: Buffer.from(p.salt).toString("base64"), iterations: p.iterations });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    // a FIFO in its place neither hangs the close nor stays: the hint replaces it
    takeDerivedKeyWrap();
    rmSync(file);
    execFileSync("mkfifo", [file]);
    const w2 = await Workspace.openAsync(dir);
    encryptPrivateKey(key, "pw", p); // cached: derives nothing, so close leaves the FIFO alone
    forgetKeks();
    encryptPrivateKey(key, "pw", p); // derives
    await w2.close();
    expect(statSync(file).isFile()).toBe(true);
    // a run that derived nothing leaves it as it is
    const again = await Workspace.openAsync(dir);
    await again.close();
    expect(JSON.parse(readFileSync(file, "utf8")).salt).toBe(Buffer.from(p.salt).toString("base64"));
  });
});
