/**
 * CA keys in a PKCS#11 token (issue 13 point 1), against SoftHSM2 in a temporary directory: `jpki ca init
 * --pkcs11-module --token` generates the keys inside the token (sensitive, never extractable) and the store keeps
 * only their RFC 7512 URIs; then, without a passphrase or any token flag, `issue`, `revoke`, `crl generate` and
 * `jpki serve` (its CRL schedule's thread signs the OCSP signing certificates) all sign through the token, and
 * OpenSSL verifies the certificate chain with the CRL (-crl_check) and the OCSP answers. Failures have their
 * codes and exit 19; the PIN is never an argument, nor in an error.
 */
import type { ChildProcess } from "node:child_process";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { Pkcs11Token, formatPkcs11Uri, parsePkcs11Uri } from "../../src/pki/pkcs11.js";
import { toPem } from "../../src/pki/pem.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { initToken, makeSoftHsm, type SoftHsm, type TestToken } from "../softhsm.js";
import { cardKey, cli, jpkiProcess, openWorkspace, startServe, tempDir, writeJsonl } from "./helpers.js";

let hsm: SoftHsm;
let token: TestToken;
let dir: string;
let ws: string;
let pinFile: string;
let caPem: string;
const ee: Array<{ serial: string; path: string }> = [];
let server: { child: ChildProcess; url: string; stderr: () => string } | undefined;

/** No passphrase anywhere: the token CA needs only its PIN (here from the environment). */
const tokenEnv = (): Record<string, string | undefined> => ({ JPKI_PASSPHRASE: undefined, JPKI_PKCS11_PIN: token.pin });

function sh(cmd: string, args: string[]): string {
  return execFileSync("sh", ["-c", `${cmd} ${args.map((a) => `'${a}'`).join(" ")} 2>&1 || true`], { encoding: "utf8" });
}

beforeAll(async () => {
  hsm = makeSoftHsm();
  token = initToken(hsm, "jpki-ca");
  dir = tempDir("jpki-hsm-");
  ws = join(dir, "ws");
  pinFile = join(dir, "token.pin");
  writeFileSync(pinFile, `${token.pin}\n`, { mode: 0o600 });
  const init = await cli(["--workspace", ws, "--pkcs11-pin-file", pinFile, "--json", "ca", "init", "-p", "13", "--pkcs11-module", hsm.modulePath, "--token", token.label], {
    cwd: dir,
    env: { JPKI_PASSPHRASE: undefined },
  });
  expect(init.code, init.stderr).toBe(0);
  expect(init.json().created.map((c: { id: string; keyRef?: string }) => c.keyRef?.slice(0, 26))).toEqual(["pkcs11:token=jpki-ca;objec", "pkcs11:token=jpki-ca;objec"]);
  const residents = [...generateResidents({ count: 2, seed: "hsm", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir, env: tokenEnv() })).code).toBe(0);
  for (let i = 0; i < 2; i++) {
    const { pub } = cardKey(dir, `card${i}`);
    const issued = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[i]!.residentCode), "--public-key", pub], { cwd: dir, env: tokenEnv() });
    expect(issued.code, issued.stderr).toBe(0);
    ee.push({ serial: issued.json().serial, path: issued.json().path });
  }
  const w = await openWorkspace(ws);
  caPem = join(dir, "ca.pem");
  writeFileSync(caPem, toPem((await w.store.getCa("13-sig"))!.certificateDer, "CERTIFICATE"));
  await w.close();
}, 120_000);

afterAll(() => {
  if (server?.child.exitCode === null) server.child.kill("SIGKILL");
});

describe("CA keys in a SoftHSM2 token, through the CLI", () => {
  it("keeps only the key's URI in the store; the key in the token is sensitive and never extractable", async () => {
    const w = await openWorkspace(ws);
    const cas = await w.store.listCas();
    await w.close();
    expect(cas.map((c) => c.id)).toEqual(["13-sig", "13-auth"]);
    for (const c of cas) {
      expect(c.encryptedKeyPem).toBe("");
      const ref = parsePkcs11Uri(c.keyRef!);
      expect(ref).toMatchObject({ modulePath: hsm.modulePath, token: "jpki-ca", object: `jpki CA ${c.id}` });
      const t = Pkcs11Token.open(ref.modulePath, ref.token);
      await t.withSession((s) => {
        const key = t.privateKey(s, ref);
        expect(key.getAttribute({ sensitive: null, extractable: null, neverExtractable: null })).toEqual({ sensitive: true, extractable: false, neverExtractable: true });
      });
    }
  });

  it("signs certificates and CRLs in the token that openssl verifies (-crl_check), a revoked one refused", async () => {
    expect(sh("openssl", ["verify", "-CAfile", caPem, ee[0]!.path])).toContain(": OK");
    const revoked = await cli(["--workspace", ws, "revoke", "--serial", ee[1]!.serial, "--reason", "keyCompromise"], { cwd: dir, env: tokenEnv() });
    expect(revoked.code, revoked.stderr).toBe(0);
    const g = await cli(["--workspace", ws, "--json", "crl", "generate", "--ca", "13-sig"], { cwd: dir, env: tokenEnv() });
    expect(g.code, g.stderr).toBe(0);
    const crl = g.json().crls[0];
    const crlPem = join(dir, "13-sig.crl.pem");
    writeFileSync(crlPem, toPem(readFileSync(crl.derPath), "X509 CRL"));
    expect(sh("openssl", ["crl", "-in", crlPem, "-CAfile", caPem, "-noout"])).toMatch(/verify OK/);
    expect(sh("openssl", ["verify", "-crl_check", "-CAfile", caPem, "-CRLfile", crlPem, ee[0]!.path])).toContain(": OK");
    expect(sh("openssl", ["verify", "-crl_check", "-CAfile", caPem, "-CRLfile", crlPem, ee[1]!.path])).toContain("certificate revoked");
  });

  it("answers OCSP from jpki serve: its signing certificate signed by the token, the answers verified by openssl", async () => {
    // The schedule's thread opens the token itself: PIN from the file, passed by path in the environment only.
    const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "hsm test", "--kind", "government"], { cwd: dir, env: tokenEnv() });
    expect(added.code, added.stderr).toBe(0);
    const bearer = added.json().token as string;
    server = await startServe(ws, ["--access-log", "off"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN_FILE: pinFile, JPKI_OCSP_PASSPHRASE: "responder keys" });
    expect(server.stderr()).toMatch(/OCSP signing certificate for 13-sig issued/);
    // no PIN on the server's command line
    const argv = readFileSync(`/proc/${server.child.pid}/cmdline`, "utf8");
    expect(argv).not.toContain(token.pin);
    const url = `${server.url}/ocsp/13-sig`;
    for (const [i, status] of [[0, ": good"], [1, ": revoked"]] as const) {
      const out = sh("openssl", ["ocsp", "-issuer", caPem, "-cert", ee[i]!.path, "-url", url, "-CAfile", caPem, "-header", `Authorization=Bearer ${bearer}`]);
      expect(out).toContain("Response verify OK");
      expect(out).toContain(status);
    }
  });

  it("types a wrong PIN (exit 19, ERR_PKCS11_PIN_WRONG, the PIN in no message), a missing token and module", async () => {
    const wrong = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN: "999999" });
    expect(wrong.code, wrong.stderr).toBe(19);
    expect(wrong.stderr).toContain("ERR_PKCS11_PIN_WRONG");
    expect(wrong.stderr).not.toContain("999999");
    // a refused PIN is a failed proof of who acts: the audit log records it (the code, never the PIN)
    const failures = await cli(["--workspace", ws, "--json", "audit", "show", "--action", "auth.failure"], { cwd: dir, env: tokenEnv() });
    expect(failures.stdout.trim().split("\n").map((l) => JSON.parse(l).detail)).toContainEqual({ code: "ERR_PKCS11_PIN_WRONG" });
    expect(failures.stdout).not.toContain("999999");
    const noPin = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf });
    expect(noPin.code, noPin.stderr).toBe(19);
    expect(noPin.stderr).toContain("ERR_PKCS11_PIN_MISSING");
    const other = join(dir, "ws2");
    const noToken = await cli(["--workspace", other, "ca", "init", "-p", "27", "--pkcs11-module", hsm.modulePath, "--token", "no such token"], { cwd: dir, env: tokenEnv() });
    expect([noToken.code, noToken.stderr]).toEqual([19, expect.stringContaining("ERR_PKCS11_TOKEN_NOT_FOUND")]);
    const noModule = await cli(["--workspace", other, "ca", "init", "-p", "27", "--pkcs11-module", join(dir, "nope.so"), "--token", token.label], { cwd: dir, env: tokenEnv() });
    expect([noModule.code, noModule.stderr]).toEqual([19, expect.stringContaining("ERR_PKCS11_MODULE")]);
    // there is no option that takes the PIN itself
    const flag = await cli(["--workspace", other, "--pkcs11-pin", token.pin, "ca", "list"], { cwd: dir, env: tokenEnv() });
    expect(flag.code).toBe(2);
  });

  it("loads only the modules config.json lists: a key reference rewritten in the store to another module is refused before anything is loaded", async () => {
    // ca init recorded the module it was given as this host's choice
    const configPath = join(ws, "config.json");
    expect(JSON.parse(readFileSync(configPath, "utf8")).pkcs11Modules).toEqual([hsm.modulePath]);
    // Whoever can write the store rewrites 13-sig's reference: to a file that fails as soon as it is loaded (so a
    // load would be ERR_PKCS11_MODULE), and to a library that exists. Both are refused unloaded, in a fresh process.
    const bogus = join(dir, "planted-module.so");
    writeFileSync(bogus, "not a shared library\n");
    const db = new Database(join(ws, "jpki.db"));
    const stored = (db.prepare("SELECT key_ref FROM cas WHERE id = '13-sig'").get() as { key_ref: string }).key_ref;
    try {
      for (const planted of [bogus, "/usr/lib/x86_64-linux-gnu/libc.so.6"]) {
        db.prepare("UPDATE cas SET key_ref = ? WHERE id = '13-sig'").run(formatPkcs11Uri({ ...parsePkcs11Uri(stored), modulePath: planted }));
        const r = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN: token.pin });
        expect(r.code, r.stderr).toBe(19);
        expect(r.stderr).toContain("ERR_PKCS11_MODULE_NOT_ALLOWED");
        expect(r.stderr).toContain(`the key of CA 13-sig names the PKCS#11 module ${JSON.stringify(planted)}`);
        expect(r.stderr).toContain("nothing was loaded");
        expect(r.stderr).toContain(`add ${JSON.stringify(planted)} there`);
      }
    } finally {
      db.prepare("UPDATE cas SET key_ref = ? WHERE id = '13-sig'").run(stored);
      db.close();
    }
    // the module config.json lists still signs
    const g = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN: token.pin });
    expect(g.code, g.stderr).toBe(0);
  });

  it("a workspace made before config.json listed modules keeps working: on SQLite it adopts its own store's module once, and config.json decides from then on", async () => {
    const configPath = join(ws, "config.json");
    const { pkcs11Modules, ...before } = JSON.parse(readFileSync(configPath, "utf8"));
    expect(pkcs11Modules).toEqual([hsm.modulePath]);
    writeFileSync(configPath, JSON.stringify(before, null, 2) + "\n", { mode: 0o600 });
    const g = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN: token.pin });
    expect(g.code, g.stderr).toBe(0);
    expect(JSON.parse(readFileSync(configPath, "utf8"))).toEqual({ ...before, pkcs11Modules: [hsm.modulePath] });
    // adopted once: a reference rewritten afterwards is refused as above
    const db = new Database(join(ws, "jpki.db"));
    const stored = (db.prepare("SELECT key_ref FROM cas WHERE id = '13-sig'").get() as { key_ref: string }).key_ref;
    try {
      db.prepare("UPDATE cas SET key_ref = ? WHERE id = '13-sig'").run(formatPkcs11Uri({ ...parsePkcs11Uri(stored), modulePath: join(dir, "planted-module.so") }));
      const r = await jpkiProcess(ws, ["crl", "generate", "--ca", "13-sig"], { SOFTHSM2_CONF: hsm.conf, JPKI_PKCS11_PIN: token.pin });
      expect([r.code, r.stderr]).toEqual([19, expect.stringContaining("ERR_PKCS11_MODULE_NOT_ALLOWED")]);
    } finally {
      db.prepare("UPDATE cas SET key_ref = ? WHERE id = '13-sig'").run(stored);
      db.close();
    }
  });

  it("rolls a token CA over with the new key generated in the same token; a verifier trusting the old root accepts the new key's certificate through OldWithNew", async () => {
    const r = await cli(["--workspace", ws, "--json", "ca", "rollover", "-p", "13", "--purpose", "sig"], { cwd: dir, env: tokenEnv() });
    expect(r.code, r.stderr).toBe(0);
    const w = await openWorkspace(ws);
    const g2 = (await w.store.getCa("13-sig-g2"))!;
    await w.close();
    expect(g2.encryptedKeyPem).toBe("");
    expect(parsePkcs11Uri(g2.keyRef!)).toMatchObject({ modulePath: hsm.modulePath, token: "jpki-ca", object: "jpki CA 13-sig-g2" });
    const { pub } = cardKey(dir, "card-g2");
    const residents = [...generateResidents({ count: 1, seed: "hsm-g2", prefectures: ["13"] })];
    writeJsonl(join(dir, "residents-g2.jsonl"), residents);
    expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents-g2.jsonl")], { cwd: dir, env: tokenEnv() })).code).toBe(0);
    const issued = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[0]!.residentCode), "--public-key", pub], { cwd: dir, env: tokenEnv() });
    expect(issued.code, issued.stderr).toBe(0);
    expect(issued.json().ca).toBe("13-sig-g2");
    const link = join(ws, "ca", "13-sig-g2.by-13-sig.pem");
    expect(sh("openssl", ["verify", "-CAfile", caPem, "-untrusted", link, issued.json().path])).toContain(": OK");
    expect(sh("openssl", ["verify", "-CAfile", caPem, issued.json().path])).not.toContain(": OK");
  });
});
