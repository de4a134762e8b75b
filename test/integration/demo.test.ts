/** The README's run command: `jpki demo` in an empty directory, and its printed checks hold. */
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAIN, cli, demoTemplate, expectedStore, onPostgres, runDemo, sh, storeKindOf, tempDir } from "./helpers.js";

describe("jpki demo", () => {
  it("runs the main job in a fresh directory and its openssl checks come out as it says", async () => {
    // The demo the global setup ran on this project's store (test/demo-template.ts): the built CLI's `jpki demo
    // --json` in a fresh directory, with no JPKI_* variable but JPKI_STORE. Every suite that starts from a demo
    // copies that run (runDemo); running it again here (≈ 8 s, 10 s on PostgreSQL) checked the same command on the
    // same inputs. Its report and files are checked on a copy, as they came out.
    const made = demoTemplate();
    expect(JSON.parse(made.report).workspace).toBe(made.workspace); // its default, ./jpki-demo, in the directory it ran in
    const cwd = tempDir("jpki-demo-");
    const d = (await runDemo(cwd)) as any; // the whole report, not only what DemoRun names
    // on this project's store: in the "postgres" project the demo ran with JPKI_STORE set (postgres-global-setup.ts), and its
    // workspace holds no jpki.db (postgres-workspace.test.ts ran the same demo on a server of its own for this)
    expect(storeKindOf(d.workspace)).toBe(expectedStore);
    expect(existsSync(join(d.workspace, "jpki.db"))).toBe(!onPostgres);
    expect(d.cas).toHaveLength(6);
    expect(d.certificates).toHaveLength(12);
    expect(d.crls.find((c: { ca: string }) => c.ca === d.revoked.ca).entries).toBe(1);
    for (const f of [d.passphraseFile, ...d.certificates.map((c: { path: string }) => c.path), ...d.crls.map((c: { der: string }) => c.der)]) {
      expect(existsSync(f), f).toBe(true);
    }
    const run = (cmd: string) => {
      const [bin, ...args] = cmd.split(" ");
      return sh(bin!, args, { cwd });
    };
    const ok = run(d.checks.valid);
    expect(ok.status, ok.out).toBe(0);
    const revoked = run(d.checks.revoked);
    expect(revoked.status).not.toBe(0);
    expect(revoked.out).toContain("certificate revoked");
    // the relocation notice revoked another signature certificate, on its CA's regenerated CRL
    const moved = run(d.checks.movedAway);
    expect(moved.status).not.toBe(0);
    expect(moved.out).toContain("certificate revoked");
    expect(Number(d.notice.crl.number)).toBe(2);
    // the private provider enrolled the resident who moved and, following the public CRL, revoked its own certificate
    expect(d.provider.revoked).toEqual([{ serial: d.provider.customer.serial, reason: "affiliationChanged" }]);
    expect(d.provider.customer.public).toBe(d.notice.revokedByMove);
    const providerCheck = run(d.checks.providerRevoked);
    expect(providerCheck.status).not.toBe(0);
    expect(providerCheck.out).toContain("certificate revoked");
    // the resident signed an application with the card before moving: OpenSSL accepts the signature with the CRL of
    // then, and refuses it as revoked with the CRL the counter's relocation notice made
    expect(d.application).toMatchObject({ beforeMove: "valid", afterMove: "revoked" });
    const caOf = join(d.workspace, "ca", `${d.notice.ca}.pem`);
    const sig = run(`openssl cms -verify -inform DER -in ${d.application.path} -CAfile ${caOf} -purpose any -out /dev/null`);
    expect(sig.out).toContain("Verification successful");
    // (openssl cms takes CRLs from the -CAfile bundle: X509_load_cert_crl_file)
    const bundle = join(cwd, "ca-and-crl.pem");
    writeFileSync(bundle, readFileSync(caOf, "utf8") + readFileSync(join(d.workspace, "crl", `${d.notice.ca}.crl.pem`), "utf8"));
    const sigRevoked = run(`openssl cms -verify -inform DER -in ${d.application.path} -CAfile ${bundle} -purpose any -crl_check -out /dev/null`);
    expect(sigRevoked.status).not.toBe(0);
    expect(sigRevoked.out).toContain("certificate revoked");
    // a second run refuses to clobber the directory unless told to
    const again = await cli(["demo"], { cwd });
    expect(again.stderr).toContain("--force");
  });

  // Store-independent: it runs the demo on SQLite (JPKI_STORE empty) in both projects; the "sqlite" one runs it.
  it.skipIf(onPostgres)("runs openssl without the JPKI_* variables a user exported (a JPKI_PASSPHRASE of theirs went to the child)", () => {
    // an `openssl` first on PATH that writes down its environment, then runs the real one
    const cwd = tempDir("jpki-demo-env-");
    const real = execFileSync("sh", ["-c", "command -v openssl"], { encoding: "utf8" }).trim();
    const seen = join(cwd, "openssl.env");
    writeFileSync(join(cwd, "openssl"), `#!/bin/sh\nenv >> '${seen}'\nexec '${real}' "$@"\n`);
    chmodSync(join(cwd, "openssl"), 0o700);
    const env = { ...process.env, PATH: `${cwd}:${process.env.PATH}`, JPKI_STORE: "", JPKI_PASSPHRASE: "users-own-secret-p1", JPKI_VERIFIER_TOKEN: "jpkiv_users-token-t2" };
    execFileSync(process.execPath, [MAIN, "demo", "--json", "--dir", join(cwd, "jpki-demo")], { cwd, env, stdio: "ignore" });
    const text = readFileSync(seen, "utf8");
    expect(text).toMatch(/^PATH=/m); // the child ran, with the rest of the environment
    expect(text).not.toMatch(/^JPKI_/m);
    expect(text).not.toContain("users-own-secret-p1");
  });

  // Store-independent (help and a usage error): the "sqlite" project runs it.
  it.skipIf(onPostgres)("explains itself: --help on the program and every command", async () => {
    const cwd = tempDir();
    const top = await cli(["--help"], { cwd });
    expect(top.code).toBe(0);
    expect(top.stdout).toContain("Exit codes:");
    for (const cmd of [["demo"], ["ca", "init"], ["ca", "list"], ["ca", "show"], ["registry", "import"], ["registry", "show"], ["issue"], ["revoke"], ["crl", "generate"], ["inspect"]]) {
      const h = await cli([...cmd, "--help"], { cwd });
      expect(h.code, cmd.join(" ")).toBe(0);
      expect(h.stdout).toMatch(/Usage: jpki/);
    }
    const bad = await cli(["issue", "--nonsense"], { cwd });
    expect(bad.code).toBe(2);
  });
});
